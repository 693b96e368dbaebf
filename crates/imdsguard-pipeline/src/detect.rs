//! Detection on one event: enrich it, evaluate every rule, and hand back what the correlation
//! layer needs. Runs on the worker threads; reads only immutable, shared state.

use imdsguard_correlate::cloud::CloudUse;
use imdsguard_correlate::{Facts, Hit, Observation, Touch};
use imdsguard_enrich::Enricher;
use imdsguard_event::{parse_time_ms, Event};
use imdsguard_rules::Alert;

use crate::rules::Rules;

/// The enrich stage and the rules, shared by every worker.
#[derive(Clone, Copy)]
pub struct Detector<'a> {
    enricher: Enricher<'a>,
    rules: &'a Rules,
    /// Events before `from` or from `to` on (ms since the epoch) are not analysed.
    from: Option<i64>,
    to: Option<i64>,
    /// This detector, for the cloud calls each thread remembers ([`seen_cloud_call`]).
    id: u64,
}

/// Most cloud call keys a thread remembers for one detector.
const MAX_SEEN: usize = 1 << 18;

thread_local! {
    /// The cloud calls this thread has handed on for one detector: key → earliest time.
    static SEEN: std::cell::RefCell<(u64, std::collections::HashMap<u64, i64>)> =
        Default::default();
}

/// Whether this thread already handed on, for detector `id`, a cloud call with `key` at or
/// before `time_ms`; remembers it when not. A worker reads its blocks in input order, so such a
/// call comes after that one in the input too, and adds nothing the correlation layer does not
/// have (it would leave it out itself): leaving it out here saves copying it across threads.
fn seen_cloud_call(id: u64, key: u64, time_ms: i64) -> bool {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        if s.0 != id {
            *s = (id, std::collections::HashMap::new());
        }
        let room = s.1.len() < MAX_SEEN;
        match s.1.get_mut(&key) {
            Some(t) if *t <= time_ms => true,
            Some(t) => {
                *t = time_ms;
                false
            }
            None => {
                if room {
                    s.1.insert(key, time_ms);
                }
                false
            }
        }
    })
}

/// What detection made of one event.
pub struct Found {
    /// What the correlation layer needs of the event (its alerts, its metadata requests, its
    /// hits of rules Sigma correlations name), when it has any. Boxed: results travel between
    /// threads in blocks, and an inline observation made every result hundreds of bytes to copy.
    pub(crate) obs: Option<Box<Observation>>,
    /// The event raised an alert or reached the service but its time could not be read.
    pub(crate) untimed: bool,
    /// The event's time is outside the window asked for: not analysed.
    pub(crate) outside: bool,
}

impl<'a> Detector<'a> {
    /// Detection with `enricher` and `rules`.
    pub fn new(enricher: Enricher<'a>, rules: &'a Rules) -> Detector<'a> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Detector {
            enricher,
            rules,
            from: None,
            to: None,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Only events from `from` (inclusive) to `to` (exclusive) are analysed; those whose time
    /// cannot be read are, and are counted as such.
    pub fn within(self, from: Option<i64>, to: Option<i64>) -> Detector<'a> {
        Detector { from, to, ..self }
    }

    /// The rules.
    pub fn rules(&self) -> &'a Rules {
        self.rules
    }

    /// Every alert the event raises (whatever the severity: what is shown is decided when it is
    /// written), and what the correlation layer needs of it: its metadata requests, the facts
    /// triage reads, its hits of rules Sigma correlations name.
    pub fn observe(&self, event: &Event) -> Found {
        let loaded = self.rules;
        let time_ms = event.time.as_deref().and_then(parse_time_ms);
        if let Some(t) = time_ms {
            if self.from.is_some_and(|f| t < f) || self.to.is_some_and(|u| t >= u) {
                return Found {
                    obs: None,
                    untimed: false,
                    outside: true,
                };
            }
        }
        let ev = self.enricher.enrich(event);
        let mut alerts = Vec::new();
        let mut hits = Vec::new();
        let mut hit_context = None;
        for hit in loaded.set.eval(&ev) {
            let names = loaded.referenced.get(&hit.rule.id);
            let alert = Alert::new(&hit, &ev);
            // A rule that only feeds correlations does not alert on its own, unless the event's
            // time cannot be read: then it feeds nothing, and its alert is shown rather than
            // lost.
            let feeds = time_ms.is_some() && loaded.feeding.contains(&hit.rule.id);
            if let (Some(names), Some(time_ms)) = (names, time_ms) {
                hits.push(Hit {
                    rule: names.clone(),
                    time_ms,
                    fields: loaded
                        .fields
                        .iter()
                        .filter_map(|(n, f)| Some((n.clone(), f.get(&ev)?.to_string())))
                        .collect(),
                    id: alert.id.clone(),
                });
            }
            if !feeds {
                alerts.push(alert);
            } else if hit_context.is_none() {
                hit_context = Some(Box::new(alert));
            }
        }
        let touch = time_ms.and_then(|t| Touch::of(&ev, t));
        let cloud = time_ms
            .filter(|t| {
                event
                    .cloud
                    .as_deref()
                    .and_then(imdsguard_correlate::cloud::key)
                    .is_some_and(|k| !seen_cloud_call(self.id, k, *t))
            })
            .and_then(|t| CloudUse::of(&ev, t))
            .map(Box::new);
        // Held until the correlation is done with them (a hunt: to the end): a vector grown by
        // one push keeps room for four alerts, 3.7 KB where most events raise one.
        alerts.shrink_to_fit();
        hits.shrink_to_fit();
        let wanted = !alerts.is_empty() || touch.is_some() || cloud.is_some() || !hits.is_empty();
        // Triage reads the facts for the event's alerts, or a correlation's on a touch that is
        // not a verified agent's (an agent's can only raise a rate alert).
        let facts = if !alerts.is_empty() || touch.as_ref().is_some_and(|t| !t.agent) {
            Facts::of(&ev)
        } else {
            Facts::default()
        };
        Found {
            outside: false,
            untimed: wanted && time_ms.is_none(),
            obs: wanted.then(|| {
                Box::new(Observation {
                    time_ms: time_ms.unwrap_or(i64::MIN),
                    seq: 0,
                    alerts,
                    touch,
                    cloud,
                    facts,
                    hits,
                    hit_context,
                })
            }),
        }
    }
}
