//! The built-in correlations over metadata requests, one file each with its id, what it detects,
//! why, its false positives and ATT&CK technique, and its positive and negative cases:
//! - [`imds_101_token_sequence`]: the IMDSv2 token request followed by a credential read.
//! - [`imds_102_first_seen`]: a process reaching the service for the first time on a host.
//! - [`imds_103_rate`]: a request rate above the process's own baseline.
//! - [`imds_104_enumeration`]: many distinct metadata paths in a short time.
//!
//! Input is one [`Touch`] per event that reached (or named) the metadata service, in time order.
//! State is per host and actor, bounded ([`Config::max_keys`]): past the bound the smallest keys
//! are dropped (deterministically) and counted.
//!
//! Baselines are learned, not configured: for [`Config::learn_ms`] after the first request seen on
//! a host, requests only teach (which processes reach the service, how many requests a bucket
//! each makes); first-seen and rate alerts start after that. A baseline saved by the store
//! carries over, so a host learns once.

pub mod imds_101_token_sequence;
pub mod imds_102_first_seen;
pub mod imds_103_rate;
pub mod imds_104_enumeration;

use std::collections::{BTreeMap, VecDeque};

use imdsguard_enrich::{normalize_path, Enriched, TargetSource, Verdict};
use imdsguard_event::{EventKind, Severity, SourceRef, Technique};
use imdsguard_rules::{stable_hash, Alert, AlertEvent, Doc};
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
    /// IMDS-103: how many distinct buckets with requests a process's learned baseline needs
    /// before its busiest bucket is a measure of normal: a thinner one (a few minutes of logs
    /// inside the learning day) cannot say what normal is, so a verified agent is not judged
    /// and anything else is held to [`Config::rate_min`] alone.
    pub rate_min_buckets: u64,
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
            rate_min_buckets: 10,
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
    /// The host (case-folded; empty when the record names none). The engine replaces it with the
    /// host's identity ([`crate::Hosts`]) before state is kept under it.
    pub host: String,
    /// Who made the request: the process by pid and image, or for a process start (a command
    /// line) the parent that ran it, since a shell running `curl` twice is one actor.
    pub actor: String,
    /// The process as a baseline knows it: normalized image path, and SHA-256 when given.
    pub identity: String,
    /// Whether the allowlist verified the process as a cloud agent.
    pub agent: bool,
    /// The requests (destination-only connections have no path; left empty for a verified
    /// agent's, which only a rate can come of).
    pub requests: Vec<Request>,
    /// The record's identity ([`imdsguard_event::Event::identity`]).
    pub record: u64,
    /// The event's context, for the alerts built from it.
    pub context: Context,
}

/// What a touch keeps of its event for the alerts that may come of it.
#[derive(Debug, Clone)]
pub enum Context {
    /// The whole context (rule fields empty).
    Full(Box<Alert>),
    /// A verified agent's connection without a path: only a rate alert can come of it, so it
    /// keeps only where the record is and who made it (the bulk of metadata traffic; following
    /// it costs a few strings, not a whole context).
    Brief {
        /// The record.
        source: SourceRef,
        /// Its time as written.
        time: Option<String>,
        /// The format and event kind.
        event: (imdsguard_event::Format, imdsguard_event::EventKind),
        /// Process id and image as written, and the agent's allowlist id.
        process: (Option<u64>, Option<String>, Option<String>),
    },
}

impl Context {
    /// The context as an alert with empty rule fields; a brief one takes the touch's host name.
    pub fn alert(&self, host: Option<&str>) -> Alert {
        match self {
            Context::Full(a) => (**a).clone(),
            Context::Brief {
                source,
                time,
                event,
                process,
            } => Alert {
                tag: imdsguard_rules::AlertTag,
                id: String::new(),
                rule_id: String::new(),
                title: String::new(),
                severity: Severity::Info,
                attack: Vec::new(),
                time: time.clone(),
                host: host.map(str::to_owned),
                source: source.clone(),
                event: AlertEvent {
                    format: event.0,
                    kind: event.1,
                    id: None,
                    channel: None,
                    fields: Default::default(),
                },
                target: None,
                process: Some(imdsguard_rules::AlertProcess {
                    pid: process.0,
                    image: process.1.clone(),
                    command_line: None,
                    user: None,
                    parent_image: None,
                    parent_command_line: None,
                    verdict: imdsguard_enrich::VerdictKind::Agent,
                    agent: process.2.clone(),
                }),
                network: None,
                container: None,
                http: None,
                cloud: None,
                reasons: Vec::new(),
                related: Vec::new(),
                triage: None,
            },
        }
    }

