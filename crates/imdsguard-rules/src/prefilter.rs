//! The second stage of candidate selection: literals a rule needs to find in its fields.
//!
//! For each rule, [`needed`] derives from its condition clauses of `(field, literal)` pairs: for
//! the rule to match, in every clause one of the literals must occur in its field's value, ASCII
//! case ignored (every `Eq`, `Prefix`, `Suffix` and `Contains` test holds only where its text
//! occurs, a regex only where one of the prefixes its matches start with occurs; every part of a
//! conjunction must hold; of a disjunction, one part). All literals of one
//! field go into one Aho-Corasick automaton; per event, each field some candidate rule needs is
//! scanned once, each literal found marks the clauses it satisfies, and a rule with a clause left
//! unsatisfied is not evaluated. Sound by construction, like the first stage ([`crate::index`]): a
//! rule is skipped only when its condition cannot hold. Rules with no such literals (regexes that
//! can start anywhere, numbers, `exists`) are always evaluated.

use std::collections::HashMap;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use imdsguard_enrich::Enriched;

use crate::field::Field;
use crate::ir::{Expr, Matcher};

/// A disjunction of `(field, lowercase literal)`, one of which must occur.
type Clause = Vec<(Field, String)>;

/// How many clauses of a rule are checked: the rarest. More clauses let fewer rules through (over
/// the public EVTX records as JSON lines, 4.1 rules a record evaluated with eight instead of 13.6)
/// but need more fields scanned, which cost more than the evaluations they spare: with two, one
/// JSON corpus ran 5% faster and another 7% slower; with eight, 12-15% slower.
const MAX_CLAUSES: usize = 1;

/// How telling a clause is: one that is not only equalities (those the first stage may have
/// indexed already: `Channel`, `EventID`), then the longer its shortest literal (what an event must
/// contain at least), the rarer.
fn rank((eq_only, c): &(bool, Clause)) -> (bool, usize) {
    (!eq_only, c.iter().map(|(_, l)| l.len()).min().unwrap_or(0))
}

/// The clauses the rule needs, all of which must be satisfied: the rarest [`MAX_CLAUSES`]; empty when the condition says nothing. Enriched fields are left out (computing
/// them for every event would cost what the rules' own short-circuit saves), as are empty literals
/// (which always occur). A keyword search's literals are looked for in every value of the record:
/// one automaton pass instead of one search per keyword and value.
pub(crate) fn needed(e: &Expr) -> Vec<Clause> {
    let mut cs = ranked(e);
    cs.truncate(MAX_CLAUSES);
    cs
}

/// Every necessary clause, each once, the rarest first.
fn ranked(e: &Expr) -> Vec<Clause> {
    let mut cs = clauses(e);
    cs.sort_by_key(|c| std::cmp::Reverse(rank(c)));
    let mut out: Vec<Clause> = Vec::new();
    for (_, c) in cs {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Literals one of which every match of the regex contains, lowercased: the prefixes every match
/// starts with (regex-syntax's extraction, which reads look-arounds as matching anywhere, so it
/// never leaves a literal out). `None` when the regex has no such finite set, or one of them is
/// empty (it matches anywhere).
fn regex_literals(re: &regex::Regex) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(re.as_str()).ok()?;
    let seq = regex_syntax::hir::literal::Extractor::new().extract(&hir);
    let lits = seq.literals().filter(|l| !l.is_empty())?;
    let mut out: Vec<String> = Vec::with_capacity(lits.len());
    for l in lits {
        let b = l.as_bytes();
        // A prefix cut inside a character keeps its whole characters: still a prefix.
        let s = match std::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&b[..e.valid_up_to()]).ok()?,
        };
        if s.is_empty() {
            return None;
        }
        let s = s.to_ascii_lowercase();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Some(out)
}

