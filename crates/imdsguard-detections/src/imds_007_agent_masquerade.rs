//! **IMDS-007 — Cloud agent masquerade.**
//!
//! *What.* A process named like an allowlisted cloud agent (`amazon-ssm-agent`,
//! `WindowsAzureGuestAgent.exe`, `google_guest_agent` ...) that reaches or references the metadata
//! service while running from the wrong path, as an unexpected user, or under the wrong parent.
//!
//! *Why.* Naming a payload after the agent is the cheapest way past a detection that allowlists
//! agents by name (seed 001's query does exactly that). imdsguard verifies agents by path, so a
//! lookalike stands out, and it stands out as deliberate.
//!
//! *False positives.* An agent installed in a non-default directory: add its path with
//! `--allowlist`.
//!
//! *ATT&CK.* T1036.005 (Masquerading: Match Legitimate Name or Location), T1552.005.

use imdsguard_event::Severity;
use imdsguard_rules::Rule;

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = has_target().and(masquerade());
    let b = Rule::builder(
        "IMDS-007",
        "Cloud agent masquerade reaching the metadata service",
        Severity::High,
        when,
    )
    .description(
        "A process named like an allowlisted cloud agent, running from the wrong path, as the \
         wrong user or under the wrong parent, reaches the metadata service.",
    )
    .false_positive("An agent installed in a non-default directory.")
    .attack("T1036.005")
    .attack("T1552.005")
    .reason("{process.verdict_reason}.")
    .reason("It reached for the metadata service at {target.endpoint}.");
    finish(critical_on_credentials(standard_reasons(b)))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/var/tmp/amazon-ssm-agent"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"az1"},"process":{"executable":"C:\\Users\\Public\\WindowsAzureGuestAgent.exe"},"destination":{"ip":"169.254.169.254","port":80}}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/snap/amazon-ssm-agent/7628/amazon-ssm-agent"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/var/tmp/amazon-ssm-agent"},"destination":{"ip":"10.0.0.1","port":443}}"#,
];
