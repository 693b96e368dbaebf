//! Sigma rules into SIEM query languages: Microsoft Sentinel / Defender XDR KQL, Splunk SPL,
//! Elastic EQL and ES|QL, and SQL (DuckDB, Trino, Spark SQL).
//!
//! Every backend starts from the same lowering of the rule's detection
//! ([`imdsguard_sigma::lower`]), the one the evaluator runs, so a query means what `imdsguard hunt`
//! means. Sigma matches strings case-insensitively; each backend says so in its own way (KQL `=~`,
//! SPL search terms, EQL `:`, `TO_LOWER`/`LOWER` in ES|QL and SQL). Where a language cannot say
//! what the rule says, the query widens toward more matches and [`Query::notes`] says how; a test
//! the language cannot widen soundly is an error for that rule, never a silently narrower query.

mod ecs;
mod kql;
mod lucene;
mod spl;
mod sql;
mod winlogbeat;

use std::fmt;

use imdsguard_sigma::{Node, Op, Pattern, Piece, SigmaRule, Test};

/// A query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Kusto (Microsoft Sentinel, Defender XDR advanced hunting), Defender XDR tables.
    Kql,
    /// Splunk search processing language.
    Spl,
    /// Elastic event query language, ECS fields.
    Eql,
    /// Elastic ES|QL, ECS fields.
    Esql,
    /// SQL for DuckDB, Trino and Spark SQL, Sigma field names as columns.
    Sql,
}

impl Lang {
    /// Every language, in the order the CLI lists them.
    pub const ALL: [Lang; 5] = [Lang::Kql, Lang::Spl, Lang::Eql, Lang::Esql, Lang::Sql];

    /// The name the CLI takes (`kql`, `spl`, `eql`, `esql`, `sql`).
    pub fn name(self) -> &'static str {
        match self {
            Lang::Kql => "kql",
            Lang::Spl => "spl",
            Lang::Eql => "eql",
            Lang::Esql => "esql",
            Lang::Sql => "sql",
        }
    }

    /// The language named `s`.
    pub fn from_name(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// The SQL engine a query is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqlDialect {
    /// DuckDB: `regexp_matches`, double-quoted identifiers.
    #[default]
    Duckdb,
    /// Trino: `regexp_like`, double-quoted identifiers.
    Trino,
    /// Spark SQL: `regexp_like` (3.2+), back-quoted identifiers, `\` escapes in strings.
    Spark,
}

impl SqlDialect {
    /// The dialect named `s` (`duckdb`, `trino`, `spark`).
    pub fn from_name(s: &str) -> Option<SqlDialect> {
        match s {
            "duckdb" => Some(SqlDialect::Duckdb),
            "trino" => Some(SqlDialect::Trino),
            "spark" => Some(SqlDialect::Spark),
            _ => None,
        }
    }
}

/// Where the queries read from.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQL: the table (default `logs`).
    pub table: String,
    /// SQL: the engine.
    pub dialect: SqlDialect,
    /// ES|QL: the index pattern (default `logs-*`).
    pub index: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            table: "logs".into(),
            dialect: SqlDialect::default(),
            index: "logs-*".into(),
        }
    }
}

/// One rule as a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The language.
    pub lang: Lang,
    /// The query text.
    pub text: String,
    /// Where the query is wider than the rule, or what the reader must know to run it.
    pub notes: Vec<String>,
}

/// Why a rule could not be written in a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The rule's file.
    pub path: String,
    /// The rule's title.
    pub rule: String,
    /// The language.
    pub lang: Lang,
    /// Why.
    pub reason: Refusal,
}

