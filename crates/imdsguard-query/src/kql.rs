//! Kusto (KQL) over the Defender XDR advanced-hunting tables (`data/kql.toml`).
//!
//! Case-insensitive operators throughout (`=~`, `in~`, `contains`, `startswith`, `endswith`);
//! `cased` values use the `_cs` forms and `==`. Wildcards inside a value become an anchored
//! `matches regex` with `(?i)`. Keywords search every column (`* contains`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use imdsguard_sigma::{regex_source, Node, Op, SigmaRule, Test};
use serde::Deserialize;

use crate::{dq, eq_list, glob_regex, shape, Logic, Shape};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    name: String,
    categories: Vec<String>,
    fields: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tables {
    table: Vec<Table>,
}

static TABLES: LazyLock<Vec<Table>> = LazyLock::new(|| {
    toml::from_str::<Tables>(include_str!("../data/kql.toml"))
        .unwrap_or_else(|e| panic!("data/kql.toml is checked by the tests: {e}"))
        .table
});

fn table_of(rule: &SigmaRule) -> Result<&'static Table, String> {
    let category = rule.logsource.category.as_deref().unwrap_or("");
    TABLES
        .iter()
        .find(|t| t.categories.iter().any(|c| c == category))
        .ok_or_else(|| {
            format!(
                "log source category {category:?} has no Defender XDR table (tables: {})",
                TABLES
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Refuses fields the rule's table has no column for.
pub(crate) fn checker(rule: &SigmaRule) -> Result<impl Fn(&Test) -> Option<String>, String> {
    let table = table_of(rule)?;
    Ok(move |t: &Test| {
        let missing = |f: &str| !table.fields.contains_key(f);
        match (&t.field, &t.op) {
            (Some(f), _) if missing(f) => {
                Some(format!("field {f:?} has no column in {}", table.name))
            }
            (Some(_), Op::FieldRef(g)) if missing(g) => {
                Some(format!("field {g:?} has no column in {}", table.name))
            }
            _ => None,
        }
    })
}

pub(crate) fn query(
    rule: &SigmaRule,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let table = table_of(rule)?;
    let column = |f: &str| -> Result<String, String> {
        table
            .fields
            .get(f)
            .cloned()
            .ok_or_else(|| format!("field {f:?} has no column in {}", table.name))
    };
    let not = |s: &str| format!("not({s})");
    let logic = Logic {
        and: "and",
        or: "or",
        not: &not,
    };
    let mut atom = |n: &Node| -> Result<Option<String>, String> {
        match n {
            Node::Any(xs) => match eq_list(xs) {
                // Equalities on one field: `in~`.
                Some((f, vs)) => {
                    let values: Vec<String> = vs.iter().map(|v| dq(v)).collect();
                    Ok(Some(format!("{} in~ ({})", column(f)?, values.join(", "))))
                }
                None => Ok(None),
            },
            Node::Test(t) => test(t, &column, notes).map(Some),
            _ => Ok(None),
        }
    };
    let cond = logic.render(node, &mut atom)?;
    Ok(format!("{}\n| where {cond}", table.name))
}

fn test(
    t: &Test,
    column: &dyn Fn(&str) -> Result<String, String>,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let Some(field) = t.field.as_deref() else {
        return keyword(t, notes);
    };
    let c = column(field)?;
    Ok(match &t.op {
        Op::Glob { pattern, cased } => {
            let cs = if *cased { "_cs" } else { "" };
            match shape(pattern) {
                Shape::Exact(v) if *cased => format!("{c} == {}", dq(&v)),
                Shape::Exact(v) => format!("{c} =~ {}", dq(&v)),
                Shape::Prefix(v) => format!("{c} startswith{cs} {}", dq(&v)),
                Shape::Suffix(v) => format!("{c} endswith{cs} {}", dq(&v)),
                Shape::Contains(v) => format!("{c} contains{cs} {}", dq(&v)),
                Shape::Other => {
                    format!("{c} matches regex {}", dq(&glob_regex(pattern, *cased)))
                }
            }
        }
        Op::Number(n) => format!("{c} == {n}"),
        op @ Op::Regex { .. } => {
            format!(
                "{c} matches regex {}",
                dq(&regex_source(op).unwrap_or_default())
            )
        }
        Op::Cidr { text, net, .. } => {
            let f = if net.is_ipv4() {
                "ipv4_is_in_range"
            } else {
                "ipv6_is_in_range"
            };
            format!("{f}({c}, {})", dq(text))
        }
        Op::Exists(true) => format!("isnotempty({c})"),
        Op::Exists(false) | Op::Null => format!("isempty({c})"),
        Op::Compare(op, bound) => format!("todouble({c}) {} {bound}", crate::cmp(*op)),
        Op::FieldRef(other) => format!("{c} =~ {}", column(other)?),
    })
}

fn keyword(t: &Test, notes: &mut Vec<String>) -> Result<String, String> {
    match &t.op {
        Op::Glob { pattern, cased } => {
            let cs = if *cased { "_cs" } else { "" };
            match shape(pattern) {
                Shape::Contains(v) => Ok(format!("* contains{cs} {}", dq(&v))),
                _ => {
                    let lits: Vec<String> = pattern
                        .pieces
                        .iter()
                        .filter_map(|p| match p {
                            imdsguard_sigma::Piece::Lit(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    if lits.is_empty() {
                        return Err("a keyword of wildcards only".into());
                    }
                    notes.push(
                        "keywords with wildcards inside are searched as each literal part anywhere in a column (wider)"
                            .into(),
                    );
                    Ok(lits
                        .iter()
                        .map(|l| format!("* contains{cs} {}", dq(l)))
                        .collect::<Vec<_>>()
                        .join(" and "))
                }
            }
        }
        _ => Err("keywords other than strings".into()),
    }
}