    /// `path:line` or `path record N`.
    pub fn source_text(&self) -> String {
        match self {
            Context::Full(a) => a.source_text(),
            Context::Brief { source, .. } => source.to_string(),
        }
    }
}

impl Touch {
    /// The touch of an enriched event at `time_ms`, or `None` when the event reaches no metadata
    /// target (a DNS lookup alone is not a request), or when it is a request a web server
    /// received: its client asked for the target, no process of this host reached it (the
    /// process baselines and sequences here are about processes).
    pub fn of(ev: &Enriched<'_>, time_ms: i64) -> Option<Touch> {
        if ev
            .event
            .http
            .as_ref()
            .is_some_and(|h| h.vantage == imdsguard_event::Vantage::Inbound)
        {
            return None;
        }
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
        let agent = matches!(ev.verdict(), Verdict::Agent(_));
        let host = e.host.clone().unwrap_or_default();
        let identity = || {
            let mut identity = program(&e.process);
            if let Some(sha) = e.process.hashes.as_deref().and_then(sha256) {
                identity.push_str(" sha256=");
                identity.push_str(&sha);
            }
            identity
        };
        if agent && requests.iter().all(|r| r.path.is_none()) {
            return Some(Touch {
                time_ms,
                host,
                actor: String::new(),
                identity: identity(),
                agent,
                requests: Vec::new(),
                record: e.identity(),
                context: Context::Brief {
                    source: e.source.clone(),
                    time: e.time.clone(),
                    event: (e.format, e.kind),
                    process: (
                        e.process.pid,
                        e.process.image.clone(),
                        ev.verdict().agent().map(|a| a.id.clone()),
                    ),
                },
            });
        }
        let proc_text = |p: &imdsguard_event::Process| {
            let image = program(p);
            match p.pid {
                Some(pid) => format!("{image} pid {pid}"),
                None => image,
            }
        };
        let client = e.network.as_ref().and_then(|n| n.src_ip.as_deref());
        let actor = if e.kind == EventKind::ProcessStart && !e.parent.is_empty() {
            format!("parent {}", proc_text(&e.parent))
        } else if let (true, Some(ip)) = (e.process.is_empty(), client) {
            // A web or proxy log names no process: the client making the requests is the actor.
            format!("client {ip}")
        } else {
            proc_text(&e.process)
        };
        Some(Touch {
            time_ms,
            host,
            actor,
            identity: identity(),
            agent,
            requests,
            record: e.identity(),
            context: Context::Full(Box::new(Alert::context(ev))),
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

/// A process's program as baselines know it: the image path in one spelling (`C:\…` and
/// `\device\harddiskvolume2\…` are one binary), else the kernel's `comm`, else `?`.
/// The identity of a process the record does not name (web, proxy and network logs).
pub(crate) const UNKNOWN_PROGRAM: &str = "?";

fn program(p: &imdsguard_event::Process) -> String {
    match (&p.image, &p.comm) {
        (Some(image), _) => normalize_path(image),
        (None, Some(comm)) => format!("comm:{comm}"),
        (None, None) => UNKNOWN_PROGRAM.into(),
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
    /// Requests seen (a statistic: logs read twice count twice; no alert or triage reads it).
    pub requests: u64,
    /// The most requests in one rate bucket during learning.
    pub busiest: u64,
    /// Distinct rate buckets with requests during learning: how much the baseline has seen.
    #[serde(default)]
    pub buckets: u64,
    /// Start of the latest learning bucket counted in [`ProcessBaseline::buckets`]: a bucket
    /// counts once, whether the logs are read once or again.
    #[serde(default)]
    pub counted_ms: Option<i64>,
    /// The current rate bucket (not saved: a rate is about now).
    #[serde(skip)]
    pub(crate) bucket: Bucket,
}

/// What is known of one host's normal use of the metadata service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBaseline {
    /// First request seen on the host (ms); learning lasts [`Config::learn_ms`] from here.
    pub since_ms: i64,
    /// Processes by identity.
    pub processes: BTreeMap<String, ProcessBaseline>,
}

impl HostBaseline {
    /// Adds what another baseline of the same host knows.
    fn absorb(&mut self, other: HostBaseline) {
        self.since_ms = self.since_ms.min(other.since_ms);
        for (id, p) in other.processes {
            match self.processes.get_mut(&id) {
                Some(have) => {
                    have.first_ms = have.first_ms.min(p.first_ms);
                    have.last_ms = have.last_ms.max(p.last_ms);
                    have.requests += p.requests;
                    have.busiest = have.busiest.max(p.busiest);
                    have.buckets = have.buckets.max(p.buckets);
                    have.counted_ms = have.counted_ms.max(p.counted_ms);
                }
                None => {
                    self.processes.insert(id, p);
                }
            }
        }
    }
}

/// Moves the entries of host `from` in a map keyed by (host, actor) to host `into`.
fn rekey<V>(map: &mut BTreeMap<Key, V>, from: &str, into: &str) {
    let keys: Vec<Key> = map.keys().filter(|(h, _)| h == from).cloned().collect();
    for k in keys {
        if let Some(v) = map.remove(&k) {
            map.entry((into.to_owned(), k.1)).or_insert(v);
        }
    }
}

/// Baselines of every host, as the store saves them.
pub type Baselines = BTreeMap<String, HostBaseline>;

/// Requests of one process in one rate bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bucket {
    start_ms: i64,
    count: u64,
    alerted: bool,
}

/// (host, actor) or (host, identity).
type Key = (String, String);

/// A request remembered for a window: when, its path, and the event.
type Seen = (i64, String, Ref);

/// An event a correlation joins: as `related` shows it (its alert's id, or `path:line` when it
/// raised none) and as the correlation's id hashes it (the alert's id, or the record's identity,
/// which no path spelling changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ref {
    shown: String,
    key: String,
}

/// A host's open windows (IMDS-101's token requests, IMDS-104's paths), as the store keeps them
/// with every commit: a worker that takes the host over, or a restart, goes on with them rather
/// than with empty windows that would fire later than one uninterrupted run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    tokens: Vec<(String, Vec<Seen>)>,
    paths: Vec<(String, Vec<Seen>)>,
}

/// What the baseline knew of a touch's process before it.
struct Learned {
    /// The host is still learning.
    learning: bool,
    /// The process had reached the service on this host before.
    known: bool,
    /// Its busiest rate bucket during learning.
    busiest: u64,
    /// Distinct buckets with requests its baseline saw while learning.
    buckets: u64,
    /// When the host's baseline began.
    since_ms: i64,
    /// How many other processes the host's baseline holds.
    others: usize,
}

/// A built-in correlation: its source file, whose module comment documents it ([`Doc`]), and its
/// base severity.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// The correlation's source file (`include_str!` of itself).
    pub source: &'static str,
    /// Base severity (some cases raise or lower it, as each file says).
    pub severity: Severity,
}