/// Why a rule is not written in a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A Sigma filter, given as a rule: it belongs with the rules it tunes.
    Filter,
    /// A correlation rule: not exported to query languages.
    Correlation,
    /// The detection itself is not valid (a bad value for its modifier).
    Detection(imdsguard_sigma::DetectionError),
    /// No test of the rule can be written, so the query would match every event: why each was
    /// left out.
    NothingWritable(Vec<String>),
    /// The condition can never hold.
    Never,
    /// The language has no form for the rule's log source or one of its constructs, in a
    /// sentence naming it.
    Unwritable(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Filter => {
                f.write_str("a Sigma filter is not a rule: give it with the rules it tunes")
            }
            Refusal::Correlation => {
                f.write_str("correlation rules are not exported to query languages yet")
            }
            Refusal::Detection(e) => write!(f, "{e}"),
            Refusal::NothingWritable(why) => write!(
                f,
                "no test of the rule can be written ({}), so the query would match every event",
                why.join("; ")
            ),
            Refusal::Never => f.write_str("the condition can never hold"),
            Refusal::Unwritable(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: rule \"{}\": not expressible in {}: {}",
            self.path,
            self.rule,
            self.lang.name(),
            self.reason
        )
    }
}

impl std::error::Error for QueryError {}

/// Writes one Sigma detection rule as a query.
pub fn convert(rule: &SigmaRule, lang: Lang, opts: &Options) -> Result<Query, QueryError> {
    let fail = |reason: Refusal| QueryError {
        path: rule.path.clone(),
        rule: rule.title.clone(),
        lang,
        reason,
    };
    let unwritable = |why: String| fail(Refusal::Unwritable(why));
    if rule.filter.is_some() {
        return Err(fail(Refusal::Filter));
    }
    let Some(det) = &rule.detection else {
        return Err(fail(Refusal::Correlation));
    };
    let node = simplify(imdsguard_sigma::lower(det).map_err(|e| fail(Refusal::Detection(e)))?);
    let mut notes = Vec::new();
    // Tests the language cannot write are left out in the direction that widens the query.
    let check: Box<Check> = match lang {
        Lang::Kql => Box::new(kql::checker(rule).map_err(unwritable)?),
        Lang::Spl => Box::new(|_: &Test| None),
        Lang::Eql => Box::new(ecs::eql_unsupported),
        Lang::Esql => Box::new(ecs::esql_unsupported),
        Lang::Sql => Box::new(sql::unsupported),
    };
    // Sigma 2.1's time modifiers have no export yet in any language.
    let check = move |t: &Test| match t.op {
        Op::TimePart(part, ..) => Some(format!(
            "the time modifier `{}` is not written in {} yet",
            part.as_str(),
            lang.name()
        )),
        _ => check(t),
    };
    let node = simplify(fold(widen(node, true, &check, &mut notes)));
    let node = scope_service(rule, lang, node);
    match &node {
        Node::All(xs) if xs.is_empty() => return Err(fail(Refusal::NothingWritable(notes))),
        Node::Any(xs) if xs.is_empty() => return Err(fail(Refusal::Never)),
        _ => {}
    }
    let text = match lang {
        Lang::Kql => kql::query(rule, &node, &mut notes),
        Lang::Spl => spl::query(rule, &node, &mut notes),
        Lang::Eql => ecs::eql(rule, &node, &mut notes),
        Lang::Esql => ecs::esql(rule, &node, opts, &mut notes),
        Lang::Sql => sql::query(rule, &node, opts, &mut notes),
    }
    .map_err(unwritable)?;
    notes.sort();
    notes.dedup();
    Ok(Query { lang, text, notes })
}

/// A rule on a Windows service (`service: security`, `sysmon`, …) reads that event log only:
/// the channel goes in front of the query, as the Splunk Windows add-on (`source="WinEventLog:…"`)
/// and Winlogbeat (`winlog.channel`) record it. KQL's tables and SQL's own scope do this already.
fn scope_service(rule: &SigmaRule, lang: Lang, node: Node) -> Node {
    if rule.logsource.service.is_none() || !matches!(lang, Lang::Spl | Lang::Eql | Lang::Esql) {
        return node;
    }
    let Some((channels, _)) = imdsguard_sigma::logsource_channels(&rule.logsource) else {
        return node;
    };
    if channels.is_empty() {
        return node;
    }
    let (field, prefix) = match lang {
        Lang::Spl => ("source", "WinEventLog:"),
        _ => ("Channel", ""),
    };
    let scope = channels
        .iter()
        .map(|c| {
            Node::Test(Test {
                field: Some(field.to_string()),
                op: Op::Glob {
                    pattern: Pattern::literal(&format!("{prefix}{c}")),
                    cased: false,
                },
            })
        })
        .collect();
    simplify(Node::All(vec![Node::Any(scope), node]))
}

