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

/// A request logged by a forward proxy or seen on the wire (IMDS-010's ground; the other
/// detections leave it to IMDS-010).
pub fn proxied_or_on_the_wire() -> Expr {
    on(Field::HttpVantage).any_of(&["outbound", "wire"])
}

/// Every encoding but `path-only`: a path without an address is no obfuscation.
pub fn obfuscated() -> Expr {
    let names: Vec<&str> = Field::TargetEncoding
        .domain()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| *e != "path-only")
        .collect();
    on(Field::TargetEncoding).any_of(&names)
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
