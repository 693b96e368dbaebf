//! Sigma rules compiled into the rule IR, so the built-in pack and Sigma rules run on one
//! evaluator.
//!
//! - Fields: a Sigma field name becomes [`Field::Raw`] of its interned name, read from the record's
//!   own fields (the Windows EventData and System names Sigma uses); keywords read every value.
//! - Values: strings without wildcards become exact/prefix/suffix/contains matchers (ASCII
//!   case-insensitive unless `cased`); wildcards, `windash` (`-` and `/` and the Unicode dashes
//!   Windows accepts as one class) and `expand` placeholders (read as `*`) become anchored regexes;
//!   `re` (with `i`, `m`, `s`), `cidr`, `gt`/`gte`/`lt`/`lte`, `exists`, `fieldref`, `null`;
//!   `base64`, `base64offset` and the UTF-16 encodings transform the value before matching.
//! - Log sources: `logsource` becomes a condition on `Channel` and `EventID` from a table
//!   (`data/logsources.toml`: Sysmon categories, PowerShell, Windows services). A log source the
//!   table does not know is an error ([`ErrorKind::LogSource`]), never a rule that runs everywhere.

use std::sync::LazyLock;

use base64::Engine;
use imdsguard_event::{Severity, Sym};
use imdsguard_rules::{Cmp, Expr, Field, Matcher, Rule, Text};
use regex::Regex;
use serde::Deserialize;

use crate::condition::Condition;
use crate::error::{ErrorKind, SigmaError};
use crate::rule::{
    parse_cidr, Detection, FieldTest, Level, LogSource, Modifier, Search, SigmaRule,
};
use crate::value::{Pattern, Piece, SigmaValue};

/// One `[[logsource]]` entry of the table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    product: Option<String>,
    category: Option<String>,
    service: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    event_ids: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceTable {
    logsource: Vec<Source>,
}

static SOURCES: LazyLock<Vec<Source>> = LazyLock::new(|| {
    toml::from_str::<SourceTable>(include_str!("../data/logsources.toml"))
        .unwrap_or_else(|e| panic!("data/logsources.toml is checked by the tests: {e}"))
        .logsource
});

fn raw(name: &str) -> Field {
    Field::Raw(Sym::intern(name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldTable {
    fields: std::collections::BTreeMap<String, String>,
}

/// Sigma field names with a typed equivalent (`data/fieldmap.toml`).
static FIELD_MAP: LazyLock<Vec<(String, Field)>> = LazyLock::new(|| {
    toml::from_str::<FieldTable>(include_str!("../data/fieldmap.toml"))
        .unwrap_or_else(|e| panic!("data/fieldmap.toml is checked by the tests: {e}"))
        .fields
        .into_iter()
        .map(|(k, v)| {
            let typed = Field::from_name(&v)
                .unwrap_or_else(|| panic!("data/fieldmap.toml names an unknown field {v:?}"));
            (k, typed)
        })
        .collect()
});

/// A Sigma field: the record's own field, falling back to a typed field that means the same.
fn sigma_field(name: &str) -> Field {
    let sym = Sym::intern(name);
    match FIELD_MAP
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, f)| f.typed_index())
    {
        Some(i) => Field::RawOr(sym, i),
        None => Field::Raw(sym),
    }
}

/// Formats that carry Windows telemetry, and those that carry Linux telemetry, for the typed
/// reading of a rule's log source.
const WINDOWS_FORMATS: &[&str] = &[
    "evtx-json",
    "nxlog-json",
    "sentinel-windowsevent",
    "sentinel-securityevent",
    "winlogbeat",
    "windows-xml",
    "defender-json",
    "defender-streaming",
    "defender-csv",
    "ecs",
];
const LINUX_FORMATS: &[&str] = &["auditd", "sentinel-syslog", "ecs"];

/// The typed reading of a log source: the event kind its category means, on the formats its
/// product is logged in (Security 4688 and Defender rows are process creations too).
fn typed_filter(ls: &LogSource) -> Option<Expr> {
    let kind = match ls.category.as_deref()? {
        "process_creation" => "process-start",
        "network_connection" => "network-connect",
        "dns_query" | "dns" => "dns-query",
        _ => return None,
    };
    if ls.service.is_some() {
        return None;
    }
    let formats = match ls.product.as_deref() {
        Some("windows") => WINDOWS_FORMATS,
        Some("linux") => LINUX_FORMATS,
        None => &[][..],
        Some(_) => return None,
    };
    let mut parts = vec![imdsguard_rules::on(Field::EventKind).is(kind)];
    if !formats.is_empty() {
        parts.push(imdsguard_rules::on(Field::EventFormat).any_of(formats));
    }
    Some(Expr::All(parts))
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    }
}

