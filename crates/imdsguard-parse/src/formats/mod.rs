//! One file per format, named after it (`evtx-json` is `evtx_json.rs`), beside what several
//! formats share (`windows.rs`: Windows events into the typed model; `defender.rs`: an
//! advanced-hunting row). A JSON format's file holds its [`JsonDecoder`] — a `sniff` rule and a
//! `decode` function — and [`decode_json`] tries them in [`JSON_FORMATS`]' order. Adding a format
//! is its line in the registry (`imdsguard_event::Format`), its file here, its line in
//! [`JSON_FORMATS`] and its fixtures.

pub(crate) mod auditd;
pub(crate) mod aws_alb;
pub(crate) mod aws_cloudtrail;
pub(crate) mod aws_vpc_flow;
mod aws_waf;
mod azure_activity;
mod azure_entra;
mod azure_http;
mod cloud_fields;
mod defender;
pub(crate) mod defender_csv;
mod defender_json;
mod defender_streaming;
mod ecs;
pub(crate) mod evtx_json;
mod gcp_audit;
mod gcp_http;
pub(crate) mod haproxy;
pub(crate) mod imdsguard_proxy;
pub(crate) mod log_format;
mod nxlog_json;
mod sentinel_securityevent;
mod sentinel_syslog;
mod sentinel_windowsevent;
pub(crate) mod squid;
pub(crate) mod w3c;
pub(crate) mod web_access;
pub(crate) mod windows;
pub(crate) mod windows_xml;
mod winlogbeat;
pub(crate) mod zeek_conn;
pub(crate) mod zeek_dns;
pub(crate) mod zeek_http;
pub(crate) mod zeek_tsv;

use std::io::BufRead;

use crate::json::{Map, Value};
use crate::{ReadOptions, Summary};
use imdsguard_event::{Event, FieldSet, Format, SourceRef};

use crate::error::SkipReason;

/// Why a record was not decoded.
pub(crate) type Skip = (SkipReason, String);

type Sniff = fn(&Map<'_>) -> bool;
type Decode = fn(&Map<'_>, SourceRef, Decoding<'_>) -> Result<Event, Skip>;

/// A JSON format's decoder: its sniffing rule (does a record look like mine?) and its decoding.
pub(crate) struct JsonDecoder {
    pub format: Format,
    pub sniff: Sniff,
    pub decode: Decode,
}

/// The JSON decoders in sniffing order: the most specific shapes first. Each is its format's
/// file; the other formats (`auditd`, `defender-csv`, `windows-xml`) are told apart by their
/// first line or bytes before any record is read.
const JSON_FORMATS: &[JsonDecoder] = &[
    evtx_json::DECODER,
    winlogbeat::DECODER,
    sentinel_windowsevent::DECODER,
    sentinel_securityevent::DECODER,
    sentinel_syslog::DECODER,
    azure_http::DECODER,
    defender_streaming::DECODER,
    defender_json::DECODER,
    nxlog_json::DECODER,
    // Cloud audit records carry no Windows event id: tried after the Windows carriers, whose
    // records are the bulk of most inputs.
    azure_entra::DECODER,
    azure_activity::DECODER,
    imdsguard_proxy::DECODER,
    zeek_http::DECODER,
    zeek_conn::DECODER,
    zeek_dns::DECODER,
    aws_waf::DECODER,
    aws_cloudtrail::DECODER,
    gcp_audit::DECODER,
    gcp_http::DECODER,
    ecs::DECODER,
];

/// A line format's reading: the file's name, its first record line (already read, to choose
/// the reading) and that line's number, then the rest of the stream.
pub(crate) type ReadLines =
    fn(&str, Vec<u8>, u64, &mut dyn BufRead, &ReadOptions, &mut Summary, &mut dyn FnMut(Event));

/// A format told apart by its first line: its sniffing rule and its reading.
pub(crate) struct LineReader {
    /// The formats this reading reads (`--format` chooses it for any of them).
    pub formats: &'static [Format],
    /// Whether a first line starts this reading.
    pub sniff: fn(&str) -> bool,
    /// The reading.
    pub read: Reading,
    /// Whether its formats also come as JSON lines (Zeek's): then a forced format chooses this
    /// reading only when the first line is sniffed.
    pub also_json: bool,
}

/// A decoder of one line of a format whose every line is a record.
pub(crate) type DecodeLine = fn(&str, SourceRef) -> Result<Event, Skip>;

/// How a line format is read: by a reader of its own (headers, records across lines), or line by
/// line, each line a record ([`crate::each_record_line`]).
pub(crate) enum Reading {
    /// A reader of its own.
    Lines(ReadLines),
    /// Each line decoded alone.
    EveryLine(DecodeLine),
}

/// The line formats in sniffing order: the most specific first lines first.
pub(crate) const LINE_FORMATS: &[LineReader] = &[
    LineReader {
        formats: &[Format::Auditd],
        sniff: auditd::sniff_line,
        read: Reading::Lines(auditd::read),
        also_json: false,
    },
    LineReader {
        formats: &[Format::ZeekHttp, Format::ZeekConn, Format::ZeekDns],
        sniff: zeek_tsv::sniff_line,
        read: Reading::Lines(zeek_tsv::read),
        also_json: true,
    },
    LineReader {
        formats: &[Format::W3c],
        sniff: w3c::sniff_line,
        read: Reading::Lines(w3c::read),
        also_json: false,
    },
    LineReader {
        formats: &[Format::WebAccess],
        sniff: web_access::sniff_line,
        read: Reading::EveryLine(web_access::decode_line),
        also_json: false,
    },
    LineReader {
        formats: &[Format::Haproxy],
        sniff: haproxy::sniff_line,
        read: Reading::EveryLine(haproxy::decode_line),
        also_json: false,
    },
    LineReader {
        formats: &[Format::Squid],
        sniff: squid::sniff_line,
        read: Reading::EveryLine(squid::decode_line),
        also_json: false,
    },
    LineReader {
        formats: &[Format::AwsAlb],
        sniff: aws_alb::sniff_line,
        read: Reading::EveryLine(aws_alb::decode_line),
        also_json: false,
    },
    LineReader {
        formats: &[Format::AwsVpcFlow],
        sniff: aws_vpc_flow::sniff_line,
        read: Reading::Lines(aws_vpc_flow::read),
        also_json: false,
    },
    LineReader {
        formats: &[Format::DefenderCsv],
        sniff: defender_csv::sniff_csv_header,
        read: Reading::Lines(defender_csv::read),
        also_json: false,
    },
];

/// Whether a line follows the user's access-log layout (`--log-format`).
pub(crate) fn follows_layout(line: &[u8], opts: &ReadOptions) -> bool {
    opts.log_format.as_ref().is_some_and(|f| {
        let text = String::from_utf8_lossy(line);
        f.follows(text.trim_end_matches(['\r', '\n']))
    })
}

/// The line reading for a first line: the forced format's, or the first whose rule sniffs it.
pub(crate) fn line_reader(first: &[u8], forced: Option<Format>) -> Option<&'static LineReader> {
    let text = String::from_utf8_lossy(first);
    LINE_FORMATS.iter().find(|l| match forced {
        Some(f) => l.formats.contains(&f) && (!l.also_json || (l.sniff)(&text)),
        None => (l.sniff)(&text),
    })
}

