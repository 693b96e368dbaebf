//! **IMDS-106 — Instance credentials fetched over IMDSv1.**
//!
//! *What.* A cloud API call made with an instance profile's credentials that CloudTrail marks
//! as delivered over IMDSv1 (`userIdentity.sessionContext.ec2RoleDelivery` `1.0`): the instance
//! still allows IMDSv1 and something on it still uses it. One finding per instance and role.
//!
//! *Why.* IMDSv1 answers a plain GET, which is all a server-side request forgery can make: the
//! role credentials of such an instance can be read through any vulnerable web application on
//! it. AWS's guidance and MITRE ATT&CK's T1552.005 mitigations name requiring IMDSv2; this
//! finding names the instances where that is not done yet, from the audit log alone.
//!
//! *False positives.* None as a fact; as a risk, an instance whose software predates IMDSv2 is
//! the hardening work itself: upgrade the SDK or agent, then require tokens.
//!
//! *ATT&CK.* T1552.005 (mitigation M1042, Disable or Remove Feature or Program).

use imdsguard_event::Severity;
use imdsguard_rules::Alert;

use super::{alert, Cloud, CloudUse};
use crate::imds::Meta;

/// IMDS-106.
pub const META: Meta = Meta {
    source: include_str!("imds_106_imdsv1_delivery.rs"),
    severity: Severity::Low,
};

impl Cloud {
    pub(super) fn imdsv1(&mut self, u: &CloudUse, out: &mut Vec<Alert>) {
        if u.delivery.as_deref() != Some("1.0") {
            return;
        }
        let role = u.role.clone().unwrap_or_default();
        if !self.imdsv1.insert((u.instance.clone(), role.clone())) {
            return;
        }
        let role = if role.is_empty() {
            "its role"
        } else {
            role.as_str()
        };
        let mut reasons = vec![format!(
            "Instance {} fetched {role}'s credentials over IMDSv1: CloudTrail marks the session's calls with ec2RoleDelivery 1.0.",
            u.instance
        )];
        match self.inventory.by_id(&u.instance) {
            Some(i) if i.http_tokens.as_deref() == Some("optional") => reasons.push(
                "The inventory confirms HttpTokens optional on the instance.".into(),
            ),
            Some(i) if i.http_tokens.as_deref() == Some("required") => reasons.push(
                "The inventory shows HttpTokens required now: the setting changed after these credentials were issued.".into(),
            ),
            _ => {}
        }
        reasons.push(format!(
            "Require IMDSv2 once its software sends tokens: aws ec2 modify-instance-metadata-options --instance-id {} --http-tokens required --http-endpoint enabled",
            u.instance
        ));
        out.push(alert(&META, META.severity, u, reasons, Vec::new()));
    }
}