/// Says why a language cannot write a test, or `None` when it can.
type Check = dyn Fn(&Test) -> Option<String>;

const TRUE: Node = Node::All(Vec::new());
const FALSE: Node = Node::Any(Vec::new());

/// Each test `check` refuses replaced by the constant that widens the query where it stands:
/// `true` under an even number of negations, `false` under an odd one.
fn widen(
    n: Node,
    positive: bool,
    check: &dyn Fn(&Test) -> Option<String>,
    notes: &mut Vec<String>,
) -> Node {
    match n {
        Node::Test(t) => match check(&t) {
            None => Node::Test(t),
            Some(why) => {
                notes.push(format!("{why}: that test is left out (wider)"));
                if positive {
                    TRUE
                } else {
                    FALSE
                }
            }
        },
        Node::All(xs) => Node::All(
            xs.into_iter()
                .map(|x| widen(x, positive, check, notes))
                .collect(),
        ),
        Node::Any(xs) => Node::Any(
            xs.into_iter()
                .map(|x| widen(x, positive, check, notes))
                .collect(),
        ),
        Node::Not(x) => Node::Not(Box::new(widen(*x, !positive, check, notes))),
    }
}

fn is_true(n: &Node) -> bool {
    matches!(n, Node::All(xs) if xs.is_empty())
}

fn is_false(n: &Node) -> bool {
    matches!(n, Node::Any(xs) if xs.is_empty())
}

/// Constants folded away.
pub(crate) fn fold(n: Node) -> Node {
    match n {
        Node::All(xs) => {
            let ys: Vec<Node> = xs.into_iter().map(fold).collect();
            if ys.iter().any(is_false) {
                return FALSE;
            }
            let ys: Vec<Node> = ys.into_iter().filter(|y| !is_true(y)).collect();
            if ys.len() == 1 {
                ys.into_iter().next().unwrap_or(TRUE)
            } else {
                Node::All(ys)
            }
        }
        Node::Any(xs) => {
            let ys: Vec<Node> = xs.into_iter().map(fold).collect();
            if ys.iter().any(is_true) {
                return TRUE;
            }
            let ys: Vec<Node> = ys.into_iter().filter(|y| !is_false(y)).collect();
            if ys.len() == 1 {
                ys.into_iter().next().unwrap_or(FALSE)
            } else {
                Node::Any(ys)
            }
        }
        Node::Not(x) => match fold(*x) {
            y if is_true(&y) => FALSE,
            y if is_false(&y) => TRUE,
            y => Node::Not(Box::new(y)),
        },
        t => t,
    }
}

/// Nested groups of one kind flattened, one-part groups unwrapped, double negation removed.
pub(crate) fn simplify(n: Node) -> Node {
    match n {
        Node::All(xs) => group(xs, true),
        Node::Any(xs) => group(xs, false),
        Node::Not(x) => match simplify(*x) {
            Node::Not(y) => *y,
            y => Node::Not(Box::new(y)),
        },
        t => t,
    }
}

fn group(xs: Vec<Node>, all: bool) -> Node {
    let mut out = Vec::new();
    for x in xs {
        match (simplify(x), all) {
            (Node::All(ys), true) | (Node::Any(ys), false) => out.extend(ys),
            (y, _) => out.push(y),
        }
    }
    if out.len() == 1 {
        return out.pop().unwrap_or(Node::All(vec![]));
    }
    if all {
        Node::All(out)
    } else {
        Node::Any(out)
    }
}

