//! Microsoft Sentinel `SecurityEvent` rows: EventData as an XML string, some fields also as
//! columns.

use crate::json::{Map, Value};
use imdsguard_event::{Event, Format, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{event_id, missing, Decoding, JsonDecoder, Skip};
use crate::fields::{xml_event_data, Fields, Layered};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::SentinelSecurityEvent,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("Type").and_then(Value::as_str) == Some("SecurityEvent")
        || v.get("EventData")
            .and_then(Value::as_str)
            .is_some_and(|s| s.trim_start().starts_with('<'))
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let id = event_id(v.get("EventID")).ok_or_else(|| missing("EventID"))?;
    let pairs = v
        .get("EventData")
        .and_then(Value::as_str)
        .map(xml_event_data)
        .unwrap_or_default();
    let data = Layered {
        pairs,
        fallback: Some(v),
    };
    let rec = WinRecord {
        event_id: id,
        origin: v
            .text(&["Channel", "EventSourceName"])
            .unwrap_or_else(|| "Security".into()),
        data: &data,
        time: v.text(&["TimeGenerated", "TimeCollected"]),
        clock: imdsguard_event::Clock::Utc,
        host: v.text(&["Computer"]),
        provider: v.raw_any(&["Provider", "EventSourceName"]),
        system: None,
        record_id: v.text(&["EventRecordId", "EventRecordID"]),
    };
    Ok(windows_event(
        source,
        Format::SentinelSecurityEvent,
        &rec,
        how,
    ))
}
