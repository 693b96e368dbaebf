//! Microsoft Defender XDR streaming API records: `category: AdvancedHunting-<table>`, the row
//! under `properties`.

use crate::fields::Fields;
use crate::json::{Map, Value};
use imdsguard_event::{Event, Format, SourceRef};

use super::defender::row_event;
use super::{missing, Decoding, JsonDecoder, Skip};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::DefenderStreaming,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("category")
        .and_then(Value::as_str)
        .is_some_and(|c| c.starts_with("AdvancedHunting-"))
        && v.get("properties").is_some_and(Value::is_object)
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _how: Decoding<'_>) -> Result<Event, Skip> {
    let row = v
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("properties"))?;
    let table = v
        .get("category")
        .and_then(Value::as_str)
        .and_then(|c| c.strip_prefix("AdvancedHunting-"));
    let mut e = row_event(row, source, Format::DefenderStreaming, table)?;
    if e.time.is_none() {
        e.time = v.text(&["time"]);
    }
    Ok(e)
}