/// The shape of a glob pattern, for languages with `startswith`-like operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Anything else: inner wildcards, `?`, a lone `*`.
    Other,
}

pub(crate) fn shape(p: &Pattern) -> Shape {
    match p.pieces.as_slice() {
        [] => Shape::Exact(String::new()),
        [Piece::Lit(s)] => Shape::Exact(s.clone()),
        [Piece::Lit(s), Piece::Any] => Shape::Prefix(s.clone()),
        [Piece::Any, Piece::Lit(s)] => Shape::Suffix(s.clone()),
        [Piece::Any, Piece::Lit(s), Piece::Any] => Shape::Contains(s.clone()),
        _ => Shape::Other,
    }
}

/// The pattern as a regular expression matching the whole value (RE2, Java and Python syntax
/// agree on what this emits), with `(?i)` unless cased.
pub(crate) fn glob_regex(p: &Pattern, cased: bool) -> String {
    let mut re = String::from(if cased { "(?s)^" } else { "(?is)^" });
    for piece in &p.pieces {
        match piece {
            Piece::Lit(s) => re.push_str(&regex::escape(s)),
            Piece::Any => re.push_str(".*"),
            Piece::One => re.push('.'),
        }
    }
    re.push('$');
    re
}

/// Whether any literal part of the pattern holds one of `chars` (wildcard characters a language
/// cannot escape).
pub(crate) fn has_literal(p: &Pattern, chars: &[char]) -> bool {
    p.pieces
        .iter()
        .any(|x| matches!(x, Piece::Lit(s) if s.contains(chars)))
}

/// The field a test reads, or an error for keywords in a language without full-text search.
pub(crate) fn named_field<'a>(t: &'a Test, lang: &str) -> Result<&'a str, String> {
    t.field.as_deref().ok_or_else(|| {
        format!("keywords (values without a field) need full-text search, which {lang} lacks")
    })
}

/// Two or more plain case-insensitive equalities on one field (what `in` lists hold): the field
/// and the values.
pub(crate) fn eq_list(xs: &[Node]) -> Option<(&str, Vec<String>)> {
    if xs.len() < 2 {
        return None;
    }
    let mut field = None;
    let mut values = Vec::new();
    for x in xs {
        let Node::Test(Test {
            field: Some(f),
            op: Op::Glob {
                pattern,
                cased: false,
            },
        }) = x
        else {
            return None;
        };
        let Shape::Exact(v) = shape(pattern) else {
            return None;
        };
        if field.is_some_and(|g: &str| g != f) {
            return None;
        }
        field = Some(f.as_str());
        values.push(v);
    }
    field.map(|f| (f, values))
}

/// A comparison operator as KQL, SPL, EQL, ES|QL and SQL all write it.
pub(crate) fn cmp(op: imdsguard_rules::Cmp) -> &'static str {
    use imdsguard_rules::Cmp;
    match op {
        Cmp::Gt => ">",
        Cmp::Gte => ">=",
        Cmp::Lt => "<",
        Cmp::Lte => "<=",
    }
}

/// Renders boolean logic with each language's words, parenthesising every nested group.
pub(crate) struct Logic<'a> {
    pub and: &'a str,
    pub or: &'a str,
    pub not: &'a dyn Fn(&str) -> String,
}

