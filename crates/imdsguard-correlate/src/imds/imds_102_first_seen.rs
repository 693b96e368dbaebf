//! **IMDS-102 — Process reaches the metadata service for the first time on this host.**
//!
//! *What.* After the host's learning period (`learn_ms`, a day by default, from the first request
//! seen on the host, or carried over from the store), a process identity — image path, and its
//! SHA-256 when the record gives one, so a replaced binary is new — that the baseline has never
//! seen reaching the service.
//!
//! *Why.* The KQL hunting query for T1552.005 and the Suspicious IMDS API Request rules look for processes "not typically associated with
//! legitimate IMDS API requests"; on a given host that set is small and stable, so a newcomer is
//! worth a look even when it is not in a temp directory and uses no obfuscation.
//!
//! *False positives.* New deployments and updated applications (a new hash); verified cloud agents
//! are skipped. Cross-reference with deployment times, as the SOC playbook's first-line steps say.
//!
//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API).

use imdsguard_event::{format_time_ms, Severity};
use imdsguard_rules::Alert;

use super::{correlated, Imds, Learned, Meta, Ref, Touch};

/// IMDS-102.
pub const META: Meta = Meta {
    source: include_str!("imds_102_first_seen.rs"),
    severity: Severity::Medium,
};

impl Imds {
    pub(super) fn first_seen(
        &mut self,
        t: &Touch,
        learned: &Learned,
        own: &Ref,
        out: &mut Vec<Alert>,
    ) {
        // A web, proxy or network log names no process: there is no process to be new.
        if learned.known || learned.learning || t.agent || t.identity == super::UNKNOWN_PROGRAM {
            return;
        }
        if !self
            .reported_new
            .insert((t.host.clone(), t.identity.clone()))
        {
            return;
        }
        super::bound_set(&mut self.reported_new, self.cfg.max_keys, &mut self.evicted);
        out.push(correlated(
            &META,
            META.severity,
            t,
            vec![format!(
                "{} had not reached the metadata service on {} since its baseline began at {} \
                 ({} other processes have).",
                t.identity,
                if t.host.is_empty() {
                    "(no host)"
                } else {
                    &t.host
                },
                format_time_ms(learned.since_ms),
                learned.others
            )],
            vec![own.to_owned()],
        ));
    }
}

#[cfg(test)]
const PROBE: &str = r"C:\Tools\probe.exe";
#[cfg(test)]
const USER: &str = r"CORP\svc-web";

#[cfg(test)]
pub(super) fn positive() -> Vec<Vec<String>> {
    use super::fixtures::*;
    // Learning is an hour in the timelines; 4,000 s is past it.
    vec![vec![
        connect(&at(0), 2120, SSM, SYSTEM),
        connect(&at(4000), 4410, PROBE, USER),
    ]]
}

#[cfg(test)]
pub(super) fn negative() -> Vec<Vec<String>> {
    use super::fixtures::*;
    vec![
        // Seen while learning, so known after.
        vec![
            connect(&at(0), 2120, SSM, SYSTEM),
            connect(&at(60), 4410, PROBE, USER),
            connect(&at(4000), 4411, PROBE, USER),
        ],
        // New, but the host is still learning.
        vec![
            connect(&at(0), 2120, SSM, SYSTEM),
            connect(&at(1800), 4410, PROBE, USER),
        ],
        // A verified agent new after learning.
        vec![
            connect(&at(0), 4410, PROBE, USER),
            connect(&at(4000), 2120, SSM, SYSTEM),
        ],
    ]
}
