//! JSON records to the JSON decoders: one line at a time (JSON lines), or a whole document of
//! concatenated or array records, each record cited by the line it starts on.

use imdsguard_event::{Event, Position, SourceRef};

use crate::formats::{self, Decoding};
use crate::json::{self, Value};
use crate::{ReadOptions, SkipReason, Skipped, Summary};

pub(crate) fn decode_line(
    line: &[u8],
    source: SourceRef,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    match decode_line_result(line, source, opts) {
        Ok((e, lossy)) => {
            if lossy {
                summary.lossy(e.source.clone(), opts.keep_skips);
            }
            summary.event(e, opts, on_event)
        }
        Err(s) => summary.skip(s, opts.keep_skips),
    }
}

/// One JSON line decoded, or why not; and whether it was read lossily: a line that is not valid
/// UTF-8 is read with U+FFFD in place of each invalid byte, so that one bad byte in one field
/// (a user agent, a host name an attacker controls) marks that field and does not hide the
/// record.
pub(crate) fn decode_line_result(
    line: &[u8],
    source: SourceRef,
    opts: &ReadOptions,
) -> Result<(Event, bool), Skipped> {
    match decode_exact(line, source.clone(), opts) {
        Err(s) if s.reason == SkipReason::NotUtf8 => {
            let fixed = String::from_utf8_lossy(line);
            decode_exact(fixed.as_bytes(), source, opts).map(|e| (e, true))
        }
        other => other.map(|e| (e, false)),
    }
}

fn decode_exact(line: &[u8], source: SourceRef, opts: &ReadOptions) -> Result<Event, Skipped> {
    let skipped = |reason, detail| Skipped {
        source: source.clone(),
        reason,
        detail,
    };
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(skipped(SkipReason::NotUtf8, "invalid UTF-8".to_owned()));
    };
    // The fast reader accepts what serde_json accepts; serde_json says what is wrong with the
    // rest (and reads the record should the two ever disagree).
    let value: Value = match json::parse(text) {
        Some(v) => v,
        None => match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Err(skipped(SkipReason::InvalidJson, e.to_string())),
        },
    };
    formats::decode_json(&value, source.clone(), opts.format, Decoding::of(opts)).map_err(
        |(reason, detail)| Skipped {
            source,
            reason,
            detail,
        },
    )
}

pub(crate) fn emit(
    value: &Value,
    source: SourceRef,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    summary.decoded(
        formats::decode_json(value, source.clone(), opts.format, Decoding::of(opts)),
        source,
        opts,
        on_event,
    );
}

/// The line of a byte offset in a document, counted on from the last offset asked for (offsets
/// mostly grow: one pass over a document of one long line, not one per record).
struct LineOf<'d> {
    doc: &'d [u8],
    first_line: u64,
    at: std::cell::Cell<(usize, u64)>,
}

