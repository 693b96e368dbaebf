//! IMDS-103: a metadata request rate above the process's own baseline.
//!
//! What: requests per (host, process identity) are counted in buckets of `rate_bucket_ms` (one
//! minute). During the host's learning period the busiest bucket of each process is kept; after
//! it, a bucket with more than `rate_factor` (3) times that, and more than `rate_min` (30)
//! requests, alerts once. A process with no baseline is held to `rate_min` alone.
//!
//! Why: seed 002's second question — is the frequency or volume unusual? — answered against the
//! process's own history rather than a fixed number: agents poll on a schedule, credential
//! harvesting and SSRF scanners burst.
//!
//! False positives: an agent restarting or re-registering (low severity for verified agents);
//! load tests of an application that reads metadata per request.
//!
//! ATT&CK: T1552.005 (Cloud Instance Metadata API).

use imdsguard_event::{format_time_ms, Severity};
use imdsguard_rules::Alert;

use super::{correlated, Bucket, Imds, Learned, Meta, Touch};

/// IMDS-103.
pub const META: Meta = Meta {
    id: "IMDS-103",
    title: "Metadata request rate above the process's own baseline",
    severity: Severity::Medium,
    description: "A process made far more metadata requests in a minute than in its busiest \
                  minute while the host's baseline was learned: agents poll on a schedule, \
                  credential harvesting and SSRF scanning burst.",
    false_positives: &[
        "An agent restarting or re-registering (verified agents alert at low severity).",
        "Load tests of an application that reads metadata on every request.",
    ],
};

impl Imds {
    pub(super) fn rate(&mut self, t: &Touch, learned: &Learned, own: &str, out: &mut Vec<Alert>) {
        let bucket_ms = self.cfg.rate_bucket_ms;
        let (factor, floor) = (self.cfg.rate_factor, self.cfg.rate_min);
        let start = t.time_ms - t.time_ms.rem_euclid(bucket_ms);
        let Some(p) = self
            .baselines
            .get_mut(&t.host)
            .and_then(|h| h.processes.get_mut(&t.identity))
        else {
            return;
        };
        let b = &mut p.bucket;
        if b.start_ms != start || b.count == 0 {
            *b = Bucket {
                start_ms: start,
                count: 0,
                alerted: false,
            };
        }
        b.count += 1;
        let count = b.count;
        if learned.learning {
            p.busiest = p.busiest.max(count);
            return;
        }
        let busiest = learned.busiest;
        let threshold = (busiest * factor).max(floor);
        if count <= threshold || b.alerted {
            return;
        }
        b.alerted = true;
        out.push(correlated(
            &META,
            if t.agent {
                Severity::Low
            } else {
                META.severity
            },
            t,
            vec![format!(
                "{} made {count} metadata requests in {} s from {}; its busiest {} s while the \
                 baseline was learned had {busiest} (alert above {threshold}).",
                t.identity,
                bucket_ms / 1000,
                format_time_ms(start),
                bucket_ms / 1000,
            )],
            vec![own.to_owned()],
        ));
    }
}

#[cfg(test)]
const APP: &str = r"C:\Apps\shop\shop.exe";
#[cfg(test)]
const USER: &str = r"CORP\svc-web";

/// `n` connections by the app, one a second from `from` seconds after 08:00.
#[cfg(test)]
fn burst(from: u32, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| super::fixtures::connect(&super::fixtures::at(from + i), 3000, APP, USER))
        .collect()
}

#[cfg(test)]
pub(super) fn positive() -> Vec<Vec<String>> {
    // One request a minute while learning (busiest 1), then 31 in one minute (09:07:00-30).
    let mut lines = Vec::new();
    for m in 0..5 {
        lines.extend(burst(m * 60, 1));
    }
    lines.extend(burst(4020, 31));
    vec![lines]
}

#[cfg(test)]
pub(super) fn negative() -> Vec<Vec<String>> {
    let mut busy = burst(60, 20);
    busy.extend(burst(4020, 40));
    vec![
        // Busiest minute while learning 20: 40 is under 3 × 20.
        busy,
        // A burst while learning only teaches.
        burst(120, 45),
        // Thirty after learning: not above the floor of 30.
        [burst(0, 1), burst(4020, 30)].concat(),
    ]
}
