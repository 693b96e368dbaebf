//! The rule IR: matchers over one field, and boolean expressions over tests.
//!
//! Strings compare ASCII-case-insensitively unless a matcher is `cased` (Sigma's default and its
//! `cased` modifier). A test on a list field holds when it holds for any element; a test on a field
//! the event lacks is false, except `exists` negated.

use std::fmt;

use imdsguard_enrich::Enriched;
use regex::Regex;

use crate::field::{Field, Value};

/// How one value is compared.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The field has a value.
    Exists,
    /// Equal text.
    Eq(Text),
    /// Starts with.
    Prefix(Text),
    /// Ends with.
    Suffix(Text),
    /// Contains.
    Contains(Text),
    /// A wildcard pattern with `*` only, matched piece by piece (no regex).
    Glob(Glob),
    /// A regular expression (unanchored, as Sigma's `re`).
    Regex(Regex),
    /// A number in a closed range; either end may be open.
    Range(Option<u64>, Option<u64>),
    /// A number compared with a bound (Sigma `gt`, `gte`, `lt`, `lte`).
    Compare(Cmp, f64),
    /// An IP address inside a network (Sigma `cidr`).
    Cidr(std::net::IpAddr, u8),
    /// A part of a date-time value equal to (no comparison) or compared with a number (Sigma's
    /// time modifiers `minute` … `year`, alone or with `gt`, `gte`, `lt`, `lte`).
    TimePart(crate::TimePart, Option<Cmp>, i64),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

fn in_network(addr: &str, net: std::net::IpAddr, len: u8) -> bool {
    let Ok(a) = addr.trim().parse::<std::net::IpAddr>() else {
        return false;
    };
    match (a, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A literal to compare text with: stored lowercased unless `cased`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    value: String,
    cased: bool,
}

impl Text {
    /// A case-insensitive literal.
    pub fn new(s: &str) -> Text {
        Text {
            value: s.to_ascii_lowercase(),
            cased: false,
        }
    }

    /// A case-sensitive literal.
    pub fn cased(s: &str) -> Text {
        Text {
            value: s.to_owned(),
            cased: true,
        }
    }

    /// The literal (lowercased when case-insensitive).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    fn eq(&self, h: &str) -> bool {
        if self.cased {
            h == self.value
        } else {
            h.eq_ignore_ascii_case(&self.value)
        }
    }

    fn prefix(&self, h: &str) -> bool {
        h.len() >= self.value.len() && self.eq_bytes(&h.as_bytes()[..self.value.len()])
    }

    fn suffix(&self, h: &str) -> bool {
        h.len() >= self.value.len() && self.eq_bytes(&h.as_bytes()[h.len() - self.value.len()..])
    }

    fn eq_bytes(&self, b: &[u8]) -> bool {
        if self.cased {
            b == self.value.as_bytes()
        } else {
            b.eq_ignore_ascii_case(self.value.as_bytes())
        }
    }

    fn contains(&self, h: &str) -> bool {
        if self.cased {
            return h.contains(self.value.as_str());
        }
        contains_ignore_ascii_case(h.as_bytes(), self.value.as_bytes())
    }

    fn prefix_bytes(&self, h: &[u8]) -> bool {
        h.len() >= self.value.len() && self.eq_bytes(&h[..self.value.len()])
    }

    fn suffix_bytes(&self, h: &[u8]) -> bool {
        h.len() >= self.value.len() && self.eq_bytes(&h[h.len() - self.value.len()..])
    }

    fn find(&self, h: &[u8]) -> Option<usize> {
        if self.cased {
            return memchr::memmem::find(h, self.value.as_bytes());
        }
        find_ignore_ascii_case(h, self.value.as_bytes())
    }
}

/// Whether `h` contains `n` (lowercase), ASCII case ignored.
fn contains_ignore_ascii_case(h: &[u8], n: &[u8]) -> bool {
    find_ignore_ascii_case(h, n).is_some()
}

/// Where `n` (lowercase) first occurs in `h`, ASCII case ignored: candidate positions come from a
/// vectorized search for the needle's first byte in either case.
fn find_ignore_ascii_case(h: &[u8], n: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = n.split_first() else {
        return Some(0);
    };
    if h.len() < n.len() {
        return None;
    }
    let last_start = h.len() - n.len();
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut i = 0;
    while i <= last_start {
        let s = i + memchr::memchr2(lo, up, &h[i..=last_start])?;
        if h[s + 1..s + n.len()].eq_ignore_ascii_case(rest) {
            return Some(s);
        }
        i = s + 1;
    }
    None
}

