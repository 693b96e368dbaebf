//! Windows events as JSON from the evtx crate and `evtx_dump`: `{"Event": {"System": {...},
//! "EventData": {...}}}`, attributes under `#attributes`.

use crate::json::{Map, Value};
use imdsguard_event::{Event, Format, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{event_id, missing, Decoding, JsonDecoder, Skip};
use crate::fields::{object, Fields, Nested};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::EvtxJson,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    object(v, &["Event", "System"]).is_some()
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let system = object(v, &["Event", "System"]).ok_or_else(|| missing("Event.System"))?;
    let id = event_id(system.get("EventID")).ok_or_else(|| missing("Event.System.EventID"))?;
    let empty = Map::new();
    let user_data;
    let data: &dyn Fields = match object(v, &["Event", "EventData"]) {
        Some(d) => d,
        None => match object(v, &["Event", "UserData"]) {
            Some(u) => {
                user_data = Nested(u);
                &user_data
            }
            None => &empty,
        },
    };
    let origin = system
        .text(&["Channel"])
        .or_else(|| object(system, &["Provider", "#attributes"]).and_then(|a| a.text(&["Name"])))
        .unwrap_or_default();
    let rec = WinRecord {
        event_id: id,
        origin,
        data,
        time: object(system, &["TimeCreated", "#attributes"]).and_then(|a| a.text(&["SystemTime"])),
        clock: imdsguard_event::Clock::Utc,
        host: system.text(&["Computer"]),
        provider: object(system, &["Provider", "#attributes"]).and_then(|a| a.raw("Name")),
        system: Some(system),
        record_id: None,
    };
    Ok(windows_event(source, Format::EvtxJson, &rec, how))
}

/// Decodes a record value as the evtx crate renders it (used for EVTX files).
pub(crate) fn decode_value(v: &Value, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let map = v.as_object().ok_or_else(|| missing("a JSON object"))?;
    decode(map, source, how)
}
