//! Microsoft Defender XDR advanced-hunting rows as JSON, flat, as query exports and API query
//! results write them.

use crate::json::Map;
use imdsguard_event::{Event, Format, SourceRef};

use super::defender::row_event;
use super::{Decoding, JsonDecoder, Skip};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::DefenderJson,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.contains_key("DeviceName") && v.contains_key("ActionType")
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _how: Decoding<'_>) -> Result<Event, Skip> {
    row_event(v, source, Format::DefenderJson, None)
}
