//! Which rules an event can possibly match, found without evaluating them.
//!
//! For each rule, [`necessary`] derives from its condition a set of `field = literal` keys of
//! which at least one must hold for the rule to match (Sigma rules' log-source filters give
//! `EventID ∈ {…}` or `event.kind = …`). The index maps each key to its rules; an event looks up
//! the values of the few indexed fields and meets only those rules, plus the rules that have no
//! such key. Sound by construction: a rule is skipped only when none of its necessary keys holds.

use std::collections::HashMap;

use imdsguard_enrich::Enriched;

use crate::field::Field;
use crate::ir::{Expr, Matcher};

/// A disjunction of `field = value` literals (values lowercased) one of which must hold.
type Keys = Vec<(Field, String)>;

/// The keys one of which must hold for `e` to hold, if the expression says. Only fields the
/// decoder sets are keys: looking up an enriched field (the allowlist verdict, the location) for
/// every event would do the work the rule's own short-circuit spares most events.
pub(crate) fn necessary(e: &Expr) -> Option<Keys> {
    match e {
        Expr::Test(f, ms) if !ms.is_empty() && !f.is_enriched() => ms
            .iter()
            .map(|m| match m {
                Matcher::Eq(t) => Some((*f, t.as_str().to_ascii_lowercase())),
                _ => None,
            })
            .collect(),
        Expr::All(xs) => {
            let options: Vec<Keys> = xs.iter().filter_map(necessary).collect();
            // The most selective: any field before the channel name (a log source's `Channel =
            // Security` holds for every Security event, a selection's `EventID ∈ {4624, 4625}`
            // for the logons alone), then the fewest literals.
            options
                .into_iter()
                .min_by_key(|k| (k.iter().any(|(f, _)| is_channel(*f)), k.len()))
        }
        Expr::Any(xs) if !xs.is_empty() => {
            let mut all = Vec::new();
            for x in xs {
                all.extend(necessary(x)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// Whether the field is a Windows record's channel name: true of every event of its log, the least
/// selective key a log source gives.
fn is_channel(f: Field) -> bool {
    matches!(f, Field::Raw(s) | Field::RawOr(s, _) if s.name().eq_ignore_ascii_case("Channel"))
}

/// `s` with ASCII letters lowercased: `s` itself when it has no uppercase letter (values are
/// mostly lowercase or digits already), else a copy in `buf`.
pub(crate) fn ascii_lowercase<'a>(s: &'a str, buf: &'a mut String) -> &'a str {
    if !s.bytes().any(|b| b.is_ascii_uppercase()) {
        return s;
    }
    buf.clear();
    buf.push_str(s);
    buf.make_ascii_lowercase();
    buf
}

/// Keys are rules' literals; a lookup with an event's value only finds or misses them (no
/// inserts per event), so a fast hash with a random seed is enough.
type ValueKeys = HashMap<String, u32, foldhash::fast::RandomState>;

/// The index over a rule set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// The indexed fields, each with its keys by (lowercase) value; looked up per event without
    /// allocating.
    by_field: Vec<(Field, ValueKeys)>,
    /// Per key, its rules.
    lists: Vec<Vec<u32>>,
    /// Per key, the fields the second stage scans for its rules ([`Index::attach`]).
    wanted: Vec<Vec<u64>>,
    /// Rules without a necessary key: always evaluated.
    always: Vec<u32>,
    /// The same, a bit per rule.
    always_bits: Vec<u64>,
    /// The fields the second stage scans for them.
    always_wanted: Vec<u64>,
}

impl Index {
    pub(crate) fn build(conditions: &[&Expr]) -> Index {
        let mut ix = Index::default();
        for (i, c) in conditions.iter().enumerate() {
            let i = i as u32;
            match necessary(c) {
                Some(keys) => {
                    for (f, v) in keys {
                        let at = match ix.by_field.iter().position(|(x, _)| *x == f) {
                            Some(at) => at,
                            None => {
                                ix.by_field.push((f, ValueKeys::default()));
                                ix.by_field.len() - 1
                            }
                        };
                        let next = ix.lists.len() as u32;
                        let key = *ix.by_field[at].1.entry(v).or_insert(next);
                        if key == next {
                            ix.lists.push(Vec::new());
                        }
                        let list = &mut ix.lists[key as usize];
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => ix.always.push(i),
            }
        }
        ix.always_bits = vec![0; conditions.len().div_ceil(64)];
        for &i in &ix.always {
            ix.always_bits[i as usize / 64] |= 1 << (i % 64);
        }
        ix
    }

    /// Gives each key, and the unindexed rules, the fields the second stage scans for its rules
    /// (`wanted` of a list of rules), so an event's fields to scan are known from the keys it
    /// has rather than gathered rule by rule.
    pub(crate) fn attach(&mut self, wanted: &dyn Fn(&[u32]) -> Vec<u64>) {
        self.wanted = self.lists.iter().map(|l| wanted(l)).collect();
        self.always_wanted = wanted(&self.always);
    }

    /// The rules the event may match, as a bit per rule (rule order is bit order): the unindexed
    /// rules, and the rules of every indexed value the event has; and the fields the second stage
    /// scans for them. No sorting, no per-rule allocation.
    pub(crate) fn candidates(&self, ev: &Enriched<'_>) -> (Vec<u64>, Vec<u64>) {
        let mut bits = self.always_bits.clone();
        let mut wanted = self.always_wanted.clone();
        let mut lower = String::new();
        for (f, map) in &self.by_field {
            let Some(v) = f.get(ev) else { continue };
            v.each_text(|s: &str| {
                let key = ascii_lowercase(s, &mut lower);
                if let Some(&k) = map.get(key) {
                    for &i in &self.lists[k as usize] {
                        bits[i as usize / 64] |= 1 << (i % 64);
                    }
                    for (w, m) in wanted.iter_mut().zip(&self.wanted[k as usize]) {
                        *w |= m;
                    }
                }
            });
        }
        (bits, wanted)
    }

    /// How many rules are always evaluated, and how many keys index the rest.
    pub(crate) fn stats(&self) -> (usize, usize) {
        (self.always.len(), self.lists.len())
    }
}
