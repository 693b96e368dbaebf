//! Sigma correlation rules over detection hits.
//!
//! A [`Correlator`] takes the hits of detection rules in time order ([`Correlator::push`]) and
//! returns the correlations they complete. State is one sliding window per (correlation rule,
//! group) — the values of the rule's `group-by` fields — holding the hits of the last
//! `timespan`; the number of open groups is bounded ([`Correlator::with_max_groups`]): past it, the
//! group seen least recently is dropped and counted ([`Correlator::evicted`]). A window holds
//! every hit of its timespan (not yet capped: a burst of millions in one group is held whole).
//!
//! Semantics, as the Sigma correlation specification and pySigma's backends give them:
//! - `event_count`: the number of hits of the referenced rules in the window meets the condition.
//! - `value_count`: the number of distinct values of `field` among those hits meets it.
//! - `temporal`: every referenced rule has a hit in the window (with a condition: at least that
//!   many distinct rules do).
//! - `temporal_ordered`: the referenced rules have hits in the order given, within the window.
//!
//! A condition with only lower bounds (`gt`, `gte`) fires as soon as it holds; one with an upper
//! bound (`lt`, `lte`, `eq`) is judged when a window closes — the first hit after `timespan`, or
//! [`Correlator::finish`] at the end of the input — since later hits could still break it. After
//! a correlation fires its window restarts, so one burst gives one alert, not one per hit. A hit
//! lacking a `group-by` field is not grouped (as a SIEM's `stats … by` leaves it out).
//! Deterministic: the same hits in the same order give the same output.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::sync::Arc;

use imdsguard_rules::Alert;
use imdsguard_sigma::{Correlation, CorrelationKind};

/// One hit of a detection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The names a correlation may refer to the rule by (its `name`, its `id`).
    pub rule: Vec<String>,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The event's fields the correlation reads (`group-by`, `value_count`'s field).
    pub fields: BTreeMap<String, String>,
    /// The caller's reference to the hit (its alert's id).
    pub id: String,
}

/// A correlation that fired.
#[derive(Debug, Clone)]
pub struct Fired {
    /// Index of the correlation rule in the list given to [`Correlator::new`].
    pub correlation: usize,
    /// The group: `group-by` fields and their values.
    pub group: Vec<(String, String)>,
    /// Time of the first hit counted (ms).
    pub first_ms: i64,
    /// Time of the last hit counted (ms).
    pub last_ms: i64,
    /// The measured value: hits, distinct values, or distinct rules.
    pub value: u64,
    /// The hits counted, in time order.
    pub hits: Vec<String>,
    /// The context the caller gave with the window's last hit ([`Correlator::push_with`]):
    /// what an alert judged at the end of the input is about (its host, its process).
    pub context: Option<Arc<Alert>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Gt(i64),
    Gte(i64),
    Lt(i64),
    Lte(i64),
    Eq(i64),
}

impl Bound {
    fn holds(self, v: i64) -> bool {
        match self {
            Bound::Gt(n) => v > n,
            Bound::Gte(n) => v >= n,
            Bound::Lt(n) => v < n,
            Bound::Lte(n) => v <= n,
            Bound::Eq(n) => v == n,
        }
    }
    fn upper(self) -> bool {
        matches!(self, Bound::Lt(_) | Bound::Lte(_) | Bound::Eq(_))
    }
}

struct Spec {
    kind: CorrelationKind,
    rules: Vec<String>,
    group_by: Vec<String>,
    /// The correlation as written, for its `aliases`.
    correlation: Correlation,
    window_ms: i64,
    bounds: Vec<Bound>,
    field: Vec<String>,
}

