//! Elastic EQL and ES|QL over the Elastic Common Schema (`data/ecs.toml`).
//!
//! EQL: `:` (case-insensitive, `*` and `?` wildcards) for strings, `like` for `cased` values, the
//! event category from the rule's log source. ES|QL: `TO_LOWER` on the field with the value
//! lowered, `LIKE` for wildcards, and `NOT COALESCE(…, FALSE)` so that a missing field satisfies a
//! negation as in Sigma (ES|QL drops rows whose condition is null).
//!
//! Both run regular expressions in Lucene syntax, matched against the whole value: see
//! [`crate::lucene`].

use imdsguard_sigma::{Node, Op, Pattern, Piece, SigmaRule, Test};

use crate::winlogbeat::{resolved, Layout, ECS};
use crate::{
    dq, eq_list, fold, has_literal, lucene, named_field, shape, simplify, Logic, Options, Shape,
};

/// The ECS field of a test the layout rewrote.
fn ecs_field(f: &str) -> String {
    resolved(f)
}

/// The rule's condition over the fields Winlogbeat writes.
fn laid_out(rule: &SigmaRule, node: &Node, notes: &mut Vec<String>) -> Node {
    simplify(fold(Layout::of(rule, node).rewrite(
        node.clone(),
        true,
        notes,
    )))
}

/// A number test: as a number on the fields Winlogbeat indexes as numbers (`destination.port`), as
/// a string on the others, which are keywords (EQL and ES|QL refuse to compare a keyword with a
/// number).
fn number(field: &str, n: &str, eq: &str) -> String {
    if !ECS.numbers.iter().any(|s| s == field) {
        format!("{field} {eq} {}", dq(n))
    } else {
        format!("{field} == {n}")
    }
}

/// Refuses what EQL cannot write: keywords, `fieldref` (EQL compares fields case-sensitively,
/// narrower than Sigma), regexes without a Lucene form.
pub(crate) fn eql_unsupported(t: &Test) -> Option<String> {
    if t.field.is_none() {
        return Some("keywords need full-text search, which EQL lacks".into());
    }
    match &t.op {
        Op::FieldRef(_) => Some("EQL compares two fields only case-sensitively (fieldref)".into()),
        Op::Regex { source, .. } => lucene::translate(source, false)
            .err()
            .map(|e| format!("regex {source:?}: {e}")),
        _ => None,
    }
}

/// Refuses what ES|QL cannot write: keywords, regexes without a Lucene form.
pub(crate) fn esql_unsupported(t: &Test) -> Option<String> {
    if t.field.is_none() {
        return Some("keywords need full-text search, which ES|QL lacks".into());
    }
    match &t.op {
        Op::Regex { source, .. } => lucene::translate(source, false)
            .err()
            .map(|e| format!("regex {source:?}: {e}")),
        _ => None,
    }
}

/// A pattern as an EQL wildcard string (`:`, `like`), written as pySigma's EQL backend writes it:
/// a literal `*` or `?` is read as a wildcard (wider, and said in a note).
fn wildcard(p: &Pattern, lower: bool, notes: &mut Vec<String>) -> String {
    if has_literal(p, &['*', '?']) {
        notes.push("a literal `*` or `?` in a value is read as a wildcard (wider)".into());
    }
    let mut s = String::new();
    for piece in &p.pieces {
        match piece {
            Piece::Lit(l) if lower => s.push_str(&l.to_lowercase()),
            Piece::Lit(l) => s.push_str(l),
            Piece::Any => s.push('*'),
            Piece::One => s.push('?'),
        }
    }
    dq(&s)
}

/// A pattern as an ES|QL `LIKE` pattern, where `\\` escapes: literal `\\`, `*` and `?` are
/// escaped, so the match is exact.
fn esql_like(p: &Pattern, lower: bool) -> String {
    let mut s = String::new();
    for piece in &p.pieces {
        match piece {
            Piece::Lit(l) => {
                let l = if lower { l.to_lowercase() } else { l.clone() };
                for c in l.chars() {
                    if matches!(c, '\\' | '*' | '?') {
                        s.push('\\');
                    }
                    s.push(c);
                }
            }
            Piece::Any => s.push('*'),
            Piece::One => s.push('?'),
        }
    }
    s
}

pub(crate) fn eql(
    rule: &SigmaRule,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let category = rule
        .logsource
        .category
        .as_deref()
        .and_then(|c| ECS.categories.get(c))
        .map_or("any", String::as_str);
    let node = laid_out(rule, node, notes);
    let not = |s: &str| format!("not ({s})");
    let logic = Logic {
        and: "and",
        or: "or",
        not: &not,
    };
    let mut atom = |n: &Node| -> Result<Option<String>, String> {
        match n {
            Node::Any(xs) if xs.len() > 1 => {
                // Case-insensitive patterns on one field: `field : ("a", "b*")`.
                let mut field = None;
                let mut values = Vec::new();
                for x in xs {
                    match x {
                        Node::Test(Test {
                            field: Some(f),
                            op:
                                Op::Glob {
                                    pattern,
                                    cased: false,
                                },
                        }) if field.is_none_or(|g| g == f) => {
                            field = Some(f);
                            values.push(wildcard(pattern, false, notes));
                        }
                        _ => return Ok(None),
                    }
                }
                Ok(field.map(|f| format!("{} : ({})", ecs_field(f), values.join(", "))))
            }
            Node::Test(t) => eql_test(t, notes).map(Some),
            _ => Ok(None),
        }
    };
    let cond = logic.render(&node, &mut atom)?;
    Ok(format!("{category} where {cond}"))
}

