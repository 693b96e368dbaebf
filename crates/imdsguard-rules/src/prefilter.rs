//! The second stage of candidate selection: literals a rule needs to find in a field.
//!
//! For each rule, [`needed`] derives from its condition a set of `(field, literal)` pairs of which
//! at least one must occur in the field's value, ASCII case ignored, for the rule to match: every
//! `Eq`, `Prefix`, `Suffix` and `Contains` test holds only where its text occurs. All literals of
//! one field go into one Aho-Corasick automaton; per event, each field a candidate rule needs is
//! scanned once (lazily), and a rule none of whose literals occurred is not evaluated. Sound by
//! construction, like the first stage ([`crate::index`]): a rule is skipped only when its condition
//! cannot hold. Rules with no such literals (regexes only, numbers, `exists`) are always evaluated.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use imdsguard_enrich::Enriched;

use crate::field::Field;
use crate::ir::{Expr, Matcher};

/// A disjunction of `(field, lowercase literal)`, one of which must occur.
type Needs = Vec<(Field, String)>;

/// What the rule needs to find, if its condition says. Enriched fields are left out (computing
/// them for every event would cost what the rules' own short-circuit saves), as are the keyword
/// field (every value of the record) and empty literals (which always occur).
pub(crate) fn needed(e: &Expr) -> Option<Needs> {
    match e {
        Expr::Test(f, ms) if !ms.is_empty() && !f.is_enriched() && *f != Field::Keywords => ms
            .iter()
            .map(|m| match m {
                Matcher::Eq(t) | Matcher::Prefix(t) | Matcher::Suffix(t) | Matcher::Contains(t)
                    if !t.as_str().is_empty() =>
                {
                    Some((*f, t.as_str().to_ascii_lowercase()))
                }
                _ => None,
            })
            .collect(),
        // The child whose literals are rarest: not the equalities the first stage indexes
        // already (`Channel`, `EventID`: every candidate has them), and then the option whose
        // shortest literal is longest (the shortest is what an event must contain at least).
        Expr::All(xs) => xs
            .iter()
            .filter_map(|x| needed(x).map(|n| (crate::index::necessary(x).is_none(), n)))
            .max_by_key(|(fresh, n)| (*fresh, n.iter().map(|(_, l)| l.len()).min().unwrap_or(0)))
            .map(|(_, n)| n),
        Expr::Any(xs) if !xs.is_empty() => {
            let mut all = Vec::new();
            for x in xs {
                all.extend(needed(x)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// One automaton per field over every literal some rule needs there.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefilter {
    /// The field, its automaton, and the global id of its first literal.
    fields: Vec<(Field, AhoCorasick, usize)>,
    /// Per rule: the global literal ids one of which must occur, and the fields (positions in
    /// `fields`) they belong to; `None` when the rule needs nothing.
    rules: Vec<Option<(Vec<usize>, Vec<usize>)>>,
    /// How many literals in all.
    literals: usize,
}

/// What one event was found to contain, filled in as fields are scanned.
pub(crate) struct Found {
    /// Bit per global literal id.
    seen: Vec<u64>,
    /// Bit per field position: scanned already.
    scanned: Vec<u64>,
}

fn bit(set: &[u64], i: usize) -> bool {
    set[i / 64] & (1 << (i % 64)) != 0
}

fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

impl Prefilter {
    pub(crate) fn build(conditions: &[&Expr]) -> Prefilter {
        // Each field's literals, each literal once: (field position, literal) → its position.
        let mut literals: Vec<(Field, Vec<String>)> = Vec::new();
        let mut field_at: HashMap<Field, usize> = HashMap::new();
        let mut lit_at: HashMap<(usize, String), usize> = HashMap::new();
        let mut rules = Vec::with_capacity(conditions.len());
        for c in conditions {
            let Some(n) = needed(c) else {
                rules.push(None);
                continue;
            };
            let mut local = Vec::with_capacity(n.len());
            let mut at_fields = Vec::new();
            for (f, lit) in n {
                let at = *field_at.entry(f).or_insert_with(|| {
                    literals.push((f, Vec::new()));
                    literals.len() - 1
                });
                let k = *lit_at.entry((at, lit)).or_insert_with_key(|(_, lit)| {
                    literals[at].1.push(lit.clone());
                    literals[at].1.len() - 1
                });
                local.push((at, k));
                if !at_fields.contains(&at) {
                    at_fields.push(at);
                }
            }
            rules.push(Some((local, at_fields)));
        }
        let mut fields = Vec::with_capacity(literals.len());
        let mut base = 0;
        for (f, lits) in &literals {
            // A contiguous NFA: quick to build for thousands of literals, and fast enough to scan
            // the few fields of one event.
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(lits)
                .expect("literal automaton: sizes are far below the crate's limits");
            fields.push((*f, ac, base));
            base += lits.len();
        }
        let rules = rules
            .into_iter()
            .map(|r| {
                r.map(|(local, at_fields)| {
                    let ids = local.iter().map(|&(at, k)| fields[at].2 + k).collect();
                    (ids, at_fields)
                })
            })
            .collect();
        Prefilter {
            fields,
            rules,
            literals: base,
        }
    }

    /// A fresh record of what one event contains.
    pub(crate) fn found(&self) -> Found {
        Found {
            seen: vec![0; self.literals.div_ceil(64)],
            scanned: vec![0; self.fields.len().div_ceil(64)],
        }
    }

    /// Whether rule `i` can match the event: one of its literals occurs (scanning the fields it
    /// needs the first time they are asked for).
    pub(crate) fn may_match(&self, i: usize, ev: &Enriched<'_>, found: &mut Found) -> bool {
        let Some((ids, at_fields)) = &self.rules[i] else {
            return true;
        };
        for &at in at_fields {
            if !bit(&found.scanned, at) {
                set_bit(&mut found.scanned, at);
                self.scan(at, ev, &mut found.seen);
            }
        }
        ids.iter().any(|&id| bit(&found.seen, id))
    }

    fn scan(&self, at: usize, ev: &Enriched<'_>, seen: &mut [u64]) {
        let (field, ac, base) = &self.fields[at];
        let Some(v) = field.get(ev) else { return };
        v.each_text(|s| {
            for m in ac.find_overlapping_iter(s) {
                set_bit(seen, base + m.pattern().as_usize());
            }
        });
    }

    /// Rules that need literals, and literals in all.
    pub(crate) fn stats(&self) -> (usize, usize) {
        (
            self.rules.iter().filter(|r| r.is_some()).count(),
            self.literals,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{on, Text};

    #[test]
    fn needs_follow_the_condition() {
        let cmd = on(Field::ProcessCommandLine);
        // Every matcher of a test gives its text.
        let e = cmd.contains_any(&["IEX", "-enc"]);
        assert_eq!(
            needed(&e).unwrap(),
            [
                (Field::ProcessCommandLine, "iex".to_string()),
                (Field::ProcessCommandLine, "-enc".to_string())
            ]
        );
        // All: the option with the longest shortest literal; Any: every option, or nothing.
        let img = on(Field::ProcessImage).ends_with_any(&["\\curl.exe"]);
        let both = Expr::All(vec![cmd.contains_any(&["a", "169.254"]), img.clone()]);
        assert_eq!(
            needed(&both).unwrap(),
            [(Field::ProcessImage, "\\curl.exe".to_string())]
        );
        let either = Expr::Any(vec![img.clone(), on(Field::ProcessImage).exists()]);
        assert_eq!(needed(&either), None);
        // Negations, regexes and enriched fields need nothing.
        assert_eq!(needed(&Expr::Not(Box::new(img))), None);
        let re = Expr::Test(
            Field::ProcessCommandLine,
            vec![Matcher::Regex(regex::Regex::new("a+").unwrap())],
        );
        assert_eq!(needed(&re), None);
        assert_eq!(needed(&on(Field::ProcessVerdict).is("agent")), None);
        let empty = Expr::Test(Field::ProcessImage, vec![Matcher::Eq(Text::new(""))]);
        assert_eq!(needed(&empty), None);
    }
}
