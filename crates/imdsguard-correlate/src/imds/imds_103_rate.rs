//! **IMDS-103 — Metadata request rate above the process's own baseline.**
//!
//! *What.* Requests per (host, process identity) are counted in buckets of `rate_bucket_ms` (one
//! minute). During the host's learning period the busiest bucket of each process is kept, with
//! how many buckets held requests; after it, a bucket with more than `rate_factor` (3) times the
//! busiest, and more than `rate_min` (30) requests, alerts once. A baseline that saw fewer than
//! `rate_min_buckets` (10) buckets with requests (a few minutes of logs inside the learning day)
//! cannot say what normal is: a verified agent is then not judged at all (the Azure guest agent
//! polls WireServer about 180 times a minute, every minute), and any other process is held to
//! `rate_min` alone, as one with no baseline is.
//!
//! *Why.* The second question of the SOC playbook for T1552.005 — is the frequency or volume
//! unusual? — answered against the process's own history rather than a fixed number: agents poll
//! on a schedule, credential harvesting and SSRF scanners burst.
//!
//! *False positives.* An agent restarting or re-registering (low severity for verified agents);
//! load tests of an application that reads metadata per request.
//!
//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API).

use imdsguard_event::{format_time_ms, Severity};
use imdsguard_rules::Alert;

use super::{correlated, Bucket, Imds, Learned, Meta, Ref, Touch};

/// IMDS-103.
pub const META: Meta = Meta {
    source: include_str!("imds_103_rate.rs"),
    severity: Severity::Medium,
};

impl Imds {
    pub(super) fn rate(&mut self, t: &Touch, learned: &Learned, own: &Ref, out: &mut Vec<Alert>) {
        // A web, proxy or network log names no process, whose own rate this would be.
        if t.identity == super::UNKNOWN_PROGRAM {
            return;
        }
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
            if p.counted_ms.is_none_or(|c| start > c) {
                p.counted_ms = Some(start);
                p.buckets += 1;
            }
            return;
        }
        let busiest = learned.busiest;
        let thin = learned.buckets < self.cfg.rate_min_buckets;
        if thin && t.agent {
            return;
        }
        let threshold = if thin {
            floor
        } else {
            (busiest * factor).max(floor)
        };
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
            vec![if thin {
                format!(
                    "{} made {count} metadata requests in {} s from {}; its baseline saw \
                     requests in {} of the {} buckets it needs to judge a rate, so the floor of \
                     {floor} applies.",
                    t.identity,
                    bucket_ms / 1000,
                    format_time_ms(start),
                    learned.buckets,
                    self.cfg.rate_min_buckets,
                )
            } else {
                format!(
                    "{} made {count} metadata requests in {} s from {}; its busiest {} s while \
                     the baseline was learned had {busiest} (alert above {threshold}).",
                    t.identity,
                    bucket_ms / 1000,
                    format_time_ms(start),
                    bucket_ms / 1000,
                )
            }],
            vec![own.to_owned()],
        ));
    }
}

#[cfg(test)]
const APP: &str = r"C:\Apps\shop\shop.exe";
#[cfg(test)]
const USER: &str = r"CORP\svc-web";

/// `n` connections by `image`, one a second from `from` seconds after 08:00.
#[cfg(test)]
fn burst_of(image: &str, user: &str, from: u32, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| super::fixtures::connect(&super::fixtures::at(from + i), 3000, image, user))
        .collect()
}

/// `n` connections by the app, one a second from `from` seconds after 08:00.
#[cfg(test)]
fn burst(from: u32, n: u32) -> Vec<String> {
    burst_of(APP, USER, from, n)
}

/// `per` requests in each of `minutes` minutes from `from` seconds after 08:00, by `image`
/// (`per` at most 60: one a second).
#[cfg(test)]
fn minutes_of(image: &str, user: &str, from: u32, minutes: u32, per: u32) -> Vec<String> {
    (0..minutes)
        .flat_map(|m| burst_of(image, user, from + m * 60, per))
        .collect()
}

#[cfg(test)]
pub(super) fn positive() -> Vec<Vec<String>> {
    use super::fixtures::{SSM, SYSTEM};
    vec![
        // One request a minute for twelve minutes while learning (busiest 1, a baseline that saw
        // enough), then 31 in one minute (09:07:00-30): above the floor of 30.
        [minutes_of(APP, USER, 0, 12, 1), burst(4020, 31)].concat(),
        // A baseline of five minutes is too thin to measure normal: the app is held to the
        // floor alone, and 31 in a minute is above it.
        [minutes_of(APP, USER, 0, 5, 1), burst(4020, 31)].concat(),
        // A verified agent with a baseline that saw enough, bursting far above it (low).
        [
            minutes_of(SSM, SYSTEM, 0, 12, 2),
            burst_of(SSM, SYSTEM, 4020, 40),
        ]
        .concat(),
    ]
}

#[cfg(test)]
pub(super) fn negative() -> Vec<Vec<String>> {
    use super::fixtures::{SSM, SYSTEM};
    vec![
        // Busiest minute while learning 20, over twelve minutes: 40 is under 3 × 20.
        [minutes_of(APP, USER, 0, 12, 20), burst(4020, 40)].concat(),
        // A burst while learning only teaches.
        burst(120, 45),
        // Thirty after learning: not above the floor of 30.
        [minutes_of(APP, USER, 0, 12, 1), burst(4020, 30)].concat(),
        // A verified agent polling as the Azure guest agent does (here 50 a minute), whose
        // baseline is one sparse snapshot of three minutes: too thin to judge, so its normal
        // polling after learning never alerts.
        [
            minutes_of(SSM, SYSTEM, 0, 3, 5),
            minutes_of(SSM, SYSTEM, 4020, 3, 50),
        ]
        .concat(),
        // A verified agent the baseline never saw (installed after learning): not judged.
        [burst(0, 1), minutes_of(SSM, SYSTEM, 4020, 2, 50)].concat(),
    ]
}

#[test]
fn a_thin_baseline_says_why_the_floor_applies() {
    let alerts = super::fixtures::raised(&positive()[1]).unwrap();
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].reasons[0].contains("requests in 5 of the 10 buckets"),
        "{:?}",
        alerts[0].reasons
    );
}
