//! Sigma rule files read into typed rules ([`crate::rule`]), checked against the specification
//! (v2): every problem a [`SigmaError`] naming the file and rule.

use std::net::IpAddr;

use yaml_rust2::Yaml;

use crate::condition::{is_aggregation, parse_condition, Condition};
use crate::error::{ErrorKind, SigmaError};
use crate::rule::*;
use crate::value::{Pattern, SigmaValue};

struct Ctx<'a> {
    path: &'a str,
    rule: Option<String>,
}

impl Ctx<'_> {
    fn err(&self, kind: ErrorKind, message: impl Into<String>) -> SigmaError {
        SigmaError {
            path: self.path.to_owned(),
            rule: self.rule.clone(),
            kind,
            message: message.into(),
        }
    }
}

pub(crate) fn string(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(string).collect(),
        other => string(other).into_iter().collect(),
    }
}

/// Sigma rules are written for PyYAML, which reads YAML 1.1: a plain number with a leading zero
/// is octal (`0644` = 420) when its digits allow, and a string otherwise (`00000429`, a keyboard
/// layout id). yaml-rust2 reads YAML 1.2, where both are decimal integers. The lines where such a
/// scalar is a whole list item or mapping value are rewritten to the YAML 1.1 reading first.
fn yaml11_leading_zeros(text: &str) -> std::borrow::Cow<'_, str> {
    static LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?m)^(\s*(?:- |[^\s#'\x22][^:#'\x22]*: ))([-+]?0[0-9]+)(\s*(?:#.*)?)$")
            .expect("valid")
    });
    // What every such scalar has: a space, maybe a sign, `0` and a digit. Most files have none,
    // and this byte scan is cheaper than the regex over the whole text.
    let b = text.as_bytes();
    let candidate = (1..b.len().saturating_sub(1)).any(|i| {
        b[i] == b'0'
            && b[i + 1].is_ascii_digit()
            && (b[i - 1] == b' ' || (matches!(b[i - 1], b'-' | b'+') && i >= 2 && b[i - 2] == b' '))
    });
    if !candidate {
        return std::borrow::Cow::Borrowed(text);
    }
    LINE.replace_all(text, |c: &regex::Captures| {
        let n = &c[2];
        let digits = n.trim_start_matches(['-', '+']);
        let value = match i64::from_str_radix(digits, 8) {
            Ok(v) if n.starts_with('-') => (-v).to_string(),
            Ok(v) => v.to_string(),
            Err(_) => format!("'{n}'"),
        };
        format!("{}{value}{}", &c[1], &c[3])
    })
}

/// Reads every rule of a Sigma file's text.
pub fn parse_rule(text: &str, path: &str) -> Result<Vec<SigmaRule>, SigmaError> {
    let ctx = Ctx { path, rule: None };
    let text = yaml11_leading_zeros(text);
    let docs = crate::yaml::load(&text).map_err(|e| ctx.err(ErrorKind::Yaml, e))?;
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| !d.is_null()) {
        out.push(parse_doc(doc, path)?);
    }
    if out.is_empty() {
        return Err(ctx.err(ErrorKind::Structure, "the file holds no rule"));
    }
    Ok(out)
}

