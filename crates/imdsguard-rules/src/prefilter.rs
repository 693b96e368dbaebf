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
/// them for every event would cost what the rules' own short-circuit saves), as are empty literals
/// (which always occur). A keyword search's literals are looked for in every value of the record:
/// one automaton pass instead of one search per keyword and value.
pub(crate) fn needed(e: &Expr) -> Option<Needs> {
    match e {
        Expr::Test(f, ms) if !ms.is_empty() && !f.is_enriched() => ms
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

/// One automaton per field over every literal some rule needs there, and the way back from a
/// literal to the rules that need it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefilter {
    /// The field, its automaton, and the global id of its first literal.
    fields: Vec<(Field, AhoCorasick, usize)>,
    /// The rules needing global literal `l` are `users[starts[l]..starts[l + 1]]`.
    starts: Vec<u32>,
    users: Vec<u32>,
    /// Per rule, a bit per field position it needs literals in: `words` words a rule.
    masks: Vec<u64>,
    words: usize,
    /// A bit per rule that needs nothing (always passes this stage).
    free: Vec<u64>,
    /// How many literals in all.
    literals: usize,
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
        let mut rules: Vec<Option<Vec<(usize, usize)>>> = Vec::with_capacity(conditions.len());
        for c in conditions {
            let Some(n) = needed(c) else {
                rules.push(None);
                continue;
            };
            let mut local = Vec::with_capacity(n.len());
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
            }
            rules.push(Some(local));
        }
        let mut fields = Vec::with_capacity(literals.len());
        let mut base = 0;
        for (f, lits) in &literals {
            // A contiguous NFA: quick to build for thousands of literals, and fast enough to scan
            // the few fields of one event.
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(if lits.len() <= 100 {
                    AhoCorasickKind::DFA
                } else {
                    AhoCorasickKind::ContiguousNFA
                }))
                .build(lits)
                .expect("literal automaton: sizes are far below the crate's limits");
            fields.push((*f, ac, base));
            base += lits.len();
        }
        let words = fields.len().div_ceil(64).max(1);
        let mut masks = vec![0u64; rules.len() * words];
        let mut free = vec![0u64; rules.len().div_ceil(64)];
        let mut by_literal: Vec<Vec<u32>> = vec![Vec::new(); base];
        for (i, r) in rules.iter().enumerate() {
            let Some(local) = r else {
                set_bit(&mut free, i);
                continue;
            };
            for &(at, k) in local {
                set_bit(&mut masks[i * words..(i + 1) * words], at);
                let users = &mut by_literal[fields[at].2 + k];
                if users.last() != Some(&(i as u32)) {
                    users.push(i as u32);
                }
            }
        }
        let mut starts = Vec::with_capacity(base + 1);
        let mut users = Vec::new();
        for list in by_literal {
            starts.push(users.len() as u32);
            users.extend(list);
        }
        starts.push(users.len() as u32);
        Prefilter {
            fields,
            starts,
            users,
            masks,
            words,
            free,
            literals: base,
        }
    }

    /// Keeps, of the candidate rules (a bit per rule), those that can match the event: rules that
    /// need nothing, and rules one of whose literals occurs. Each field some candidate needs is
    /// scanned once, and each literal found marks the rules that need it: the cost follows what
    /// the event contains, not how many literals the candidates list.
    pub(crate) fn retain(&self, candidates: &mut [u64], ev: &Enriched<'_>) {
        let mut wanted = vec![0u64; self.words];
        for (w, &word) in candidates.iter().enumerate() {
            let mut word = word & !self.free[w];
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                for (x, m) in wanted
                    .iter_mut()
                    .zip(&self.masks[i * self.words..(i + 1) * self.words])
                {
                    *x |= m;
                }
            }
        }
        let mut passed = self.free.clone();
        let mut seen = vec![0u64; self.literals.div_ceil(64)];
        for (w, &word) in wanted.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let at = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                self.scan(at, ev, &mut seen, &mut passed);
            }
        }
        for (c, p) in candidates.iter_mut().zip(&passed) {
            *c &= p;
        }
    }

    fn scan(&self, at: usize, ev: &Enriched<'_>, seen: &mut [u64], passed: &mut [u64]) {
        let (field, ac, base) = &self.fields[at];
        let Some(v) = field.get(ev) else { return };
        v.each_text(|s| {
            for m in ac.find_overlapping_iter(s) {
                let l = base + m.pattern().as_usize();
                if bit(seen, l) {
                    continue;
                }
                set_bit(seen, l);
                for &r in &self.users[self.starts[l] as usize..self.starts[l + 1] as usize] {
                    set_bit(passed, r as usize);
                }
            }
        });
    }

    /// Rules that need literals, and literals in all.
    pub(crate) fn stats(&self) -> (usize, usize) {
        let free: u32 = self.free.iter().map(|w| w.count_ones()).sum();
        (self.masks.len() / self.words - free as usize, self.literals)
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
