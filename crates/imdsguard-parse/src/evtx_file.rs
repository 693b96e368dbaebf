//! EVTX files, through the evtx crate: each record rendered to the JSON shape of `evtx_dump`
//! (`Event.System`, `Event.EventData`) and decoded by the `evtx-json` decoder, so both carriers
//! map fields the same way. A record the crate cannot read (a bad chunk, a zero-size record) is
//! skipped with the record number it follows, and reading goes on; a record is cited by its
//! `System/EventRecordID`, with its header's number beside it; checksums are not enforced, so
//! a file with a missing CRC still yields its records.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use evtx::err::EvtxError;
use evtx::{EvtxChunkData, EvtxParser, ParserSettings, SerializedEvtxRecord};
use imdsguard_event::{Event, Position, SourceRef};

use crate::error::{SkipReason, Skipped};
use crate::{ReadOptions, Summary};

/// The first eight bytes of every EVTX file.
pub(crate) const MAGIC: &[u8; 8] = b"ElfFile\0";

/// The first eight bytes of every chunk.
const CHUNK_MAGIC: &[u8; 8] = b"ElfChnk\0";

/// Where the first chunk starts: the file header's block size, which Windows always writes as
/// 4,096.
const FIRST_CHUNK: u64 = 4096;

/// Whether `source` holds EVTX chunks behind a file header that is not one (its magic
/// overwritten): a chunk's magic where the first chunk starts.
pub(crate) fn has_chunks<T: Read + Seek>(source: &mut T) -> bool {
    let mut magic = [0u8; 8];
    source.seek(SeekFrom::Start(FIRST_CHUNK)).is_ok()
        && source.read_exact(&mut magic).is_ok()
        && &magic == CHUNK_MAGIC
}

/// A file whose header is damaged but whose chunks are there: each 64 KiB chunk after the
/// first 4,096 bytes is read by its own header (a chunk holds its records, string and template
/// tables: it needs nothing from the file header); space allocated for chunks not yet written
/// (all zeros) is passed over. What could not be read is counted and said.
pub(crate) fn read_headless<T: Read + Seek>(
    name: &str,
    mut source: T,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let Ok(size) = source.seek(SeekFrom::End(0)) else {
        summary
            .input_errors
            .push(format!("{name}: not a readable EVTX file: cannot seek"));
        return;
    };
    let ranges = chunk_ranges(&mut source);
    let (mut read, mut unreadable, mut records, mut last) = (0u64, 0u64, 0u64, 0u64);
    let mut offset = FIRST_CHUNK;
    let mut number = 0u64;
    let mut partial = None;
    while offset < size {
        let len = (size - offset).min(CHUNK);
        let mut data = vec![0u8; len as usize];
        if source.seek(SeekFrom::Start(offset)).is_err() || source.read_exact(&mut data).is_err() {
            summary.input_errors.push(format!(
                "{name}: reading stopped at chunk {}: the file cannot be read further",
                number + 1
            ));
            break;
        }
        if len < CHUNK {
            partial = Some(Tail {
                number,
                bytes: data,
                declared: 0,
            });
            break;
        }
        // Space Windows allocated for chunks not written yet.
        let empty = data.iter().all(|&b| b == 0);
        match read_chunk(name, data, opts, summary, on_event) {
            _ if empty => {}
            Some((n, l)) => {
                read += 1;
                records += n;
                last = last.max(l);
            }
            None => {
                unreadable += 1;
                let (what, lost) = lost_records(number, last, &ranges);
                summary.skip(
                    Skipped {
                        source: at(name, last + 1, last + 1),
                        reason: SkipReason::Malformed,
                        detail: format!(
                            "chunk {} (at byte {offset}) has no readable chunk header: {what}",
                            number + 1
                        ),
                    },
                    opts.keep_skips,
                );
                summary.count_skips(SkipReason::Malformed, lost.saturating_sub(1));
            }
        }
        offset += CHUNK;
        number += 1;
    }
    summary.input_errors.push(format!(
        "{name}: the file header is damaged (the file does not begin with `ElfFile`): \
         {records} records read from {read} chunks by their own headers{}",
        if unreadable > 0 {
            format!(", {unreadable} chunks unreadable")
        } else {
            String::new()
        }
    ));
    if let Some(tail) = partial {
        read_partial(name, tail, opts, summary, on_event);
    }
}

