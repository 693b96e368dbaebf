//! EVTX files, through the evtx crate: each record rendered to the JSON shape of `evtx_dump`
//! (`Event.System`, `Event.EventData`) and decoded by the `evtx-json` decoder, so both carriers
//! map fields the same way. A record the crate cannot read (a bad chunk, a zero-size record) is
//! skipped with the record number it follows, and reading goes on; a record is cited by its
//! `System/EventRecordID`, with its header's number beside it; checksums are not enforced, so
//! a file with a missing CRC still yields its records.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use evtx::{EvtxChunkData, EvtxParser, ParserSettings, SerializedEvtxRecord};
use imdsguard_event::{Event, Position, SourceRef};

use crate::error::{SkipReason, Skipped};
use crate::{ReadOptions, Summary};

/// The first eight bytes of every EVTX file.
pub(crate) const MAGIC: &[u8; 8] = b"ElfFile\0";

pub(crate) fn read_evtx<T: Read + Seek>(
    name: &str,
    mut source: T,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    // A file cut short (a copy stopped, a disk full) ends inside a chunk: the evtx crate reads
    // whole chunks only, so that part is read here, and what it lost is said.
    let tail = partial_chunk(&mut source);
    if source.seek(SeekFrom::Start(0)).is_err() {
        summary
            .input_errors
            .push(format!("{name}: not a readable EVTX file: cannot seek"));
        return;
    }
    let parser = match EvtxParser::from_read_seek(source) {
        Ok(p) => p,
        Err(e) => {
            summary
                .input_errors
                .push(format!("{name}: not a readable EVTX file: {e}"));
            return;
        }
    };
    let mut parser = parser.with_configuration(settings());
    let mut last_record = 0u64;
    for record in parser.records_json_value() {
        match record {
            Ok(r) => {
                last_record = r.event_record_id;
                emit(name, &r, opts, summary, on_event);
            }
            Err(e) => summary.skip(
                Skipped {
                    source: at(name, last_record + 1, last_record + 1),
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
    if let Some(tail) = tail {
        read_partial(name, tail, opts, summary, on_event);
    }
}

fn settings() -> ParserSettings {
    ParserSettings::default().validate_checksums(false)
}

fn at(name: &str, id: u64, header: u64) -> SourceRef {
    SourceRef {
        path: name.to_owned(),
        position: Position::Record { id, header },
    }
}

/// One record, cited by its System EventRecordID as Event Viewer and other tools do (the
/// header's number differs in exported and merged files), decoded as `evtx-json`.
fn emit(
    name: &str,
    r: &SerializedEvtxRecord<serde_json::Value>,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let id = r.data["Event"]["System"]["EventRecordID"]
        .as_u64()
        .or_else(|| {
            r.data["Event"]["System"]["EventRecordID"]
                .as_str()
                .and_then(|t| t.trim().parse().ok())
        })
        .unwrap_or(r.event_record_id);
    let source = at(name, id, r.event_record_id);
    summary.decoded(
        crate::formats::evtx_json::decode_value(
            &crate::json::Value::from_serde(&r.data),
            source.clone(),
            crate::formats::Decoding::of(opts),
        ),
        source,
        opts,
        on_event,
    );
}

/// The chunk size of every EVTX file.
const CHUNK: u64 = 65_536;

/// The part of a last chunk the file was cut in: its number, its bytes, and how many chunks the
/// header counts.
struct Tail {
    number: u64,
    bytes: Vec<u8>,
    declared: u64,
}

/// The bytes of a chunk the file ends inside of, when it does.
fn partial_chunk<T: Read + Seek>(source: &mut T) -> Option<Tail> {
    // The file header: its block size at 0x28, the chunk count at 0x2a (little-endian).
    let mut head = [0u8; 0x2c];
    source.seek(SeekFrom::Start(0)).ok()?;
    source.read_exact(&mut head).ok()?;
    let block = u64::from(u16::from_le_bytes([head[0x28], head[0x29]]));
    let declared = u64::from(u16::from_le_bytes([head[0x2a], head[0x2b]]));
    let size = source.seek(SeekFrom::End(0)).ok()?;
    let data = size.checked_sub(block)?;
    let (number, rest) = (data / CHUNK, data % CHUNK);
    if rest == 0 {
        return None;
    }
    source.seek(SeekFrom::Start(block + number * CHUNK)).ok()?;
    let mut bytes = vec![0u8; rest as usize];
    source.read_exact(&mut bytes).ok()?;
    Some(Tail {
        number,
        bytes,
        declared,
    })
}

/// The records whole in the part of a chunk the file was cut in; what the cut lost is said.
fn read_partial(
    name: &str,
    tail: Tail,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let kept = tail.bytes.len();
    let mut data = tail.bytes;
    data.resize(CHUNK as usize, 0);
    let mut read = 0u64;
    let recovered = EvtxChunkData::new(data, false).ok().and_then(|mut chunk| {
        let mut parsed = chunk.parse(Arc::new(settings())).ok()?;
        for record in parsed.iter() {
            match record.and_then(|r| r.into_json_value()) {
                Ok(r) => {
                    read += 1;
                    emit(name, &r, opts, summary, on_event);
                }
                // The record the cut went through, and everything after it.
                Err(_) => break,
            }
        }
        Some(())
    });
    let missing = tail.declared.saturating_sub(tail.number + 1);
    summary.input_errors.push(match recovered {
        Some(()) => format!(
            "{name}: the file ends {kept} bytes into chunk {} of the {} its header counts: \
             {read} records read from that part, the rest of the chunk is lost{}",
            tail.number + 1,
            tail.declared,
            if missing > 0 {
                format!(", and {missing} chunks after it are missing")
            } else {
                String::new()
            }
        ),
        None => format!(
            "{name}: the file ends {kept} bytes into chunk {}, whose header cannot be read: \
             that part is lost",
            tail.number + 1
        ),
    });
}
