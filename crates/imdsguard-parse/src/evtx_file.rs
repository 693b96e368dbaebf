//! EVTX files, through the evtx crate: each record rendered to the JSON shape of `evtx_dump`
//! (`Event.System`, `Event.EventData`) and decoded by the `evtx-json` decoder, so both carriers
//! map fields the same way. A record the crate cannot read (a bad chunk, a zero-size record) is
//! skipped with the record number it follows, and reading goes on; a record is cited by its
//! `System/EventRecordID`, with its header's number beside it; checksums are not enforced, so
//! a file with a missing CRC still yields its records.

use std::io::{Read, Seek};

use evtx::{EvtxParser, ParserSettings};
use imdsguard_event::{Event, Position, SourceRef};

use crate::error::{SkipReason, Skipped};
use crate::{ReadOptions, Summary};

/// The first eight bytes of every EVTX file.
pub(crate) const MAGIC: &[u8; 8] = b"ElfFile\0";

pub(crate) fn read_evtx<T: Read + Seek>(
    name: &str,
    source: T,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let parser = match EvtxParser::from_read_seek(source) {
        Ok(p) => p,
        Err(e) => {
            summary
                .input_errors
                .push(format!("{name}: not a readable EVTX file: {e}"));
            return;
        }
    };
    let mut parser = parser.with_configuration(ParserSettings::default().validate_checksums(false));
    let at = |id: u64, header: u64| SourceRef {
        path: name.to_owned(),
        position: Position::Record { id, header },
    };
    let mut last_record = 0u64;
    let how = crate::formats::Decoding::of(opts);
    for record in parser.records_json_value() {
        match record {
            Ok(r) => {
                last_record = r.event_record_id;
                // Cited by its System EventRecordID, as Event Viewer and other tools do; the
                // header's number differs in exported and merged files.
                let id = r.data["Event"]["System"]["EventRecordID"]
                    .as_u64()
                    .or_else(|| {
                        r.data["Event"]["System"]["EventRecordID"]
                            .as_str()
                            .and_then(|t| t.trim().parse().ok())
                    })
                    .unwrap_or(r.event_record_id);
                let source = at(id, r.event_record_id);
                summary.decoded(
                    crate::formats::evtx_json::decode_value(
                        &crate::json::Value::from_serde(&r.data),
                        source.clone(),
                        how,
                    ),
                    source,
                    opts,
                    on_event,
                );
            }
            Err(e) => summary.skip(
                Skipped {
                    source: at(last_record + 1, last_record + 1),
                    reason: SkipReason::Malformed,
                    detail: format!(
                        "unreadable data where record {} would be: {e}",
                        last_record + 1
                    ),
                },
                opts.keep_skips,
            ),
        }
    }
}
