//! **IMDS-010 — Metadata request through a forward proxy or seen on the wire.**
//!
//! *What.* A forward proxy (Squid) logged a request for a metadata address, or a network monitor
//! (Zeek) saw one: the full URL names the service (`http://169.254.169.254/latest/meta-data/…`,
//! `http://metadata.google.internal/computeMetadata/v1/…`, ECS's `169.254.170.2`). The request
//! names its client, not a process.
//!
//! *Why.* A proxy asked for a metadata URL fetches it from its own host's service: the client
//! receives the proxy host's metadata and role credentials (server-side request forgery through
//! a proxy, and the path an open or misconfigured proxy gives attackers). A request carrying
//! `X-Forwarded-For` was relayed for someone else. On the wire, a request from a container or pod
//! address shows a workload reaching the node's credentials. Refusals (401, 403, 405) are
//! probes, or token-less IMDSv1 requests where IMDSv2 is required: a hardening gap to close
//! even when nothing was taken. A 2xx answer to a credential path means credentials left.
//!
//! *False positives.* Applications that reach the service through an egress proxy by design
//! (an HTTP_PROXY set for the whole host without a NO_PROXY entry for 169.254.169.254): add the
//! entry, the proxy should never carry these requests.
//!
//! *ATT&CK.* T1552.005, T1090 (Proxy), T1190 (Exploit Public-Facing Application).

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        on(Field::EventKind).is("http-request"),
        proxied_or_on_the_wire(),
        has_target(),
        on(Field::TargetEndpoint).exists(),
    ]);
    let b = Rule::documented(
        include_str!("imds_010_proxied_or_wire_request.rs"),
        Severity::Medium,
        when,
    )
    .attack("T1552.005")
    .attack("T1090")
    .attack("T1190")
    .reason("{http.client} requested {target.path} from the metadata service at {target.endpoint}.")
    .reason_if(
        on(Field::HttpVantage).is("outbound"),
        "A forward proxy carried it: the proxy fetches it from its own host's metadata service, so the answer is that host's metadata and credentials.",
    )
    .reason_if(
        on(Field::HttpVantage).is("wire"),
        "A network monitor saw it on the wire.",
    )
    .reason_if(
        on(Field::HttpForwardedFor).exists(),
        "The request carries X-Forwarded-For {http.forwarded_for}: it was relayed for another client, as server-side request forgery through a proxy is.",
    )
    .reason_if(
        on(Field::HttpStatus).starts_with_any(&["401", "403", "405"]),
        "The answer was {http.status}: refused. A probe, or a token-less (IMDSv1) request where IMDSv2 is required.",
    )
    .reason_if(
        on(Field::HttpStatus).starts_with_any(&["2"]),
        "The answer was {http.status}: the service answered.",
    );
    let b = standard_reasons(b)
        .escalate(
            Expr::Any(vec![
                credentials(),
                on(Field::TargetKind).is("token"),
                on(Field::HttpForwardedFor).exists(),
            ]),
            Severity::High,
            "The path hands out credentials or tokens, or the request was relayed for another client.",
        )
        .escalate(
            credentials_answered(),
            Severity::Critical,
            "A credential path was answered with success and a body the size of a credential document: role credentials left the service.",
        );
    finish(b)
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    // A pod fetching the proxy host's role credentials through Squid.
    "1795165921.920      4 10.244.3.17 TCP_MISS/200 1321 GET http://169.254.169.254/latest/meta-data/iam/security-credentials/proxy-node-role - HIER_DIRECT/169.254.169.254 text/plain",
    // The IMDSv2 token request through the proxy.
    "1795165921.305      3 10.244.3.17 TCP_MISS/200 56 PUT http://169.254.169.254/latest/api/token - HIER_DIRECT/169.254.169.254 text/plain",
    // Refused by the proxy: still a request worth knowing about.
    "1795165990.002      0 10.0.2.45 TCP_DENIED/403 3900 GET http://169.254.169.254/latest/user-data - HIER_NONE/- text/html",
    // On the wire, relayed for an outside client.
    r#"{"ts":1795165930.0,"uid":"Cx1","id.orig_h":"10.0.1.15","id.orig_p":40100,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":1,"method":"GET","host":"169.254.169.254","uri":"/computeMetadata/v1/instance/service-accounts/default/token","version":"1.1","user_agent":"Wget/1.21","status_code":200,"response_body_len":250,"proxied":["X-FORWARDED-FOR -> 203.0.113.9"]}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    "1795165200.114     87 10.0.2.31 TCP_MISS/200 5120 GET http://deb.debian.org/debian/dists/bookworm/InRelease - HIER_DIRECT/151.101.2.132 text/plain",
    "1795165201.402    412 10.0.2.31 TCP_TUNNEL/200 48211 CONNECT api.github.com:443 - HIER_DIRECT/140.82.112.6 -",
    // A neighbour that is not the metadata service (Amazon Time Sync).
    "1795165202.000      1 10.0.2.31 TCP_MISS/200 48 GET http://169.254.169.123/ - HIER_DIRECT/169.254.169.123 text/plain",
    // Asked of a web server, not through a proxy: IMDS-009's.
    r#"198.51.100.23 - - [20/Nov/2026:09:20:41 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 404 153 "-" "curl/8.4.0""#,
];
