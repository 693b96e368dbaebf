//! SQL for DuckDB, Trino and Spark SQL: one table whose columns carry the Sigma field names.
//!
//! Case-insensitive matching is `LOWER(column)` against the lowered value (`=`, `IN`, `LIKE … ESCAPE
//! '\'`); `cased` values compare as written. A negation is `NOT COALESCE(…, FALSE)`: SQL's
//! `NOT NULL` is null, and Sigma's `not` holds when the field is missing. Windows log sources the
//! engine knows put their `Channel` and `EventID` condition in front, as `imdsguard hunt` does.
//! Regular expressions use `regexp_matches` (DuckDB) or `regexp_like` (Trino, Spark SQL 3.2+);
//! Spark quotes identifiers with back-quotes and reads `\` in strings as an escape, so backslashes
//! are doubled for it. IPv4 networks become `LIKE` prefixes; IPv6 networks have no portable form.

use std::net::IpAddr;

use imdsguard_sigma::{logsource_channels, Node, Op, Pattern, Piece, SigmaRule, Test};

use crate::{eq_list, named_field, shape, Logic, Options, Shape, SqlDialect};

struct Sql {
    dialect: SqlDialect,
}

impl Sql {
    /// Every identifier quoted: field names such as `Binary` or `User` are keywords in some
    /// engines. Quoted identifiers stay case-insensitive in DuckDB, Trino and Spark.
    fn ident(&self, f: &str) -> String {
        if self.dialect == SqlDialect::Spark {
            format!("`{}`", f.replace('`', "``"))
        } else {
            format!("\"{}\"", f.replace('"', "\"\""))
        }
    }

    fn lit(&self, s: &str) -> String {
        let s = s.replace('\'', "''");
        if self.dialect == SqlDialect::Spark {
            format!("'{}'", s.replace('\\', "\\\\"))
        } else {
            format!("'{s}'")
        }
    }

    fn regex_fn(&self) -> &'static str {
        match self.dialect {
            SqlDialect::Duckdb => "regexp_matches",
            SqlDialect::Trino | SqlDialect::Spark => "regexp_like",
        }
    }
}

/// A pattern as a `LIKE` pattern with `\` as the escape character.
fn like(p: &Pattern, lower: bool) -> String {
    let mut s = String::new();
    for piece in &p.pieces {
        match piece {
            Piece::Lit(l) => {
                let l = if lower { l.to_lowercase() } else { l.clone() };
                for c in l.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        s.push('\\');
                    }
                    s.push(c);
                }
            }
            Piece::Any => s.push('%'),
            Piece::One => s.push('_'),
        }
    }
    s
}

/// The `LIKE` prefixes an IPv4 network's addresses start with.
fn cidr_prefixes(net: IpAddr, len: u8) -> Result<Vec<String>, String> {
    let IpAddr::V4(v4) = net else {
        return Err("an IPv6 network (cidr) has no portable SQL form".into());
    };
    let o = v4.octets();
    let whole = (len / 8) as usize;
    let rest = len % 8;
    let head: Vec<String> = o[..whole].iter().map(u8::to_string).collect();
    if whole == 4 {
        return Ok(vec![head.join(".")]);
    }
    let mut out = Vec::new();
    if rest == 0 {
        out.push(format!(
            "{}{}%",
            head.join("."),
            if whole > 0 { "." } else { "" }
        ));
    } else {
        let span = 1u16 << (8 - rest);
        let first = u16::from(o[whole]) & !(span - 1);
        for b in first..first + span {
            let mut parts = head.clone();
            parts.push(b.to_string());
            out.push(format!(
                "{}{}",
                parts.join("."),
                if whole == 3 { "" } else { ".%" }
            ));
        }
    }
    Ok(out)
}

