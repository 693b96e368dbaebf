//! The built-in correlations over metadata requests: the IMDSv2 token sequence (IMDS-101), a
//! process reaching the service for the first time on a host (IMDS-102), a request rate above the
//! process's own baseline (IMDS-103), and enumeration of many metadata paths (IMDS-104).
//!
//! Input is one [`Touch`] per event that reached (or named) the metadata service, in time order.
//! State is per host and actor, bounded ([`Config::max_keys`]): past the bound the key seen least
//! recently is dropped and counted.
//!
//! Baselines are learned, not configured: for [`Config::learn_ms`] after the first request seen on
//! a host, requests only teach (which processes reach the service, how many requests a minute each
//! makes); first-seen and rate alerts start after that. A baseline saved by the store carries over.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use imdsguard_enrich::{Enriched, TargetSource, Verdict};
use imdsguard_event::{format_time_ms, EventKind, Severity, Technique};
use imdsguard_rules::{stable_hash, Alert};
use imdsguard_target::Kind;
use serde::{Deserialize, Serialize};

/// Settings of the built-in correlations.
#[derive(Debug, Clone)]
pub struct Config {
    /// IMDS-101: how long after a token request a credential read by the same actor counts.
    pub token_window_ms: i64,
    /// How long a host's requests only teach the baseline (default one day).
    pub learn_ms: i64,
    /// IMDS-103: the length of a rate bucket.
    pub rate_bucket_ms: i64,
    /// IMDS-103: a bucket alerts above this many times the baseline's busiest bucket...
    pub rate_factor: u64,
    /// ... and never at or below this many requests.
    pub rate_min: u64,
    /// IMDS-104: the window for enumeration.
    pub enum_window_ms: i64,
    /// IMDS-104: distinct metadata paths in the window that make enumeration.
    pub enum_paths: usize,
    /// Most (host, actor) keys held by each correlation.
    pub max_keys: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            token_window_ms: 60_000,
            learn_ms: 86_400_000,
            rate_bucket_ms: 60_000,
            rate_factor: 3,
            rate_min: 30,
            enum_window_ms: 60_000,
            enum_paths: 10,
            max_keys: 100_000,
        }
    }
}

/// One metadata request path an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The normalized path, when one was seen.
    pub path: Option<String>,
    /// What it hands out.
    pub kind: Kind,
}

/// An event that reached, or named, the metadata service.
#[derive(Debug, Clone)]
pub struct Touch {
    /// When (ms since the epoch).
    pub time_ms: i64,
    /// The host (empty when the record names none).
    pub host: String,
    /// Who made the request: the process by pid and image, or for a process start (a command
    /// line) the parent that ran it, since a shell running `curl` twice is one actor.
    pub actor: String,
    /// The process as a baseline knows it: image path (lowercase) and SHA-256 when given.
    pub identity: String,
    /// Whether the allowlist verified the process as a cloud agent.
    pub agent: bool,
    /// The requests (destination-only connections have no path).
    pub requests: Vec<Request>,
    /// The event's context, for the alerts built from it (rule fields empty).
    pub context: Alert,
}

impl Touch {
    /// The touch of an enriched event at `time_ms`, or `None` when the event reaches no metadata
    /// target (a DNS lookup alone is not a request).
    pub fn of(ev: &Enriched<'_>, time_ms: i64) -> Option<Touch> {
        let requests: Vec<Request> = ev
            .targets()
            .iter()
            .filter(|f| f.source != TargetSource::Dns)
            .map(|f| Request {
                path: f.target.path.clone(),
                kind: f.target.kind,
            })
            .collect();
        if requests.is_empty() {
            return None;
        }
        let e = ev.event;
        let proc_text = |p: &imdsguard_event::Process| {
            let image = p
                .image
                .as_deref()
                .or(p.comm.as_deref())
                .unwrap_or("?")
                .to_ascii_lowercase();
            match p.pid {
                Some(pid) => format!("{image} pid {pid}"),
                None => image,
            }
        };
        let actor = if e.kind == EventKind::ProcessStart && !e.parent.is_empty() {
            format!("parent {}", proc_text(&e.parent))
        } else {
            proc_text(&e.process)
        };
        let mut identity = e
            .process
            .image
            .as_deref()
            .or(e.process.comm.as_deref())
            .unwrap_or("?")
            .to_ascii_lowercase();
        if let Some(sha) = e.process.hashes.as_deref().and_then(sha256) {
            identity.push_str(" sha256=");
            identity.push_str(&sha);
        }
        Some(Touch {
            time_ms,
            host: e.host.clone().unwrap_or_default().to_ascii_lowercase(),
            actor,
            identity,
            agent: matches!(ev.verdict(), Verdict::Agent(_)),
            requests,
            context: Alert::context(ev),
        })
    }

    fn has(&self, kind: Kind) -> bool {
        self.requests.iter().any(|r| r.kind == kind)
    }