/// The condition a log source puts on events: its Windows channels and event ids, or its typed
/// reading, or both; `None` when neither knows it.
fn logsource_filter(ls: &LogSource) -> Option<Expr> {
    match (channel_filter(ls), typed_filter(ls)) {
        (Some(a), Some(b)) => Some(Expr::Any(vec![a, b])),
        (a, b) => a.or(b),
    }
}

fn channel_filter(ls: &LogSource) -> Option<Expr> {
    let hit = SOURCES.iter().find(|s| {
        same(&s.product, &ls.product)
            && same(&s.category, &ls.category)
            && same(&s.service, &ls.service)
    })?;
    let mut parts = Vec::new();
    if !hit.channels.is_empty() {
        parts.push(Expr::Test(
            raw("Channel"),
            hit.channels
                .iter()
                .map(|c| Matcher::Eq(Text::new(c)))
                .collect(),
        ));
    }
    if !hit.event_ids.is_empty() {
        parts.push(Expr::Test(
            raw("EventID"),
            hit.event_ids
                .iter()
                .map(|i| Matcher::Eq(Text::new(&i.to_string())))
                .collect(),
        ));
    }
    Some(Expr::All(parts))
}

/// The severity of a Sigma level (`medium` when the rule gives none).
fn severity(l: Option<Level>) -> Severity {
    match l {
        Some(Level::Informational) => Severity::Info,
        Some(Level::Low) => Severity::Low,
        None | Some(Level::Medium) => Severity::Medium,
        Some(Level::High) => Severity::High,
        Some(Level::Critical) => Severity::Critical,
    }
}