impl Spec {
    /// The hit's rule (index in `rules`), group and counted value, or `None` when the hit is not
    /// this correlation's or lacks a field it groups or counts by.
    fn read(&self, hit: &Hit) -> Option<(usize, Vec<String>, Option<String>)> {
        let rule = self.rules.iter().position(|r| hit.rule.contains(r))?;
        // An alias reads the field it names for the hit's rule (known by its name or id).
        let group = self
            .group_by
            .iter()
            .map(|g| {
                hit.fields
                    .get(self.correlation.group_field(g, &hit.rule)?)
                    .cloned()
            })
            .collect::<Option<Vec<String>>>()?;
        // value_count over several fields counts distinct combinations of their values.
        let value = if self.field.is_empty() {
            None
        } else {
            let parts = self
                .field
                .iter()
                .map(|f| hit.fields.get(f).map(String::as_str))
                .collect::<Option<Vec<&str>>>()?;
            Some(parts.join("\u{1f}"))
        };
        Some((rule, group, value))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    time_ms: i64,
    rule: usize,
    value: Option<String>,
    id: String,
}

#[derive(Default)]
struct Window {
    entries: VecDeque<Entry>,
    last_seen: u64,
    /// The context given with the last hit.
    context: Option<Arc<Alert>>,
}

/// A correlation rule that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelateError {
    /// Index of the correlation rule.
    pub correlation: usize,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for CorrelateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "correlation rule {}: {}", self.correlation, self.message)
    }
}

impl std::error::Error for CorrelateError {}

/// The correlation state over a stream of hits.
pub struct Correlator {
    specs: Vec<Spec>,
    windows: BTreeMap<(usize, Vec<String>), Window>,
    max_groups: usize,
    evicted: u64,
    tick: u64,
}

impl Correlator {
    /// Compiles the correlation rules; a rule whose condition cannot be read is an error.
    pub fn new(rules: &[Correlation]) -> Result<Correlator, CorrelateError> {
        let mut specs = Vec::new();
        for (i, c) in rules.iter().enumerate() {
            let err = |message: String| CorrelateError {
                correlation: i,
                message,
            };
            let mut bounds = Vec::new();
            for (op, n) in &c.condition {
                bounds.push(match op.as_str() {
                    "gt" => Bound::Gt(*n),
                    "gte" => Bound::Gte(*n),
                    "lt" => Bound::Lt(*n),
                    "lte" => Bound::Lte(*n),
                    "eq" => Bound::Eq(*n),
                    other => return Err(err(format!("unknown condition operator {other:?}"))),
                });
            }
            let needs_condition = matches!(
                c.kind,
                CorrelationKind::EventCount | CorrelationKind::ValueCount
            );
            if needs_condition && bounds.is_empty() {
                return Err(err("event_count and value_count need a condition".into()));
            }
            if c.kind == CorrelationKind::ValueCount && c.field.is_empty() {
                return Err(err("value_count needs a field".into()));
            }
            let window_ms = i64::try_from(c.timespan_secs.saturating_mul(1000))
                .map_err(|_| err("timespan too long".into()))?;
            specs.push(Spec {
                kind: c.kind,
                rules: c.rules.clone(),
                group_by: c.group_by.clone(),
                correlation: c.clone(),
                window_ms,
                bounds,
                field: c.field.clone(),
            });
        }
        Ok(Correlator {
            specs,
            windows: BTreeMap::new(),
            max_groups: 100_000,
            evicted: 0,
            tick: 0,
        })
    }

    /// At most `n` open groups (default 100,000); past it the least recently seen is dropped.
    pub fn with_max_groups(mut self, n: usize) -> Correlator {
        self.max_groups = n.max(1);
        self
    }

    /// Groups dropped to keep the state bounded.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Open groups now.
    pub fn groups(&self) -> usize {
        self.windows.len()
    }

    /// Feeds one hit; returns the correlations it completes or whose windows it closes.
    pub fn push(&mut self, hit: &Hit) -> Vec<Fired> {
        self.push_with(hit, None)
    }

