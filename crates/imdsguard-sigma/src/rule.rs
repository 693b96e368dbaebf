//! Sigma rules as typed values: what a rule file holds once read and checked ([`crate::parse`]
//! reads it, [`crate::load`] finds the files).

use crate::condition::{pattern_matches, Condition};
use crate::value::SigmaValue;

/// A rule's maturity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `stable`
    Stable,
    /// `test`
    Test,
    /// `experimental`
    Experimental,
    /// `deprecated`
    Deprecated,
    /// `unsupported`
    Unsupported,
}

/// A rule's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `informational`
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

/// `logsource`: what the rule reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    /// `category` (`process_creation`, `network_connection`, ...).
    pub category: Option<String>,
    /// `product` (`windows`, `linux`, ...).
    pub product: Option<String>,
    /// `service` (`security`, `sysmon`, ...).
    pub service: Option<String>,
}

/// A value modifier (`field|modifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// `contains`
    Contains,
    /// `startswith`
    StartsWith,
    /// `endswith`
    EndsWith,
    /// `all`: every value must match (instead of any).
    All,
    /// `re`: the value is a regular expression.
    Re,
    /// `i` after `re`: case-insensitive.
    ReIgnoreCase,
    /// `m` after `re`: multi-line.
    ReMultiLine,
    /// `s` after `re`: `.` matches new lines.
    ReDotAll,
    /// `cidr`: the value is a network.
    Cidr,
    /// `base64`
    Base64,
    /// `base64offset`
    Base64Offset,
    /// `utf16le`
    Utf16Le,
    /// `utf16be`
    Utf16Be,
    /// `utf16`
    Utf16,
    /// `wide` (= `utf16le`)
    Wide,
    /// `windash`: `-` and `/` (and the other dashes Windows accepts) are interchangeable.
    Windash,
    /// `exists`: the value is `true` or `false`.
    Exists,
    /// `cased`: case-sensitive.
    Cased,
    /// `fieldref`: the value names another field.
    FieldRef,
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `expand`: `%placeholder%` values.
    Expand,
    /// `neq`: the field test is negated (the field does not hold any of the values; absent counts).
    Neq,
    /// `minute`, `hour`, `day`, `week`, `month`, `year` (Sigma 2.1): that part of the field's
    /// date-time value, compared with the number.
    Time(imdsguard_rules::TimePart),
}

impl Modifier {
    pub(crate) fn parse(s: &str) -> Option<Modifier> {
        Some(match s {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "re" => Modifier::Re,
            "i" | "ignorecase" => Modifier::ReIgnoreCase,
            "m" | "multiline" => Modifier::ReMultiLine,
            "s" | "dotall" => Modifier::ReDotAll,
            "cidr" => Modifier::Cidr,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "wide" => Modifier::Wide,
            "windash" => Modifier::Windash,
            "exists" => Modifier::Exists,
            "cased" => Modifier::Cased,
            "fieldref" => Modifier::FieldRef,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "expand" => Modifier::Expand,
            "neq" => Modifier::Neq,
            "minute" => Modifier::Time(imdsguard_rules::TimePart::Minute),
            "hour" => Modifier::Time(imdsguard_rules::TimePart::Hour),
            "day" => Modifier::Time(imdsguard_rules::TimePart::Day),
            "week" => Modifier::Time(imdsguard_rules::TimePart::Week),
            "month" => Modifier::Time(imdsguard_rules::TimePart::Month),
            "year" => Modifier::Time(imdsguard_rules::TimePart::Year),
            _ => return None,
        })
    }

    pub(crate) fn is_numeric(self) -> bool {
        matches!(
            self,
            Modifier::Gt | Modifier::Gte | Modifier::Lt | Modifier::Lte
        )
    }
}

/// One field test of a search: `field|modifiers: values`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldTest {
    /// The field; `None` for a keyword test over the whole record.
    pub field: Option<String>,
    /// The modifiers, in order.
    pub modifiers: Vec<Modifier>,
    /// The values: any must match, or all with [`Modifier::All`].
    pub values: Vec<SigmaValue>,
}

