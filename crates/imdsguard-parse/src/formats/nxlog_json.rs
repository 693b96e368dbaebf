//! Windows events flattened into one JSON object, as NXLog `im_msvistalog` writes them (and the
//! flat exports that copy its layout): `EventID`, `Channel`/`SourceName`, `Hostname`, and the
//! EventData fields at the top level.

use crate::json::Map;
use imdsguard_event::{Clock, Event, Format, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{event_id, missing, Decoding, JsonDecoder, Skip};
use crate::fields::Fields;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::NxlogJson,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.contains_key("EventID")
        && (v.contains_key("Channel")
            || v.contains_key("SourceName")
            || v.contains_key("SourceModuleType"))
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let id = event_id(v.get("EventID")).ok_or_else(|| missing("EventID"))?;
    // NXLog writes the collector's local time without a zone (`EventTime`); a pipeline after it
    // often adds UTC (`@timestamp`, `TimeCreated` with a `Z`), which is preferred.
    let zoned = |name: &str| v.raw(name).filter(|t| writes_zone(t));
    let (time, clock) = match zoned("@timestamp").or_else(|| zoned("TimeCreated")) {
        Some(t) => (Some(t.trim().to_owned()), Clock::Utc),
        None => (
            v.text(&["EventTime", "TimeCreated", "EventReceivedTime"]),
            Clock::Local,
        ),
    };
    let rec = WinRecord {
        event_id: id,
        origin: v
            .text(&["Channel", "SourceName", "ProviderName"])
            .unwrap_or_default(),
        data: v,
        time,
        clock,
        host: v.text(&["Hostname", "Computer", "host"]),
        provider: v.raw_any(&["SourceName", "ProviderName", "Provider"]),
        system: None,
        record_id: v.text(&["RecordNumber"]),
    };
    Ok(windows_event(source, Format::NxlogJson, &rec, how))
}

/// Whether a time names its zone: a `Z` or an offset after the clock time.
fn writes_zone(t: &str) -> bool {
    let t = t.trim();
    t.ends_with(['Z', 'z']) || t.len() > 19 && t[19..].contains(['+', '-'])
}
