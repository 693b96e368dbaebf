//! **IMDS-104 — Enumeration of many metadata paths.**
//!
//! *What.* One actor (host, process) requests at least `enum_paths` (10) distinct metadata paths
//! within `enum_window_ms` (60 s). High when the walk reaches credentials, medium otherwise.
//!
//! *Why.* The SOC playbook asks whether the volume is unusual, and MITRE ATT&CK counts such
//! walks as discovery (T1580, Cloud Infrastructure Discovery):
//! tools such as Pacu, TeamTNT's scripts and `ec2-metadata`-style crawlers walk the tree to find
//! roles, user-data and keys. Applications read the two or three paths they need.
//!
//! *False positives.* cloud-init and the guest agents crawl the tree at boot; verified agents are
//! skipped. Inventory tools that crawl (allowlist them).
//!
//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API); the walk itself is discovery (T1580).

use std::collections::BTreeSet;

use imdsguard_event::{format_time_ms, Severity};
use imdsguard_rules::Alert;
use imdsguard_target::Kind;

use super::{correlated, Imds, Meta, Ref, Touch};

/// IMDS-104.
pub const META: Meta = Meta {
    source: include_str!("imds_104_enumeration.rs"),
    severity: Severity::Medium,
};

impl Imds {
    pub(super) fn enumeration(&mut self, t: &Touch, own: &Ref, out: &mut Vec<Alert>) {
        // A connection without a path (most network telemetry) walks nothing.
        if t.agent || t.requests.iter().all(|r| r.path.is_none()) {
            return;
        }
        let window = self.cfg.enum_window_ms;
        let key = (t.host.clone(), t.actor.clone());
        let q = self.paths.entry(key).or_default();
        while q.front().is_some_and(|(ms, _, _)| t.time_ms - ms > window) {
            q.pop_front();
        }
        for r in &t.requests {
            if let Some(p) = &r.path {
                q.push_back((t.time_ms, p.clone(), own.to_owned()));
            }
        }
        let distinct: BTreeSet<&str> = q.iter().map(|(_, p, _)| p.as_str()).collect();
        if distinct.len() >= self.cfg.enum_paths {
            let first = q.front().map_or(t.time_ms, |(ms, _, _)| *ms);
            let mut related: Vec<Ref> = Vec::new();
            for (_, _, id) in q.iter() {
                if related.last() != Some(id) {
                    related.push(id.clone());
                }
            }
            let sample: Vec<String> = distinct.iter().take(5).map(|p| p.to_string()).collect();
            let creds = q.iter().any(|(_, p, _)| p.contains("security-credentials"))
                || t.has(Kind::Credentials);
            let n = distinct.len();
            drop(distinct);
            q.clear();
            out.push(correlated(
                &META,
                if creds {
                    Severity::High
                } else {
                    Severity::Medium
                },
                t,
                vec![format!(
                    "{} requested {n} distinct metadata paths in {:.1} s (from {}), e.g. {}: \
                     walking the service is discovery, as tools like Pacu and TeamTNT's \
                     scripts do.",
                    t.actor,
                    (t.time_ms - first) as f64 / 1000.0,
                    format_time_ms(first),
                    sample.join(", ")
                )],
                related,
            ));
        }
        super::bound(&mut self.paths, self.cfg.max_keys, &mut self.evicted);
    }
}

#[cfg(test)]
const PATHS: [&str; 12] = [
    "ami-id",
    "hostname",
    "instance-id",
    "instance-type",
    "local-ipv4",
    "mac",
    "network/interfaces/macs/",
    "placement/availability-zone",
    "public-keys/",
    "security-groups",
    "iam/info",
    "iam/security-credentials/",
];

/// curl runs from one shell reading `paths`, `step` seconds apart.
#[cfg(test)]
fn walk(paths: &[&str], step: u32) -> Vec<String> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let i = i as u32;
            super::fixtures::curl(
                &super::fixtures::at(i * step),
                7000 + i,
                6900,
                &format!("-s http://169.254.169.254/latest/meta-data/{p}"),
            )
        })
        .collect()
}

#[cfg(test)]
pub(super) fn positive() -> Vec<Vec<String>> {
    vec![walk(&PATHS, 2)]
}

#[cfg(test)]
pub(super) fn negative() -> Vec<Vec<String>> {
    let few: Vec<&str> = PATHS[..5].iter().cycle().take(30).copied().collect();
    vec![
        // The same walk spread over two hours.
        walk(&PATHS, 600),
        // Five paths read over and over.
        walk(&few, 1),
    ]
}
