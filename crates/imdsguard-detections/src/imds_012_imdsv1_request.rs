//! **IMDS-012 — IMDSv1 request to the instance metadata service (hardening).**
//!
//! *What.* A request to AWS's instance metadata service, seen on the wire or through a forward
//! proxy by a log that records the request's header names (Zeek's `client_header_names`, a WAF's
//! headers), that carries no `X-aws-ec2-metadata-token`: an IMDSv1 request. Token requests
//! (`PUT /latest/api/token`) are not counted.
//!
//! *Why.* IMDSv1 answers any GET, so server-side request forgery that can only make the server
//! fetch a URL reads role credentials; IMDSv2's session token (a PUT with a header, then the
//! token on each read) stops it. A successful IMDSv1 request shows an instance still accepts
//! it; a 401 shows the request was refused because tokens are required. AWS's guidance and
//! MITRE ATT&CK's T1552.005 mitigations both name enforcing IMDSv2.
//!
//! *False positives.* Old SDKs and agents that predate IMDSv2 still send IMDSv1 requests: they
//! are the hardening work itself (upgrade them, then set `HttpTokens` to `required`).
//!
//! *ATT&CK.* T1552.005 (mitigation M1042, Disable or Remove Feature or Program).

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
        on(Field::TargetProvider).is("aws"),
        on(Field::HttpHeaderNames).exists(),
        !on(Field::HttpHeaderNames).is("X-aws-ec2-metadata-token"),
        !on(Field::TargetKind).is("token"),
        !on(Field::HttpMethod).is("PUT"),
    ]);
    let b = Rule::documented(
        include_str!("imds_012_imdsv1_request.rs"),
        Severity::Low,
        when,
    )
    .attack("T1552.005")
    .reason("{http.client} asked the metadata service for {target.path} without a session token (no X-aws-ec2-metadata-token among the headers {http.header_names}): an IMDSv1 request.")
    .reason_if(
        on(Field::HttpStatus).starts_with_any(&["2"]),
        "The service answered {http.status}: the instance accepts IMDSv1. Require IMDSv2 (HttpTokens required) once its clients send tokens.",
    )
    .reason_if(
        on(Field::HttpStatus).is("401"),
        "The service answered 401: the instance requires tokens; the client still sends IMDSv1 requests.",
    );
    finish(b)
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"ts":1795165940.0,"uid":"Cv1","id.orig_h":"10.42.0.23","id.orig_p":51600,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":1,"method":"GET","host":"169.254.169.254","uri":"/latest/meta-data/iam/security-credentials/node-role","version":"1.1","user_agent":"python-requests/2.31.0","status_code":200,"response_body_len":1321,"client_header_names":["HOST","USER-AGENT","ACCEPT-ENCODING","ACCEPT","CONNECTION"]}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    // IMDSv2: the token header is among the headers.
    r#"{"ts":1795165941.0,"uid":"Cv2","id.orig_h":"10.42.0.23","id.orig_p":51602,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":2,"method":"GET","host":"169.254.169.254","uri":"/latest/meta-data/iam/security-credentials/node-role","version":"1.1","user_agent":"aws-sdk-go/1.44","status_code":200,"response_body_len":1321,"client_header_names":["HOST","USER-AGENT","X-AWS-EC2-METADATA-TOKEN","ACCEPT-ENCODING"]}"#,
    // The token request itself.
    r#"{"ts":1795165939.0,"uid":"Cv2","id.orig_h":"10.42.0.23","id.orig_p":51602,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":1,"method":"PUT","host":"169.254.169.254","uri":"/latest/api/token","version":"1.1","user_agent":"aws-sdk-go/1.44","status_code":200,"response_body_len":56,"client_header_names":["HOST","USER-AGENT","X-AWS-EC2-METADATA-TOKEN-TTL-SECONDS"]}"#,
    // A log that does not record header names says nothing of the token.
    r#"{"ts":1795165940.0,"uid":"Cv3","id.orig_h":"10.42.0.23","id.orig_p":51604,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":1,"method":"GET","host":"169.254.169.254","uri":"/latest/meta-data/instance-id","version":"1.1","status_code":200,"response_body_len":19}"#,
];