/// ATT&CK technique ids from `attack.tNNNN[.NNN]` tags.
fn techniques(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack."))
        .filter(|t| {
            t.starts_with(['t', 'T']) && t[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(|t| t.to_ascii_uppercase())
        .collect()
}

/// Compiles a Sigma detection rule into the rule IR.
pub fn compile(r: &SigmaRule) -> Result<Rule, SigmaError> {
    let err = |kind, message: String| SigmaError {
        path: r.path.clone(),
        rule: Some(r.title.clone()),
        kind,
        message,
    };
    let Some(det) = &r.detection else {
        return Err(err(
            ErrorKind::Correlation,
            "correlation rules run in the correlation layer, not as single-event rules".into(),
        ));
    };
    let filter = logsource_filter(&r.logsource).ok_or_else(|| {
        err(
            ErrorKind::LogSource,
            format!(
                "log source (product {:?}, category {:?}, service {:?}) is not mapped to any input",
                r.logsource.product, r.logsource.category, r.logsource.service
            ),
        )
    })?;
    let cond = condition(&det.condition, det).map_err(|m| err(ErrorKind::Value, m))?;
    let id = r.id.clone().unwrap_or_else(|| r.title.clone());
    let escaped = |s: &str| s.replace('{', "{{").replace('}', "}}");
    let mut b = Rule::builder(&id, &r.title, severity(r.level), filter.and(cond))
        .description(r.description.as_deref().unwrap_or(&r.title))
        .reason(&escaped(&format!(
            "Sigma rule \"{}\" ({}) matched.",
            r.title, r.path
        )));
    for fp in &r.falsepositives {
        b = b.false_positive(fp);
    }
    for t in techniques(&r.tags) {
        b = b.attack(&t);
    }
    b.build().map_err(|e| err(ErrorKind::Value, e.to_string()))
}

fn condition(c: &Condition, det: &Detection) -> Result<Expr, String> {
    Ok(match c {
        Condition::And(xs) => Expr::All(
            xs.iter()
                .map(|x| condition(x, det))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Or(xs) => Expr::Any(
            xs.iter()
                .map(|x| condition(x, det))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Not(x) => !condition(x, det)?,
        Condition::Ident(name) => {
            let s = det
                .search(name)
                .ok_or_else(|| format!("no search {name:?}"))?;
            search(s)?
        }
        Condition::OneOf(p) => Expr::Any(
            det.expand(p)
                .into_iter()
                .map(|n| det.search(n).map(search).unwrap_or(Ok(Expr::True)))
                .collect::<Result<_, _>>()?,
        ),
        Condition::AllOf(p) => Expr::All(
            det.expand(p)
                .into_iter()
                .map(|n| det.search(n).map(search).unwrap_or(Ok(Expr::True)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn search(s: &Search) -> Result<Expr, String> {
    Ok(match s {
        Search::Map(tests) => Expr::All(tests.iter().map(field_test).collect::<Result<_, _>>()?),
        Search::AnyOf(maps) => Expr::Any(
            maps.iter()
                .map(|m| {
                    Ok(Expr::All(
                        m.iter().map(field_test).collect::<Result<_, String>>()?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        ),
        Search::Keywords(t) => field_test(t)?,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

fn field_test(t: &FieldTest) -> Result<Expr, String> {
    let field = match &t.field {
        Some(f) => sigma_field(f),
        None => {
            // Keywords read every value: decoders keep the fields no rule names under `*`.
            Sym::intern(imdsguard_event::Event::ANY_FIELD);
            Field::Keywords
        }
    };
    let has = |m: Modifier| t.modifiers.contains(&m);
    // Keywords match anywhere in a value unless they say otherwise.
    let place = if has(Modifier::Contains)
        || (t.field.is_none() && !has(Modifier::StartsWith) && !has(Modifier::EndsWith))
    {
        Place::Contains
    } else if has(Modifier::StartsWith) {
        Place::Prefix
    } else if has(Modifier::EndsWith) {
        Place::Suffix
    } else {
        Place::Exact
    };
    let mut per_value = Vec::new();
    for v in &t.values {
        per_value.push(value_expr(field, t, v, place)?);
    }
    Ok(if t.all() {
        Expr::All(per_value)
    } else {
        Expr::Any(per_value)
    })
}

fn value_expr(field: Field, t: &FieldTest, v: &SigmaValue, place: Place) -> Result<Expr, String> {
    let has = |m: Modifier| t.modifiers.contains(&m);
    let exists = Expr::Test(field, vec![Matcher::Exists]);
    match v {
        SigmaValue::Null => {
            return Ok(Expr::Any(vec![
                !exists,
                Expr::Test(field, vec![Matcher::Eq(Text::new(""))]),
            ]))
        }
        SigmaValue::Bool(b) if has(Modifier::Exists) => {
            return Ok(if *b { exists } else { !exists })
        }
        _ => {}
    }
    for (m, op) in [
        (Modifier::Gt, Cmp::Gt),
        (Modifier::Gte, Cmp::Gte),
        (Modifier::Lt, Cmp::Lt),
        (Modifier::Lte, Cmp::Lte),
    ] {
        if has(m) {
            let bound = match v {
                SigmaValue::Int(i) => *i as f64,
                SigmaValue::Float(f) => *f,
                _ => return Err("gt, gte, lt and lte take a number".into()),
            };
            return Ok(Expr::Test(field, vec![Matcher::Compare(op, bound)]));
        }
    }
    let text = match v {
        SigmaValue::Str(p) => p.clone(),
        SigmaValue::Int(i) => Pattern::literal(&i.to_string()),
        SigmaValue::Float(f) => Pattern::literal(&f.to_string()),
        SigmaValue::Bool(b) => Pattern::literal(&b.to_string()),
        SigmaValue::Null => unreachable!("handled above"),
    };
    if has(Modifier::FieldRef) {
        let other = text.as_literal().ok_or("fieldref takes a field name")?;
        return Ok(Expr::SameValue(field, raw(&other)));
    }
    if has(Modifier::Cidr) {
        let t = text.as_literal().unwrap_or_default();
        let (net, len) = parse_cidr(&t).ok_or_else(|| format!("{t:?} is not a network"))?;
        return Ok(Expr::Test(field, vec![Matcher::Cidr(net, len)]));
    }
    if has(Modifier::Re) {
        let mut flags = String::new();
        if has(Modifier::ReIgnoreCase) {
            flags.push('i');
        }
        if has(Modifier::ReMultiLine) {
            flags.push('m');
        }
        if has(Modifier::ReDotAll) {
            flags.push('s');
        }
        let body = text.as_literal().unwrap_or_default();
        let src = if flags.is_empty() {
            body
        } else {
            format!("(?{flags}){body}")
        };
        let re = Regex::new(&src).map_err(|e| format!("regex {src:?}: {e}"))?;
        return Ok(Expr::Test(field, vec![Matcher::Regex(re)]));
    }
    // Encodings turn the value into the bytes a log would hold, then base64 text.
    let encoding = has(Modifier::Base64) || has(Modifier::Base64Offset);
    if encoding {
        let lit = text
            .as_literal()
            .ok_or("base64 values cannot hold wildcards")?;
        let bytes: Vec<u8> = if has(Modifier::Utf16Le) || has(Modifier::Wide) {
            lit.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else if has(Modifier::Utf16Be) {
            lit.encode_utf16().flat_map(u16::to_be_bytes).collect()
        } else if has(Modifier::Utf16) {
            [0xFF, 0xFE]
                .into_iter()
                .chain(lit.encode_utf16().flat_map(u16::to_le_bytes))
                .collect()
        } else {
            lit.into_bytes()
        };
        let variants = if has(Modifier::Base64Offset) {
            base64_offsets(&bytes)
        } else {
            vec![base64::engine::general_purpose::STANDARD.encode(&bytes)]
        };
        // Encoded text is case-sensitive.
        let place = if has(Modifier::Base64Offset) {
            Place::Contains
        } else {
            place
        };
        let ms = variants
            .iter()
            .map(|s| literal_matcher(&Text::cased(s), place))
            .collect();
        return Ok(Expr::Test(field, ms));
    }
    let cased = has(Modifier::Cased);
    let windash = has(Modifier::Windash);
    let expand = has(Modifier::Expand);
    let pattern = if expand {
        expand_placeholders(&text)
    } else {
        text
    };
    if !pattern.has_wildcards() && !windash {
        let lit = pattern.as_literal().unwrap_or_default();
        let t = if cased {
            Text::cased(&lit)
        } else {
            Text::new(&lit)
        };
        return Ok(Expr::Test(field, vec![literal_matcher(&t, place)]));
    }
    Ok(Expr::Test(
        field,
        vec![Matcher::Regex(glob_regex(&pattern, place, cased, windash)?)],
    ))
}

fn literal_matcher(t: &Text, place: Place) -> Matcher {
    match place {
        Place::Exact => Matcher::Eq(t.clone()),
        Place::Prefix => Matcher::Prefix(t.clone()),
        Place::Suffix => Matcher::Suffix(t.clone()),
        Place::Contains => Matcher::Contains(t.clone()),
    }
}

/// `%name%` placeholders (Sigma `expand`) stand for values from a configuration this engine does
/// not have; they are read as `*`, as pySigma's wildcard placeholder transformation does.
fn expand_placeholders(p: &Pattern) -> Pattern {
    let mut pieces = Vec::new();
    for piece in &p.pieces {
        match piece {
            Piece::Lit(s) => {
                let mut rest = s.as_str();
                while let Some(start) = rest.find('%') {
                    let Some(len) = rest[start + 1..].find('%') else {
                        break;
                    };
                    if start > 0 {
                        pieces.push(Piece::Lit(rest[..start].to_owned()));
                    }
                    pieces.push(Piece::Any);
                    rest = &rest[start + len + 2..];
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Lit(rest.to_owned()));
                }
            }
            other => pieces.push(other.clone()),
        }
    }
    Pattern { pieces }
}

/// The three base64 encodings of `v` at byte offsets 0, 1 and 2 of a longer text, with the
/// characters that depend on the neighbouring bytes cut off (Sigma `base64offset`).
pub(crate) fn base64_offsets(v: &[u8]) -> Vec<String> {
    let e = &base64::engine::general_purpose::STANDARD;
    (0..3)
        .map(|i| {
            let mut padded = vec![0u8; i];
            padded.extend_from_slice(v);
            let enc = e.encode(&padded);
            let start = [0, 2, 3][i];
            let end = enc.len() - [0, 3, 2][(v.len() + i) % 3];
            enc[start.min(end)..end].to_owned()
        })
        .collect()
}

const DASHES: &str = "[-/\u{2013}\u{2014}\u{2015}]";

fn glob_regex(p: &Pattern, place: Place, cased: bool, windash: bool) -> Result<Regex, String> {
    let mut re = String::from(if cased { "(?s)" } else { "(?is)" });
    if matches!(place, Place::Exact | Place::Prefix) {
        re.push('^');
    }
    for piece in &p.pieces {
        match piece {
            Piece::Lit(s) => {
                for c in s.chars() {
                    if windash && (c == '-' || c == '/') {
                        re.push_str(DASHES);
                    } else {
                        re.push_str(&regex::escape(&c.to_string()));
                    }
                }
            }
            Piece::Any => re.push_str(".*"),
            Piece::One => re.push('.'),
        }
    }
    if matches!(place, Place::Exact | Place::Suffix) {
        re.push('$');
    }
    Regex::new(&re).map_err(|e| format!("pattern {p}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_offsets_match_the_known_encodings() {
        // "http" at offsets 0, 1, 2 of an encoded text, as SigmaHQ rules spell them.
        assert_eq!(base64_offsets(b"http"), ["aHR0c", "h0dH", "odHRw"]);
    }

    #[test]
    fn the_data_tables_load() {
        assert!(SOURCES.len() > 30);
        assert!(FIELD_MAP.len() >= 10);
        assert!(matches!(sigma_field("CommandLine"), Field::RawOr(..)));
        assert!(matches!(sigma_field("TargetFilename"), Field::Raw(_)));
        let ls = LogSource {
            category: Some("process_creation".into()),
            product: Some("windows".into()),
            service: None,
        };
        assert!(logsource_filter(&ls).is_some());
        let unknown = LogSource {
            category: Some("nope".into()),
            product: Some("windows".into()),
            service: None,
        };
        assert!(logsource_filter(&unknown).is_none());
    }

    #[test]
    fn techniques_come_from_attack_tags() {
        let tags = [
            "attack.credential_access",
            "attack.t1552.005",
            "attack.T1580",
            "cve.2021-44228",
        ]
        .map(String::from);
        assert_eq!(techniques(&tags), ["T1552.005", "T1580"]);
    }
}