impl Logic<'_> {
    /// The whole condition; `atom` writes what the language writes in one piece (a test, or a
    /// group it has a shorter form for) and returns `None` for the rest.
    pub(crate) fn render(
        &self,
        n: &Node,
        atom: &mut dyn FnMut(&Node) -> Result<Option<String>, String>,
    ) -> Result<String, String> {
        Ok(self.inner(n, atom)?.0)
    }

    /// The text and whether it is a bare group that needs parentheses inside another.
    fn inner(
        &self,
        n: &Node,
        atom: &mut dyn FnMut(&Node) -> Result<Option<String>, String>,
    ) -> Result<(String, bool), String> {
        if let Some(s) = atom(n)? {
            return Ok((s, false));
        }
        match n {
            Node::All(xs) | Node::Any(xs) if xs.is_empty() => {
                Err("the condition is constant (a pattern that names no search)".into())
            }
            Node::All(xs) => Ok((self.join(xs, self.and, atom)?, true)),
            Node::Any(xs) => Ok((self.join(xs, self.or, atom)?, true)),
            Node::Not(x) => {
                let (inner, _) = self.inner(x, atom)?;
                Ok(((self.not)(&inner), false))
            }
            Node::Test(_) => Err("a test the language cannot write".into()),
        }
    }

    fn join(
        &self,
        xs: &[Node],
        word: &str,
        atom: &mut dyn FnMut(&Node) -> Result<Option<String>, String>,
    ) -> Result<String, String> {
        let mut parts = Vec::new();
        for x in xs {
            let (s, grouped) = self.inner(x, atom)?;
            parts.push(if grouped { format!("({s})") } else { s });
        }
        Ok(parts.join(&format!(" {word} ")))
    }
}

/// A double-quoted string literal with `\` and `"` escaped (KQL, SPL, EQL, ES|QL).
pub(crate) fn dq(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_wildcards() {
        assert_eq!(shape(&Pattern::parse("a")), Shape::Exact("a".into()));
        assert_eq!(shape(&Pattern::parse("*a")), Shape::Suffix("a".into()));
        assert_eq!(shape(&Pattern::parse("a*")), Shape::Prefix("a".into()));
        assert_eq!(shape(&Pattern::parse("*a*")), Shape::Contains("a".into()));
        assert_eq!(shape(&Pattern::parse("a*b")), Shape::Other);
        assert_eq!(shape(&Pattern::parse("a?")), Shape::Other);
        assert_eq!(
            glob_regex(&Pattern::parse(r"C:\W*s?.exe"), false),
            r"(?is)^C:\\W.*s.\.exe$"
        );
    }

    #[test]
    fn simplify_flattens_groups() {
        let t = |v: &str| {
            Node::Test(Test {
                field: Some("F".into()),
                op: Op::Glob {
                    pattern: Pattern::parse(v),
                    cased: false,
                },
            })
        };
        let n = Node::All(vec![
            Node::All(vec![t("a"), Node::Any(vec![t("b")])]),
            Node::Not(Box::new(Node::Not(Box::new(t("c"))))),
        ]);
        assert_eq!(simplify(n), Node::All(vec![t("a"), t("b"), t("c")]));
    }

    #[test]
    fn refused_tests_widen_the_query() {
        let t = |f: &str| {
            Node::Test(Test {
                field: Some(f.into()),
                op: Op::Exists(true),
            })
        };
        let refuse = |x: &Test| (x.field.as_deref() == Some("X")).then(|| "no X".to_owned());
        let mut notes = Vec::new();
        // a and not (X or b)  →  a and not b
        let n = Node::All(vec![
            t("a"),
            Node::Not(Box::new(Node::Any(vec![t("X"), t("b")]))),
        ]);
        let w = fold(widen(n, true, &refuse, &mut notes));
        assert_eq!(w, Node::All(vec![t("a"), Node::Not(Box::new(t("b")))]));
        // a and X  →  a ;  a or X  →  true
        assert_eq!(
            fold(widen(
                Node::All(vec![t("a"), t("X")]),
                true,
                &refuse,
                &mut notes
            )),
            t("a")
        );
        assert!(is_true(&fold(widen(
            Node::Any(vec![t("a"), t("X")]),
            true,
            &refuse,
            &mut notes
        ))));
        // not (a and X)  →  not a  (X false under the negation)... widened: not(a and false) = true
        assert!(is_true(&fold(widen(
            Node::Not(Box::new(Node::All(vec![t("a"), t("X")]))),
            true,
            &refuse,
            &mut notes
        ))));
        assert_eq!(notes.len(), 4);
    }

    #[test]
    fn strings_escape_backslashes_and_quotes() {
        assert_eq!(dq(r#"C:\a"b"#), r#""C:\\a\"b""#);
    }
}