fn eql_test(t: &Test, notes: &mut Vec<String>) -> Result<String, String> {
    let f = ecs_field(named_field(t, "EQL")?);
    Ok(match &t.op {
        Op::TimePart(..) => return Err("time parts are left out before a query is written".into()),
        Op::Glob {
            pattern,
            cased: false,
        } => format!("{f} : {}", wildcard(pattern, false, notes)),
        Op::Glob {
            pattern,
            cased: true,
        } => match shape(pattern) {
            Shape::Exact(v) => format!("{f} == {}", dq(&v)),
            _ => format!("{f} like {}", wildcard(pattern, false, notes)),
        },
        Op::Number(n) => number(&f, n, ":"),
        Op::Regex {
            source,
            ignore_case,
            ..
        } => {
            let (re, ci) = lucene::translate(source, *ignore_case)?;
            let op = if ci { "regex~" } else { "regex" };
            format!("{f} {op} {}", dq(&re))
        }
        Op::Cidr { text, .. } => format!("cidrMatch({f}, {})", dq(text)),
        Op::Exists(true) => format!("{f} != null"),
        Op::Exists(false) => format!("{f} == null"),
        Op::Null => format!("({f} == null or {f} == \"\")"),
        Op::Compare(op, bound) => format!("{f} {} {bound}", crate::cmp(*op)),
        Op::FieldRef(_) => {
            return Err(
                "fieldref: EQL compares two fields only case-sensitively, narrower than Sigma"
                    .into(),
            )
        }
    })
}

fn esql_name(f: &str) -> String {
    if f.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@'))
    {
        f.to_owned()
    } else {
        format!("`{}`", f.replace('`', "``"))
    }
}

pub(crate) fn esql(
    rule: &SigmaRule,
    node: &Node,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let node = laid_out(rule, node, notes);
    let not = |s: &str| format!("NOT COALESCE({s}, FALSE)");
    let logic = Logic {
        and: "AND",
        or: "OR",
        not: &not,
    };
    let mut atom = |n: &Node| -> Result<Option<String>, String> {
        match n {
            Node::Any(xs) => match eq_list(xs) {
                Some((f, vs)) => {
                    let values: Vec<String> = vs.iter().map(|v| dq(&v.to_lowercase())).collect();
                    Ok(Some(format!(
                        "TO_LOWER({}) IN ({})",
                        esql_name(&ecs_field(f)),
                        values.join(", ")
                    )))
                }
                None => Ok(None),
            },
            Node::Test(t) => esql_test(t).map(Some),
            _ => Ok(None),
        }
    };
    let cond = logic.render(&node, &mut atom)?;
    Ok(format!("FROM {}\n| WHERE {cond}", opts.index))
}

fn esql_test(t: &Test) -> Result<String, String> {
    let raw = ecs_field(named_field(t, "ES|QL")?);
    let f = esql_name(&raw);
    Ok(match &t.op {
        Op::TimePart(..) => return Err("time parts are left out before a query is written".into()),
        Op::Glob { pattern, cased } => {
            let (g, lower) = if *cased {
                (f.clone(), false)
            } else {
                (format!("TO_LOWER({f})"), true)
            };
            let low = |s: &str| {
                if lower {
                    s.to_lowercase()
                } else {
                    s.to_owned()
                }
            };
            match shape(pattern) {
                Shape::Exact(v) => format!("{g} == {}", dq(&low(&v))),
                Shape::Prefix(v) => format!("STARTS_WITH({g}, {})", dq(&low(&v))),
                Shape::Suffix(v) => format!("ENDS_WITH({g}, {})", dq(&low(&v))),
                _ => format!("{g} LIKE {}", dq(&esql_like(pattern, lower))),
            }
        }
        Op::Number(n) => number(&f, n, "=="),
        Op::Regex {
            source,
            ignore_case,
            ..
        } => {
            let (re, ci) = lucene::translate(source, *ignore_case)?;
            if ci {
                // The translation holds no escape letters any more (\d, \w, \s are classes),
                // so lowering the expression and the value keeps its meaning.
                format!("TO_LOWER({f}) RLIKE {}", dq(&re.to_lowercase()))
            } else {
                format!("{f} RLIKE {}", dq(&re))
            }
        }
        Op::Cidr { text, .. } => format!("CIDR_MATCH({f}, {})", dq(text)),
        Op::Exists(true) => format!("{f} IS NOT NULL"),
        Op::Exists(false) => format!("{f} IS NULL"),
        Op::Null => format!("({f} IS NULL OR {f} == \"\")"),
        Op::Compare(op, bound) => format!("{f} {} {bound}", crate::cmp(*op)),
        Op::FieldRef(other) => format!(
            "TO_LOWER({f}) == TO_LOWER({})",
            esql_name(&ecs_field(other))
        ),
    })
}
