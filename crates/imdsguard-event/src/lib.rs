//! The vocabulary shared by every imdsguard stage.
//!
//! - [`Severity`]: the five ordered levels alerts carry (`info` < `low` < `medium` < `high` < `critical`).
//! - [`Technique`]: a MITRE ATT&CK technique id such as `T1552.005`, validated on construction.
//! - [`SourceRef`]: where a record came from, a file path plus a 1-based line (line formats) or a
//!   record number (EVTX), so that every alert can be traced back to the bytes that raised it.
//!
//! - [`Event`]: one decoded log record, typed: its [`EventKind`], the [`Format`] that read it, the
//!   acting [`Process`] and its parent, [`Network`] detail, DNS query, and its [`SourceRef`].
//!
//! - [`parse_time_ms`]: record times of every format on one clock (ms since the epoch).
//!
//! This crate does no I/O and depends on nothing of the project's; every other crate may depend on it.

mod event;
mod format;
mod inventory;
mod sym;
mod time;

pub use event::{
    Cloud, Container, Event, EventKind, Http, MetadataOptions, Network, Principal, Process, Vantage,
};
pub use format::{Format, FormatInfo, Platform, UnknownFormat};
pub use inventory::{Instance, Inventory};
pub use sym::{FieldSet, Sym};
pub use time::{format_time_ms, parse_time_in, parse_time_ms, Clock, LocalZone};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgent a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording, not worth a look on its own.
    Info,
    /// Unusual but most likely benign.
    Low,
    /// Needs an analyst's look.
    Medium,
    /// Likely malicious.
    High,
    /// Credential theft in progress or done.
    Critical,
}

impl Severity {
    /// All levels, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the five severity names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {given:?}: expected one of info, low, medium, high, critical")]
pub struct ParseSeverityError {
    /// What was given.
    pub given: String,
}

impl FromStr for Severity {
    type Err = ParseSeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseSeverityError {
                given: s.to_owned(),
            })
    }
}

/// A MITRE ATT&CK technique or sub-technique id (`T1552` or `T1552.005`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Technique(String);

/// A string that is not shaped like an ATT&CK technique id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not an ATT&CK technique id (expected T followed by four digits, optionally .NNN)"
)]
pub struct ParseTechniqueError {
    /// What was given.
    pub given: String,
}

impl Technique {
    /// Validates and wraps an id such as `T1552.005`.
    pub fn new(id: &str) -> Result<Self, ParseTechniqueError> {
        let bytes = id.as_bytes();
        let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        let ok = match bytes.len() {
            5 => bytes[0] == b'T' && digits(&bytes[1..5]),
            9 => {
                bytes[0] == b'T' && digits(&bytes[1..5]) && bytes[5] == b'.' && digits(&bytes[6..9])
            }
            _ => false,
        };
        if ok {
            Ok(Technique(id.to_owned()))
        } else {
            Err(ParseTechniqueError {
                given: id.to_owned(),
            })
        }
    }

    /// The id as written, e.g. `T1552.005`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Technique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Technique::new(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where in its input a record was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceRef {
    /// The file as it was named on the command line (`-` for standard input).
    pub path: String,
    /// Where in the file.
    #[serde(flatten)]
    pub position: Position,
}

/// A record's position inside its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// 1-based line number, for line-oriented formats.
    Line(u64),
    /// An EVTX record: its `System/EventRecordID` (what Event Viewer, analysts and other tools
    /// cite) and the number in its record header, which differs in exported or merged files.
    Record {
        /// `System/EventRecordID`, or the header's number when the record has none.
        id: u64,
        /// The record header's number.
        header: u64,
    },
    /// An element of a file's array of records (CloudTrail's `Records`): the line it starts on
    /// and its 0-based index, as `jq '.Records[N]'` finds it; a log file delivered to S3 is one
    /// line.
    Element {
        /// 1-based line the element starts on.
        line: u64,
        /// 0-based index in the array.
        index: u64,
    },
}

impl Position {
    /// The number an analyst looks the record up by: its line, or its `EventRecordID`.
    pub fn number(self) -> u64 {
        match self {
            Position::Line(n)
            | Position::Record { id: n, .. }
            | Position::Element { line: n, .. } => n,
        }
    }
}

