//! Windows events flattened into one JSON object, as NXLog `im_msvistalog` writes them (and the
//! flat exports that copy its layout): `EventID`, `Channel`/`SourceName`, `Hostname`, and the
//! EventData fields at the top level.

use crate::json::Map;
use imdsguard_event::{Event, Format, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{event_id, missing, Skip};
use crate::fields::Fields;

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.contains_key("EventID")
        && (v.contains_key("Channel")
            || v.contains_key("SourceName")
            || v.contains_key("SourceModuleType"))
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef) -> Result<Event, Skip> {
    let id = event_id(v.get("EventID")).ok_or_else(|| missing("EventID"))?;
    let rec = WinRecord {
        event_id: id,
        origin: v
            .text(&["Channel", "SourceName", "ProviderName"])
            .unwrap_or_default(),
        data: v,
        time: v.text(&["EventTime", "TimeCreated", "@timestamp", "UtcTime"]),
        host: v.text(&["Hostname", "Computer", "host"]),
        provider: v.raw_any(&["SourceName", "ProviderName", "Provider"]),
        system: None,
    };
    Ok(windows_event(source, Format::NxlogJson, &rec))
}
