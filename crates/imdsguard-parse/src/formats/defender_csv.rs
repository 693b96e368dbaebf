//! Microsoft Defender XDR advanced-hunting CSV exports: a header row naming the columns
//! (`DeviceName`, `ActionType` among them), then one row per record, read with the csv crate.

use crate::json::Map;
use imdsguard_event::{Event, Format, SourceRef};

use super::defender::row_event;
use super::Skip;
use std::io::{self, BufRead, Read};

use crate::error::SkipReason;
use crate::{ReadOptions, Skipped, Summary};
use imdsguard_event::Position;

/// Whether a CSV header line is an advanced-hunting export.
pub(crate) fn sniff_csv_header(line: &str) -> bool {
    let line = line.trim_start_matches('\u{feff}').trim_start();
    !line.starts_with(['{', '['])
        && line.contains(',')
        && line.contains("DeviceName")
        && line.contains("ActionType")
}

/// One row of an advanced-hunting CSV export, keyed by its header.
pub(crate) fn decode_row(row: &Map<'_>, source: SourceRef) -> Result<Event, Skip> {
    row_event(row, source, Format::DefenderCsv, None)
}

/// Where the newlines of a stream are, as far as it has been read, for turning a byte offset
/// into a line: offsets behind the last one asked for are dropped, so memory stays small.
#[derive(Default)]
struct NewlineIndex {
    /// Offsets of newlines not yet passed.
    ahead: std::collections::VecDeque<u64>,
    /// Newlines passed.
    passed: u64,
    /// Newlines read so far, and whether the last byte read was one: a record cannot start on
    /// a line after the last (a lone `\r`, which the csv crate also ends records at, can put
    /// the start of an empty last record just past the final newline).
    seen: u64,
    ends_with_newline: bool,
}

impl NewlineIndex {
    /// The 0-based line of a record starting at `byte`: the newlines before it, and one at it
    /// (the csv crate starts a record after `\r\n` at the `\n`; no record starts with one).
    /// Offsets asked for only grow.
    fn line_at(&mut self, byte: u64) -> u64 {
        while self.ahead.front().is_some_and(|&o| o <= byte) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed.min(self.last())
    }

    /// The 0-based line of the last line read.
    fn last(&self) -> u64 {
        self.seen - u64::from(self.ends_with_newline && self.seen > 0)
    }
}

/// A reader that notes where each newline it hands out is.
struct CountNewlines<R> {
    inner: R,
    index: std::rc::Rc<std::cell::RefCell<NewlineIndex>>,
    offset: u64,
}

impl<R: Read> Read for CountNewlines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut index = self.index.borrow_mut();
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            index.ahead.push_back(self.offset + i as u64);
            index.seen += 1;
        }
        if n > 0 {
            index.ends_with_newline = buf[n - 1] == b'\n';
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A Defender advanced-hunting CSV export: the header names the columns, each row is a record.
pub(crate) fn read(
    name: &str,
    header: Vec<u8>,
    header_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let header = header
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(&header)
        .to_vec();
    let mut stream = header;
    stream.push(b'\n');
    // Lines are counted here from each record's byte offset: the csv crate's own line count
    // falls one behind after a quoted field ending a CRLF row.
    let newlines = std::rc::Rc::new(std::cell::RefCell::new(NewlineIndex::default()));
    let counted = CountNewlines {
        inner: io::Cursor::new(stream).chain(r),
        index: std::rc::Rc::clone(&newlines),
        offset: 0,
    };
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(counted);
    let columns: Vec<String> = match csv.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            summary
                .input_errors
                .push(format!("{name}:{header_line}: unreadable CSV header: {e}"));
            return;
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        let line = header_line + newlines.borrow_mut().line_at(csv.position().byte());
        match csv.read_record(&mut record) {
            Ok(false) => return,
            Ok(true) => {
                let line = record.position().map_or(line, |p| {
                    header_line + newlines.borrow_mut().line_at(p.byte())
                });
                let source = SourceRef {
                    path: name.to_owned(),
                    position: Position::Line(line),
                };
                if record.len() != columns.len() {
                    summary.skip(
                        Skipped {
                            source,
                            reason: SkipReason::Malformed,
                            detail: format!(
                                "{} fields where the header has {}",
                                record.len(),
                                columns.len()
                            ),
                        },
                        opts.keep_skips,
                    );
                    continue;
                }
                let row: Map<'_> = columns
                    .iter()
                    .map(|c| std::borrow::Cow::Borrowed(c.as_str()))
                    .zip(
                        record
                            .iter()
                            .map(|v| crate::json::Value::String(crate::json::Str::borrowed(v))),
                    )
                    .collect();
                summary.decoded(decode_row(&row, source.clone()), source, opts, on_event);
            }
            Err(e) => {
                let source = SourceRef {
                    path: name.to_owned(),
                    // After the header, on a line that exists (a lone `\r` ends a record
                    // inside the header's own line).
                    position: Position::Line(
                        line.max(header_line + 1)
                            .min(header_line + newlines.borrow().last()),
                    ),
                };
                let fatal = e.is_io_error();
                summary.skip(
                    Skipped {
                        source,
                        reason: SkipReason::Malformed,
                        detail: e.to_string(),
                    },
                    opts.keep_skips,
                );
                if fatal {
                    return;
                }
            }
        }
    }
}