impl FieldTest {
    /// Whether every value must match.
    pub fn all(&self) -> bool {
        self.modifiers.contains(&Modifier::All)
    }
}

/// A search identifier's definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    /// A map: every field test holds.
    Map(Vec<FieldTest>),
    /// A list of maps: one of them holds.
    AnyOf(Vec<Vec<FieldTest>>),
    /// Keywords: a value anywhere in the record (one test without a field).
    Keywords(FieldTest),
}

/// `detection`: the searches and the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Search identifiers in file order.
    pub searches: Vec<(String, Search)>,
    /// The condition (several listed conditions are joined with `or`).
    pub condition: Condition,
}

impl Detection {
    /// The search named `name`.
    pub fn search(&self, name: &str) -> Option<&Search> {
        self.searches
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// The identifiers a condition pattern stands for (`them`: all but those starting with `_`).
    pub fn expand(&self, pattern: &str) -> Vec<&str> {
        self.searches
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                if pattern == "them" {
                    !n.starts_with('_')
                } else {
                    pattern_matches(pattern, n)
                }
            })
            .collect()
    }
}

/// The kind of a correlation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationKind {
    /// `event_count`
    EventCount,
    /// `value_count`
    ValueCount,
    /// `temporal`
    Temporal,
    /// `temporal_ordered`
    TemporalOrdered,
}

/// A correlation rule's body.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Its kind.
    pub kind: CorrelationKind,
    /// The rules it correlates (names or ids).
    pub rules: Vec<String>,
    /// Fields whose values group events.
    pub group_by: Vec<String>,
    /// The window, in seconds.
    pub timespan_secs: u64,
    /// The count condition (`gt`, `gte`, `lt`, `lte`, `eq`, with bounds), if any.
    pub condition: Vec<(String, i64)>,
    /// For `value_count`: the field (or fields, whose value combinations) counted distinctly.
    pub field: Vec<String>,
    /// `aliases`: a `group-by` name that stands for another field in each rule's events
    /// (alias -> [(rule name, field)]).
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    /// `generate`: whether the rules it names also alert on their own (`false` by default: they
    /// only feed the correlation).
    pub generate: bool,
}

impl Correlation {
    /// The field a `group-by` name reads in the events of a rule known by `names` (its `name`,
    /// its `id`): the alias's field for that rule, or the name itself when it is no alias.
    /// `None` when it is an alias that does not name the rule.
    pub fn group_field<'a>(&'a self, group: &'a str, names: &[String]) -> Option<&'a str> {
        match self.aliases.iter().find(|(a, _)| a == group) {
            None => Some(group),
            Some((_, per_rule)) => per_rule
                .iter()
                .find(|(r, _)| names.iter().any(|n| n == r))
                .map(|(_, f)| f.as_str()),
        }
    }
}

/// One Sigma rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaRule {
    /// The file it came from.
    pub path: String,
    /// `title`
    pub title: String,
    /// `id`
    pub id: Option<String>,
    /// `name` (what correlation rules refer to)
    pub name: Option<String>,
    /// `status`
    pub status: Option<Status>,
    /// `level`
    pub level: Option<Level>,
    /// `description`
    pub description: Option<String>,
    /// `tags` (`attack.t1552.005`, ...)
    pub tags: Vec<String>,
    /// `falsepositives`
    pub falsepositives: Vec<String>,
    /// `logsource`
    pub logsource: LogSource,
    /// `detection`, for detection rules.
    pub detection: Option<Detection>,
    /// `correlation`, for correlation rules.
    pub correlation: Option<Correlation>,
    /// `filter.rules`, for Sigma filters: `detection` then holds the filter's searches and
    /// condition, which [`crate::apply_filters`] adds to the rules it names.
    pub filter: Option<FilterTarget>,
}

/// The rules a Sigma filter applies to (`filter.rules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterTarget {
    /// `any` (or an empty list): every rule whose log source the filter's contains.
    Any,
    /// Rules by `id` or `name`.
    Rules(Vec<String>),
}
