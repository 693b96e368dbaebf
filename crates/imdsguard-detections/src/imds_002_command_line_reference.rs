//! **IMDS-002 — Command line references a cloud metadata endpoint.**
//!
//! *What.* A process whose command line, read by the normalizer, points at a metadata service:
//! `curl http://169.254.169.254/latest/meta-data/`, `Invoke-RestMethod -Headers
//! @{Metadata="true"} http://169.254.169.254/metadata/instance`, `wget metadata/computeMetadata/v1/`,
//! a metadata environment variable. Pattern 2 of the KQL hunting query for T1552.005; the Linux rule of the
//! Suspicious IMDS API Request detection.
//!
//! *Why.* Hands-on-keyboard discovery and scripted theft show up as command lines before (or
//! without) any network record. Host-level process logs are often the only telemetry there is.
//!
//! *Not here.* Credential paths (IMDS-004) and obfuscated targets (IMDS-005) have their own
//! detections of higher severity; a masquerading agent is IMDS-007.
//!
//! *False positives.* Administrators checking an instance by hand (`curl .../instance-id`),
//! provisioning scripts run from user-data; they read non-credential paths and rank medium.
//!
//! *ATT&CK.* T1552.005, T1580.

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        has_target(),
        on(Field::TargetSource).is("command-line"),
        not_agent(),
        !masquerade(),
        !credentials(),
        !on(Field::TargetEncoding).exists(),
    ]);
    let b = Rule::documented(include_str!("imds_002_command_line_reference.rs"), Severity::Medium, when)
    .attack("T1552.005")
    .attack("T1580")
    .reason("{process.name} was run with a command line that requests the metadata service at {target.endpoint}.")
    .reason("{process.verdict_reason}.")
    .reason_if(
        on(Field::TargetMethod).is("PUT"),
        "It asks for an IMDSv2 session token, the first step of every IMDSv2 read.",
    );
    finish(standard_reasons(b))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl -s http://169.254.169.254/latest/meta-data/","parent":{"executable":"/bin/bash"}}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"az1"},"process":{"executable":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","command_line":"powershell -c \"Invoke-RestMethod -Headers @{Metadata='true'} -Uri 'http://169.254.169.254/metadata/instance?api-version=2021-02-01'\""}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl -X PUT http://169.254.169.254/latest/api/token -H X-aws-ec2-metadata-token-ttl-seconds:21600"}}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    // Credential paths are IMDS-004's.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl http://169.254.169.254/latest/meta-data/iam/security-credentials/role"}}"#,
    // Obfuscated targets are IMDS-005's.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl http://0xa9fea9fe/latest/meta-data/"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl https://example.com/latest/meta-data/"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/ntpdate","command_line":"ntpdate 169.254.169.123"}}"#, // The Azure guest agent's firewall helper, started by the agent (Security 4688 as NXLog wrote
    // it in the OTRF data): it names WireServer's address to restrict access to it.
    r#"{"Version":2,"TargetLogonId":"0x0","SubjectLogonId":"0x3e7","ParentProcessName":"C:\\WindowsAzure\\GuestAgent_2.7.41491.993_2020-09-04_054718\\GuestAgent\\WindowsAzureGuestAgent.exe","Opcode":"Info","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"WORKSTATION5.theshire.local","NewProcessId":"0x17f4","NewProcessName":"C:\\WindowsAzure\\GuestAgent_2.7.41491.993_2020-09-04_054718\\GuestAgent\\BfeToolWin8.exe","EventType":"AUDIT_SUCCESS","ThreadID":344,"RecordNumber":48466,"SeverityValue":2,"SourceModuleName":"eventlog","Keywords":-9214364837600034816,"Severity":"INFO","CommandLine":"\"BfeToolWin8.exe\" /restricthostaccess 168.63.129.16","OpcodeValue":0,"MandatoryLabel":"S-1-16-16384","host":"wec.internal.cloudapp.net","EventID":4688,"SubjectUserName":"WORKSTATION5$","ProcessId":"0xc78","port":53971,"TargetDomainName":"-","@version":"1","TargetUserSid":"S-1-0-0","TokenElevationType":"%%1936","Category":"Process Creation","EventReceivedTime":"2020-09-04 03:09:21","Task":13312,"EventTime":"2020-09-04 03:08:22","Channel":"security","TargetUserName":"-","@timestamp":"2020-09-04T07:09:22.869Z","SubjectDomainName":"THESHIRE","ProviderGuid":"{54849625-5478-4994-A5BA-3E3B0328C30D}","ExecutionProcessID":4,"SubjectUserSid":"S-1-5-18","SourceModuleType":"im_msvistalog","tags":["mordorDataset"]}"#,
];
