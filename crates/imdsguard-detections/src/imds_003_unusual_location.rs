//! **IMDS-003 — Metadata request from a binary in an unusual location.**
//!
//! *What.* A process running from a temporary directory, a downloads folder, `/dev/shm`, another
//! user-writable place (home directories, `C:\Users\Public`, `AppData`, `C:\ProgramData`, web
//! roots), or a deleted or memory-only binary, that reaches or references a metadata endpoint.
//! The "requests from unusual locations" of the Suspicious IMDS API Request detection.
//!
//! *Why.* Cloud agents and admin tools are installed by packages into system directories;
//! droppers, miners (TeamTNT's, Kinsing) and stagers run from where they were written.
//!
//! *False positives.* Developers running tools from their home directory on a cloud workstation;
//! self-updating agents that run from a staging directory (allow them with `--allowlist`).
//!
//! *ATT&CK.* T1552.005, T1036 (Masquerading: binaries hidden in temp paths).

use imdsguard_event::Severity;
use imdsguard_rules::{Expr, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        has_target(),
        not_agent(),
        !masquerade(),
        unusual_location(),
    ]);
    let b = Rule::documented(include_str!("imds_003_unusual_location.rs"), Severity::High, when)
    .attack("T1552.005")
    .attack("T1036")
    .reason("{process.image} runs from {process.location_text} and reaches for the metadata service at {target.endpoint}.")
    .reason("{process.verdict_reason}.");
    finish(critical_on_credentials(standard_reasons(b)))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/tmp/.x/kdevtmpfsi"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"w1"},"process":{"executable":"C:\\Users\\bob\\AppData\\Local\\Temp\\upd.exe","command_line":"upd.exe http://169.254.169.254/latest/user-data"}}"#,
    "type=SYSCALL msg=audit(1700000000.100:9): arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=7ffd a2=10 a3=0 items=0 ppid=100 pid=2301 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=(none) ses=3 comm=\"c\" exe=\"/dev/shm/.x/c\" key=(null)\ntype=SOCKADDR msg=audit(1700000000.100:9): saddr=02000050A9FEA9FE0000000000000000\ntype=EOE msg=audit(1700000000.100:9):",
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/tmp/.x/kdevtmpfsi"},"destination":{"ip":"10.1.2.3","port":80}}"#,
];
