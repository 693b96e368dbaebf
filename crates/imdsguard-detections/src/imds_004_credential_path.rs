//! **IMDS-004 — Request for cloud credentials from the metadata service.**
//!
//! *What.* A command line or requested URL for a path that hands out credentials: AWS
//! `iam/security-credentials/…`, ECS task credentials (`169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`),
//! Azure managed-identity tokens (`/metadata/identity/oauth2/token`), GCP service-account tokens
//! (`/computeMetadata/v1/instance/service-accounts/…/token`), Oracle, Alibaba, DigitalOcean and
//! the others in the catalog.
//!
//! *Why.* This is the theft itself: the answer is a key or token usable from anywhere until it
//! expires (the Capital One breach). It ranks above plain metadata reads. A command that a cloud
//! agent launched (SSM Run Command, Azure Run Command, cloud-init scripts) is judged as its own
//! process: the agent is trusted, what it runs is not. Using IMDSv2 correctly (token first, then
//! the read with its header) is no reason for silence; attackers do it too.
//!
//! *Not here.* Requests a forward proxy logged or a monitor saw on the wire are IMDS-010's; paths
//! asked of a web server itself are IMDS-009's; payloads in requests a server received are
//! IMDS-011's.
//!
//! *False positives.* Scripts that deliberately export instance credentials (some CI runners and
//! backup tools); they should use the SDK instead, and can be allowed by path.
//!
//! *ATT&CK.* T1552.005.

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        has_target(),
        credentials(),
        on(Field::TargetSource).any_of(&["command-line", "url"]),
        not_agent(),
        !masquerade(),
        !asked_of_the_server(),
        !proxied_or_on_the_wire(),
        !ssrf_in_request(),
    ]);
    let b = Rule::documented(include_str!("imds_004_credential_path.rs"), Severity::High, when)
    .attack("T1552.005")
    .reason("{process.name} requests {target.path} from the metadata service at {target.endpoint}: the answer is a credential usable from anywhere.")
    .reason_if(!on(Field::ProcessName).exists(), "A request for {target.path} from the metadata service at {target.endpoint} was logged.")
    .reason("{process.verdict_reason}.")
    .reason_if(
        on(Field::ParentName).any_of(&["ssm-document-worker", "ssm-document-worker.exe", "ssm-session-worker", "ssm-session-worker.exe", "RunCommandExtension.exe", "google_guest_agent", "google_osconfig_agent", "cloud-init"]),
        "It was started by a cloud agent ({parent.name}); the agent is trusted, what it runs is not: this is how credentials are read through Run Command.",
    );
    finish(standard_reasons(b))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl http://169.254.169.254/latest/meta-data/iam/security-credentials/app-role","parent":{"executable":"/bin/bash"}}}"#,
    // Launched by the SSM agent: judged on its own.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/","parent":{"executable":"/usr/bin/ssm-document-worker"}}}"#,
    // IMDSv2 used correctly is no reason for silence.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl -H \"X-aws-ec2-metadata-token: $TOKEN\" http://169.254.169.254/latest/meta-data/iam/security-credentials/app-role"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"az1"},"process":{"executable":"/usr/bin/curl","command_line":"curl -H Metadata:true 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/'"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"ecs1"},"process":{"executable":"/bin/sh","command_line":"sh -c 'curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'"}}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl http://169.254.169.254/latest/meta-data/instance-id"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl https://iam.example.com/latest/meta-data/iam/security-credentials/x"}}"#,
];