/// A wildcard pattern whose only wildcard is `*`: literal pieces that occur in order, the first
/// at the start of the value unless the pattern starts with `*`, the last at its end unless it
/// ends with `*`. Matched left to right, each middle piece at its first occurrence after the
/// previous one (which is exact for `*`-only patterns), without building a regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pieces: Vec<Text>,
    open_start: bool,
    open_end: bool,
}

impl Glob {
    /// The pattern `[*]p1*p2*…*pn[*]`; pieces must be non-empty.
    pub fn new(pieces: Vec<Text>, open_start: bool, open_end: bool) -> Glob {
        Glob {
            pieces,
            open_start,
            open_end,
        }
    }

    /// The literal pieces, in order.
    pub fn pieces(&self) -> &[Text] {
        &self.pieces
    }

    /// Whether the pattern starts with `*`.
    pub fn open_start(&self) -> bool {
        self.open_start
    }

    /// Whether the pattern ends with `*`.
    pub fn open_end(&self) -> bool {
        self.open_end
    }

    /// The pattern as a Sigma value: pieces joined by `*`, their own `*`, `?` and `\` escaped.
    pub fn sigma(&self) -> String {
        let mut out = String::new();
        if self.open_start {
            out.push('*');
        }
        for (i, p) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.push('*');
            }
            for c in p.as_str().chars() {
                if matches!(c, '*' | '?' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        if self.open_end {
            out.push('*');
        }
        out
    }

    fn matches(&self, h: &str) -> bool {
        let h = h.as_bytes();
        let (mut lo, mut hi) = (0, h.len());
        let mut pieces = self.pieces.as_slice();
        if !self.open_start {
            let Some((first, rest)) = pieces.split_first() else {
                return true;
            };
            if !first.prefix_bytes(h) {
                return false;
            }
            lo = first.value.len();
            pieces = rest;
        }
        if !self.open_end {
            if let Some((last, rest)) = pieces.split_last() {
                if hi - lo < last.value.len() || !last.suffix_bytes(&h[lo..]) {
                    return false;
                }
                hi -= last.value.len();
                pieces = rest;
            }
        }
        for p in pieces {
            match p.find(&h[lo..hi]) {
                Some(at) => lo += at + p.value.len(),
                None => return false,
            }
        }
        true
    }
}

impl Matcher {
    fn str_matches(&self, h: &str) -> bool {
        match self {
            Matcher::Exists => true,
            Matcher::Eq(t) => t.eq(h),
            Matcher::Prefix(t) => t.prefix(h),
            Matcher::Suffix(t) => t.suffix(h),
            Matcher::Contains(t) => t.contains(h),
            Matcher::Glob(g) => g.matches(h),
            Matcher::Regex(r) => r.is_match(h),
            Matcher::Range(lo, hi) => h
                .trim()
                .parse::<u64>()
                .is_ok_and(|n| lo.is_none_or(|l| n >= l) && hi.is_none_or(|x| n <= x)),
            Matcher::Compare(op, bound) => h.trim().parse::<f64>().is_ok_and(|n| match op {
                Cmp::Gt => n > *bound,
                Cmp::Gte => n >= *bound,
                Cmp::Lt => n < *bound,
                Cmp::Lte => n <= *bound,
            }),
            Matcher::Cidr(net, len) => in_network(h, *net, *len),
            Matcher::TimePart(part, op, bound) => part.of(h).is_some_and(|n| match op {
                None => n == *bound,
                Some(Cmp::Gt) => n > *bound,
                Some(Cmp::Gte) => n >= *bound,
                Some(Cmp::Lt) => n < *bound,
                Some(Cmp::Lte) => n <= *bound,
            }),
        }
    }

    /// Whether the matcher holds for a value.
    pub fn matches(&self, v: &Value<'_>) -> bool {
        match v {
            Value::Str(s) => self.str_matches(s),
            Value::Int(n) => match self {
                Matcher::Range(lo, hi) => lo.is_none_or(|l| *n >= l) && hi.is_none_or(|x| *n <= x),
                Matcher::Exists => true,
                _ => self.str_matches(&n.to_string()),
            },
            Value::List(l) => l.iter().any(|s| self.str_matches(s)),
            Value::Strs(l) => l.iter().any(|s| self.str_matches(s)),
        }
    }
}

/// A boolean expression over field tests.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Always true.
    True,
    /// The field's value meets any of the matchers.
    Test(Field, Vec<Matcher>),
    /// Every sub-expression holds.
    All(Vec<Expr>),
    /// At least one holds.
    Any(Vec<Expr>),
    /// The sub-expression does not hold.
    Not(Box<Expr>),
    /// Two fields hold the same text, case-insensitively (Sigma `fieldref`).
    SameValue(Field, Field),
}