pub(crate) fn query(
    rule: &SigmaRule,
    node: &Node,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let sql = Sql {
        dialect: opts.dialect,
    };
    if opts.dialect == SqlDialect::Spark {
        notes
            .push("Spark SQL: backslashes in strings are doubled (escapes on, the default)".into());
    }
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
                    let values: Vec<String> =
                        vs.iter().map(|v| sql.lit(&v.to_lowercase())).collect();
                    Ok(Some(format!(
                        "LOWER({}) IN ({})",
                        sql.ident(f),
                        values.join(", ")
                    )))
                }
                None => Ok(None),
            },
            Node::Test(t) => test(&sql, t).map(Some),
            _ => Ok(None),
        }
    };
    let cond = logic.render(node, &mut atom)?;
    let mut scope = Vec::new();
    if let Some((channels, ids)) = logsource_channels(&rule.logsource) {
        if !channels.is_empty() {
            let cs: Vec<String> = channels.iter().map(|c| sql.lit(c)).collect();
            scope.push(format!("{} IN ({})", sql.ident("Channel"), cs.join(", ")));
        }
        if !ids.is_empty() {
            let is: Vec<String> = ids.iter().map(u32::to_string).collect();
            scope.push(format!("{} IN ({})", sql.ident("EventID"), is.join(", ")));
        }
    } else {
        notes.push("the log source has no Windows channel: the query does not scope it".into());
    }
    let scoped = if scope.is_empty() {
        cond
    } else {
        format!("{} AND ({cond})", scope.join(" AND "))
    };
    Ok(format!(
        "SELECT * FROM {}\nWHERE {scoped}",
        sql.ident(&opts.table)
    ))
}

/// Refuses what SQL cannot write: keywords, IPv6 networks.
pub(crate) fn unsupported(t: &Test) -> Option<String> {
    if t.field.is_none() {
        return Some("keywords need full-text search, which SQL lacks".into());
    }
    match &t.op {
        Op::Cidr { net, len, .. } => cidr_prefixes(*net, *len).err(),
        _ => None,
    }
}

fn test(sql: &Sql, t: &Test) -> Result<String, String> {
    let f = sql.ident(named_field(t, "SQL")?);
    Ok(match &t.op {
        Op::TimePart(..) => return Err("time parts are left out before a query is written".into()),
        Op::Glob { pattern, cased } => {
            let (g, lower) = if *cased {
                (f.clone(), false)
            } else {
                (format!("LOWER({f})"), true)
            };
            match shape(pattern) {
                Shape::Exact(v) => {
                    let v = if lower { v.to_lowercase() } else { v };
                    format!("{g} = {}", sql.lit(&v))
                }
                _ => format!(
                    "{g} LIKE {} ESCAPE {}",
                    sql.lit(&like(pattern, lower)),
                    sql.lit("\\")
                ),
            }
        }
        Op::Number(n) => format!("{f} = {n}"),
        op @ Op::Regex { .. } => format!(
            "{}({f}, {})",
            sql.regex_fn(),
            sql.lit(&imdsguard_sigma::regex_source(op).unwrap_or_default())
        ),
        Op::Cidr { net, len, .. } => {
            let ps = cidr_prefixes(*net, *len)?;
            let parts: Vec<String> = ps
                .iter()
                .map(|p| {
                    if p.ends_with('%') {
                        format!("{f} LIKE {}", sql.lit(p))
                    } else {
                        format!("{f} = {}", sql.lit(p))
                    }
                })
                .collect();
            if parts.len() == 1 {
                parts.into_iter().next().unwrap_or_default()
            } else {
                format!("({})", parts.join(" OR "))
            }
        }
        Op::Exists(true) => format!("{f} IS NOT NULL"),
        Op::Exists(false) => format!("{f} IS NULL"),
        Op::Null => format!("({f} IS NULL OR {f} = '')"),
        Op::Compare(op, bound) => format!("TRY_CAST({f} AS DOUBLE) {} {bound}", crate::cmp(*op)),
        Op::FieldRef(other) => format!("LOWER({f}) = LOWER({})", sql.ident(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_become_prefixes() {
        let p = |s: &str, l| cidr_prefixes(s.parse().unwrap(), l).unwrap();
        assert_eq!(p("10.0.0.0", 8), ["10.%"]);
        assert_eq!(p("169.254.169.254", 32), ["169.254.169.254"]);
        let v = p("172.16.0.0", 12);
        assert_eq!(v.len(), 16);
        assert_eq!(v[0], "172.16.%");
        assert_eq!(v[15], "172.31.%");
        assert_eq!(
            p("192.168.1.0", 30),
            ["192.168.1.0", "192.168.1.1", "192.168.1.2", "192.168.1.3"]
        );
        assert_eq!(p("0.0.0.0", 0), ["%"]);
        assert!(cidr_prefixes("fd00::".parse().unwrap(), 8).is_err());
    }

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(like(&Pattern::parse(r"*\50%_x?*"), true), r"%\\50\%\_x_%");
    }
}