    fn path_of(&self, kind: Kind) -> Option<&str> {
        self.requests
            .iter()
            .find(|r| r.kind == kind)
            .and_then(|r| r.path.as_deref())
    }
}

/// The SHA-256 of a Sysmon-style hash list (`SHA256=...,MD5=...`) or a bare 64-digit hash.
fn sha256(hashes: &str) -> Option<String> {
    hashes.split([',', ';', ' ']).find_map(|h| {
        let v = match h.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("sha256") => v,
            Some(_) => return None,
            None => h,
        };
        (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
    })
}

/// What one process has done on one host, as a baseline keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessBaseline {
    /// First request seen (ms).
    pub first_ms: i64,
    /// Last request seen (ms).
    pub last_ms: i64,
    /// Requests seen.
    pub requests: u64,
    /// The most requests in one rate bucket during learning.
    pub busiest: u64,
}

/// What is known of one host's normal use of the metadata service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBaseline {
    /// First request seen on the host (ms); learning lasts [`Config::learn_ms`] from here.
    pub since_ms: i64,
    /// Processes by identity.
    pub processes: BTreeMap<String, ProcessBaseline>,
}

/// Baselines of every host, as the store saves them.
pub type Baselines = BTreeMap<String, HostBaseline>;

struct Bucket {
    start_ms: i64,
    count: u64,
    alerted: bool,
}

/// (host, actor) or (host, identity).
type Key = (String, String);

/// A request remembered for a window: when, its path, and the event (alert id or record).
type Seen = (i64, String, String);

/// The built-in correlations' state.
pub struct Imds {
    cfg: Config,
    baselines: Baselines,
    /// Open token requests per (host, actor): time and the touch's context alert id.
    tokens: BTreeMap<Key, VecDeque<Seen>>,
    buckets: BTreeMap<Key, Bucket>,
    paths: BTreeMap<Key, VecDeque<Seen>>,
    /// Keys dropped to keep the state bounded.
    pub evicted: u64,
}

impl Imds {
    /// Empty state, or a saved baseline carried over.
    pub fn new(cfg: Config, baselines: Baselines) -> Imds {
        Imds {
            cfg,
            baselines,
            tokens: BTreeMap::new(),
            buckets: BTreeMap::new(),
            paths: BTreeMap::new(),
            evicted: 0,
        }
    }

    /// The baselines learned so far.
    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// Whether a host is still learning at `time_ms`.
    pub fn learning(&self, host: &str, time_ms: i64) -> bool {
        self.baselines
            .get(host)
            .is_none_or(|b| time_ms < b.since_ms + self.cfg.learn_ms)
    }

    /// Feeds one touch (in time order); returns the alerts it completes. `event_alert` is the id
    /// of an alert raised on the same event, if any: a correlation's `related` list names each
    /// event by its alert's id, or by its record (`path:line`) when it raised none.
    pub fn push(&mut self, t: &Touch, event_alert: Option<&str>) -> Vec<Alert> {
        let mut out = Vec::new();
        let own = event_alert
            .map(str::to_owned)
            .unwrap_or_else(|| t.context.source_text());
        self.token_sequence(t, &own, &mut out);
        self.first_seen_and_rate(t, &own, &mut out);
        self.enumeration(t, &own, &mut out);
        out
    }

    fn token_sequence(&mut self, t: &Touch, own: &str, out: &mut Vec<Alert>) {
        if t.agent {
            return;
        }
        let key = (t.host.clone(), t.actor.clone());
        let window = self.cfg.token_window_ms;
        if let Some(q) = self.tokens.get_mut(&key) {
            while q.front().is_some_and(|(ms, _, _)| t.time_ms - ms > window) {
                q.pop_front();
            }
        }
        if t.has(Kind::Credentials) {
            let token = self
                .tokens
                .get_mut(&key)
                .and_then(|q| q.pop_front())
                .or_else(|| {
                    // One command that asks for the token and then the credentials.
                    t.has(Kind::Token).then(|| {
                        (
                            t.time_ms,
                            t.path_of(Kind::Token).unwrap_or("").to_owned(),
                            own.to_owned(),
                        )
                    })
                });
            if let Some((token_ms, token_path, token_alert)) = token {
                let creds = t.path_of(Kind::Credentials).unwrap_or("(credentials)");
                let gap = (t.time_ms - token_ms) as f64 / 1000.0;
                let mut reasons =
                    vec![format!(
                    "{} asked for an IMDSv2 session token ({}) at {} and read role credentials \
                     ({creds}) {gap:.1} s later: the token handshake an attacker runs before \
                     stealing the instance role.",
                    t.actor,
                    if token_path.is_empty() { "PUT" } else { &token_path },
                    format_time_ms(token_ms),
                )];
                reasons.push(
                    "The process is not a verified cloud agent (allowlist verdict: not agent)."
                        .into(),
                );
                let related = if token_alert == own {
                    vec![own.to_owned()]
                } else {
                    vec![token_alert, own.to_owned()]
                };
                out.push(correlated(
                    "IMDS-101",
                    "IMDSv2 token request followed by a credential read",
                    Severity::High,
                    t,
                    reasons,
                    related,
                ));
                return;
            }
        }
        if t.has(Kind::Token) {
            let q = self.tokens.entry(key).or_default();
            q.push_back((
                t.time_ms,
                t.path_of(Kind::Token).unwrap_or("").to_owned(),
                own.to_owned(),
            ));
            bound(&mut self.tokens, self.cfg.max_keys, &mut self.evicted);
        }
    }

