//! Splunk SPL: Sigma field names as Splunk's Windows add-on extracts them (`EventID` is
//! `EventCode`).
//!
//! Search terms are case-insensitive and take `*` wildcards, so most tests are search terms. What
//! search terms cannot say (regular expressions, `cased` values, `fieldref`, values holding a
//! literal `*`) is written with `| where` and eval functions (`match`, `cidrmatch`, `isnull`):
//! a top-level `and` keeps its search terms in front of the `where`; anything else becomes one
//! `where` over all events. The query does not scope an index or source type: put yours in front.

use imdsguard_sigma::{regex_source, Node, Op, Pattern, Piece, SigmaRule, Test};

use crate::{dq, glob_regex, has_literal, Logic};

fn field_name(f: &str) -> &str {
    if f == "EventID" {
        "EventCode"
    } else {
        f
    }
}

fn simple_name(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether the whole subtree can be written as search terms.
fn searchable(n: &Node) -> bool {
    match n {
        Node::All(xs) | Node::Any(xs) => !xs.is_empty() && xs.iter().all(searchable),
        Node::Not(x) => searchable(x),
        Node::Test(t) => {
            if !t.field.as_deref().is_none_or(simple_name) {
                return false;
            }
            match &t.op {
                Op::Glob { pattern, cased } => !cased && !has_literal(pattern, &['*']),
                Op::Regex { .. } | Op::FieldRef(_) => false,
                _ => true,
            }
        }
    }
}

/// A pattern as a Splunk search value: `?` (one character) has no Splunk form and widens to `*`.
fn search_value(p: &Pattern, notes: &mut Vec<String>) -> String {
    let mut s = String::new();
    for piece in &p.pieces {
        match piece {
            Piece::Lit(l) => s.push_str(l),
            Piece::Any => s.push('*'),
            Piece::One => {
                notes.push(
                    "Splunk search has no one-character wildcard: `?` is searched as `*` (wider)"
                        .into(),
                );
                s.push('*');
            }
        }
    }
    dq(&s)
}

fn search_term(t: &Test, notes: &mut Vec<String>) -> Result<String, String> {
    let Some(f) = t.field.as_deref() else {
        return match &t.op {
            Op::Glob { pattern, .. } => Ok(search_value(pattern, notes)),
            _ => Err("keywords other than strings".into()),
        };
    };
    let f = field_name(f);
    Ok(match &t.op {
        Op::TimePart(..) => return Err("time parts are left out before a query is written".into()),
        Op::Glob { pattern, .. } => format!("{f}={}", search_value(pattern, notes)),
        Op::Number(n) => format!("{f}={n}"),
        Op::Cidr { text, .. } => format!("{f}={}", dq(text)),
        Op::Exists(true) => format!("{f}=*"),
        Op::Exists(false) => format!("NOT {f}=*"),
        Op::Null => format!("(NOT {f}=* OR {f}=\"\")"),
        Op::Compare(op, bound) => format!("{f}{}{bound}", crate::cmp(*op)),
        Op::Regex { .. } | Op::FieldRef(_) => return Err("not a search term".into()),
    })
}

fn eval_field(f: &str) -> String {
    format!("'{}'", field_name(f).replace('\'', "\\'"))
}

fn eval_term(t: &Test) -> Result<String, String> {
    let Some(f) = t.field.as_deref() else {
        return match &t.op {
            Op::Glob { pattern, cased } => {
                Ok(format!("match(_raw, {})", dq(&glob_regex(pattern, *cased))))
            }
            _ => Err("keywords other than strings".into()),
        };
    };
    let e = eval_field(f);
    Ok(match &t.op {
        Op::TimePart(..) => return Err("time parts are left out before a query is written".into()),
        Op::Glob { pattern, cased } => format!("match({e}, {})", dq(&glob_regex(pattern, *cased))),
        Op::Number(n) => format!("{e}=={n}"),
        op @ Op::Regex { .. } => {
            format!("match({e}, {})", dq(&regex_source(op).unwrap_or_default()))
        }
        Op::Cidr { text, .. } => format!("cidrmatch({}, {e})", dq(text)),
        Op::Exists(true) => format!("isnotnull({e})"),
        Op::Exists(false) => format!("isnull({e})"),
        Op::Null => format!("(isnull({e}) OR {e}==\"\")"),
        Op::Compare(op, bound) => format!("tonumber({e}){}{bound}", crate::cmp(*op)),
        Op::FieldRef(other) => format!("lower({e})==lower({})", eval_field(other)),
    })
}

fn render_search(n: &Node, notes: &mut Vec<String>) -> Result<String, String> {
    let not = |s: &str| format!("NOT ({s})");
    let logic = Logic {
        and: "AND",
        or: "OR",
        not: &not,
    };
    let mut atom = |n: &Node| -> Result<Option<String>, String> {
        match n {
            Node::Test(t) => search_term(t, notes).map(Some),
            _ => Ok(None),
        }
    };
    logic.render(n, &mut atom)
}

fn render_eval(n: &Node) -> Result<String, String> {
    let not = |s: &str| format!("NOT ({s})");
    let logic = Logic {
        and: "AND",
        or: "OR",
        not: &not,
    };
    let mut atom = |n: &Node| -> Result<Option<String>, String> {
        match n {
            Node::Test(t) => eval_term(t).map(Some),
            _ => Ok(None),
        }
    };
    logic.render(n, &mut atom)
}

pub(crate) fn query(
    _rule: &SigmaRule,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    if searchable(node) {
        return render_search(node, notes);
    }
    let (search, rest): (Vec<Node>, Vec<Node>) = match node {
        Node::All(xs) => xs.iter().cloned().partition(searchable),
        other => (Vec::new(), vec![other.clone()]),
    };
    let head = match search.len() {
        0 => "*".to_owned(),
        1 => render_search(&search[0], notes)?,
        _ => render_search(&Node::All(search), notes)?,
    };
    let tail = match rest.len() {
        1 => render_eval(&rest[0])?,
        _ => render_eval(&Node::All(rest))?,
    };
    Ok(format!("{head}\n| where {tail}"))
}
