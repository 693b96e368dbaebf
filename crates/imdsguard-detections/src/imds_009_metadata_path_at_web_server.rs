//! **IMDS-009 — Metadata path requested of a web server.**
//!
//! *What.* A web server or reverse proxy logged a request for a path only a metadata service
//! serves — `/latest/meta-data/…`, `/latest/api/token`, `/computeMetadata/v1/…`,
//! `/metadata/identity/oauth2/token`, `/opc/v2/…` and the rest of the catalog — asked of the
//! server itself, with no metadata address anywhere in the URL.
//!
//! *Why.* That is how the Capital One breach read role credentials: a misconfigured reverse
//! proxy (a WAF) forwarded requests by their `Host` header, so a request to the public site for
//! `/latest/meta-data/iam/security-credentials/` with `Host: 169.254.169.254` was answered by the
//! instance metadata service. Scanners probe for such proxies the same way. A 2xx answer to a
//! credential path means the server may have relayed the service's answer: critical.
//!
//! *False positives.* An application that serves such a path itself (a metadata mock, a cloud
//! emulator in a test environment): allow its host. A 404 is a probe that failed; it is still
//! worth knowing who probes.
//!
//! *ATT&CK.* T1552.005, T1190 (Exploit Public-Facing Application), T1090 (Proxy).

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        on(Field::HttpVantage).is("inbound"),
        on(Field::EventKind).is("http-request"),
        asked_of_the_server(),
    ]);
    let b = Rule::documented(
        include_str!("imds_009_metadata_path_at_web_server.rs"),
        Severity::Medium,
        when,
    )
    .attack("T1552.005")
    .attack("T1190")
    .attack("T1090")
    .reason("{http.client} asked this web server for {target.path}, a path only the {target.service} serves: a probe for a proxy that forwards requests to it by their Host header.")
    .reason_if(
        on(Field::HttpStatus).exists(),
        "The server answered {http.status}.",
    )
    .escalate(
        Expr::Any(vec![credentials(), on(Field::TargetKind).is("token")]),
        Severity::High,
        "The path hands out role credentials or access tokens.",
    )
    .escalate(
        credentials_answered(),
        Severity::Critical,
        "The server answered a credential path with a body the size of a credential document: it may have relayed the metadata service's answer.",
    );
    finish(b)
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    // The Capital One request, as the proxy's access log (vhost_combined) records it.
    r#"169.254.169.254:80 198.51.100.23 - - [20/Nov/2026:09:20:41 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 200 28 "-" "curl/8.4.0""#,
    r#"198.51.100.23 - - [20/Nov/2026:09:20:41 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 404 153 "-" "curl/8.4.0""#,
    r#"198.51.100.23 - - [20/Nov/2026:09:20:42 +0000] "GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1" 404 153 "-" "python-requests/2.31.0""#,
    r#"198.51.100.23 - - [20/Nov/2026:09:20:43 +0000] "PUT /latest/api/token HTTP/1.1" 405 166 "-" "curl/8.4.0""#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"198.51.100.7 - - [20/Nov/2026:09:00:04 +0000] "GET / HTTP/1.1" 200 5120 "-" "Mozilla/5.0""#,
    r#"198.51.100.7 - - [20/Nov/2026:09:00:05 +0000] "GET /api/metadata/products?page=2 HTTP/1.1" 200 912 "-" "Mozilla/5.0""#,
    // The payload in a parameter is IMDS-004's and IMDS-005's, not a path asked of the server.
    r#"203.0.113.50 - - [20/Nov/2026:09:12:03 +0000] "GET /api/preview?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/ HTTP/1.1" 200 14 "-" "python-requests/2.31.0""#,
];