    fn first_seen_and_rate(&mut self, t: &Touch, own: &str, out: &mut Vec<Alert>) {
        let learn_ms = self.cfg.learn_ms;
        let host = self
            .baselines
            .entry(t.host.clone())
            .or_insert(HostBaseline {
                since_ms: t.time_ms,
                processes: BTreeMap::new(),
            });
        let learning = t.time_ms < host.since_ms + learn_ms;
        let known = host.processes.contains_key(&t.identity);
        let p = host
            .processes
            .entry(t.identity.clone())
            .or_insert(ProcessBaseline {
                first_ms: t.time_ms,
                last_ms: t.time_ms,
                requests: 0,
                busiest: 0,
            });
        p.last_ms = t.time_ms;
        p.requests += 1;
        let busiest = p.busiest;
        let since_ms = host.since_ms;
        let known_processes = host.processes.len() - 1;
        if !known && !learning && !t.agent {
            out.push(correlated(
                "IMDS-102",
                "Process reaches the metadata service for the first time on this host",
                Severity::Medium,
                t,
                vec![format!(
                    "{} had not reached the metadata service on {} since the baseline began at \
                     {} ({known_processes} other processes have).",
                    t.identity,
                    if t.host.is_empty() {
                        "(no host)"
                    } else {
                        &t.host
                    },
                    format_time_ms(since_ms)
                )],
                vec![own.to_owned()],
            ));
        }
        // Rate: one bucket per (host, identity).
        let key = (t.host.clone(), t.identity.clone());
        let bucket_ms = self.cfg.rate_bucket_ms;
        let start = t.time_ms - t.time_ms.rem_euclid(bucket_ms);
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            start_ms: start,
            count: 0,
            alerted: false,
        });
        if b.start_ms != start {
            *b = Bucket {
                start_ms: start,
                count: 0,
                alerted: false,
            };
        }
        b.count += 1;
        let count = b.count;
        if learning {
            if let Some(p) = self
                .baselines
                .get_mut(&t.host)
                .and_then(|h| h.processes.get_mut(&t.identity))
            {
                p.busiest = p.busiest.max(count);
            }
        } else {
            let threshold = (busiest * self.cfg.rate_factor).max(self.cfg.rate_min);
            if count > threshold && !b.alerted {
                b.alerted = true;
                out.push(correlated(
                    "IMDS-103",
                    "Metadata request rate above the process's own baseline",
                    if t.agent {
                        Severity::Low
                    } else {
                        Severity::Medium
                    },
                    t,
                    vec![format!(
                        "{} made {count} metadata requests in {} s from {}; its busiest \
                         {} s during learning had {busiest} (alert threshold {threshold}).",
                        t.identity,
                        bucket_ms / 1000,
                        format_time_ms(start),
                        bucket_ms / 1000,
                    )],
                    vec![own.to_owned()],
                ));
            }
        }
        bound(&mut self.buckets, self.cfg.max_keys, &mut self.evicted);
    }

    fn enumeration(&mut self, t: &Touch, own: &str, out: &mut Vec<Alert>) {
        if t.agent {
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
            let mut related: Vec<String> = Vec::new();
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
                "IMDS-104",
                "Enumeration of many metadata paths",
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
        bound(&mut self.paths, self.cfg.max_keys, &mut self.evicted);
    }
}

/// Drops the smallest keys past the bound. The maps are keyed by (host, actor), so this drops
/// whole hosts' state in key order, which is deterministic; the count says how often.
fn bound<V>(map: &mut BTreeMap<Key, V>, max: usize, evicted: &mut u64) {
    while map.len() > max {
        map.pop_first();
        *evicted += 1;
    }
}

/// An alert of a built-in correlation, on the touch that completed it.
fn correlated(
    rule_id: &str,
    title: &str,
    severity: Severity,
    t: &Touch,
    reasons: Vec<String>,
    related: Vec<String>,
) -> Alert {
    let mut a = t.context.clone();
    let mut parts: Vec<&str> = vec![rule_id];
    parts.extend(related.iter().map(String::as_str));
    a.id = format!("{:016x}", stable_hash(&parts));
    a.rule_id = rule_id.to_owned();
    a.title = title.to_owned();
    a.severity = severity;
    a.attack = vec![Technique::new("T1552.005").expect("a valid technique id")];
    a.reasons = reasons;
    a.related = related;
    a
}
