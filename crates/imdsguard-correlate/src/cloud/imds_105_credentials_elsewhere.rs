//! **IMDS-105 — Instance credentials used from elsewhere.**
//!
//! *What.* A cloud API call made with an instance's credentials from an address that is not the
//! instance's. The credentials are an instance's when the record says so — an EC2 instance
//! profile's role session (CloudTrail names the session after the instance:
//! `assumed-role/ROLE/i-0abc…`), an Azure VM's managed identity (the token's `xms_mirid` is the
//! VM) — or, on Google Cloud, when the inventory gives the calling service account to
//! instances. Not the instance's: not among its private and public addresses in the inventory,
//! or, for an instance the inventory does not list (or lists without a public address, so its
//! way out is unknown), not the address its earlier calls came from. Calls an AWS service makes
//! on the session's behalf (`invokedBy`), calls whose source is a service name, and calls
//! through a VPC endpoint from a private address no other listed instance has are not
//! elsewhere. Critical when the address is public and belongs to no listed
//! instance (outside the account's instances); high from another listed instance, a private
//! address, or a second address of an unlisted instance. Each later call from the same address
//! with the same credentials joins as a low-severity alert, once per API operation: the recon
//! and use that follow (`GetCallerIdentity`, `ListBuckets`, `GetObject` …).
//!
//! *Why.* Stolen instance credentials are used off the instance: that is the step after theft
//! through the metadata service, and the one the cloud's audit log records (the Capital One
//! breach; OTRF's `ec2_proxy_s3_exfiltration` dataset). The method is GuardDuty's
//! `InstanceCredentialExfiltration` findings and Netflix's published one: credentials issued to
//! an instance are only ever used from that instance.
//!
//! *False positives.* Without an inventory the first address an instance's sessions are seen
//! from is taken as its own: when the stolen credentials are the first seen, the instance's own
//! later calls are the ones reported (the reasons say which address came first); give
//! `--inventory` for certainty. Instances whose traffic leaves through several NAT gateways or
//! proxies; an Elastic IP moved to another instance.
//!
//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API), T1078.004 (Valid Accounts: Cloud Accounts).

use imdsguard_event::Severity;
use imdsguard_rules::Alert;

use super::{alert, Cloud, CloudUse};
use crate::imds::Meta;
use crate::triage::is_external;

/// IMDS-105.
pub const META: Meta = Meta {
    source: include_str!("imds_105_credentials_elsewhere.rs"),
    severity: Severity::High,
};

impl Cloud {
    pub(super) fn elsewhere(&mut self, u: &CloudUse, out: &mut Vec<Alert>) {
        let Some(ip) = u.caller else {
            return;
        };
        if u.invoked_by.is_some() {
            return;
        }
        let listed: Vec<&imdsguard_event::Instance> = if u.by_identity {
            self.inventory.by_identity(&u.instance)
        } else {
            self.inventory.by_id(&u.instance).into_iter().collect()
        };
        // A service account no listed instance holds may be any workload's: nothing to compare.
        if u.by_identity && listed.is_empty() {
            return;
        }
        if listed.iter().any(|i| i.owns(ip)) {
            return;
        }
        // Through a VPC endpoint an instance calls from its private address, beside the public
        // one its other calls leave by: not elsewhere, unless the address is another listed
        // instance's.
        if u.vpc_endpoint && !is_external(ip) && self.inventory.by_ip(ip).is_none() {
            return;
        }
        // An instance listed without a public address reaches the provider's API through a NAT
        // or the provider's default outbound address, which the inventory does not give: its
        // own public address is learned as for an unlisted one.
        let egress_unknown = is_external(ip) && listed.iter().all(|i| i.public_ips.is_empty());
        let (severity, whose) = if (u.by_identity || !egress_unknown) && !listed.is_empty() {
            let own: Vec<String> = listed
                .iter()
                .flat_map(|i| i.private_ips.iter().chain(&i.public_ips))
                .map(|a| a.to_string())
                .collect();
            let own = if own.is_empty() {
                "none listed".to_owned()
            } else {
                own.join(", ")
            };
            let held_by = if u.by_identity {
                let ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
                format!(
                    "The inventory gives {} to instance(s) {}, whose addresses are {own}",
                    u.instance,
                    ids.join(", ")
                )
            } else {
                format!("The inventory lists the instance's addresses as {own}")
            };
            let other = self.inventory.by_ip(ip).map(|o| o.id.clone());
            let public = is_external(ip);
            let sev = if other.is_none() && public && !u.by_identity {
                Severity::Critical
            } else {
                Severity::High
            };
            let whose = match other {
                Some(o) => format!("{held_by}; {ip} is instance {o}'s: the credentials moved to another machine."),
                None if public => format!("{held_by}; {ip} is a public address no listed instance has: the credentials are used outside the account's instances."),
                None => format!("{held_by}; {ip} is not one of them."),
            };
            (sev, whose)
        } else {
            let seen = self.learned.entry(u.instance.clone()).or_default();
            if seen.is_empty() || seen.contains(&ip) {
                if seen.is_empty() {
                    seen.push(ip);
                }
                return;
            }
            let first: Vec<String> = seen.iter().map(|a| a.to_string()).collect();
            let listed_note = if listed.is_empty() {
                "The instance is not in the inventory"
            } else {
                "The inventory gives the instance no public address, so the address its calls leave from is learned"
            };
            (
                Severity::High,
                format!(
                    "{listed_note}; its sessions' calls came from {} first, so {ip} is a second place the credentials are used from (if {ip} is the instance's own, the first address is the one to look at).",
                    first.join(", ")
                ),
            )
        };
        let action = u
            .context
            .cloud
            .as_ref()
            .and_then(|c| c.action.clone())
            .unwrap_or_default();
        let service = u
            .context
            .cloud
            .as_ref()
            .and_then(|c| c.service.clone())
            .unwrap_or_default();
        let agent = u
            .context
            .cloud
            .as_ref()
            .and_then(|c| c.user_agent.clone())
            .unwrap_or_else(|| "no user agent".into());
        let role = u.role.as_deref().unwrap_or("its role");
        let refused = u
            .context
            .cloud
            .as_ref()
            .and_then(|c| c.error.as_deref())
            .map_or_else(String::new, |e| format!(" (refused: {e})"));
        let key = (u.instance.clone(), ip);
        if let Some((first, calls)) = self.elsewhere.get_mut(&key) {
            if calls.insert(action.clone()) {
                out.push(alert(
                    &META,
                    Severity::Low,
                    u,
                    vec![format!(
                        "The same credentials of instance {} then called {action} on {service} from {ip}{refused}: use of the stolen session.",
                        u.instance
                    )],
                    vec![first.clone()],
                ));
            }
            return;
        }
        let mut reasons = vec![
            format!(
                "{role}'s credentials, issued to instance {}, called {action} on {service} from {ip} ({agent}){refused}.",
                u.instance
            ),
            whose,
        ];
        if u.delivery.as_deref() == Some("1.0") {
            reasons.push(
                "The instance fetched these credentials over IMDSv1 (ec2RoleDelivery 1.0): a plain GET, as a server-side request forgery makes, was enough to read them."
                    .into(),
            );
        }
        if u.vpc_endpoint {
            reasons.push(
                "The call came through a VPC endpoint: from inside the network, another machine's."
                    .into(),
            );
        }
        let a = alert(&META, severity, u, reasons, Vec::new());
        let mut calls = std::collections::BTreeSet::new();
        calls.insert(action);
        self.elsewhere.insert(key, (a.id.clone(), calls));
        out.push(a);
    }
}