impl<'d> LineOf<'d> {
    fn new(doc: &'d [u8], first_line: u64) -> LineOf<'d> {
        LineOf {
            doc,
            first_line,
            at: std::cell::Cell::new((0, 0)),
        }
    }

    /// The reader put a newline after the first line whether or not the input had one: a
    /// position at the very end belongs to the last line, not to one after it.
    fn at(&self, offset: usize) -> u64 {
        let end = offset.min(self.doc.len().saturating_sub(1));
        let (from, mut n) = self.at.get();
        if end >= from {
            n += memchr::memchr_iter(b'\n', &self.doc[from..end]).count() as u64;
        } else {
            n = memchr::memchr_iter(b'\n', &self.doc[..end]).count() as u64;
        }
        self.at.set((end, n));
        self.first_line + n
    }
}

/// Where the elements of a log file's `Records` array begin, when `doc[i..]` opens one
/// (`{"Records": [`, CloudTrail's log file; `{"records": [`, Azure's diagnostic logs in a
/// storage account or from Event Hubs): the offset after the `[`.
pub(crate) fn records_array(doc: &[u8], i: usize) -> Option<usize> {
    let ws = |mut j: usize| {
        while j < doc.len() && doc[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    let mut j = ws(i);
    if doc.get(j) != Some(&b'{') {
        return None;
    }
    j = ws(j + 1);
    j = (doc[j..].starts_with(b"\"Records\"") || doc[j..].starts_with(b"\"records\""))
        .then_some(j + 9)?;
    j = ws(j);
    (doc.get(j) == Some(&b':')).then_some(())?;
    j = ws(j + 1);
    (doc.get(j) == Some(&b'[')).then_some(j + 1)
}

/// Concatenated JSON values, or one top-level array of them, or objects holding a `Records`
/// array (CloudTrail's log files: each element cited by its line and index); each record's line
/// is where it starts.
pub(crate) fn decode_document(
    doc: &[u8],
    first_line: u64,
    name: &str,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let lines = LineOf::new(doc, first_line);
    let line_of = |offset: usize| lines.at(offset);
    let at = |offset: usize| SourceRef {
        path: name.to_owned(),
        position: Position::Line(line_of(offset)),
    };
    let skip_ws = |mut i: usize| {
        while i < doc.len() && doc[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    let in_array = doc.get(i) == Some(&b'[');
    if in_array {
        i += 1;
    }
    loop {
        i = skip_ws(i);
        if i >= doc.len() {
            if in_array {
                summary.skip(
                    Skipped {
                        source: at(i),
                        reason: SkipReason::InvalidJson,
                        detail: "the array is not closed (truncated file?)".into(),
                    },
                    opts.keep_skips,
                );
            }
            return;
        }
        if in_array && doc[i] == b']' {
            return;
        }
        if let Some(start) = records_array(doc, i) {
            match records(doc, start, &line_of, name, opts, summary, on_event) {
                Some(end) => {
                    i = end;
                    continue;
                }
                None => return,
            }
        }
        let mut stream = serde_json::Deserializer::from_slice(&doc[i..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let start = i;
                i += stream.byte_offset();
                emit(&value, at(start), opts, summary, on_event);
            }
            Some(Err(e)) => {
                // Resynchronise at the next line that starts a record.
                summary.skip(
                    Skipped {
                        source: at(i),
                        reason: SkipReason::InvalidJson,
                        detail: e.to_string(),
                    },
                    opts.keep_skips,
                );
                match doc[i..]
                    .windows(2)
                    .position(|w| w[0] == b'\n' && (w[1] == b'{' || w[1] == b'['))
                {
                    Some(p) => i += p + 1,
                    None => return,
                }
                continue;
            }
            None => return,
        }
        i = skip_ws(i);
        if in_array && doc.get(i) == Some(&b',') {
            i += 1;
        }
    }
}

/// The elements of a `Records` array starting at `start`, each decoded and cited by its line and
/// index; the offset after the object that holds the array, or `None` when the rest of the
/// document cannot be read (said in the summary).
fn records(
    doc: &[u8],
    start: usize,
    line_of: &dyn Fn(usize) -> u64,
    name: &str,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) -> Option<usize> {
    let skip_ws = |mut i: usize| {
        while i < doc.len() && doc[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let element = |offset: usize, index: u64| SourceRef {
        path: name.to_owned(),
        position: Position::Element {
            line: line_of(offset),
            index,
        },
    };
    let bad = |offset: usize, index: u64, detail: String, summary: &mut Summary| {
        summary.skip(
            Skipped {
                source: element(offset, index),
                reason: SkipReason::InvalidJson,
                detail,
            },
            opts.keep_skips,
        );
    };
    let mut i = start;
    let mut index = 0u64;
    loop {
        i = skip_ws(i);
        match doc.get(i) {
            None => {
                bad(
                    i,
                    index,
                    "the Records array is not closed (truncated file?)".into(),
                    summary,
                );
                return None;
            }
            Some(b']') => break,
            _ => {}
        }
        let mut stream = serde_json::Deserializer::from_slice(&doc[i..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                emit(&value, element(i, index), opts, summary, on_event);
                i += stream.byte_offset();
            }
            Some(Err(e)) => {
                bad(i, index, e.to_string(), summary);
                return None;
            }
            None => return None,
        }
        index += 1;
        i = skip_ws(i);
        match doc.get(i) {
            Some(b',') => i += 1,
            Some(b']') => {}
            _ => {
                bad(
                    i,
                    index,
                    "expected , or ] after an element of Records".into(),
                    summary,
                );
                return None;
            }
        }
    }
    // The array's end, then the end of the object that holds it.
    i = skip_ws(i + 1);
    if doc.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    bad(
        i,
        index,
        "members after the Records array are not read: the file is not a CloudTrail log file"
            .into(),
        summary,
    );
    None
}
