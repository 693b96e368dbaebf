//! The one path every event's findings take after detection, for `hunt` and `watch` alike:
//! an event whose time could not be read is triaged without a baseline and released at once;
//! the others go, in time order, through the correlation engine (built-in correlations, Sigma
//! correlations, triage, incidents), which releases their alerts followed by the correlations
//! they complete.

use imdsguard_correlate::{Engine, Observation, Reorder};
use imdsguard_event::parse_time_ms;
use imdsguard_rules::Alert;

use crate::detect::Found;

/// Correlation state of one run, and its counts.
pub(crate) struct Correlation {
    pub(crate) engine: Engine,
    /// `hunt` puts records back in time order within a bounded lateness; `watch` reads live
    /// input, which comes in order.
    reorder: Option<Reorder>,
    seq: u64,
    /// Events left out of correlation: their time could not be read.
    pub(crate) untimed: u64,
    /// Alerts raised (the events' own and the correlations').
    pub(crate) raised: u64,
    /// The newest event time correlated.
    pub(crate) last_event_ms: Option<i64>,
    /// The keys of the cloud calls held so far ([`imdsguard_correlate::cloud::CloudUse::key`]),
    /// each with the earliest time held.
    cloud_seen: std::collections::HashMap<u64, i64>,
}

/// Most cloud call keys remembered (16 bytes each); past it every new call is held.
const MAX_CLOUD_KEYS: usize = 1 << 20;

impl Correlation {
    /// Correlation by `engine`, through `reorder` when given.
    pub(crate) fn new(engine: Engine, reorder: Option<Reorder>) -> Correlation {
        Correlation {
            engine,
            reorder,
            seq: 0,
            untimed: 0,
            raised: 0,
            last_event_ms: None,
            cloud_seen: Default::default(),
        }
    }

    /// One event's findings; `out` gets every alert released, with its time (none for an event
    /// whose time could not be read), in output order.
    pub(crate) fn push(&mut self, found: Found, out: &mut dyn FnMut(Alert, Option<i64>)) {
        let Some(mut obs) = found.obs else {
            return;
        };
        // A cloud call that brings the cloud correlations nothing new (an instance's session from
        // an address and for an operation already held, no earlier than that one) and raised
        // nothing of its own is not held: in a large audit log most calls are an instance's own,
        // repeated. An earlier one is held, so the first in time still comes first.
        if let (Some(u), true) = (
            &obs.cloud,
            obs.alerts.is_empty() && obs.touch.is_none() && obs.hits.is_empty(),
        ) {
            let key = u.key;
            let room = self.cloud_seen.len() < MAX_CLOUD_KEYS;
            match self.cloud_seen.get_mut(&key) {
                Some(held) if *held <= obs.time_ms => return,
                Some(held) => *held = obs.time_ms,
                None if room => {
                    self.cloud_seen.insert(key, obs.time_ms);
                }
                None => {}
            }
        }
        self.seq += 1;
        obs.seq = self.seq;
        if found.untimed {
            self.untimed += 1;
            let mut obs = *obs;
            Engine::triage_only(&mut obs.alerts, &obs.facts);
            self.raised += obs.alerts.len() as u64;
            for a in obs.alerts {
                out(a, None);
            }
            return;
        }
        match &mut self.reorder {
            Some(r) => {
                for o in r.push(obs) {
                    self.correlate(*o, out);
                }
            }
            None => self.correlate(*obs, out),
        }
    }

    fn correlate(&mut self, mut obs: Observation, out: &mut dyn FnMut(Alert, Option<i64>)) {
        self.last_event_ms = self.last_event_ms.max(Some(obs.time_ms));
        let more = self.engine.push(&mut obs);
        let time = Some(obs.time_ms);
        self.raised += (obs.alerts.len() + more.len()) as u64;
        for a in obs.alerts.into_iter().chain(more) {
            out(a, time);
        }
    }

    /// The end of the input, one observation the reorder buffer holds at a time (so the caller
    /// can settle between them): false when none is left.
    pub(crate) fn release_one(&mut self, out: &mut dyn FnMut(Alert, Option<i64>)) -> bool {
        match self.reorder.as_mut().and_then(Reorder::pop) {
            Some(o) => {
                self.correlate(*o, out);
                true
            }
            None => false,
        }
    }

    /// The end of the input: what the reorder buffer still holds, then the windows judged at
    /// the end.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(Alert, Option<i64>)) {
        while self.release_one(out) {}
        for a in self.engine.finish() {
            self.raised += 1;
            let time = a.time.as_deref().and_then(parse_time_ms);
            out(a, time);
        }
    }

    /// Observations that came later than the reorder buffer allows (correlated late).
    pub(crate) fn late(&self) -> u64 {
        self.reorder.as_ref().map_or(0, |r| r.late)
    }

    /// Observations the reorder buffer released before their time, its memory being full.
    pub(crate) fn early(&self) -> u64 {
        self.reorder.as_ref().map_or(0, |r| r.early)
    }
}
