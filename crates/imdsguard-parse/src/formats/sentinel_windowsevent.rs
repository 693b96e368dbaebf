//! Microsoft Sentinel `WindowsEvent` rows (Windows events the Azure Monitor Agent collects,
//! Sysmon among them): EventData as a JSON string.

use crate::json::{Map, Value};
use imdsguard_event::{Event, Format, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{event_id, missing, Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::Fields;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::SentinelWindowsEvent,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("Type").and_then(Value::as_str) == Some("WindowsEvent")
        || (v.contains_key("EventData")
            && v.get("EventData")
                .and_then(Value::as_str)
                .is_some_and(|s| s.trim_start().starts_with('{')))
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let id = event_id(v.get("EventID")).ok_or_else(|| missing("EventID"))?;
    let data: Map<'_> = match v.get("EventData") {
        Some(Value::String(s)) => match serde_json::from_str::<Value<'_>>(s) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err((
                    SkipReason::InvalidJson,
                    "EventData is not a JSON object".to_owned(),
                ))
            }
            Err(e) => {
                return Err((
                    SkipReason::InvalidJson,
                    format!("EventData is not a JSON object: {e}"),
                ))
            }
        },
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let rec = WinRecord {
        event_id: id,
        origin: v.text(&["Channel", "Provider"]).unwrap_or_default(),
        data: &data,
        time: v.text(&["TimeGenerated", "TimeCreated"]),
        clock: imdsguard_event::Clock::Utc,
        host: v.text(&["Computer"]),
        provider: v.raw_any(&["Provider", "EventSourceName"]),
        system: None,
        record_id: v.text(&["EventRecordId", "EventRecordID"]),
    };
    Ok(windows_event(
        source,
        Format::SentinelWindowsEvent,
        &rec,
        how,
    ))
}