impl Expr {
    /// Evaluates the expression on one event, short-circuiting left to right.
    pub fn eval(&self, ev: &Enriched<'_>) -> bool {
        match self {
            Expr::True => true,
            Expr::Test(f, ms) => match f.get(ev) {
                Some(v) => ms.iter().any(|m| m.matches(&v)),
                None => false,
            },
            Expr::All(xs) => xs.iter().all(|x| x.eval(ev)),
            Expr::Any(xs) => xs.iter().any(|x| x.eval(ev)),
            Expr::Not(x) => !x.eval(ev),
            Expr::SameValue(a, b) => match (a.get(ev), b.get(ev)) {
                (Some(x), Some(y)) => x.to_string().eq_ignore_ascii_case(&y.to_string()),
                _ => false,
            },
        }
    }

    /// The first test of a field with a closed set of values ([`Field::domain`]) by a matcher
    /// that no value of the set meets: a typo (`process.verdict is "agnet"`) that would make the
    /// test never hold (or, negated, always).
    pub fn check_domains(&self) -> Result<(), String> {
        match self {
            Expr::True | Expr::SameValue(..) => Ok(()),
            Expr::Test(f, ms) => {
                let Some(domain) = f.domain() else {
                    return Ok(());
                };
                for m in ms {
                    if matches!(m, Matcher::Exists) {
                        continue;
                    }
                    if !domain.iter().any(|v| m.matches(&Value::Str((*v).into()))) {
                        return Err(format!(
                            "no value of {f} meets `{m}`: its values are {}",
                            domain.join(", ")
                        ));
                    }
                }
                Ok(())
            }
            Expr::All(xs) | Expr::Any(xs) => xs.iter().try_for_each(Expr::check_domains),
            Expr::Not(x) => x.check_domains(),
        }
    }

    /// Every field the expression reads.
    pub fn fields(&self, out: &mut Vec<Field>) {
        match self {
            Expr::True => {}
            Expr::Test(f, _) => {
                if !out.contains(f) {
                    out.push(*f);
                }
            }
            Expr::All(xs) | Expr::Any(xs) => xs.iter().for_each(|x| x.fields(out)),
            Expr::Not(x) => x.fields(out),
            Expr::SameValue(a, b) => {
                for f in [a, b] {
                    if !out.contains(f) {
                        out.push(*f);
                    }
                }
            }
        }
    }

