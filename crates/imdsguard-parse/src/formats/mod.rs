//! One decoder per format. Each has a `sniff` rule (does a record look like mine?) and a `decode`
//! function; [`decode_json`] tries them in order. Adding a format is one file here plus its line
//! in [`JSON_FORMATS`] and its fixtures.

pub(crate) mod auditd;
pub(crate) mod defender;
mod ecs;
pub(crate) mod evtx_json;
mod nxlog;
mod sentinel;
mod syslog;
pub(crate) mod windows;
mod winlogbeat;
pub(crate) mod xml;

use crate::json::{Map, Value};
use imdsguard_event::{Event, FieldSet, Format, SourceRef};

use crate::error::SkipReason;

/// Why a record was not decoded.
pub(crate) type Skip = (SkipReason, String);

type Sniff = fn(&Map<'_>) -> bool;
type Decode = fn(&Map<'_>, SourceRef, Decoding<'_>) -> Result<Event, Skip>;

/// What a reader asks of every decoder, passed with each record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decoding<'a> {
    /// The record fields to keep beside the typed ones ([`crate::ReadOptions::fields`]).
    pub fields: &'a FieldSet,
}

impl Decoding<'_> {
    pub(crate) fn of(opts: &crate::ReadOptions) -> Decoding<'_> {
        Decoding {
            fields: &opts.fields,
        }
    }
}

/// The JSON decoders in sniffing order: the most specific shapes first.
const JSON_FORMATS: &[(Format, Sniff, Decode)] = &[
    (Format::EvtxJson, evtx_json::sniff, evtx_json::decode),
    (Format::Winlogbeat, winlogbeat::sniff, winlogbeat::decode),
    (
        Format::SentinelWindowsEvent,
        sentinel::sniff_windows_event,
        sentinel::decode_windows_event,
    ),
    (
        Format::SentinelSecurityEvent,
        sentinel::sniff_security_event,
        sentinel::decode_security_event,
    ),
    (Format::SentinelSyslog, syslog::sniff, syslog::decode),
    (
        Format::DefenderStreaming,
        defender::sniff_streaming,
        defender::decode_streaming,
    ),
    (
        Format::DefenderJson,
        defender::sniff_row,
        defender::decode_row,
    ),
    (Format::NxlogJson, nxlog::sniff, nxlog::decode),
    (Format::Ecs, ecs::sniff, ecs::decode),
];

/// The formats a JSON record is tried against, for error messages.
pub fn json_format_names() -> Vec<&'static str> {
    JSON_FORMATS.iter().map(|(f, _, _)| f.as_str()).collect()
}

/// Decodes one JSON record with the first decoder whose sniffing rule accepts it, or the forced
/// format.
pub(crate) fn decode_json(
    v: &Value,
    source: SourceRef,
    forced: Option<Format>,
    how: Decoding<'_>,
) -> Result<Event, Skip> {
    let Some(map) = v.as_object() else {
        return Err((
            SkipReason::UnknownShape,
            format!("a JSON {} is not a record", kind_of(v)),
        ));
    };
    for (format, sniff, decode) in JSON_FORMATS {
        let chosen = match forced {
            Some(f) => f == *format,
            None => sniff(map),
        };
        if chosen {
            return decode(map, source, how);
        }
    }
    match forced {
        Some(f) => Err((
            SkipReason::UnknownShape,
            format!("{} is not a JSON format", f.as_str()),
        )),
        None => Err((
            SkipReason::UnknownShape,
            format!(
                "no decoder recognizes this record (tried {})",
                json_format_names().join(", ")
            ),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An event id given as a number or as text.
pub(crate) fn event_id(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => event_id(o.get("#text").or_else(|| o.get("value"))),
        _ => None,
    }
}

pub(crate) fn missing(what: &str) -> Skip {
    (SkipReason::MissingField, format!("no {what}"))
}