    /// [`Correlator::push`], keeping `context` with the hit's windows: a window judged later
    /// ([`Correlator::finish`]) fires with the context of its own last hit.
    pub fn push_with(&mut self, hit: &Hit, context: Option<Arc<Alert>>) -> Vec<Fired> {
        let mut out = Vec::new();
        for s in 0..self.specs.len() {
            let Some((rule, group, value)) = self.specs[s].read(hit) else {
                continue;
            };
            self.tick += 1;
            let key = (s, group);
            let upper = self.specs[s].bounds.iter().any(|b| b.upper());
            let window_ms = self.specs[s].window_ms;
            let w = self.windows.entry(key.clone()).or_default();
            w.last_seen = self.tick;
            // Hits that fell out of the window: a closing window is judged first when the
            // condition has an upper bound.
            if let Some(first) = w.entries.front() {
                if hit.time_ms - first.time_ms >= window_ms {
                    if upper {
                        if let Some(mut f) = judge(&self.specs[s], s, &key.1, &w.entries) {
                            f.context = w.context.clone();
                            out.push(f);
                        }
                        w.entries.clear();
                    } else {
                        while w
                            .entries
                            .front()
                            .is_some_and(|e| hit.time_ms - e.time_ms >= window_ms)
                        {
                            w.entries.pop_front();
                        }
                    }
                }
            }
            w.entries.push_back(Entry {
                time_ms: hit.time_ms,
                rule,
                value,
                id: hit.id.clone(),
            });
            w.context = context.clone();
            if !upper {
                if let Some(mut f) = judge(&self.specs[s], s, &key.1, &w.entries) {
                    f.context = w.context.clone();
                    out.push(f);
                    w.entries.clear();
                }
            }
            self.bound();
        }
        out
    }

    /// The end of the input: windows with an upper-bound condition are judged.
    pub fn finish(&mut self) -> Vec<Fired> {
        let mut out = Vec::new();
        for ((s, group), w) in std::mem::take(&mut self.windows) {
            if self.specs[s].bounds.iter().any(|b| b.upper()) {
                if let Some(mut f) = judge(&self.specs[s], s, &group, &w.entries) {
                    f.context = w.context;
                    out.push(f);
                }
            }
        }
        out
    }

    fn bound(&mut self) {
        while self.windows.len() > self.max_groups {
            let oldest = self
                .windows
                .iter()
                .min_by_key(|(_, w)| w.last_seen)
                .map(|(k, _)| k.clone())
                .expect("more groups than the bound");
            self.windows.remove(&oldest);
            self.evicted += 1;
        }
    }
}

fn judge(spec: &Spec, s: usize, group: &[String], entries: &VecDeque<Entry>) -> Option<Fired> {
    // The hits counted (all of the window, or for temporal_ordered the ones found in order) and
    // the measured value.
    let (counted, value): (Vec<&Entry>, usize) = match spec.kind {
        CorrelationKind::EventCount => (entries.iter().collect(), entries.len()),
        CorrelationKind::ValueCount => {
            let distinct: BTreeSet<&str> =
                entries.iter().filter_map(|e| e.value.as_deref()).collect();
            (entries.iter().collect(), distinct.len())
        }
        CorrelationKind::Temporal => {
            let distinct: BTreeSet<usize> = entries.iter().map(|e| e.rule).collect();
            (entries.iter().collect(), distinct.len())
        }
        CorrelationKind::TemporalOrdered => {
            // The longest prefix of the rule list found in order (earliest hits first).
            let mut in_order = Vec::new();
            for e in entries {
                if e.rule == in_order.len() && in_order.len() < spec.rules.len() {
                    in_order.push(e);
                }
            }
            let n = in_order.len();
            (in_order, n)
        }
    };
    let (first, last) = (counted.first()?, counted.last()?);
    let holds = match spec.kind {
        CorrelationKind::Temporal | CorrelationKind::TemporalOrdered if spec.bounds.is_empty() => {
            value == spec.rules.len()
        }
        _ => spec
            .bounds
            .iter()
            .all(|b| b.holds(i64::try_from(value).unwrap_or(i64::MAX))),
    };
    holds.then(|| Fired {
        correlation: s,
        group: spec
            .group_by
            .iter()
            .cloned()
            .zip(group.iter().cloned())
            .collect(),
        first_ms: first.time_ms,
        last_ms: last.time_ms,
        value: value as u64,
        hits: counted.iter().map(|e| e.id.clone()).collect(),
        context: None,
    })
}

#[cfg(test)]
mod tests;