    /// `self and other`.
    pub fn and(self, other: Expr) -> Expr {
        match self {
            Expr::All(mut xs) => {
                xs.push(other);
                Expr::All(xs)
            }
            x => Expr::All(vec![x, other]),
        }
    }
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

/// Builds tests on one field: `on(Field::ProcessVerdict).is("agent")`.
#[derive(Debug, Clone, Copy)]
pub struct On(Field);

/// Starts a test on `f`.
pub fn on(f: Field) -> On {
    On(f)
}

impl On {
    /// Equal to `v` (case-insensitive).
    pub fn is(self, v: &str) -> Expr {
        Expr::Test(self.0, vec![Matcher::Eq(Text::new(v))])
    }
    /// Equal to any of `vs`.
    pub fn any_of(self, vs: &[&str]) -> Expr {
        Expr::Test(
            self.0,
            vs.iter().map(|v| Matcher::Eq(Text::new(v))).collect(),
        )
    }
    /// Has a value.
    pub fn exists(self) -> Expr {
        Expr::Test(self.0, vec![Matcher::Exists])
    }
    /// Contains any of `vs`.
    pub fn contains_any(self, vs: &[&str]) -> Expr {
        Expr::Test(
            self.0,
            vs.iter().map(|v| Matcher::Contains(Text::new(v))).collect(),
        )
    }
    /// Starts with any of `vs`.
    pub fn starts_with_any(self, vs: &[&str]) -> Expr {
        Expr::Test(
            self.0,
            vs.iter().map(|v| Matcher::Prefix(Text::new(v))).collect(),
        )
    }
    /// A number at least `n`.
    pub fn at_least(self, n: f64) -> Expr {
        Expr::Test(self.0, vec![Matcher::Compare(Cmp::Gte, n)])
    }
    /// Ends with any of `vs`.
    pub fn ends_with_any(self, vs: &[&str]) -> Expr {
        Expr::Test(
            self.0,
            vs.iter().map(|v| Matcher::Suffix(Text::new(v))).collect(),
        )
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exists => f.write_str("exists"),
            Matcher::Eq(t) => write!(f, "= {}", quote(t.as_str())),
            Matcher::Prefix(t) => write!(f, "startswith {}", quote(t.as_str())),
            Matcher::Suffix(t) => write!(f, "endswith {}", quote(t.as_str())),
            Matcher::Contains(t) => write!(f, "contains {}", quote(t.as_str())),
            Matcher::Glob(g) => write!(f, "like {}", quote(&g.sigma())),
            Matcher::Regex(r) => write!(f, "matches /{}/", r.as_str()),
            Matcher::Compare(op, b) => write!(
                f,
                "{} {b}",
                match op {
                    Cmp::Gt => ">",
                    Cmp::Gte => ">=",
                    Cmp::Lt => "<",
                    Cmp::Lte => "<=",
                }
            ),
            Matcher::Cidr(n, l) => write!(f, "in {n}/{l}"),
            Matcher::TimePart(p, op, b) => write!(
                f,
                "{} {} {b}",
                p.as_str(),
                match op {
                    None => "=",
                    Some(Cmp::Gt) => ">",
                    Some(Cmp::Gte) => ">=",
                    Some(Cmp::Lt) => "<",
                    Some(Cmp::Lte) => "<=",
                }
            ),
            Matcher::Range(lo, hi) => match (lo, hi) {
                (Some(l), Some(h)) if l == h => write!(f, "= {l}"),
                (Some(l), Some(h)) => write!(f, "in {l}..={h}"),
                (Some(l), None) => write!(f, ">= {l}"),
                (None, Some(h)) => write!(f, "<= {h}"),
                (None, None) => f.write_str("is a number"),
            },
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

impl Expr {
    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let group = |f: &mut fmt::Formatter<'_>, xs: &[Expr], op: &str| -> fmt::Result {
            if depth > 0 {
                f.write_str("(")?;
            }
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                x.write(f, depth + 1)?;
            }
            if depth > 0 {
                f.write_str(")")?;
            }
            Ok(())
        };
        match self {
            Expr::True => f.write_str("true"),
            Expr::Test(field, ms) => {
                let all_eq = ms.len() > 1 && ms.iter().all(|m| matches!(m, Matcher::Eq(_)));
                if all_eq {
                    let vals: Vec<String> = ms
                        .iter()
                        .filter_map(|m| match m {
                            Matcher::Eq(t) => Some(quote(t.as_str())),
                            _ => None,
                        })
                        .collect();
                    return write!(f, "{field} in ({})", vals.join(", "));
                }
                if ms.len() > 1 {
                    f.write_str("(")?;
                }
                for (i, m) in ms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{field} {m}")?;
                }
                if ms.len() > 1 {
                    f.write_str(")")?;
                }
                Ok(())
            }
            Expr::All(xs) => group(f, xs, "and"),
            Expr::Any(xs) => group(f, xs, "or"),
            Expr::Not(x) => {
                f.write_str("not ")?;
                x.write(f, depth + 1)
            }
            Expr::SameValue(a, b) => write!(f, "{a} = field {b}"),
        }
    }
}

#[cfg(test)]
mod glob_tests {
    use super::*;

    fn glob(open_start: bool, pieces: &[&str], open_end: bool) -> Glob {
        Glob::new(
            pieces.iter().map(|p| Text::new(p)).collect(),
            open_start,
            open_end,
        )
    }

    #[test]
    fn star_patterns_match_piece_by_piece() {
        // `C:\Win*\*.exe`: anchored at both ends.
        let g = glob(false, &["c:\\win", "\\", ".exe"], false);
        assert!(g.matches("C:\\Windows\\System32\\cmd.EXE"));
        assert!(!g.matches("D:\\Windows\\cmd.exe"));
        assert!(!g.matches("C:\\Windows\\cmd.exe.txt"));
        // The last piece may not overlap the first: `a*a` needs two a's.
        let g = glob(false, &["a", "a"], false);
        assert!(!g.matches("a"));
        assert!(g.matches("aa"));
        assert!(g.matches("abca"));
        // Open ends; pieces in order, not overlapping.
        let g = glob(true, &["iex", "downloadstring"], true);
        assert!(g.matches("powershell IEX (New-Object Net.WebClient).DownloadString('x')"));
        assert!(!g.matches("DownloadString then IEX"));
        let g = glob(true, &["abab", "ab"], true);
        assert!(!g.matches("xabab"));
        assert!(g.matches("ababab"));
        // Case: insensitive unless cased.
        let cased = Glob::new(vec![Text::cased("A"), Text::cased("B")], true, true);
        assert!(cased.matches("xAyB"));
        assert!(!cased.matches("xayb"));
        assert_eq!(glob(true, &["a*b", "c"], false).sigma(), "*a\\*b*c");
    }

