//! Conditions the detections share.

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule, RuleBuilder};

/// The event holds a metadata target somewhere (destination, URL, DNS query, command line).
pub fn has_target() -> Expr {
    on(Field::TargetKind).exists()
}

/// The acting process is not a verified agent.
pub fn not_agent() -> Expr {
    !on(Field::ProcessVerdict).is("agent")
}

/// Named like an agent but contradicting its entry (IMDS-007's ground).
pub fn masquerade() -> Expr {
    on(Field::ProcessVerdict).is("masquerade")
}

/// Locations the Suspicious IMDS API Request detection calls unusual.
pub const UNUSUAL_LOCATIONS: &[&str] = &[
    "deleted",
    "shared-memory",
    "temp",
    "downloads",
    "user-writable",
];

/// The executable lives in an unusual location.
pub fn unusual_location() -> Expr {
    on(Field::ProcessLocation).any_of(UNUSUAL_LOCATIONS)
}

/// The most severe target hands out credentials.
pub fn credentials() -> Expr {
    on(Field::TargetKind).is("credentials")
}

/// A web server or one's child.
pub fn web_caller() -> Expr {
    on(Field::ProcessCaller).exists()
}

/// Container context.
pub fn in_container() -> Expr {
    Expr::Any(vec![
        on(Field::ContainerId).exists(),
        on(Field::ContainerPod).exists(),
    ])
}

/// A request a web server received for a path only a metadata service serves, with no
/// metadata address in it: the request line's `path-only` target (IMDS-009's ground; the other
/// detections leave it to IMDS-009).
pub fn asked_of_the_server() -> Expr {
    Expr::All(vec![
        on(Field::HttpVantage).is("inbound"),
        on(Field::TargetEncoding).is("path-only"),
        !on(Field::TargetEndpoint).exists(),
    ])
}

/// A request a web server, balancer, gateway or WAF received that carries a metadata address
/// (IMDS-011's ground; IMDS-004 leaves it to IMDS-011).
pub fn ssrf_in_request() -> Expr {
    Expr::All(vec![
        on(Field::HttpVantage).any_of(&["inbound", "unknown"]),
        has_target(),
        on(Field::TargetEndpoint).exists(),
        !asked_of_the_server(),
    ])
}

/// A request logged by a forward proxy or seen on the wire (IMDS-010's ground; the other
/// detections leave it to IMDS-010).
pub fn proxied_or_on_the_wire() -> Expr {
    on(Field::HttpVantage).any_of(&["outbound", "wire"])
}

/// A credential path answered with success and a body the size of a credential document (an
/// AWS role's is about 1.3 KB, Azure's and GCP's tokens 1-4 KB; a role listing is a few
/// bytes), or of a size the log does not give.
pub fn credentials_answered() -> Expr {
    Expr::All(vec![
        credentials(),
        on(Field::HttpStatus).starts_with_any(&["2"]),
        Expr::Any(vec![
            on(Field::HttpBytesOut).at_least(800.0),
            !on(Field::HttpBytesOut).exists(),
        ]),
    ])
}

/// Every encoding but `path-only`: a path without an address is no obfuscation.
/// A URL nested in a parameter of a request a server received is how SSRF arrives, not a way of
/// hiding it: only its other encodings count there.
pub fn obfuscated() -> Expr {
    let names: Vec<&str> = Field::TargetEncoding
        .domain()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| *e != "path-only" && *e != "nested-url")
        .collect();
    Expr::Any(vec![
        on(Field::TargetEncoding).any_of(&names),
        Expr::All(vec![
            on(Field::TargetEncoding).is("nested-url"),
            !Expr::All(vec![
                on(Field::EventKind).is("http-request"),
                on(Field::HttpVantage).any_of(&["inbound", "unknown"]),
            ]),
        ]),
    ])
}

/// The reasons every detection gives about the target and the process.
pub fn standard_reasons(b: RuleBuilder) -> RuleBuilder {
    b.reason_if(
        on(Field::TargetPath).exists(),
        "The request is for {target.path}, which hands out {target.kind}.",
    )
    .reason_if(
        on(Field::TargetService).exists(),
        "The endpoint is the {target.service}.",
    )
    .reason_if(
        on(Field::ParentImage).exists(),
        "Its parent process is {parent.image}.",
    )
}

/// Builds a detection, panicking with the rule's error: the pack is checked by tests.
pub fn finish(b: RuleBuilder) -> Rule {
    b.build().unwrap_or_else(|e| panic!("{e}"))
}

/// Critical when the target hands out credentials, with the reason.
pub fn critical_on_credentials(b: RuleBuilder) -> RuleBuilder {
    b.escalate(
        credentials(),
        Severity::Critical,
        "The path hands out role credentials or access tokens: theft is likely, not just discovery.",
    )
}
