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

use imdsguard_event::{Format, Platform, Severity, Sym};
use imdsguard_rules::{Expr, Field, Glob, Matcher, Rule, Text};
use regex::Regex;
use serde::Deserialize;

use crate::error::{DetectionError, ErrorKind, SigmaError};
use crate::lower::{lower, regex_source, Node, Op, Test};
use crate::rule::{Level, LogSource, SigmaRule};
use crate::value::{Pattern, Piece};

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
    /// Field names this log source's records use for the rule's (`Signature` = `ThreatName`).
    #[serde(default)]
    fields: std::collections::BTreeMap<String, String>,
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
/// Resolved once: what correlation `group-by` fields read too.
pub fn sigma_field(name: &str) -> Field {
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

/// The typed reading of a log source: the event kind its category means, on the formats its
/// product is logged in (Security 4688 and Defender rows are process creations too).
fn typed_filter(ls: &LogSource) -> Option<Expr> {
    use imdsguard_rules::on;
    // Web, proxy and firewall logs: the typed request or connection, whatever format logged it
    // (a product names the application, not a platform these formats are told by).
    // Zeek's logs by their service, read under Zeek's own field names.
    if ls.product.as_deref() == Some("zeek") && ls.category.is_none() {
        let format = match ls.service.as_deref()? {
            "http" => Format::ZeekHttp,
            "dns" => Format::ZeekDns,
            "conn" => Format::ZeekConn,
            _ => return None,
        };
        return Some(on(Field::EventFormat).is(format.as_str()));
    }
    // Cloud audit logs by product and service, read under the provider's own field names.
    if ls.category.is_none() {
        let format = match (ls.product.as_deref()?, ls.service.as_deref()) {
            ("aws", Some("cloudtrail")) => Some(Format::AwsCloudTrail),
            ("azure", Some("activitylogs")) => Some(Format::AzureActivity),
            ("azure", Some("signinlogs" | "auditlogs")) => Some(Format::AzureEntra),
            ("gcp", Some("gcp.audit")) => Some(Format::GcpAudit),
            _ => None,
        };
        if let Some(f) = format {
            return Some(on(Field::EventFormat).is(f.as_str()));
        }
    }
    if ls.service.is_none() {
        match ls.category.as_deref()? {
            "webserver" => {
                return Some(Expr::All(vec![
                    on(Field::EventKind).is("http-request"),
                    on(Field::HttpVantage).any_of(&["inbound", "unknown"]),
                ]))
            }
            "proxy" => {
                return Some(Expr::All(vec![
                    on(Field::EventKind).is("http-request"),
                    on(Field::HttpVantage).any_of(&["outbound", "wire", "unknown"]),
                ]))
            }
            "firewall" => {
                return Some(Expr::All(vec![
                    on(Field::EventKind).is("network-connect"),
                    on(Field::EventFormat)
                        .any_of(&[Format::AwsVpcFlow.as_str(), Format::ZeekConn.as_str()]),
                ]))
            }
            _ => {}
        }
    }
    let kind = match ls.category.as_deref()? {
        "process_creation" => "process-start",
        "network_connection" => "network-connect",
        "dns_query" | "dns" => "dns-query",
        _ => return None,
    };
    if ls.service.is_some() {
        return None;
    }
    // The formats that carry the product's telemetry, from the format registry.
    let formats: Vec<&str> = match ls.product.as_deref() {
        Some(p) => Format::of_platform(Platform::from_product(p)?)
            .map(Format::as_str)
            .collect(),
        None => Vec::new(),
    };
    let mut parts = vec![imdsguard_rules::on(Field::EventKind).is(kind)];
    if !formats.is_empty() {
        parts.push(imdsguard_rules::on(Field::EventFormat).any_of(&formats));
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

/// The Windows channels and event ids a log source stands for (`data/logsources.toml`), or `None`
/// when the table does not know it. Either list may be empty (any channel, any event id).
pub fn logsource_channels(ls: &LogSource) -> Option<(Vec<String>, Vec<u32>)> {
    let hit = find_source(ls)?;
    Some((hit.channels.clone(), hit.event_ids.clone()))
}

fn find_source(ls: &LogSource) -> Option<&'static Source> {
    SOURCES.iter().find(|s| {
        same(&s.product, &ls.product)
            && same(&s.category, &ls.category)
            && same(&s.service, &ls.service)
    })
}

fn channel_filter(ls: &LogSource) -> Option<Expr> {
    let hit = find_source(ls)?;
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
/// The severity of a Sigma `level` (`medium` when absent).
pub fn severity(l: Option<Level>) -> Severity {
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

/// [`compile`] over many rules on `threads` threads, results in the rules' order.
pub fn compile_all(rules: &[SigmaRule], threads: usize) -> Vec<Result<Rule, SigmaError>> {
    crate::par_map(rules, threads, compile)
}

/// [`compile_all`], releasing each rule's detection (the bulk of a parsed rule) as soon as it is
/// compiled, so that the parsed and the compiled forms of a large rule set are not held together;
/// the rest of each rule (path, title, ids, level, correlation) stays.
pub fn compile_all_releasing(
    rules: &mut [SigmaRule],
    threads: usize,
) -> Vec<Result<Rule, SigmaError>> {
    crate::par_map_mut(rules, threads, |r| {
        let compiled = compile(r);
        r.detection = None;
        compiled
    })
}

/// Compiles a Sigma detection rule into the rule IR.
pub fn compile(r: &SigmaRule) -> Result<Rule, SigmaError> {
    compile_with(r, true)
}

/// Compiles a rule's detection alone, without the condition its log source puts on events: the
/// reading of a converter run without a processing pipeline (`sigma convert --without-pipeline`),
/// where the rule's field names are the record's own and nothing says which log a record is from.
/// SigmaHQ's regression suite runs its JSON samples this way.
pub fn compile_detection(r: &SigmaRule) -> Result<Rule, SigmaError> {
    compile_with(r, false)
}

fn compile_with(r: &SigmaRule, logsource: bool) -> Result<Rule, SigmaError> {
    let err = |kind, message: String| SigmaError {
        path: r.path.clone(),
        rule: Some(r.title.clone()),
        kind,
        message,
    };
    if r.filter.is_some() {
        return Err(err(
            ErrorKind::Filter,
            "a Sigma filter is not a rule: it is added to the rules it names (apply_filters)"
                .into(),
        ));
    }
    let Some(det) = &r.detection else {
        return Err(err(
            ErrorKind::Correlation,
            "correlation rules run in the correlation layer, not as single-event rules".into(),
        ));
    };
    let filter = if logsource {
        logsource_filter(&r.logsource).ok_or_else(|| {
            err(
                ErrorKind::LogSource,
                format!(
                    "log source (product {}, category {}, service {}) is not mapped to any input",
                    r.logsource.product.as_deref().unwrap_or("-"),
                    r.logsource.category.as_deref().unwrap_or("-"),
                    r.logsource.service.as_deref().unwrap_or("-")
                ),
            )
        })?
    } else {
        Expr::All(Vec::new())
    };
    // A log source whose records name some fields otherwise reads them under its own names.
    let renamed;
    let det = match find_source(&r.logsource).filter(|s| logsource && !s.fields.is_empty()) {
        Some(s) => {
            let mut copy = r.clone();
            let map = crate::pipeline::Pipeline::field_mapping("logsources.toml", &s.fields);
            crate::pipeline::apply_pipelines(&mut copy, std::slice::from_ref(&map))?;
            renamed = copy.detection;
            renamed.as_ref().unwrap_or(det)
        }
        None => det,
    };
    let cond = lower(det)
        .and_then(|n| node_expr(&n))
        .map_err(|m| err(ErrorKind::Value, m.to_string()))?;
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

fn node_expr(n: &Node) -> Result<Expr, DetectionError> {
    Ok(match n {
        Node::All(xs) => Expr::All(xs.iter().map(node_expr).collect::<Result<_, _>>()?),
        Node::Any(xs) => merge_tests(xs.iter().map(node_expr).collect::<Result<_, _>>()?),
        Node::Not(x) => !node_expr(x)?,
        Node::Test(t) => test_expr(t)?,
    })
}

/// `any` of single-field tests on one field becomes one test with several matchers, which the
/// rule index reads as one set of keys.
fn merge_tests(xs: Vec<Expr>) -> Expr {
    let field = match xs.first() {
        Some(Expr::Test(f, _)) => *f,
        _ => return Expr::Any(xs),
    };
    if !xs
        .iter()
        .all(|x| matches!(x, Expr::Test(f, _) if *f == field))
    {
        return Expr::Any(xs);
    }
    let ms = xs
        .into_iter()
        .flat_map(|x| match x {
            Expr::Test(_, ms) => ms,
            _ => Vec::new(),
        })
        .collect();
    Expr::Test(field, ms)
}

fn test_expr(t: &Test) -> Result<Expr, DetectionError> {
    let field = match &t.field {
        Some(f) => sigma_field(f),
        // Keywords read every value: the rule set's field set then tells decoders to keep the
        // fields no rule names under `Sym::ANY`.
        None => Field::Keywords,
    };
    let exists = Expr::Test(field, vec![Matcher::Exists]);
    let m = match &t.op {
        Op::Null => {
            return Ok(Expr::Any(vec![
                !exists,
                Expr::Test(field, vec![Matcher::Eq(Text::new(""))]),
            ]))
        }
        Op::Exists(true) => return Ok(exists),
        Op::Exists(false) => return Ok(!exists),
        Op::FieldRef(other) => return Ok(Expr::SameValue(field, raw(other))),
        Op::Compare(op, bound) => Matcher::Compare(*op, *bound),
        Op::TimePart(part, op, n) => Matcher::TimePart(*part, *op, *n),
        Op::Number(n) => Matcher::Eq(Text::new(n)),
        Op::Cidr { net, len, .. } => Matcher::Cidr(*net, *len),
        op @ Op::Regex { .. } => {
            let src = regex_source(op).unwrap_or_default();
            Matcher::Regex(Regex::new(&src).map_err(|e| DetectionError::Regex {
                expr: src.clone(),
                reason: e.to_string(),
            })?)
        }
        Op::Glob { pattern, cased } => glob_matcher(pattern, *cased)?,
    };
    Ok(Expr::Test(field, vec![m]))
}

/// A pattern as the cheapest matcher: exact, prefix (`x*`), suffix (`*x`), contains (`*x*`), or
/// an anchored regex.
fn glob_matcher(p: &Pattern, cased: bool) -> Result<Matcher, DetectionError> {
    let text = |s: &str| if cased { Text::cased(s) } else { Text::new(s) };
    let n = p.pieces.len();
    match p.pieces.as_slice() {
        [] => return Ok(Matcher::Eq(text(""))),
        [Piece::Lit(s)] => return Ok(Matcher::Eq(text(s))),
        [Piece::Lit(s), Piece::Any] => return Ok(Matcher::Prefix(text(s))),
        [Piece::Any, Piece::Lit(s)] => return Ok(Matcher::Suffix(text(s))),
        [Piece::Any, Piece::Lit(s), Piece::Any] => return Ok(Matcher::Contains(text(s))),
        _ => {}
    }
    // Only `*`, ASCII literals: piece by piece. (`?` needs a character, and regex's Unicode case
    // folding is kept for other letters.)
    let star_only = p.pieces.iter().all(|x| match x {
        Piece::Lit(s) => s.is_ascii(),
        Piece::Any => true,
        Piece::One => false,
    });
    if star_only {
        let pieces = p
            .pieces
            .iter()
            .filter_map(|x| match x {
                Piece::Lit(s) => Some(text(s)),
                _ => None,
            })
            .collect();
        return Ok(Matcher::Glob(Glob::new(
            pieces,
            p.pieces.first() == Some(&Piece::Any),
            p.pieces.last() == Some(&Piece::Any),
        )));
    }
    let mut re = String::from(if cased { "(?s)" } else { "(?is)" });
    if p.pieces.first() != Some(&Piece::Any) {
        re.push('^');
    }
    for (i, piece) in p.pieces.iter().enumerate() {
        match piece {
            Piece::Lit(s) => re.push_str(&regex::escape(s)),
            // A leading `*` need not be spelled either: the regex is unanchored at the start.
            Piece::Any if i == 0 => {}
            // A trailing `*` need not be spelled: the regex is only anchored at the end
            // otherwise.
            Piece::Any if i + 1 == n => {}
            Piece::Any => re.push_str(".*"),
            Piece::One => re.push('.'),
        }
    }
    if p.pieces.last() != Some(&Piece::Any) {
        re.push('$');
    }
    Regex::new(&re)
        .map(Matcher::Regex)
        .map_err(|e| DetectionError::Pattern {
            pattern: p.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiling_while_releasing_gives_the_same_rules_and_keeps_what_a_caller_reads() {
        let text = "title: T\nid: 5f1a0a3c-1d7e-4a53-9d59-8d6f1e2b3c4d\nname: t\nlevel: high\n\
                    logsource:\n  category: process_creation\n  product: windows\n\
                    detection:\n  s:\n    Image|endswith: '\\\\curl.exe'\n  condition: s\n";
        let rules = crate::parse_rule(text, "t.yml").unwrap();
        let plain = compile_all(&rules, 1);
        for threads in [1, 2] {
            let mut released = rules.clone();
            let compiled = compile_all_releasing(&mut released, threads);
            assert_eq!(compiled.len(), plain.len());
            for (a, b) in compiled.iter().zip(&plain) {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert_eq!((&a.id, &a.title, a.severity), (&b.id, &b.title, b.severity));
                assert_eq!(format!("{:?}", a.when), format!("{:?}", b.when));
            }
            assert!(released[0].detection.is_none());
            assert_eq!(released[0].name.as_deref(), Some("t"));
            assert_eq!(released[0].path, "t.yml");
        }
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