/// `{"line": N}`, `{"record": ID, "header_record": N}`, or `{"line": N, "element": I}`;
/// flattened into [`SourceRef`].
impl Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match *self {
            Position::Line(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("line", &n)?;
                m.end()
            }
            Position::Record { id, header } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("record", &id)?;
                m.serialize_entry("header_record", &header)?;
                m.end()
            }
            Position::Element { line, index } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("line", &line)?;
                m.serialize_entry("element", &index)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            line: Option<u64>,
            record: Option<u64>,
            header_record: Option<u64>,
            element: Option<u64>,
        }
        let r = Raw::deserialize(d)?;
        match (r.line, r.record) {
            (Some(line), None) => Ok(match r.element {
                Some(index) => Position::Element { line, index },
                None => Position::Line(line),
            }),
            (None, Some(id)) => Ok(Position::Record {
                id,
                header: r.header_record.unwrap_or(id),
            }),
            _ => Err(serde::de::Error::custom(
                "a source has either a line or a record",
            )),
        }
    }
}

/// A 64-bit FNV-1a hash of `parts` (each followed by a separator byte): stable across runs,
/// builds and platforms, for ids that must come out the same every time.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A host name as every output and every state keyed by host writes it: trimmed, case-folded,
/// without a trailing dot; `None` for an empty name or a placeholder (`-`).
pub fn host_name(raw: &str) -> Option<String> {
    let t = raw.trim().trim_end_matches('.');
    (!t.is_empty() && t != "-").then(|| t.to_ascii_lowercase())
}

/// [`host_name`] in place: no allocation when the name is already in that form.
pub fn normalize_host_name(host: &mut Option<String>) {
    let Some(h) = host else { return };
    let t = h.trim().trim_end_matches('.');
    if t.is_empty() || t == "-" {
        *host = None;
    } else if t.len() != h.len() {
        *host = Some(t.to_ascii_lowercase());
    } else {
        h.make_ascii_lowercase();
    }
}

/// The identity that joins one host's names: an address as it is, a DNS name's first label.
/// `WORKSTATION5` and `workstation5.theshire.local` are one host, as Windows names them
/// (a computer's name is unique in its domain); `name` is a [`host_name`].
pub fn host_key(name: &str) -> &str {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name;
    }
    name.split('.').next().unwrap_or(name)
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Line(n) => write!(f, "{}:{}", self.path, n),
            Position::Record { id, .. } => write!(f, "{} record {}", self.path, id),
            Position::Element { line, index } => write!(f, "{}:{} [{}]", self.path, line, index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_and_names_round_trip() {
        let mut sorted = Severity::ALL;
        sorted.sort();
        assert_eq!(sorted, Severity::ALL);
        for level in Severity::ALL {
            assert_eq!(level.as_str().parse::<Severity>(), Ok(level));
            assert_eq!(level.as_str().to_uppercase().parse::<Severity>(), Ok(level));
        }
        let err = "severe".parse::<Severity>().unwrap_err();
        assert!(err.to_string().contains("\"severe\""), "{err}");
    }

    #[test]
    fn technique_ids_are_validated() {
        for good in ["T1552", "T1552.005", "T1190"] {
            assert_eq!(Technique::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "T155",
            "t1552",
            "T1552.5",
            "T1552-005",
            "T1552.0055",
            "X1552.005",
        ] {
            assert!(Technique::new(bad).is_err(), "{bad} accepted");
        }
        let parsed: Result<Technique, _> = serde_json::from_str("\"T1552.05\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn one_host_by_any_of_its_names() {
        assert_eq!(
            host_name(" WORKSTATION5.theshire.local. "),
            Some("workstation5.theshire.local".into())
        );
        assert_eq!(host_name("-"), None);
        assert_eq!(host_name(""), None);
        assert_eq!(host_key("workstation5.theshire.local"), "workstation5");
        assert_eq!(host_key("workstation5"), "workstation5");
        assert_eq!(host_key("10.0.0.5"), "10.0.0.5");
        assert_eq!(host_key("fd00::1"), "fd00::1");
    }

    #[test]
    fn source_ref_serializes_line_or_record() {
        let line = SourceRef {
            path: "a.jsonl".into(),
            position: Position::Line(7),
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"path":"a.jsonl","line":7}"#
        );
        assert_eq!(line.to_string(), "a.jsonl:7");
        let record = SourceRef {
            path: "s.evtx".into(),
            position: Position::Record { id: 42, header: 7 },
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"path":"s.evtx","record":42,"header_record":7}"#
        );
        assert_eq!(record.to_string(), "s.evtx record 42");
        let back: SourceRef =
            serde_json::from_str(r#"{"path":"s.evtx","record":42,"header_record":7}"#).unwrap();
        assert_eq!(back, record);
    }
}