    /// The same answers as the anchored regex it replaces, on every short string over a small
    /// alphabet.
    #[test]
    fn agrees_with_the_regex_it_replaces() {
        let alphabet = ['a', 'B', 'b', '\\'];
        let mut values = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for v in &values {
                for c in alphabet {
                    next.push(format!("{v}{c}"));
                }
            }
            values.extend(next);
        }
        values.sort();
        values.dedup();
        for (open_start, pieces, open_end) in [
            (false, vec!["a", "b"], false),
            (true, vec!["b", "b"], false),
            (false, vec!["ab", "b"], true),
            (true, vec!["a", "\\", "b"], true),
            (true, vec!["ba", "ab"], false),
        ] {
            let g = glob(open_start, &pieces, open_end);
            let mut re = String::from("(?is)");
            if !open_start {
                re.push('^');
            }
            re.push_str(
                &pieces
                    .iter()
                    .map(|p| regex::escape(p))
                    .collect::<Vec<_>>()
                    .join(".*"),
            );
            if !open_end {
                re.push('$');
            }
            let re = Regex::new(&re).unwrap();
            for v in &values {
                assert_eq!(g.matches(v), re.is_match(v), "{pieces:?} on {v:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_matchers_ignore_ascii_case_unless_cased() {
        let v = Value::Str("C:\\Windows\\System32\\CURL.exe".into());
        assert!(Matcher::Suffix(Text::new("curl.EXE")).matches(&v));
        assert!(!Matcher::Suffix(Text::cased("curl.exe")).matches(&v));
        assert!(Matcher::Prefix(Text::new("c:\\windows")).matches(&v));
        assert!(Matcher::Contains(Text::new("system32\\curl")).matches(&v));
        assert!(!Matcher::Contains(Text::new("system64")).matches(&v));
        assert!(Matcher::Eq(Text::new("c:\\windows\\system32\\curl.exe")).matches(&v));
        assert!(Matcher::Regex(Regex::new(r"(?i)curl\.exe$").unwrap()).matches(&v));
    }

    #[test]
    fn case_insensitive_contains_agrees_with_the_naive_search() {
        let hay = [
            "",
            "a",
            "CMD.EXE /c whoami",
            "xxABab",
            "\\Windows\\System32\\",
            "ééAé",
        ];
        let needles = [
            "",
            "a",
            "ab",
            "b",
            "whoami",
            "system32\\",
            "é",
            "exe /c",
            "zz",
        ];
        for h in hay {
            for n in needles {
                let naive = n.is_empty()
                    || h.as_bytes()
                        .windows(n.len())
                        .any(|w| w.eq_ignore_ascii_case(n.as_bytes()));
                assert_eq!(
                    contains_ignore_ascii_case(h.as_bytes(), n.as_bytes()),
                    naive,
                    "{h:?} {n:?}"
                );
            }
        }
    }

    #[test]
    fn lists_match_any_element_and_numbers_match_ranges() {
        let l = Value::List(vec!["hex", "userinfo"]);
        assert!(Matcher::Eq(Text::new("userinfo")).matches(&l));
        assert!(!Matcher::Eq(Text::new("octal")).matches(&l));
        assert!(Matcher::Range(Some(80), Some(80)).matches(&Value::Int(80)));
        assert!(!Matcher::Range(Some(81), None).matches(&Value::Int(80)));
        assert!(Matcher::Range(None, Some(100)).matches(&Value::Str("80".into())));
    }

    #[test]
    fn expressions_print_readably() {
        let e = on(Field::TargetKind)
            .exists()
            .and(!on(Field::ProcessVerdict).is("agent"))
            .and(on(Field::TargetSource).any_of(&["destination", "url"]));
        assert_eq!(
            e.to_string(),
            r#"target.kind exists and not process.verdict = "agent" and target.source in ("destination", "url")"#
        );
    }
}