/// The names of the line formats, for messages.
pub(crate) fn line_format_names() -> Vec<&'static str> {
    LINE_FORMATS
        .iter()
        .flat_map(|l| l.formats.iter().map(|f| f.as_str()))
        .collect()
}

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

/// The formats a JSON record is tried against, for error messages.
pub fn json_format_names() -> Vec<&'static str> {
    JSON_FORMATS.iter().map(|d| d.format.as_str()).collect()
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
    for d in JSON_FORMATS {
        let chosen = match forced {
            Some(f) => f == d.format,
            None => (d.sniff)(map),
        };
        if chosen {
            return (d.decode)(map, source, how);
        }
    }
    match forced {
        Some(f) => Err((
            SkipReason::UnknownShape,
            format!("{} is not a JSON format", f.as_str()),
        )),
        // An inventory read as a log: said what it is and how to give it.
        None if map.get("Reservations").is_some() || map.get("vmId").is_some() => Err((
            SkipReason::UnknownShape,
            "an inventory of instances (aws ec2 describe-instances, az vm list -d), not a log: \
             give it with --inventory, or name the file among the inputs"
                .into(),
        )),
        // A Zeek record of a log not read (ssh, files, x509 …): said as such, not as junk.
        None if map.get("uid").is_some()
            && (map.get("id.orig_h").is_some() || map.get("id_orig_h").is_some()) =>
        {
            Err((
                SkipReason::UnknownShape,
                "a Zeek record of a log not read (the Zeek logs read are http, conn and dns)"
                    .into(),
            ))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format the registry says `--format` can force has its file here, named after it,
    /// and a JSON format is sniffed by exactly one decoder.
    #[test]
    fn each_format_is_one_file_and_at_most_one_json_decoder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/formats");
        for info in Format::selectable() {
            let file = dir.join(format!("{}.rs", info.name.replace('-', "_")));
            assert!(file.is_file(), "{} has no {}", info.name, file.display());
            let decoders = JSON_FORMATS
                .iter()
                .filter(|d| d.format == info.format)
                .count();
            assert!(decoders <= 1, "{} has {decoders} JSON decoders", info.name);
        }
        // Every JSON decoder is a selectable format.
        for d in JSON_FORMATS {
            assert!(d.format.info().selectable, "{}", d.format);
        }
    }

    #[test]
    fn a_forced_format_decodes_with_its_decoder_only() {
        let fields = FieldSet::default();
        let how = Decoding { fields: &fields };
        let v: Value = serde_json::from_str(r#"{"DeviceName":"h","ActionType":"ConnectionSuccess","Timestamp":"2026-01-01T00:00:00Z"}"#).unwrap();
        let at = SourceRef {
            path: "f".into(),
            position: imdsguard_event::Position::Line(1),
        };
        let sniffed = decode_json(&v, at.clone(), None, how).unwrap();
        assert_eq!(sniffed.format, Format::DefenderJson);
        let forced = decode_json(&v, at.clone(), Some(Format::Ecs), how);
        assert!(forced.map(|e| e.format) != Ok(Format::DefenderJson));
        let (reason, detail) = decode_json(&v, at, Some(Format::Auditd), how).unwrap_err();
        assert_eq!(reason, SkipReason::UnknownShape);
        assert_eq!(detail, "auditd is not a JSON format");
    }
}