/// Every necessary clause, each with whether it is only equalities.
fn clauses(e: &Expr) -> Vec<(bool, Clause)> {
    match e {
        Expr::Test(f, ms) if !ms.is_empty() && !f.is_enriched() => {
            let mut eq_only = true;
            let mut c = Clause::new();
            for m in ms {
                match m {
                    Matcher::Eq(t)
                    | Matcher::Prefix(t)
                    | Matcher::Suffix(t)
                    | Matcher::Contains(t)
                        if !t.as_str().is_empty() =>
                    {
                        eq_only &= matches!(m, Matcher::Eq(_));
                        c.push((*f, t.as_str().to_ascii_lowercase()));
                    }
                    Matcher::Regex(re) => {
                        let Some(lits) = regex_literals(re) else {
                            return Vec::new();
                        };
                        eq_only = false;
                        c.extend(lits.into_iter().map(|l| (*f, l)));
                    }
                    _ => return Vec::new(),
                }
            }
            vec![(eq_only, c)]
        }
        Expr::All(xs) => xs.iter().flat_map(clauses).collect(),
        // One part must hold: the union of one clause of each part (the rarest), when every part
        // has one.
        Expr::Any(xs) if !xs.is_empty() => {
            let mut union = Vec::new();
            let mut eq_only = true;
            for x in xs {
                let Some((eq, best)) = clauses(x).into_iter().max_by_key(rank) else {
                    return Vec::new();
                };
                eq_only &= eq;
                union.extend(best);
            }
            vec![(eq_only, union)]
        }
        _ => Vec::new(),
    }
}

/// One automaton per field over every literal some rule needs there, and the way back from a
/// literal to the clauses it satisfies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefilter {
    /// Each field's literals, and their automaton once an event needed it.
    fields: Vec<FieldLiterals>,
    /// The clauses global literal `l` satisfies: `satisfies[starts[l]..starts[l + 1]]`.
    starts: Vec<u32>,
    satisfies: Vec<u32>,
    /// The clauses of rule `r`: `clauses[rule_starts[r]..rule_starts[r + 1]]`.
    rule_starts: Vec<u32>,
    clauses: Vec<u32>,
    /// The rule of each clause.
    rule_of: Vec<u32>,
    /// Per rule, a bit per field position its clauses are on: `words` words a rule.
    masks: Vec<u64>,
    words: usize,
    /// A bit per rule that needs nothing (always passes this stage).
    free: Vec<u64>,
    /// How many literals and clauses in all.
    literals: usize,
    clause_count: usize,
}

/// One field's literals. The automaton is built the first time an event needs the field scanned:
/// most inputs never meet the rules of most fields, and building the automata of every field was a
/// quarter of loading SigmaHQ's Windows rules.
#[derive(Debug, Clone)]
struct FieldLiterals {
    field: Field,
    literals: Vec<String>,
    automaton: OnceLock<AhoCorasick>,
    /// The global id of the first literal.
    base: usize,
}

impl FieldLiterals {
    fn automaton(&self) -> &AhoCorasick {
        self.automaton.get_or_init(|| {
            // A contiguous NFA: quick to build for thousands of literals, and fast enough to scan
            // the few fields of one event; a DFA for small sets (keywords, most fields), scanned
            // about twice as fast for little memory.
            let kind = if self.literals.len() <= 100 {
                AhoCorasickKind::DFA
            } else {
                AhoCorasickKind::ContiguousNFA
            };
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(kind))
                .build(&self.literals)
                .expect("literal automaton: sizes are far below the crate's limits")
        })
    }
}

