//! **IMDS-007 — Cloud agent masquerade reaching the metadata service.**
//!
//! *What.* A process named like an allowlisted cloud agent (`amazon-ssm-agent`,
//! `WindowsAzureGuestAgent.exe`, `google_guest_agent` ...) that reaches or references the metadata
//! service while running from the wrong path, as an unexpected user, or under the wrong parent.
//!
//! *Why.* Naming a payload after the agent is the cheapest way past a detection that allowlists
//! agents by name (the KQL hunting query for T1552.005 does exactly that). imdsguard verifies agents by path, so a
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
    let b = Rule::documented(
        include_str!("imds_007_agent_masquerade.rs"),
        Severity::High,
        when,
    )
    .attack("T1036.005")
    .attack("T1552.005")
    .reason("{process.verdict_reason}.")
    .reason("It reached for the metadata service at {target.endpoint}.");
    finish(critical_on_credentials(standard_reasons(b)))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/var/tmp/amazon-ssm-agent"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"az1"},"process":{"executable":"C:\\Users\\Public\\WindowsAzureGuestAgent.exe"},"destination":{"ip":"169.254.169.254","port":80}}"#, // The guest agent's helper by name and place, but started by a shell, not by the agent.
    r#"{"Version":2,"TargetLogonId":"0x0","SubjectLogonId":"0x3e7","ParentProcessName":"C:\\Windows\\System32\\cmd.exe","Opcode":"Info","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"WORKSTATION5.theshire.local","NewProcessId":"0x17f4","NewProcessName":"C:\\WindowsAzure\\GuestAgent_2.7.41491.993_2020-09-04_054718\\GuestAgent\\BfeToolWin8.exe","EventType":"AUDIT_SUCCESS","ThreadID":344,"RecordNumber":48466,"SeverityValue":2,"SourceModuleName":"eventlog","Keywords":-9214364837600034816,"Severity":"INFO","CommandLine":"\"BfeToolWin8.exe\" /restricthostaccess 168.63.129.16","OpcodeValue":0,"MandatoryLabel":"S-1-16-16384","host":"wec.internal.cloudapp.net","EventID":4688,"SubjectUserName":"WORKSTATION5$","ProcessId":"0xc78","port":53971,"TargetDomainName":"-","@version":"1","TargetUserSid":"S-1-0-0","TokenElevationType":"%%1936","Category":"Process Creation","EventReceivedTime":"2020-09-04 03:09:21","Task":13312,"EventTime":"2020-09-04 03:08:22","Channel":"security","TargetUserName":"-","@timestamp":"2020-09-04T07:09:22.869Z","SubjectDomainName":"THESHIRE","ProviderGuid":"{54849625-5478-4994-A5BA-3E3B0328C30D}","ExecutionProcessID":4,"SubjectUserSid":"S-1-5-18","SourceModuleType":"im_msvistalog","tags":["mordorDataset"]}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/snap/amazon-ssm-agent/7628/amazon-ssm-agent"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/var/tmp/amazon-ssm-agent"},"destination":{"ip":"10.0.0.1","port":443}}"#,
];
