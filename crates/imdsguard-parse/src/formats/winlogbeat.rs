//! Winlogbeat and Elastic Agent Windows events: `winlog.event_id`, `winlog.channel`,
//! `winlog.event_data`, with `host.name` and `@timestamp` beside them; and Winlogbeat 5.x and
//! 6.x, which wrote the same at the top level (`event_id`, `log_name`, `source_name`,
//! `computer_name`, `record_number`, `event_data`): the shape of the 2019 Mordor datasets.

use crate::json::Map;
use imdsguard_event::{Event, Format, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{event_id, missing, Decoding, JsonDecoder, Skip};
use crate::fields::{object, Fields, Nested};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::Winlogbeat,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    object(v, &["winlog"]).is_some_and(|w| w.contains_key("event_id")) || legacy(v)
}

/// Winlogbeat before 7.0: the record's fields at the top level.
fn legacy(v: &Map<'_>) -> bool {
    v.contains_key("event_id") && v.contains_key("log_name")
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    if !v.contains_key("winlog") && legacy(v) {
        return decode_winlog(v, v, source, how);
    }
    let winlog = object(v, &["winlog"]).ok_or_else(|| missing("winlog"))?;
    decode_winlog(v, winlog, source, how)
}

/// `winlog` holds the record's own fields: `v.winlog` (7.x and later) or `v` itself.
fn decode_winlog(
    v: &Map<'_>,
    winlog: &Map<'_>,
    source: SourceRef,
    how: Decoding<'_>,
) -> Result<Event, Skip> {
    let id = event_id(winlog.get("event_id")).ok_or_else(|| missing("winlog.event_id"))?;
    let empty = Map::new();
    let user_data;
    let data: &dyn Fields = match object(winlog, &["event_data"]) {
        Some(d) => d,
        None => match object(winlog, &["user_data"]) {
            Some(u) => {
                user_data = Nested(u);
                &user_data
            }
            None => &empty,
        },
    };
    let rec = WinRecord {
        event_id: id,
        origin: winlog
            .text(&["channel", "log_name", "provider_name", "source_name"])
            .unwrap_or_default(),
        data,
        time: v.text(&["@timestamp"]),
        clock: imdsguard_event::Clock::Utc,
        host: winlog
            .text(&["computer_name"])
            .or_else(|| object(v, &["host"]).and_then(|h| h.text(&["name", "hostname"]))),
        provider: winlog
            .raw("provider_name")
            .or_else(|| winlog.raw("source_name")),
        system: None,
        record_id: winlog.text(&["record_id", "record_number"]),
    };
    Ok(windows_event(source, Format::Winlogbeat, &rec, how))
}