/// What [`Prefilter::retain`] works in, kept per thread between events (it ran three
/// allocations an event, one of them zeroing a bit per literal of the rule set).
#[derive(Default)]
struct Scratch {
    /// A bit per rule that passes.
    passed: Vec<u64>,
    satisfied: Vec<u64>,
    /// A bit per literal found in this event; zero between events.
    seen: Vec<u64>,
    /// The words of `seen` this event set.
    touched: Vec<u32>,
    lower: String,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

fn bit(set: &[u64], i: usize) -> bool {
    set[i / 64] & (1 << (i % 64)) != 0
}

fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

/// A list of lists as one vector and its offsets.
fn flatten(lists: Vec<Vec<u32>>) -> (Vec<u32>, Vec<u32>) {
    let mut starts = Vec::with_capacity(lists.len() + 1);
    let mut flat = Vec::new();
    for list in lists {
        starts.push(flat.len() as u32);
        flat.extend(list);
    }
    starts.push(flat.len() as u32);
    (starts, flat)
}

impl Prefilter {
    pub(crate) fn build(conditions: &[&Expr]) -> Prefilter {
        // Each field's literals, each literal once: (field position, literal) → its position.
        let mut literals: Vec<(Field, Vec<String>)> = Vec::new();
        let mut field_at: HashMap<Field, usize> = HashMap::new();
        let mut lit_at: HashMap<(usize, String), usize> = HashMap::new();
        // Per rule, its clauses, each a list of (field position, literal position).
        let mut rules: Vec<Vec<Vec<(usize, usize)>>> = Vec::with_capacity(conditions.len());
        for c in conditions {
            let mut local = Vec::new();
            for clause in needed(c) {
                let mut lits = Vec::with_capacity(clause.len());
                for (f, lit) in clause {
                    let at = *field_at.entry(f).or_insert_with(|| {
                        literals.push((f, Vec::new()));
                        literals.len() - 1
                    });
                    let k = *lit_at.entry((at, lit)).or_insert_with_key(|(_, lit)| {
                        literals[at].1.push(lit.clone());
                        literals[at].1.len() - 1
                    });
                    lits.push((at, k));
                }
                local.push(lits);
            }
            rules.push(local);
        }
        let mut fields = Vec::with_capacity(literals.len());
        let mut base = 0;
        for (f, lits) in literals {
            let n = lits.len();
            fields.push(FieldLiterals {
                field: f,
                literals: lits,
                automaton: OnceLock::new(),
                base,
            });
            base += n;
        }
        let words = fields.len().div_ceil(64).max(1);
        let mut masks = vec![0u64; rules.len() * words];
        let mut free = vec![0u64; rules.len().div_ceil(64)];
        let mut by_literal: Vec<Vec<u32>> = vec![Vec::new(); base];
        let mut by_rule: Vec<Vec<u32>> = Vec::with_capacity(rules.len());
        let mut clause_count = 0u32;
        for (i, local) in rules.iter().enumerate() {
            if local.is_empty() {
                set_bit(&mut free, i);
            }
            let mut own = Vec::with_capacity(local.len());
            for clause in local {
                let id = clause_count;
                clause_count += 1;
                own.push(id);
                for &(at, k) in clause {
                    set_bit(&mut masks[i * words..(i + 1) * words], at);
                    let users = &mut by_literal[fields[at].base + k];
                    if users.last() != Some(&id) {
                        users.push(id);
                    }
                }
            }
            by_rule.push(own);
        }
        let (starts, satisfies) = flatten(by_literal);
        let rule_of = by_rule
            .iter()
            .enumerate()
            .flat_map(|(r, own)| own.iter().map(move |_| r as u32))
            .collect();
        let (rule_starts, clauses) = flatten(by_rule);
        Prefilter {
            fields,
            starts,
            satisfies,
            rule_starts,
            clauses,
            rule_of,
            masks,
            words,
            free,
            literals: base,
            clause_count: clause_count as usize,
        }
    }

    /// Keeps, of the candidate rules (a bit per rule), those that can match the event: rules that
    /// need nothing, and rules every clause of which has a literal that occurs. Each field some
    /// candidate needs is scanned once, and each literal found marks the clauses it satisfies:
    /// the cost follows what the event contains, not how many literals the candidates list.
    /// The fields the rules' clauses are on: a bit per field position.
    pub(crate) fn wanted(&self, rules: &[u32]) -> Vec<u64> {
        let mut wanted = vec![0u64; self.words];
        for &i in rules {
            let i = i as usize;
            for (x, m) in wanted
                .iter_mut()
                .zip(&self.masks[i * self.words..(i + 1) * self.words])
            {
                *x |= m;
            }
        }
        wanted
    }

    /// `wanted`: at least the fields the candidates' clauses are on ([`Prefilter::wanted`] of
    /// them, as the index gathers it).
    pub(crate) fn retain(&self, candidates: &mut [u64], wanted: &[u64], ev: &Enriched<'_>) {
        SCRATCH.with_borrow_mut(|s| self.retain_with(candidates, wanted, ev, s));
    }

