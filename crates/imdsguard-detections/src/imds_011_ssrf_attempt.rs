//! **IMDS-011 — Server-side request forgery attempt against the metadata service.**
//!
//! *What.* A request a web server, load balancer, gateway or WAF received carries a metadata
//! target: a URL in a parameter, the path or the `Host` the application is asked to fetch
//! (`/preview?url=http://169.254.169.254/latest/meta-data/…`), in any encoding the normalizer
//! reads (percent and double-percent encoding, decimal and IPv6 forms, nested URLs, rebinding
//! names …).
//!
//! *Why.* This is the SSRF payload itself, logged where it arrived, with the client that sent it
//! (MITRE ATT&CK T1552.005's SSRF path; the Capital One breach). What the path hands out ranks
//! it (credentials and tokens above user-data above a plain metadata read), and the answer
//! tells how it went: a 2xx with a body the size of a credential document suggests the
//! application returned the service's answer; 4xx and 5xx are probes that failed there.
//!
//! *Not here.* Paths asked of the server itself, with no address (the Host-header request), are
//! IMDS-009's; requests a forward proxy carried or a monitor saw are IMDS-010's. An encoded form
//! ranks high here rather than raising IMDS-005 beside it.
//!
//! *False positives.* Security scanners run on purpose against the site, and applications whose
//! parameters legitimately carry a link-local URL (none should): allow the scanner's addresses
//! in the WAF, not here.
//!
//! *ATT&CK.* T1552.005, T1190 (Exploit Public-Facing Application).

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        on(Field::EventKind).is("http-request"),
        ssrf_in_request(),
    ]);
    let b = Rule::documented(
        include_str!("imds_011_ssrf_attempt.rs"),
        Severity::Medium,
        when,
    )
    .attack("T1552.005")
    .attack("T1190")
    .reason("{http.client} sent a request carrying the metadata target {target.endpoint}{target.path}: a server-side request forgery attempt.")
    .reason_if(
        on(Field::TargetEncoding).exists(),
        "The target is written in these forms: {target.encoding}.",
    )
    .reason_if(
        on(Field::HttpStatus).starts_with_any(&["4", "5"]),
        "The server answered {http.status}: the attempt failed there (a probe).",
    )
    .reason_if(
        on(Field::HttpStatus).starts_with_any(&["2"]),
        "The server answered {http.status}: it may have fetched the target.",
    );
    let b = standard_reasons(b)
        .escalate(
            Expr::Any(vec![
                credentials(),
                on(Field::TargetKind).any_of(&["token", "userdata"]),
            ]),
            Severity::High,
            "The path hands out credentials, tokens or user-data.",
        )
        .escalate(
            obfuscated(),
            Severity::High,
            "The target is written to slip past filters, which benign requests never do.",
        )
        .escalate(
            credentials_answered(),
            Severity::Critical,
            "A credential path was answered with success and a body the size of a credential document: the application may have returned the role's credentials.",
        );
    finish(b)
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"203.0.113.50 - - [20/Nov/2026:09:12:03 +0000] "GET /api/preview?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/shop-web-role HTTP/1.1" 200 1321 "-" "python-requests/2.31.0""#,
    r#"203.0.113.50 - - [20/Nov/2026:09:12:01 +0000] "GET /api/preview?url=http://169.254.169.254/latest/meta-data/ HTTP/1.1" 200 312 "-" "python-requests/2.31.0""#,
    r#"203.0.113.50 - - [20/Nov/2026:09:12:09 +0000] "GET /api/preview?url=http%253A%252F%252F2852039166%252Flatest%252Fuser-data HTTP/1.1" 500 0 "-" "python-requests/2.31.0""#,
    r#"{"insertId":"k2","httpRequest":{"requestMethod":"GET","requestUrl":"https://shop.example/api/preview?src=http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token","status":403,"responseSize":"153","remoteIp":"203.0.113.50"},"resource":{"type":"http_load_balancer"},"timestamp":"2026-11-20T11:20:07.530Z","logName":"projects/p/logs/requests"}"#,
    // An ECS web record, the payload percent-encoded: high for the encoding.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["web"]},"host":{"name":"web01"},"url":{"full":"http://shop.example/fetch?u=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F"},"destination":{"ip":"10.0.0.5","port":80}}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"198.51.100.7 - - [20/Nov/2026:09:00:09 +0000] "GET /api/preview?url=https%3A%2F%2Fcdn.shop.example%2Fimg%2Fhat.png HTTP/1.1" 200 1893 "-" "Mozilla/5.0""#,
    // A path asked of the server itself: IMDS-009's.
    r#"198.51.100.23 - - [20/Nov/2026:09:20:41 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 404 153 "-" "curl/8.4.0""#,
    // Through a forward proxy: IMDS-010's.
    "1795165921.920      4 10.244.3.17 TCP_MISS/200 1321 GET http://169.254.169.254/latest/meta-data/iam/security-credentials/proxy-node-role - HIER_DIRECT/169.254.169.254 text/plain",
];