/// The records of one whole chunk: how many, and the last one's number; `None` when its
/// header cannot be read. A record that does not read is skipped with the number it would
/// have, and the chunk's later records with it.
fn read_chunk(
    name: &str,
    data: Vec<u8>,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) -> Option<(u64, u64)> {
    if !data.starts_with(CHUNK_MAGIC) {
        return None;
    }
    let mut chunk = EvtxChunkData::new(data, false).ok()?;
    let first = chunk.header.first_event_record_id;
    let mut parsed = chunk.parse(Arc::new(settings())).ok()?;
    let (mut n, mut last) = (0u64, first.saturating_sub(1));
    for record in parsed.iter() {
        match record.and_then(|r| r.into_json_value()) {
            Ok(r) => {
                n += 1;
                last = r.event_record_id;
                emit(name, &r, opts, summary, on_event);
            }
            Err(e) => {
                summary.skip(
                    Skipped {
                        source: at(name, last + 1, last + 1),
                        reason: SkipReason::Malformed,
                        detail: format!("unreadable data where record {} would be: {e}", last + 1),
                    },
                    opts.keep_skips,
                );
                break;
            }
        }
    }
    Some((n, last))
}

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
    let ranges = chunk_ranges(&mut source);
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
            Err(e) => {
                let (detail, lost) = unreadable(&e, last_record, &ranges);
                summary.skip(
                    Skipped {
                        source: at(name, last_record + 1, last_record + 1),
                        reason: SkipReason::Malformed,
                        detail,
                    },
                    opts.keep_skips,
                );
                summary.count_skips(SkipReason::Malformed, lost.saturating_sub(1));
            }
        }
    }
    if let Some(tail) = tail {
        read_partial(name, tail, opts, summary, on_event);
    }
}

/// The first and last record numbers each whole chunk's header declares (`None` where the header
/// is not a chunk's), to say how many records an unreadable chunk held.
fn chunk_ranges<T: Read + Seek>(source: &mut T) -> Vec<Option<(u64, u64)>> {
    let mut ranges = Vec::new();
    let Ok(size) = source.seek(SeekFrom::End(0)) else {
        return ranges;
    };
    let mut offset = FIRST_CHUNK;
    while offset + CHUNK <= size {
        let mut head = [0u8; 24];
        let read =
            source.seek(SeekFrom::Start(offset)).is_ok() && source.read_exact(&mut head).is_ok();
        ranges.push(if read && &head[..8] == CHUNK_MAGIC {
            let n = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap_or_default());
            Some((n(8), n(16))).filter(|(first, last)| first <= last)
        } else {
            None
        });
        offset += CHUNK;
    }
    ranges
}

/// The records chunk `index` (from 0) held, in words, and how many: from its own header, or
/// else those numbered between the last record read and the next readable chunk's first (one
/// when neither is known).
fn lost_records(index: u64, last_record: u64, ranges: &[Option<(u64, u64)>]) -> (String, u64) {
    let i = usize::try_from(index).unwrap_or(usize::MAX);
    if let Some((first, last)) = ranges.get(i).copied().flatten() {
        return match last - first {
            0 => (format!("its record {first} is lost"), 1),
            n => (
                format!("its {} records, {first} to {last}, are lost", n + 1),
                n + 1,
            ),
        };
    }
    // No header: the records numbered between the chunks around it in the file are missing
    // (not at the point where a full log wrapped around, where the numbers go back).
    let between = ranges
        .iter()
        .skip(i.saturating_add(1))
        .find_map(|r| *r)
        .map(|(next, _)| (last_record + 1, next.saturating_sub(1)))
        .filter(|(first, last)| first <= last);
    match between {
        Some((first, last)) => (
            format!(
                "its records are lost: {} by the numbers of the chunks around it, {first} to {last}",
                last - first + 1
            ),
            last - first + 1,
        ),
        None => ("its records are lost".to_owned(), 1),
    }
}

/// What the parser could not read, named by chunk (numbered from 1, with its offset in the file)
/// or record, as a forensic tool would be asked to find it; and how many records that lost
/// (known from the chunk's own header, or from the next readable chunk's first record).
fn unreadable(e: &EvtxError, last_record: u64, ranges: &[Option<(u64, u64)>]) -> (String, u64) {
    match e {
        EvtxError::FailedToParseChunk { chunk_id, source } => {
            let (what, lost) = lost_records(*chunk_id, last_record, ranges);
            (
                format!(
                    "chunk {} (at byte {}) cannot be read ({source}): {what}",
                    chunk_id + 1,
                    FIRST_CHUNK + chunk_id * CHUNK
                ),
                lost,
            )
        }
        EvtxError::FailedToReadRecordAt {
            chunk: Some(c),
            offset,
            source,
        } => (
            format!(
                "the record at byte {offset} of chunk {} (at byte {}) cannot be read ({source}); \
                 the chunk's later records are read",
                c + 1,
                FIRST_CHUNK + c * CHUNK
            ),
            1,
        ),
        EvtxError::FailedToParseRecord { record_id, source } => {
            (format!("record {record_id} cannot be read: {source}"), 1)
        }
        other => (
            format!(
                "unreadable data where record {} would be: {other}",
                last_record + 1
            ),
            1,
        ),
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
            "{name}: the file ends {kept} bytes into chunk {}{}: \
             {read} records read from that part, the rest of the chunk is lost{}",
            tail.number + 1,
            if tail.declared > 0 {
                format!(" of the {} its header counts", tail.declared)
            } else {
                String::new()
            },
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