    fn retain_with(
        &self,
        candidates: &mut [u64],
        wanted: &[u64],
        ev: &Enriched<'_>,
        s: &mut Scratch,
    ) {
        let Scratch {
            passed,
            satisfied,
            seen,
            touched,
            lower,
        } = s;
        satisfied.clear();
        satisfied.resize(self.clause_count.div_ceil(64), 0);
        // All zero between events: only the words an event set are cleared after it.
        if seen.len() < self.literals.div_ceil(64) {
            seen.resize(self.literals.div_ceil(64), 0);
        }
        for (w, &word) in wanted.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let at = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                self.scan(at, ev, seen, touched, satisfied, lower);
            }
        }
        for w in touched.drain(..) {
            seen[w as usize] = 0;
        }
        // The rules that pass: those that need nothing, and those of the satisfied clauses
        // every clause of which is satisfied (from the few clauses an event satisfies, not the
        // many rules its keys make candidates).
        passed.clear();
        passed.extend_from_slice(&self.free);
        for (w, &word) in satisfied.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let k = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let r = self.rule_of[k] as usize;
                let own =
                    &self.clauses[self.rule_starts[r] as usize..self.rule_starts[r + 1] as usize];
                if own.len() == 1 || own.iter().all(|&c| bit(satisfied, c as usize)) {
                    set_bit(passed, r);
                }
            }
        }
        for (c, p) in candidates.iter_mut().zip(passed.iter()) {
            *c &= p;
        }
    }

    fn scan(
        &self,
        at: usize,
        ev: &Enriched<'_>,
        seen: &mut [u64],
        touched: &mut Vec<u32>,
        satisfied: &mut [u64],
        lower: &mut String,
    ) {
        let f = &self.fields[at];
        let Some(v) = f.field.get(ev) else { return };
        let ac = f.automaton();
        v.each_text(|s| {
            for m in ac.find_overlapping_iter(crate::index::ascii_lowercase(s, lower)) {
                let l = f.base + m.pattern().as_usize();
                if bit(seen, l) {
                    continue;
                }
                if seen[l / 64] == 0 {
                    touched.push((l / 64) as u32);
                }
                set_bit(seen, l);
                for &k in &self.satisfies[self.starts[l] as usize..self.starts[l + 1] as usize] {
                    set_bit(satisfied, k as usize);
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
        let lit = |f: Field, l: &str| (f, l.to_string());
        let cmd = on(Field::ProcessCommandLine);
        // Every matcher of a test gives its text, in one clause.
        let e = cmd.contains_any(&["IEX", "-enc"]);
        assert_eq!(
            needed(&e),
            [vec![
                lit(Field::ProcessCommandLine, "iex"),
                lit(Field::ProcessCommandLine, "-enc")
            ]]
        );
        // All: every part's clauses, the rarest (longest shortest literal) first; equalities,
        // which the index may have used, after the rest.
        let img = on(Field::ProcessImage).ends_with_any(&["\\curl.exe"]);
        let id = on(Field::EventId).is("1");
        let both = Expr::All(vec![
            id.clone(),
            cmd.contains_any(&["a", "169.254"]),
            img.clone(),
        ]);
        assert_eq!(
            ranked(&both),
            [
                vec![lit(Field::ProcessImage, "\\curl.exe")],
                vec![
                    lit(Field::ProcessCommandLine, "a"),
                    lit(Field::ProcessCommandLine, "169.254")
                ],
                vec![lit(Field::EventId, "1")],
            ]
        );
        // Any: one clause of each part, the rarest, joined; nothing when a part has none.
        let any = Expr::Any(vec![both.clone(), cmd.contains_any(&["whoami"])]);
        assert_eq!(
            needed(&any),
            [vec![
                lit(Field::ProcessImage, "\\curl.exe"),
                lit(Field::ProcessCommandLine, "whoami")
            ]]
        );
        let either = Expr::Any(vec![img.clone(), on(Field::ProcessImage).exists()]);
        assert!(needed(&either).is_empty());
        // At most MAX_CLAUSES, each once.
        let many = Expr::All(
            (0..20)
                .map(|i| cmd.contains_any(&[&format!("w{}", i % 10)]))
                .collect(),
        );
        assert_eq!(needed(&many).len(), MAX_CLAUSES);
        // A regex: the prefixes its matches start with, lowercased, case variants once.
        let re = |r: &str| {
            Expr::Test(
                Field::ProcessCommandLine,
                vec![Matcher::Regex(regex::Regex::new(r).unwrap())],
            )
        };
        assert_eq!(
            needed(&re(r"(?i)net\s+(user|group)")),
            [vec![lit(Field::ProcessCommandLine, "net"),]]
        );
        assert_eq!(
            needed(&re("(Iex|wget) ")),
            [vec![
                lit(Field::ProcessCommandLine, "iex "),
                lit(Field::ProcessCommandLine, "wget "),
            ]]
        );
        // Negations, regexes that can start anywhere, and enriched fields need nothing.
        assert!(needed(&Expr::Not(Box::new(img))).is_empty());
        assert!(needed(&re(r"\w+\.exe")).is_empty());
        assert!(needed(&re(".+x")).is_empty());
        // `a*b` starts with `a` or with `b`.
        assert_eq!(
            needed(&re("a*b")),
            [vec![
                lit(Field::ProcessCommandLine, "a"),
                lit(Field::ProcessCommandLine, "b")
            ]]
        );
        assert!(needed(&on(Field::ProcessVerdict).is("agent")).is_empty());
        let empty = Expr::Test(Field::ProcessImage, vec![Matcher::Eq(Text::new(""))]);
        assert!(needed(&empty).is_empty());
    }
}
