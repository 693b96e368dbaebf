//! Kusto (KQL) over the Defender XDR advanced-hunting tables (`data/kql.toml`).
//!
//! Case-insensitive operators throughout (`=~`, `in~`, `contains`, `startswith`, `endswith`);
//! `cased` values use the `_cs` forms and `==`. Wildcards inside a value become an anchored
//! `matches regex` with `(?i)`. Keywords search every column (`* contains`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use imdsguard_sigma::{regex_source, Node, Op, Pattern, Piece, SigmaRule, Test};
use serde::Deserialize;

use crate::{dq, eq_list, glob_regex, shape, Logic, Shape};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    name: String,
    categories: Vec<String>,
    fields: BTreeMap<String, String>,
    /// Account-name columns whose domain is a column of its own (`AccountName` →
    /// `AccountDomain`): Sigma's `User` holds `DOMAIN\user`, Defender splits it.
    #[serde(default)]
    domains: BTreeMap<String, String>,
    /// Columns holding registry keys with full hive names (`HKEY_LOCAL_MACHINE\…`), where
    /// Sysmon (and so Sigma) writes the short ones (`HKLM\…`).
    #[serde(default)]
    hive_columns: Vec<String>,
    /// Sigma path fields a table keeps only the last component of (`ParentImage` →
    /// `InitiatingProcessParentFileName`): a test ending in `\\name` becomes `=~ "name"`.
    #[serde(default)]
    file_names: BTreeMap<String, String>,
    /// Sigma fields whose values Defender spells otherwise (`EventType` `SetValue` →
    /// `ActionType` `RegistryValueSet`); a value not listed is left out (wider).
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
}

impl Table {
    /// Whether a Sigma field's values are rewritten for Defender (its values mapped, an account
    /// split in two, a hive name expanded, a path reduced to its file name).
    fn rewrites(&self, field: &str, column: &str) -> bool {
        self.values.contains_key(field)
            || self.file_names.contains_key(field)
            || self.domains.contains_key(column)
            || self.hive_columns.iter().any(|c| c == column)
    }

    fn value_of(&self, field: &str, pattern: &Pattern) -> Option<Option<String>> {
        let map = self.values.get(field)?;
        let lit = pattern.as_literal()?;
        Some(
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&lit))
                .map(|(_, v)| v.clone()),
        )
    }
}

/// Sysmon's short hive names and the full names Defender writes.
const HIVES: [(&str, &str); 2] = [
    ("HKLM\\", "HKEY_LOCAL_MACHINE\\"),
    ("HKU\\", "HKEY_USERS\\"),
];

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
        let missing = |f: &str| !table.fields.contains_key(f) && !table.file_names.contains_key(f);
        match (&t.field, &t.op) {
            (Some(f), op) if table.values.contains_key(f) => match op {
                Op::Glob { pattern, .. } if matches!(table.value_of(f, pattern), Some(Some(_))) => {
                    None
                }
                op => Some(format!(
                    "{f:?} {} has no counterpart in {} column {} (known values: {})",
                    match op {
                        Op::Glob { pattern, .. } => format!("{:?}", pattern.to_string()),
                        _ => "test".to_string(),
                    },
                    table.name,
                    table.fields[f],
                    table.values[f]
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            (Some(f), op) if table.file_names.contains_key(f) => match op {
                Op::Glob { pattern, .. } if file_name_of(pattern).is_some() => None,
                _ => Some(format!(
                    "{f:?} has only its file name in {} ({}), and this test is not on a file name",
                    table.name, table.file_names[f]
                )),
            },
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
            .or_else(|| table.file_names.get(f))
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
                    let c = column(f)?;
                    if table.rewrites(f, &c) {
                        // Each value is rewritten on its own (see `test`).
                        return Ok(None);
                    }
                    let values: Vec<String> = vs.iter().map(|v| dq(v)).collect();
                    Ok(Some(format!("{c} in~ ({})", values.join(", "))))
                }
                None => Ok(None),
            },
            Node::Test(t) => test(t, table, &column, notes).map(Some),
            _ => Ok(None),
        }
    };
    let cond = logic.render(node, &mut atom)?;
    Ok(format!("{}\n| where {cond}", table.name))
}