fn parse_doc(doc: &Yaml, path: &str) -> Result<SigmaRule, SigmaError> {
    let mut ctx = Ctx { path, rule: None };
    let Yaml::Hash(_) = doc else {
        return Err(ctx.err(ErrorKind::Structure, "a rule must be a YAML mapping"));
    };
    if !doc["action"].is_badvalue() {
        return Err(ctx.err(
            ErrorKind::Structure,
            "rule collections (`action: global/reset/repeat`) are Sigma v1; write each rule whole",
        ));
    }
    let title = string(&doc["title"]).ok_or_else(|| ctx.err(ErrorKind::Structure, "no title"))?;
    ctx.rule = Some(title.clone());
    let status = match string(&doc["status"]).as_deref() {
        None => None,
        Some("stable") => Some(Status::Stable),
        Some("test") => Some(Status::Test),
        Some("experimental") => Some(Status::Experimental),
        Some("deprecated") => Some(Status::Deprecated),
        Some("unsupported") => Some(Status::Unsupported),
        Some(s) => return Err(ctx.err(ErrorKind::Structure, format!("unknown status {s:?}"))),
    };
    let level = match string(&doc["level"]).as_deref() {
        None => None,
        Some("informational") => Some(Level::Informational),
        Some("low") => Some(Level::Low),
        Some("medium") => Some(Level::Medium),
        Some("high") => Some(Level::High),
        Some("critical") => Some(Level::Critical),
        Some(s) => return Err(ctx.err(ErrorKind::Structure, format!("unknown level {s:?}"))),
    };
    let ls = &doc["logsource"];
    let logsource = LogSource {
        category: string(&ls["category"]),
        product: string(&ls["product"]),
        service: string(&ls["service"]),
    };
    let mut rule = SigmaRule {
        path: path.to_owned(),
        title,
        id: string(&doc["id"]),
        name: string(&doc["name"]),
        status,
        level,
        description: string(&doc["description"]),
        tags: strings(&doc["tags"]),
        falsepositives: strings(&doc["falsepositives"]),
        logsource,
        detection: None,
        correlation: None,
        filter: None,
    };
    if !doc["correlation"].is_badvalue() {
        let mut c = parse_correlation(&doc["correlation"], &ctx)?;
        c.generate = match &doc["generate"] {
            Yaml::BadValue | Yaml::Null => false,
            Yaml::Boolean(b) => *b,
            _ => return Err(ctx.err(ErrorKind::Correlation, "`generate` is true or false")),
        };
        rule.correlation = Some(c);
        return Ok(rule);
    }
    if ls.is_badvalue() {
        return Err(ctx.err(ErrorKind::Structure, "no logsource"));
    }
    if !doc["filter"].is_badvalue() {
        let Yaml::Hash(h) = &doc["filter"] else {
            return Err(ctx.err(ErrorKind::Filter, "`filter` must be a mapping"));
        };
        rule.filter = Some(match &doc["filter"]["rules"] {
            Yaml::BadValue => {
                return Err(ctx.err(
                    ErrorKind::Filter,
                    "a filter names the rules it applies to in `filter.rules` (`any` for all rules of its log source)",
                ))
            }
            Yaml::String(s) if s.eq_ignore_ascii_case("any") => FilterTarget::Any,
            Yaml::Array(a) if a.is_empty() => FilterTarget::Any,
            Yaml::Array(a) => FilterTarget::Rules(
                a.iter()
                    .map(|r| {
                        string(r).ok_or_else(|| {
                            ctx.err(ErrorKind::Filter, "`filter.rules` lists rule ids or names")
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => FilterTarget::Rules(vec![string(other).ok_or_else(|| {
                ctx.err(ErrorKind::Filter, "`filter.rules` lists rule ids or names")
            })?]),
        });
        if !matches!(doc["filter"]["condition"], Yaml::String(_)) {
            return Err(ctx.err(
                ErrorKind::Filter,
                "a filter has exactly one condition, a string",
            ));
        }
        rule.detection = Some(parse_detection(h, &["rules"], &ctx)?);
        return Ok(rule);
    }
    let det = &doc["detection"];
    let Yaml::Hash(h) = det else {
        return Err(ctx.err(ErrorKind::Structure, "no detection mapping"));
    };
    rule.detection = Some(parse_detection(h, &[], &ctx)?);
    Ok(rule)
}

/// A `detection` mapping (or a filter's, without the keys in `skip`): its searches and condition,
/// every identifier the condition names checked.
fn parse_detection(
    h: &yaml_rust2::yaml::Hash,
    skip: &[&str],
    ctx: &Ctx<'_>,
) -> Result<Detection, SigmaError> {
    let mut searches = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in h {
        let key = string(k)
            .ok_or_else(|| ctx.err(ErrorKind::Structure, "a detection key is not a string"))?;
        match key.as_str() {
            k if skip.contains(&k) => {}
            "condition" => conditions = strings(v),
            "timeframe" => {
                return Err(ctx.err(
                    ErrorKind::Aggregation,
                    "`timeframe` belongs to Sigma v1 aggregations; write a correlation rule",
                ))
            }
            _ => searches.push((key.clone(), parse_search(&key, v, ctx)?)),
        }
    }
    if conditions.is_empty() {
        return Err(ctx.err(ErrorKind::Structure, "no condition"));
    }
    let mut parsed = Vec::new();
    for c in &conditions {
        if is_aggregation(c) {
            return Err(ctx.err(
                ErrorKind::Aggregation,
                format!(
                    "the condition {:?} aggregates with '|' (Sigma v1); write a correlation rule",
                    shorten(c, 80)
                ),
            ));
        }
        parsed.push(parse_condition(c).map_err(|e| {
            ctx.err(
                ErrorKind::ConditionSyntax,
                format!("condition {:?}: {e}", shorten(c, 80)),
            )
        })?);
    }
    let condition = if parsed.len() == 1 {
        parsed.remove(0)
    } else {
        Condition::Or(parsed)
    };
    let detection = Detection {
        searches,
        condition,
    };
    let mut names = Vec::new();
    detection.condition.names(&mut names);
    for (is_pattern, n) in names {
        let found = if is_pattern {
            !detection.expand(&n).is_empty()
        } else {
            detection.search(&n).is_some()
        };
        if !found {
            return Err(ctx.err(
                ErrorKind::UndefinedIdentifier,
                format!("the condition names {n:?}, which no search identifier matches"),
            ));
        }
    }
    Ok(detection)
}

fn parse_search(name: &str, v: &Yaml, ctx: &Ctx<'_>) -> Result<Search, SigmaError> {
    match v {
        Yaml::Hash(h) => Ok(Search::Map(parse_map(name, h, ctx)?)),
        Yaml::Array(a) if !a.is_empty() && a.iter().all(|x| matches!(x, Yaml::Hash(_))) => {
            let mut maps = Vec::new();
            for x in a {
                if let Yaml::Hash(h) = x {
                    maps.push(parse_map(name, h, ctx)?);
                }
            }
            Ok(Search::AnyOf(maps))
        }
        Yaml::Array(a)
            if a.iter()
                .all(|x| !matches!(x, Yaml::Hash(_) | Yaml::Array(_))) =>
        {
            Ok(Search::Keywords(field_test(
                name,
                None,
                Vec::new(),
                v,
                ctx,
            )?))
        }
        Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_) => Ok(Search::Keywords(field_test(
            name,
            None,
            Vec::new(),
            v,
            ctx,
        )?)),
        _ => Err(ctx.err(
            ErrorKind::Structure,
            format!("search {name:?} must be a mapping, a list of mappings or a list of keywords"),
        )),
    }
}

/// The field tests of one search map, outside a rule (a pipeline's `add_condition`).
pub(crate) fn parse_tests(
    name: &str,
    h: &yaml_rust2::yaml::Hash,
    path: &str,
) -> Result<Vec<FieldTest>, SigmaError> {
    parse_map(name, h, &Ctx { path, rule: None })
}

fn parse_map(
    name: &str,
    h: &yaml_rust2::yaml::Hash,
    ctx: &Ctx<'_>,
) -> Result<Vec<FieldTest>, SigmaError> {
    let mut tests = Vec::new();
    for (k, v) in h {
        let key = string(k).ok_or_else(|| {
            ctx.err(
                ErrorKind::Structure,
                format!("search {name:?}: a key is not a string"),
            )
        })?;
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default().trim().to_owned();
        let mut mods = Vec::new();
        for m in parts {
            let m = m.trim();
            mods.push(Modifier::parse(m).ok_or_else(|| {
                ctx.err(
                    ErrorKind::Modifier,
                    format!("search {name:?}: unknown modifier {m:?} on {field:?}"),
                )
            })?);
        }
        let field = (!field.is_empty()).then_some(field);
        tests.push(field_test(name, field, mods, v, ctx)?);
    }
    Ok(tests)
}

fn field_test(
    name: &str,
    field: Option<String>,
    modifiers: Vec<Modifier>,
    v: &Yaml,
    ctx: &Ctx<'_>,
) -> Result<FieldTest, SigmaError> {
    let shown = field.as_deref().unwrap_or("keywords");
    let bad_mod = |m: String| {
        ctx.err(
            ErrorKind::Modifier,
            format!("search {name:?}, {shown}: {m}"),
        )
    };
    let bad_val = |m: String| ctx.err(ErrorKind::Value, format!("search {name:?}, {shown}: {m}"));
    // Modifier combinations the specification rules out.
    let has = |m: Modifier| modifiers.contains(&m);
    let placements = [Modifier::Contains, Modifier::StartsWith, Modifier::EndsWith]
        .iter()
        .filter(|m| has(**m))
        .count();
    if placements > 1 {
        return Err(bad_mod(
            "contains, startswith and endswith exclude each other".into(),
        ));
    }
    let re_flags = [
        Modifier::ReIgnoreCase,
        Modifier::ReMultiLine,
        Modifier::ReDotAll,
    ];
    if re_flags.iter().any(|f| has(*f)) && !has(Modifier::Re) {
        return Err(bad_mod("the flags i, m and s belong after re".into()));
    }
    if has(Modifier::Re) && (placements > 0 || has(Modifier::Cidr) || has(Modifier::Windash)) {
        return Err(bad_mod("re takes no other value modifier".into()));
    }
    let numeric = modifiers.iter().filter(|m| m.is_numeric()).count();
    let times = modifiers
        .iter()
        .filter(|m| matches!(m, Modifier::Time(_)))
        .count();
    let others = modifiers
        .iter()
        .filter(|m| {
            !m.is_numeric() && !matches!(m, Modifier::Time(_) | Modifier::Neq | Modifier::All)
        })
        .count();
    if times > 1 || (times == 1 && others > 0) {
        return Err(bad_mod(
            "a time modifier (minute, hour, day, week, month, year) takes only gt, gte, lt, lte, neq or all beside it".into(),
        ));
    }
    if numeric > 1
        || (numeric == 1
            && times == 0
            && modifiers.len() > 1 + usize::from(modifiers.contains(&Modifier::Neq)))
    {
        return Err(bad_mod("gt, gte, lt and lte stand alone".into()));
    }
    if has(Modifier::Exists) && modifiers.len() > 1 {
        return Err(bad_mod("exists stands alone".into()));
    }
    if field.is_none() && (has(Modifier::Exists) || has(Modifier::FieldRef)) {
        return Err(bad_mod("exists and fieldref need a field".into()));
    }
    let items: Vec<&Yaml> = match v {
        Yaml::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if items.is_empty() {
        return Err(bad_val("an empty list of values".into()));
    }
    let raw_text = has(Modifier::Re)
        || has(Modifier::Cidr)
        || has(Modifier::FieldRef)
        || has(Modifier::Expand);
    let mut values = Vec::new();
    for item in items {
        let value = match item {
            Yaml::Null => SigmaValue::Null,
            Yaml::Boolean(b) => SigmaValue::Bool(*b),
            Yaml::Integer(i) => SigmaValue::Int(*i),
            Yaml::Real(r) => SigmaValue::Float(
                r.parse()
                    .map_err(|_| bad_val(format!("{r:?} is not a number")))?,
            ),
            Yaml::String(s) if raw_text => SigmaValue::Str(Pattern::literal(s)),
            Yaml::String(s) => SigmaValue::Str(Pattern::parse(s)),
            _ => {
                return Err(bad_val(
                    "values must be strings, numbers, booleans or null".into(),
                ))
            }
        };
        check_value(&modifiers, &value, &bad_val)?;
        values.push(value);
    }
    Ok(FieldTest {
        field,
        modifiers,
        values,
    })
}

fn check_value(
    modifiers: &[Modifier],
    value: &SigmaValue,
    bad: &dyn Fn(String) -> SigmaError,
) -> Result<(), SigmaError> {
    let text = match value {
        SigmaValue::Str(p) => p.as_literal(),
        SigmaValue::Int(i) => Some(i.to_string()),
        _ => None,
    };
    for m in modifiers {
        match m {
            Modifier::Re => {
                let t = text
                    .clone()
                    .ok_or_else(|| bad("re needs a string".into()))?;
                // Parsed, not compiled: the compile step builds it once (and reports a regex
                // too large to build); compiling here too cost as much again for every rule.
                regex_syntax::Parser::new().parse(&t).map_err(|e| {
                    bad(format!(
                        "the regular expression {t:?} does not compile: {}",
                        first_line(&e.to_string())
                    ))
                })?;
            }
            Modifier::Cidr => {
                let t = text
                    .clone()
                    .ok_or_else(|| bad("cidr needs a string".into()))?;
                parse_cidr(&t)
                    .ok_or_else(|| bad(format!("{t:?} is not a network in CIDR notation")))?;
            }
            Modifier::Exists if !matches!(value, SigmaValue::Bool(_)) => {
                return Err(bad("exists takes true or false".into()));
            }
            m if m.is_numeric() && !matches!(value, SigmaValue::Int(_) | SigmaValue::Float(_)) => {
                return Err(bad("gt, gte, lt and lte take a number".into()));
            }
            Modifier::Time(p) if !matches!(value, SigmaValue::Int(_)) => {
                return Err(bad(format!("{} takes a whole number", p.as_str())));
            }
            Modifier::FieldRef if text.as_deref().is_none_or(str::is_empty) => {
                return Err(bad("fieldref takes a field name".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
}

/// A network in CIDR notation: address and prefix length.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, len) = s.trim().split_once('/')?;
    let addr: IpAddr = a.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn parse_timespan(s: &str) -> Option<u64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        'M' => 2_592_000,
        'y' => 31_536_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn parse_correlation(c: &Yaml, ctx: &Ctx<'_>) -> Result<Correlation, SigmaError> {
    let bad = |m: String| ctx.err(ErrorKind::Correlation, m);
    let kind = match string(&c["type"]).as_deref() {
        Some("event_count") => CorrelationKind::EventCount,
        Some("value_count") => CorrelationKind::ValueCount,
        Some("temporal") => CorrelationKind::Temporal,
        Some("temporal_ordered") => CorrelationKind::TemporalOrdered,
        Some(t) => return Err(bad(format!("unknown correlation type {t:?}"))),
        None => return Err(bad("no correlation type".into())),
    };
    let rules = strings(&c["rules"]);
    if rules.is_empty() {
        return Err(bad("no rules to correlate".into()));
    }
    if matches!(
        kind,
        CorrelationKind::Temporal | CorrelationKind::TemporalOrdered
    ) && rules.len() < 2
    {
        return Err(bad("temporal correlation needs at least two rules".into()));
    }
    let timespan = string(&c["timespan"]).ok_or_else(|| bad("no timespan".into()))?;
    let timespan_secs = parse_timespan(&timespan).ok_or_else(|| {
        bad(format!(
            "timespan {timespan:?} is not a number and a unit (s, m, h, d, w, M, y)"
        ))
    })?;
    let mut condition = Vec::new();
    let mut field = Vec::new();
    if let Yaml::Hash(h) = &c["condition"] {
        for (k, v) in h {
            let k = string(k).unwrap_or_default();
            match k.as_str() {
                "gt" | "gte" | "lt" | "lte" | "eq" => {
                    let n = match v {
                        Yaml::Integer(i) => *i,
                        _ => return Err(bad(format!("condition {k} takes an integer"))),
                    };
                    condition.push((k, n));
                }
                "field" => field = strings(v),
                _ => return Err(bad(format!("unknown condition key {k:?}"))),
            }
        }
    }
    match kind {
        CorrelationKind::EventCount | CorrelationKind::ValueCount if condition.is_empty() => {
            return Err(bad(
                "event_count and value_count need a condition (gt, gte, lt, lte, eq)".into(),
            ))
        }
        CorrelationKind::ValueCount if field.is_empty() => {
            return Err(bad(
                "value_count needs the field whose values it counts".into()
            ))
        }
        _ => {}
    }
    let mut aliases = Vec::new();
    match &c["aliases"] {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::Hash(h) => {
            for (alias, per_rule) in h {
                let alias =
                    string(alias).ok_or_else(|| bad("an alias name is not a string".into()))?;
                let Yaml::Hash(m) = per_rule else {
                    return Err(bad(format!(
                        "alias {alias:?} must map rule names to field names"
                    )));
                };
                let mut fields = Vec::new();
                for (r, f) in m {
                    match (string(r), string(f)) {
                        (Some(r), Some(f)) => {
                            if !rules.contains(&r) {
                                return Err(bad(format!(
                                    "alias {alias:?} names rule {r:?}, which the correlation does not list"
                                )));
                            }
                            fields.push((r, f));
                        }
                        _ => {
                            return Err(bad(format!(
                                "alias {alias:?} must map rule names to field names"
                            )))
                        }
                    }
                }
                aliases.push((alias, fields));
            }
        }
        _ => return Err(bad("`aliases` must be a mapping".into())),
    }
    Ok(Correlation {
        kind,
        rules,
        group_by: strings(&c["group-by"]),
        timespan_secs,
        condition,
        field,
        aliases,
        generate: false,
    })
}

/// A value quoted in a message, cut to `max` characters with `…` (a condition can be megabytes).
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"
title: Suspicious IMDS request via common tools
id: 7f1d5a3c-0000-4000-8000-000000000001
status: test
level: medium
tags: [attack.credential_access, attack.t1552.005]
logsource:
    category: process_creation
    product: windows
detection:
    selection_img:
        - Image|endswith: ['\curl.exe', '\wget.exe']
        - OriginalFileName: 'curl.exe'
    selection_cli:
        CommandLine|contains|all:
            - '169.254.169.254'
            - 'latest'
    filter_agent:
        ParentImage|re|i: '\\amazon-ssm-agent\.exe$'
    _helper:
        User: null
    condition: 1 of selection_* and not 1 of filter_*
falsepositives:
    - Administrators
"#;

    #[test]
    fn numbers_with_a_leading_zero_read_as_pyyaml_reads_them() {
        let text = "a:\n  - 00000429  # Persian\n  - 0644\n  - 42\nb: 0019\nc: '0123'\n";
        let out = yaml11_leading_zeros(text);
        assert_eq!(
            out,
            "a:\n  - '00000429'  # Persian\n  - 420\n  - 42\nb: '0019'\nc: '0123'\n"
        );
    }

    #[test]
    fn a_rule_reads_into_searches_and_a_condition() {
        let rules = parse_rule(RULE, "r.yml").unwrap();
        let r = &rules[0];
        assert_eq!(r.level, Some(Level::Medium));
        assert_eq!(r.logsource.category.as_deref(), Some("process_creation"));
        let d = r.detection.as_ref().unwrap();
        assert_eq!(
            d.expand("them"),
            ["selection_img", "selection_cli", "filter_agent"]
        );
        assert_eq!(d.expand("selection_*").len(), 2);
        match d.search("selection_img").unwrap() {
            Search::AnyOf(maps) => assert_eq!(maps.len(), 2),
            other => panic!("{other:?}"),
        }
        match d.search("selection_cli").unwrap() {
            Search::Map(tests) => {
                assert!(tests[0].all());
                assert_eq!(tests[0].modifiers, [Modifier::Contains, Modifier::All]);
                assert_eq!(tests[0].values.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        match d.search("_helper").unwrap() {
            Search::Map(tests) => assert_eq!(tests[0].values, [SigmaValue::Null]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            d.condition.to_string(),
            "(1 of selection_* and not 1 of filter_*)"
        );
    }

    #[test]
    fn bad_rules_are_reported_with_their_kind() {
        let cases = [
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A|containz: b}, condition: sel}\n", ErrorKind::Modifier),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A|re: '(a'}, condition: sel}\n", ErrorKind::Value),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A|re: '(?<=a)b'}, condition: sel}\n", ErrorKind::Value),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A|cidr: '10.0.0.0/40'}, condition: sel}\n", ErrorKind::Value),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A: b}, condition: sel and other}\n", ErrorKind::UndefinedIdentifier),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A: b}, condition: sel and}\n", ErrorKind::ConditionSyntax),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A: b}, condition: 'sel | count() by B > 3'}\n", ErrorKind::Aggregation),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A|contains|endswith: b}, condition: sel}\n", ErrorKind::Modifier),
            ("title: x\nlogsource: {product: windows}\ndetection: {sel: {A|exists: yes-please}, condition: sel}\n", ErrorKind::Value),
            ("title: x\ndetection: {sel: {A: b}, condition: sel}\n", ErrorKind::Structure),
            ("logsource: {product: windows}\ndetection: {sel: {A: b}, condition: sel}\n", ErrorKind::Structure),
            ("title: [unclosed\n", ErrorKind::Yaml),
            ("title: c\ncorrelation: {type: event_count, rules: [a], timespan: 5x, condition: {gte: 3}}\n", ErrorKind::Correlation),
            ("title: c\ncorrelation: {type: value_count, rules: [a], timespan: 5m, condition: {gte: 3}}\n", ErrorKind::Correlation),
        ];
        for (text, kind) in cases {
            let e = parse_rule(text, "bad.yml").unwrap_err();
            assert_eq!(e.kind, kind, "{text}: {e}");
            assert!(e.to_string().starts_with("bad.yml"), "{e}");
        }
    }

    #[test]
    fn correlation_rules_parse() {
        let text = "title: Many IMDS reads\nname: many_reads\ncorrelation:\n  type: event_count\n  rules: [imds_read]\n  group-by: [ComputerName]\n  timespan: 10m\n  condition: {gte: 20}\n";
        let r = &parse_rule(text, "c.yml").unwrap()[0];
        let c = r.correlation.as_ref().unwrap();
        assert_eq!(c.kind, CorrelationKind::EventCount);
        assert_eq!(c.timespan_secs, 600);
        assert_eq!(c.condition, [("gte".to_owned(), 20)]);
        assert_eq!(c.group_by, ["ComputerName"]);
    }

    #[test]
    fn keyword_searches_and_multiple_documents() {
        let text = "title: a\nlogsource: {product: linux}\ndetection: {keywords: ['wget *169.254.169.254*', 'curl'], condition: keywords}\n---\ntitle: b\nlogsource: {product: linux}\ndetection: {k: 'x', condition: k}\n";
        let rs = parse_rule(text, "k.yml").unwrap();
        assert_eq!(rs.len(), 2);
        match rs[0]
            .detection
            .as_ref()
            .unwrap()
            .search("keywords")
            .unwrap()
        {
            Search::Keywords(t) => {
                assert!(t.field.is_none());
                assert_eq!(t.values.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cidr_and_timespans_parse() {
        assert!(parse_cidr("169.254.0.0/16").is_some());
        assert!(parse_cidr("fd00:ec2::/32").is_some());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0.0").is_none());
        assert_eq!(parse_timespan("1h"), Some(3600));
        assert_eq!(parse_timespan("h"), None);
    }
}