impl Meta {
    /// Stable id (`IMDS-101`), from the documentation's first line.
    pub fn id(&self) -> &'static str {
        Doc::header(self.source)
            .expect("built-in documentation is tested")
            .0
    }

    /// One line, from the documentation's first line.
    pub fn title(&self) -> &'static str {
        Doc::header(self.source)
            .expect("built-in documentation is tested")
            .1
    }

    /// The documentation.
    pub fn doc(&self) -> Doc {
        Doc::from_source(self.source).expect("built-in documentation is tested")
    }
}

/// The built-in correlations, in id order.
pub const RULES: [Meta; 4] = [
    imds_101_token_sequence::META,
    imds_102_first_seen::META,
    imds_103_rate::META,
    imds_104_enumeration::META,
];

/// The built-in correlations' state.
pub struct Imds {
    cfg: Config,
    baselines: Baselines,
    /// Open token requests per (host, actor): time and the touch's context alert id.
    tokens: BTreeMap<Key, VecDeque<Seen>>,
    paths: BTreeMap<Key, VecDeque<Seen>>,
    /// (host, identity) already reported new in this run: the same record read twice (two
    /// exports of one log) at the same instant is one newcomer.
    reported_new: std::collections::BTreeSet<Key>,
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
            paths: BTreeMap::new(),
            reported_new: Default::default(),
            evicted: 0,
        }
    }

    /// The open windows of `host`.
    pub(crate) fn windows(&self, host: &str) -> Windows {
        let of = |map: &BTreeMap<Key, VecDeque<Seen>>| {
            map.range((host.to_owned(), String::new())..)
                .take_while(|((h, _), _)| h == host)
                .map(|((_, actor), q)| (actor.clone(), q.iter().cloned().collect()))
                .collect()
        };
        Windows {
            tokens: of(&self.tokens),
            paths: of(&self.paths),
        }
    }

    /// Takes back `host`'s saved windows (replacing what it holds of that host).
    pub(crate) fn restore_windows(&mut self, host: &str, w: Windows) {
        for (map, saved) in [(&mut self.tokens, w.tokens), (&mut self.paths, w.paths)] {
            map.retain(|(h, _), _| h != host);
            for (actor, q) in saved {
                map.insert((host.to_owned(), actor), q.into_iter().collect());
            }
        }
    }

    /// Moves what is kept under the host `from` to `into` (a short name joined to its FQDN).
    pub(crate) fn rename_host(&mut self, from: &str, into: &str) {
        if let Some(b) = self.baselines.remove(from) {
            match self.baselines.get_mut(into) {
                Some(have) => have.absorb(b),
                None => {
                    self.baselines.insert(into.to_owned(), b);
                }
            }
        }
        rekey(&mut self.tokens, from, into);
        rekey(&mut self.paths, from, into);
        let moved: Vec<Key> = self
            .reported_new
            .iter()
            .filter(|(h, _)| h == from)
            .cloned()
            .collect();
        for (_, id) in moved {
            self.reported_new.remove(&(from.to_owned(), id.clone()));
            self.reported_new.insert((into.to_owned(), id));
        }
    }

    /// Takes in hosts' saved baselines beside those it has (a host it has is kept as it is).
    pub(crate) fn restore_baselines(&mut self, saved: Baselines) {
        for (host, b) in saved {
            self.baselines.entry(host).or_insert(b);
        }
    }

    /// Drops the baselines of the hosts `gone` names.
    pub(crate) fn forget(&mut self, gone: &dyn Fn(&str) -> bool) {
        self.baselines.retain(|h, _| !gone(h));
        self.tokens.retain(|(h, _), _| !gone(h));
        self.paths.retain(|(h, _), _| !gone(h));
    }

    /// The baselines learned so far.
    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// How often the touch's process reaches the service, as the baseline knows it after the
    /// touch was fed.
    pub fn frequency(&self, t: &Touch) -> Option<crate::triage::Frequency> {
        let host = self.baselines.get(&t.host)?;
        let p = host.processes.get(&t.identity)?;
        let done = t.time_ms - host.since_ms;
        let b = p.bucket;
        let this_bucket = if t.time_ms - b.start_ms < self.cfg.rate_bucket_ms {
            b.count
        } else {
            0
        };
        Some(crate::triage::Frequency {
            since_ms: host.since_ms,
            learning: (done < self.cfg.learn_ms).then_some((done, self.cfg.learn_ms)),
            known_since: (p.first_ms < t.time_ms).then_some(p.first_ms),
            busiest: p.busiest,
            this_bucket,
            bucket_ms: self.cfg.rate_bucket_ms,
            threshold: self.threshold(p.busiest, p.buckets),
            buckets: p.buckets,
            min_buckets: self.cfg.rate_min_buckets,
        })
    }

    /// The bucket count above which a process alerts: a multiple of its busiest learned bucket
    /// when its baseline saw enough, else the floor alone.
    fn threshold(&self, busiest: u64, buckets: u64) -> u64 {
        if buckets < self.cfg.rate_min_buckets {
            self.cfg.rate_min
        } else {
            (busiest * self.cfg.rate_factor).max(self.cfg.rate_min)
        }
    }

    /// Feeds one touch (in time order); returns the alerts it completes. `event_alert` is the id
    /// of an alert raised on the same event, if any: a correlation's `related` list names each
    /// event by its alert's id, or by its record (`path:line`) when it raised none.
    pub fn push(&mut self, t: &Touch, event_alert: Option<&str>) -> Vec<Alert> {
        let mut out = Vec::new();
        let own = match event_alert {
            Some(id) => Ref {
                shown: id.to_owned(),
                key: id.to_owned(),
            },
            None => Ref {
                shown: t.context.source_text(),
                key: format!("record {:016x}", t.record),
            },
        };
        let learned = self.learn(t);
        self.token_sequence(t, &own, &mut out);
        self.first_seen(t, &learned, &own, &mut out);
        self.rate(t, &learned, &own, &mut out);
        self.enumeration(t, &own, &mut out);
        out
    }

    /// Adds the touch to its host's baseline; returns what the baseline knew before it.
    fn learn(&mut self, t: &Touch) -> Learned {
        let learn_ms = self.cfg.learn_ms;
        if !self.baselines.contains_key(&t.host) {
            self.baselines.insert(
                t.host.clone(),
                HostBaseline {
                    since_ms: t.time_ms,
                    processes: BTreeMap::new(),
                },
            );
        }
        let host = self.baselines.get_mut(&t.host).expect("inserted above");
        // A baseline carried over from the store may already hold this input (a second hunt
        // over the same logs): what it knows counts only from before the touch, so the same input
        // gives the same alerts however often it is read.
        host.since_ms = host.since_ms.min(t.time_ms);
        let learning = t.time_ms < host.since_ms + learn_ms;
        let known = host
            .processes
            .get(&t.identity)
            .is_some_and(|p| p.first_ms < t.time_ms);
        let others = if known {
            0
        } else {
            host.processes
                .iter()
                .filter(|(id, p)| **id != t.identity && p.first_ms < t.time_ms)
                .count()
        };
        if !host.processes.contains_key(&t.identity) {
            host.processes.insert(
                t.identity.clone(),
                ProcessBaseline {
                    first_ms: t.time_ms,
                    last_ms: t.time_ms,
                    requests: 0,
                    busiest: 0,
                    buckets: 0,
                    counted_ms: None,
                    bucket: Bucket::default(),
                },
            );
        }
        let p = host.processes.get_mut(&t.identity).expect("inserted above");
        p.first_ms = p.first_ms.min(t.time_ms);
        p.last_ms = p.last_ms.max(t.time_ms);
        p.requests += 1;
        let learned = Learned {
            learning,
            known,
            busiest: p.busiest,
            buckets: p.buckets,
            since_ms: host.since_ms,
            others,
        };
        while self.baselines.len() > self.cfg.max_keys {
            self.baselines.pop_first();
            self.evicted += 1;
        }
        learned
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

/// [`bound`] for a set.
fn bound_set(set: &mut std::collections::BTreeSet<Key>, max: usize, evicted: &mut u64) {
    while set.len() > max {
        set.pop_first();
        *evicted += 1;
    }
}

/// An alert of a built-in correlation, on the touch that completed it.
fn correlated(
    meta: &Meta,
    severity: Severity,
    t: &Touch,
    reasons: Vec<String>,
    related: Vec<Ref>,
) -> Alert {
    let mut a = t
        .context
        .alert(Some(&t.host).filter(|h| !h.is_empty()).map(String::as_str));
    let mut parts: Vec<&str> = vec![meta.id()];
    parts.extend(related.iter().map(|r| r.key.as_str()));
    a.id = format!("{:016x}", stable_hash(&parts));
    a.rule_id = meta.id().to_owned();
    a.title = meta.title().to_owned();
    a.severity = severity;
    a.attack = vec![Technique::new("T1552.005").expect("a valid technique id")];
    a.reasons = reasons;
    a.related = related.into_iter().map(|r| r.shown).collect();
    a
}

#[cfg(test)]
mod fixtures;
