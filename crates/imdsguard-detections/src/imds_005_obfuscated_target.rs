//! **IMDS-005 — Obfuscated cloud metadata target.**
//!
//! *What.* A metadata endpoint written in any non-canonical form: decimal, octal, hex or short
//! IPv4 (`2852039166`, `0251.0376.0251.0376`, `0xa9fea9fe`), IPv6 wrappings (`::ffff:a9fe:a9fe`,
//! NAT64), percent-encoding, userinfo and backslash tricks, IDNA look-alikes, wildcard-DNS and
//! rebinding names, URLs nested in parameters, base64 and escapes, concatenation, `gopher://`
//! smuggling, `--resolve` overrides.
//!
//! *Why.* Benign software writes `http://169.254.169.254/` or the provider's documented host name.
//! Every other spelling exists to slip past a filter (SSRF deny-lists, naive detections), so it is
//! high severity on its own. Addresses the operating system logged (a connection's destination)
//! are not counted: their notation says nothing.
//!
//! *Not here.* A payload in a request a web server, balancer or WAF received is IMDS-011's,
//! which ranks an encoded one higher.
//!
//! *False positives.* Security testing (SSRF scanners, payload lists run on purpose).
//!
//! *ATT&CK.* T1552.005, T1027 (Obfuscated Files or Information), T1190 when it arrives through a
//! web request.

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        has_target(),
        obfuscated(),
        not_agent(),
        !ssrf_in_request(),
    ]);
    let b = Rule::documented(include_str!("imds_005_obfuscated_target.rs"), Severity::High, when)
    .attack("T1552.005")
    .attack("T1027")
    .reason("The metadata service at {target.endpoint} is written in a non-canonical form ({target.encoding}), which benign software does not do.")
    .reason_if(on(Field::ProcessName).exists(), "{process.verdict_reason}.")
    .reason_if(on(Field::EventKind).is("http-request"), "It arrived in a web request ({network.url}): a server-side request forgery attempt.");
    finish(critical_on_credentials(standard_reasons(b)))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl http://0xa9fea9fe/latest/meta-data/"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/wget","command_line":"wget -qO- http://[::ffff:a9fe:a9fe]/latest/meta-data/iam/security-credentials/"}}"#,
    // A DNS query for the service's address written as one decimal number (Sysmon 22): the
    // program asked for that name, so the notation is its writer's.
    r#"{"EventID":22,"Hostname":"web01","Channel":"Microsoft-Windows-Sysmon/Operational","SourceName":"Microsoft-Windows-Sysmon","UtcTime":"2026-11-20 10:00:00.120","ProcessGuid":"{39e4a257-0000-0000-0000-000000000901}","ProcessId":"4401","QueryName":"2852039166","QueryStatus":"0","QueryResults":"::ffff:169.254.169.254;","Image":"C:\\Users\\dev\\AppData\\Local\\Programs\\tool.exe","EventTime":"2026-11-20 10:00:00"}"#,
    // The Capital One path, audited: the request goes to a public address whose reverse proxy
    // forwards it by the Host header to the service.
    "type=SYSCALL msg=audit(1763630000.300:3001): arch=c000003e syscall=59 success=yes exit=0 a0=55d1 a1=55d2 a2=55d3 a3=0 items=2 ppid=2200 pid=2201 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=pts0 ses=3 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"exec\"\n\
     type=EXECVE msg=audit(1763630000.300:3001): argc=4 a0=\"curl\" a1=\"http://54.12.3.4/latest/meta-data/iam/security-credentials/\" a2=\"-H\" a3=\"Host:169.254.169.254\"\n\
     type=EOE msg=audit(1763630000.300:3001):\n",
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    // A payload in a request a web server received: IMDS-011's.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["web"]},"host":{"name":"web01"},"url":{"full":"http://shop.example/fetch?u=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F"},"destination":{"ip":"10.0.0.5","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl","command_line":"curl http://169.254.169.254/latest/meta-data/"}}"#,
    // The OS logged an IPv4-mapped destination: notation of a log, not of an attacker.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl"},"destination":{"ip":"::ffff:169.254.169.254","port":80}}"#,
];