fn test(
    t: &Test,
    table: &Table,
    column: &dyn Fn(&str) -> Result<String, String>,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let Some(field) = t.field.as_deref() else {
        return keyword(t, notes);
    };
    let c = column(field)?;
    if let Op::Glob { pattern, cased } = &t.op {
        if let Some(value) = table.value_of(field, pattern) {
            let value = value.ok_or_else(|| format!("{field:?}: no {c} value for this"))?;
            return Ok(glob(&c, &Pattern::literal(&value), *cased));
        }
        if table.file_names.contains_key(field) {
            let (name, exact) = file_name_of(pattern)
                .ok_or_else(|| format!("{field:?} has only its file name in {c}"))?;
            if !exact {
                notes.push(format!(
                    "{field:?} is compared by its file name only, in {c} (wider)"
                ));
            }
            let name = Pattern {
                pieces: vec![Piece::Lit(name)],
            };
            return Ok(glob(&c, &name, *cased));
        }
        if let Some(domain) = table.domains.get(&c) {
            if let Some((dom, name)) = split_account(pattern) {
                // `DOMAIN\user` → the domain column and the name column; a domain of `*`
                // alone (endswith `\user`) tests nothing there.
                let name = glob(&c, &name, *cased);
                return Ok(match dom.pieces.as_slice() {
                    [Piece::Any] => name,
                    _ => format!("({} and {name})", glob(domain, &dom, *cased)),
                });
            }
        }
        if table.hive_columns.contains(&c) {
            return Ok(glob(&c, &full_hive(pattern), *cased));
        }
    }
    Ok(match &t.op {
        Op::TimePart(..) => return Err("time parts are left out before a query is written".into()),
        Op::Glob { pattern, cased } => glob(&c, pattern, *cased),
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

fn glob(c: &str, pattern: &Pattern, cased: bool) -> String {
    let cs = if cased { "_cs" } else { "" };
    match shape(pattern) {
        Shape::Exact(v) if cased => format!("{c} == {}", dq(&v)),
        Shape::Exact(v) => format!("{c} =~ {}", dq(&v)),
        Shape::Prefix(v) => format!("{c} startswith{cs} {}", dq(&v)),
        Shape::Suffix(v) => format!("{c} endswith{cs} {}", dq(&v)),
        Shape::Contains(v) => format!("{c} contains{cs} {}", dq(&v)),
        Shape::Other => format!("{c} matches regex {}", dq(&glob_regex(pattern, cased))),
    }
}

/// The file name a path pattern ends with (`*\\cmd.exe` → `cmd.exe`), and whether the pattern
/// says nothing else (true for `endswith \\cmd.exe`; false for a full path, which the file name
/// alone selects more widely).
fn file_name_of(p: &Pattern) -> Option<(String, bool)> {
    let (Piece::Lit(last), before) = p.pieces.split_last()? else {
        return None;
    };
    let (dir, name) = last.rsplit_once('\\')?;
    if name.is_empty() {
        return None;
    }
    let exact = dir.is_empty() && matches!(before, [Piece::Any]);
    Some((name.to_string(), exact))
}

/// A pattern with exactly one literal backslash, split around it: `NT AUTHORITY\SYSTEM` →
/// (`NT AUTHORITY`, `SYSTEM`), `*\SYSTEM` → (`*`, `SYSTEM`). Account names and domains hold no
/// backslash, so the two halves select exactly what the whole did.
fn split_account(p: &Pattern) -> Option<(Pattern, Pattern)> {
    let count: usize = p
        .pieces
        .iter()
        .map(|x| match x {
            Piece::Lit(s) => s.matches('\\').count(),
            _ => 0,
        })
        .sum();
    if count != 1 {
        return None;
    }
    let (mut dom, mut name) = (Vec::new(), Vec::new());
    let mut seen = false;
    for piece in &p.pieces {
        match piece {
            Piece::Lit(s) if !seen && s.contains('\\') => {
                let (a, b) = s.split_once('\\').expect("counted above");
                if !a.is_empty() {
                    dom.push(Piece::Lit(a.to_string()));
                }
                if !b.is_empty() {
                    name.push(Piece::Lit(b.to_string()));
                }
                seen = true;
            }
            x if seen => name.push(x.clone()),
            x => dom.push(x.clone()),
        }
    }
    Some((Pattern { pieces: dom }, Pattern { pieces: name }))
}

/// A registry pattern with Sysmon's short hive name at its start, rewritten to the full name.
fn full_hive(p: &Pattern) -> Pattern {
    let mut pieces = p.pieces.clone();
    if let Some(Piece::Lit(s)) = pieces.first_mut() {
        for (short, full) in HIVES {
            // `get`, not slicing: the value may have a multi-byte character at that offset.
            if s.get(..short.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(short))
            {
                *s = format!("{full}{}", &s[short.len()..]);
                break;
            }
        }
    }
    Pattern { pieces }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_names_expand_and_other_text_is_left_alone() {
        let hive = |s: &str| full_hive(&Pattern::parse(s)).to_string();
        assert_eq!(
            hive("hklm\\Software\\Run*"),
            "HKEY_LOCAL_MACHINE\\Software\\Run*"
        );
        assert_eq!(hive("HKU\\S-1-5*"), "HKEY_USERS\\S-1-5*");
        assert_eq!(hive("*\\Run\\*"), "*\\Run\\*");
        // A multi-byte character where the hive name would end is not a hive name.
        assert_eq!(hive("HKUé\\x"), "HKUé\\x");
    }

    #[test]
    fn an_account_splits_at_its_one_backslash() {
        let split = |s: &str| {
            split_account(&Pattern::parse(s)).map(|(d, n)| (d.to_string(), n.to_string()))
        };
        assert_eq!(
            split("NT AUTHORITY\\SYSTEM"),
            Some(("NT AUTHORITY".into(), "SYSTEM".into()))
        );
        assert_eq!(split("*\\SYSTEM"), Some(("*".into(), "SYSTEM".into())));
        assert_eq!(split("SYSTEM"), None);
        assert_eq!(split("a\\b\\c"), None);
    }
}
