//! The built-in detection pack.
//!
//! One module per detection, each with a stable id, a doc comment (what, why, false positives,
//! ATT&CK), a severity with its escalations, plain-sentence reasons, and positive and negative
//! fixtures (log lines in any format the decoders read). Every detection is a condition in the rule
//! IR over event fields and the fields the enrich stage computes; none reads a raw string the
//! enrich stage has already read.
//!
//! Adding a detection is its file (`src/imds_NNN_name.rs`: module comment, `rule()`, `POSITIVE`
//! and `NEGATIVE`) and its `pub mod` line below; `build.rs` lists it in [`DETECTIONS`] and in the
//! fixture table, and its tests (fixtures, alert snapshot, documentation) run.
//!
//! Shared ground rules, in [`common`]: a detection needs a metadata target in the event, and a
//! verified agent (allowlist verdict `agent`) raises nothing. What an agent *starts* is a process
//! of its own and is judged as any other.

pub mod common;
pub mod imds_001_unverified_connection;
pub mod imds_002_command_line_reference;
pub mod imds_003_unusual_location;
pub mod imds_004_credential_path;
pub mod imds_005_obfuscated_target;
pub mod imds_006_web_server;
pub mod imds_007_agent_masquerade;
pub mod imds_008_container;
pub mod imds_009_metadata_path_at_web_server;
pub mod imds_010_proxied_or_wire_request;
pub mod imds_011_ssrf_attempt;
pub mod imds_012_imdsv1_request;
pub mod imds_013_metadata_protection_weakened;

use std::sync::LazyLock;

use imdsguard_rules::{Rule, RuleSet};

include!(concat!(env!("OUT_DIR"), "/detections.rs"));

static PACK: LazyLock<RuleSet> = LazyLock::new(|| {
    RuleSet::new(DETECTIONS.iter().map(|f| f()).collect())
        .unwrap_or_else(|e| panic!("the built-in pack is checked by tests: {e}"))
});

/// The built-in pack, compiled once.
pub fn pack() -> &'static RuleSet {
    &PACK
}

#[cfg(test)]
mod fixtures;
