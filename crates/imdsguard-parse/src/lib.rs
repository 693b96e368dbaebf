//! Log decoders: bytes in, typed [`imdsguard_event::Event`]s out.
//!
//! - [`read_inputs`] walks files, directories (recursively, in sorted order) and `-` (standard
//!   input), opens gzip transparently, and hands every record to the format decoders.
//! - JSON inputs are read either as JSON lines (one record a line, a line at most
//!   [`ReadOptions::max_line`] bytes, so memory stays bounded whatever the file size) or, when the
//!   first line is not a whole record, as a document of concatenated or array records (pretty-printed
//!   exports), up to [`ReadOptions::max_document`] bytes.
//! - Each record is sniffed against the decoders of `formats/` (or forced with
//!   [`ReadOptions::format`]); one that no decoder takes, or that is broken, is a [`Skipped`] with its
//!   file, line and reason, and reading goes on.
//! - [`Summary`] counts files, events by format, and skipped records by reason, keeping the first
//!   few skips in full.

mod error;
mod evtx_file;
mod fields;
pub mod follow;
mod formats;
mod json;
mod parallel;
pub mod syslog;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::formats::Decoding;
use crate::json::Value;
pub use error::{InputError, SkipReason, Skipped};
pub use formats::json_format_names;
use imdsguard_event::{
    format_time_ms, normalize_host_name, parse_time_in, parse_time_ms, Clock, Event, FieldSet,
    Format, LocalZone, Position, SourceRef,
};

/// How inputs are read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Use this decoder for every record instead of sniffing.
    pub format: Option<Format>,
    /// Longest line read in JSON lines mode; longer lines are skipped and counted.
    pub max_line: usize,
    /// Largest JSON document (not JSON lines) read whole.
    pub max_document: u64,
    /// How many skipped records the summary keeps in full.
    pub keep_skips: usize,
    /// The record fields the loaded rules read (a rule set's
    /// [`record_fields`](https://docs.rs/imdsguard-rules)): each Windows record keeps those in
    /// [`Event::fields`], for rules that read fields the typed model does not name. Empty: none.
    pub fields: Arc<FieldSet>,
    /// The zone of times a record writes in local time without a zone (NXLog's `EventTime`);
    /// without one they are read as UTC and counted.
    pub timezone: Option<LocalZone>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            max_line: 1 << 20,
            max_document: 256 << 20,
            keep_skips: 10,
            fields: Arc::default(),
            timezone: None,
        }
    }
}

/// What a read found, for the closing summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Files read (standard input counts as one).
    pub files: u64,
    /// Events decoded, by format.
    pub events: BTreeMap<Format, u64>,
    /// Records skipped, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// The first skipped records, in full.
    pub first_skips: Vec<Skipped>,
    /// Inputs that could not be read at all.
    pub input_errors: Vec<String>,
    /// Files in no supported format, with the formats tried.
    pub unrecognized_files: Vec<String>,
    /// Events whose time was local with no zone and no `timezone` was given: read as UTC.
    pub local_times: BTreeMap<Format, u64>,
    /// Events whose time field could not be read as a time (they are not correlated).
    pub unreadable_times: BTreeMap<Format, u64>,
    /// The first of those, with the text the record has.
    pub first_unreadable_times: Vec<(SourceRef, String)>,
}

/// What normalizing an event's time found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeNote {
    /// Read (or the record has no time field).
    Fine,
    /// Local time with no zone and none given: read as UTC.
    LocalAsUtc,
    /// Not a time.
    Unreadable,
}

/// Puts an event's time and host in the one form every output and every state uses: the time UTC
/// RFC 3339 with milliseconds (a zone-less local time read in `zone`; one that cannot be read is
/// dropped and counted), the host case-folded without a trailing dot.
pub(crate) fn normalize_event(
    e: &mut Event,
    zone: Option<&LocalZone>,
) -> (TimeNote, Option<String>) {
    normalize_host_name(&mut e.host);
    let Some(raw) = e.time.take() else {
        return (TimeNote::Fine, None);
    };
    let (ms, note) = match e.clock {
        Clock::Utc => (parse_time_ms(&raw), TimeNote::Fine),
        Clock::Local => match zone {
            Some(z) => (parse_time_in(&raw, Some(z)), TimeNote::Fine),
            None => (parse_time_ms(&raw), TimeNote::LocalAsUtc),
        },
    };
    e.clock = Clock::Utc;
    match ms {
        Some(ms) => {
            e.time = Some(format_time_ms(ms));
            (note, None)
        }
        None => (TimeNote::Unreadable, Some(raw)),
    }
}

impl Summary {
    /// Events decoded in all.
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }

    /// Records skipped in all.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Normalizes a decoded event's time, counts it and hands it on.
    fn event(&mut self, mut event: Event, opts: &ReadOptions, on_event: &mut dyn FnMut(Event)) {
        let (note, raw) = normalize_event(&mut event, opts.timezone.as_ref());
        self.count(
            event.format,
            note,
            raw.map(|r| (event.source.clone(), r)),
            opts.keep_skips,
        );
        on_event(event);
    }

    /// Counts one event of `format` and what its time was.
    pub(crate) fn count(
        &mut self,
        format: Format,
        note: TimeNote,
        unreadable: Option<(SourceRef, String)>,
        keep: usize,
    ) {
        *self.events.entry(format).or_default() += 1;
        match note {
            TimeNote::Fine => {}
            TimeNote::LocalAsUtc => *self.local_times.entry(format).or_default() += 1,
            TimeNote::Unreadable => {
                *self.unreadable_times.entry(format).or_default() += 1;
                if let Some(u) = unreadable.filter(|_| self.first_unreadable_times.len() < keep) {
                    self.first_unreadable_times.push(u);
                }
            }
        }
    }

    /// Counts and hands on a decoder's event, or records why it gave none.
    fn decoded(
        &mut self,
        result: Result<Event, formats::Skip>,
        source: SourceRef,
        opts: &ReadOptions,
        on_event: &mut dyn FnMut(Event),
    ) {
        match result {
            Ok(event) => self.event(event, opts, on_event),
            Err((reason, detail)) => self.skip(
                Skipped {
                    source,
                    reason,
                    detail,
                },
                opts.keep_skips,
            ),
        }
    }

    fn skip(&mut self, s: Skipped, keep: usize) {
        *self.skipped.entry(s.reason).or_default() += 1;
        if self.first_skips.len() < keep {
            self.first_skips.push(s);
        }
    }
}

/// Reads every input, calling `on_event` for each decoded record in input order.
pub fn read_inputs(
    inputs: &[PathBuf],
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    for input in inputs {
        if input.as_os_str() == "-" {
            summary.files += 1;
            let stdin = io::stdin();
            read_stream(
                "-",
                Box::new(stdin.lock()),
                0,
                opts,
                summary,
                on_event,
                None,
            );
            continue;
        }
        let mut files = Vec::new();
        if let Err(e) = collect_files(input, &mut files) {
            summary.input_errors.push(e.to_string());
            continue;
        }
        for file in files {
            summary.files += 1;
            if let Err(e) = read_file(&file, opts, summary, on_event, None) {
                summary.input_errors.push(e.to_string());
            }
        }
    }
}

/// Reads every input like [`read_inputs`] on `threads` worker threads, which decode records and
/// apply `map` to every event; `sink` receives the results on the calling thread in input order,
/// so the output is the same for any thread count. Files up to 16 MiB are read whole, one per
/// worker; larger files and standard input are streamed, their JSON lines split into blocks of
/// about 1 MiB across the workers (other large inputs, such as a big EVTX file, are decoded on the
/// calling thread). At most `2 × threads` files or blocks are in flight, so memory stays bounded
/// whatever the input size.
pub fn read_inputs_parallel<T: Send>(
    inputs: &[PathBuf],
    opts: &ReadOptions,
    threads: usize,
    summary: &mut Summary,
    map: &(dyn Fn(Event) -> T + Sync),
    sink: &mut dyn FnMut(T),
) {
    if threads <= 1 {
        read_inputs(inputs, opts, summary, &mut |e| sink(map(e)));
        return;
    }
    let sink = std::cell::RefCell::new(sink);
    let par = parallel::Parallel {
        threads,
        map,
        sink: &sink,
    };
    parallel::read_files(inputs, opts, threads, summary, map, &sink, &par);
}

impl Summary {
    /// Adds what another read found (a file read on a worker thread), keeping at most `keep`
    /// skipped records in full.
    fn merge(&mut self, other: Summary, keep: usize) {
        self.files += other.files;
        for (f, n) in other.events {
            *self.events.entry(f).or_default() += n;
        }
        for (r, n) in other.skipped {
            *self.skipped.entry(r).or_default() += n;
        }
        for s in other.first_skips {
            if self.first_skips.len() < keep {
                self.first_skips.push(s);
            }
        }
        self.input_errors.extend(other.input_errors);
        self.unrecognized_files.extend(other.unrecognized_files);
        for (f, n) in other.local_times {
            *self.local_times.entry(f).or_default() += n;
        }
        for (f, n) in other.unreadable_times {
            *self.unreadable_times.entry(f).or_default() += n;
        }
        for u in other.first_unreadable_times {
            if self.first_unreadable_times.len() < keep {
                self.first_unreadable_times.push(u);
            }
        }
    }
}

pub(crate) fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let io_err = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        collect_files(&entry, out)?;
    }
    Ok(())
}

pub(crate) fn read_file(
    path: &Path,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
    par: Option<&dyn parallel::JsonLines>,
) -> Result<(), InputError> {
    let io_err = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 8];
    let mut n = 0;
    while n < magic.len() {
        match file.read(&mut magic[n..]).map_err(io_err)? {
            0 => break,
            k => n += k,
        }
    }
    if n == 8 && &magic == evtx_file::MAGIC {
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        evtx_file::read_evtx(&name, file, opts, summary, on_event);
        return Ok(());
    }
    let head = io::Cursor::new(magic[..n].to_vec()).chain(file);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let mut gz = BufReader::new(flate2::read::MultiGzDecoder::new(head));
        if gz.fill_buf().is_ok_and(|b| b.starts_with(evtx_file::MAGIC)) {
            // A compressed EVTX file: the parser needs to seek, so it is read into memory.
            let mut buf = Vec::new();
            if let Err(e) = (&mut gz).take(opts.max_document + 1).read_to_end(&mut buf) {
                summary
                    .input_errors
                    .push(format!("{name}: reading stopped: {e}"));
            }
            if buf.len() as u64 > opts.max_document {
                return Err(InputError::TooLarge {
                    path: path.to_path_buf(),
                    size: buf.len() as u64,
                    limit: opts.max_document,
                });
            }
            evtx_file::read_evtx(&name, io::Cursor::new(buf), opts, summary, on_event);
            return Ok(());
        }
        read_stream(&name, Box::new(gz), 0, opts, summary, on_event, par);
    } else {
        read_stream(
            &name,
            Box::new(BufReader::with_capacity(READ_BUFFER, head)),
            0,
            opts,
            summary,
            on_event,
            par,
        );
    }
    Ok(())
}

/// Read buffer for files: large enough that finding line ends, not refilling, is the cost.
const READ_BUFFER: usize = 256 * 1024;

/// One line of a stream, or why it was not one.
enum Line {
    Text(Vec<u8>),
    TooLong(usize),
}

/// Reads the next line (without its end), keeping at most `max` bytes of it.
fn next_line(r: &mut dyn BufRead, max: usize) -> io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    let mut read_any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        read_any = true;
        let (take, done) = match memchr_newline(chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if total + take <= max {
            buf.extend_from_slice(&chunk[..take]);
        }
        total += take;
        r.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(if total > max {
        Line::TooLong(total)
    } else {
        Line::Text(buf)
    }))
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// Where the newlines of a stream are, as far as it has been read, for turning a byte offset
/// into a line: offsets behind the last one asked for are dropped, so memory stays small.
#[derive(Default)]
struct NewlineIndex {
    /// Offsets of newlines not yet passed.
    ahead: std::collections::VecDeque<u64>,
    /// Newlines passed.
    passed: u64,
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
        self.passed
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
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A Defender advanced-hunting CSV export: the header names the columns, each row is a record.
fn read_defender_csv(
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
                let row: json::Map<'_> = columns
                    .iter()
                    .map(|c| std::borrow::Cow::Borrowed(c.as_str()))
                    .zip(
                        record
                            .iter()
                            .map(|v| Value::String(std::borrow::Cow::Borrowed(v))),
                    )
                    .collect();
                summary.decoded(
                    formats::defender::decode_csv_row(&row, source.clone()),
                    source,
                    opts,
                    on_event,
                );
            }
            Err(e) => {
                let source = SourceRef {
                    path: name.to_owned(),
                    position: Position::Line(line.max(header_line + 1)),
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

/// How many lines an audit event stays open after its last record when no `EOE` closes it.
const AUDIT_WINDOW: u64 = 16;

/// Audit records grouped into events by (node, serial).
fn read_auditd(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    use formats::auditd::{event, parse_line, Record};
    struct Open {
        node: Option<String>,
        serial: u64,
        first_line: u64,
        last_line: u64,
        records: Vec<Record>,
    }
    const AUXILIARY: &[&str] = &[
        "SYSCALL",
        "EXECVE",
        "CWD",
        "PATH",
        "PROCTITLE",
        "SOCKADDR",
        "SOCKETCALL",
        "FD_PAIR",
        "MMAP",
        "BPRM_FCAPS",
        "CAPSET",
        "OBJ_PID",
        "NETFILTER_CFG",
    ];
    let at = |line: u64| SourceRef {
        path: name.to_owned(),
        position: Position::Line(line),
    };
    let mut open: Vec<Open> = Vec::new();
    let emit_open = |o: Open, summary: &mut Summary, on_event: &mut dyn FnMut(Event)| {
        summary.event(event(&o.records, at(o.first_line)), opts, on_event);
    };
    let handle = |text: &[u8],
                  line: u64,
                  open: &mut Vec<Open>,
                  summary: &mut Summary,
                  on_event: &mut dyn FnMut(Event)| {
        // Close events whose records stopped arriving (logs without EOE).
        while let Some(i) = open.iter().position(|o| line - o.last_line > AUDIT_WINDOW) {
            let o = open.remove(i);
            emit_open(o, summary, on_event);
        }
        let Ok(text) = std::str::from_utf8(text) else {
            summary.skip(
                Skipped {
                    source: at(line),
                    reason: SkipReason::NotUtf8,
                    detail: "invalid UTF-8".into(),
                },
                opts.keep_skips,
            );
            return;
        };
        let rec = match parse_line(text) {
            Ok(r) => r,
            Err(why) => {
                summary.skip(
                    Skipped {
                        source: at(line),
                        reason: SkipReason::Malformed,
                        detail: format!("not an audit record: {why}"),
                    },
                    opts.keep_skips,
                );
                return;
            }
        };
        let pos = open
            .iter()
            .position(|o| o.serial == rec.serial && o.node == rec.node);
        if rec.rtype == "EOE" {
            if let Some(i) = pos {
                let o = open.remove(i);
                emit_open(o, summary, on_event);
            }
            return;
        }
        match pos {
            Some(i) => {
                open[i].last_line = line;
                open[i].records.push(rec);
            }
            None if AUXILIARY.contains(&rec.rtype.as_str()) => open.push(Open {
                node: rec.node.clone(),
                serial: rec.serial,
                first_line: line,
                last_line: line,
                records: vec![rec],
            }),
            None => {
                summary.event(event(std::slice::from_ref(&rec), at(line)), opts, on_event);
            }
        }
    };
    handle(&first, first_line, &mut open, summary, on_event);
    each_line(
        name,
        r,
        first_line,
        opts,
        summary,
        &mut |t, line, summary| {
            handle(&t, line, &mut open, summary, on_event);
            true
        },
    );
    open.sort_by_key(|o| o.first_line);
    for o in open {
        summary.event(event(&o.records, at(o.first_line)), opts, on_event);
    }
}

/// Hands each non-blank line after line `after` to `f` with its number, until `f` returns false
/// or the stream ends. Lines longer than `max_line` are skipped and counted; a read error (a
/// truncated gzip) ends the stream, keeping what was read, and is reported with the line reached.
fn each_line(
    name: &str,
    r: &mut dyn BufRead,
    after: u64,
    opts: &ReadOptions,
    summary: &mut Summary,
    f: &mut dyn FnMut(Vec<u8>, u64, &mut Summary) -> bool,
) {
    let mut line_no = after;
    loop {
        match next_line(r, opts.max_line) {
            Ok(Some(Line::Text(t))) => {
                line_no += 1;
                if !t.iter().all(u8::is_ascii_whitespace) && !f(t, line_no, summary) {
                    return;
                }
            }
            Ok(Some(Line::TooLong(n))) => {
                line_no += 1;
                let source = SourceRef {
                    path: name.to_owned(),
                    position: Position::Line(line_no),
                };
                let detail = format!("{n} bytes, more than {}", opts.max_line);
                summary.skip(
                    Skipped {
                        source,
                        reason: SkipReason::LineTooLong,
                        detail,
                    },
                    opts.keep_skips,
                );
            }
            Ok(None) => return,
            Err(e) => {
                summary
                    .input_errors
                    .push(format!("{name}:{}: reading stopped: {e}", line_no + 1));
                return;
            }
        }
    }
}

/// Reads one stream already opened (standard input, a network stream, bytes in memory); `name`
/// stands for its path in every [`SourceRef`]. Gzip is not detected here.
pub fn read_reader(
    name: &str,
    reader: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    read_stream(name, Box::new(reader), 0, opts, summary, on_event, None);
}

/// [`read_reader`] for a piece of a longer stream that starts after `lines_before` lines: what
/// `watch` reads from a file as it grows. Line numbers continue the file's.
pub fn read_reader_at(
    name: &str,
    reader: &mut dyn BufRead,
    lines_before: u64,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    read_stream(
        name,
        Box::new(reader),
        lines_before,
        opts,
        summary,
        on_event,
        None,
    );
}

pub(crate) fn read_stream(
    name: &str,
    mut r: Box<dyn BufRead + '_>,
    lines_before: u64,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
    par: Option<&dyn parallel::JsonLines>,
) {
    let at = |line: u64| SourceRef {
        path: name.to_owned(),
        position: Position::Line(line),
    };
    // Windows event XML is told by its first bytes: Event Viewer writes a whole export on one
    // line, often in UTF-16, so it cannot be told by its first line.
    let head_is_xml = match opts.format {
        Some(f) => f == Format::WindowsXml,
        None => r.fill_buf().is_ok_and(formats::xml::sniff_start),
    };
    if head_is_xml {
        read_windows_xml(name, &mut *r, opts, summary, on_event);
        return;
    }
    // The first non-blank line chooses the reading: audit, CSV, JSON lines or a JSON document.
    let mut first: Option<(Vec<u8>, u64)> = None;
    each_line(
        name,
        &mut *r,
        lines_before,
        opts,
        summary,
        &mut |t, line, _| {
            first = Some((t, line));
            false
        },
    );
    let Some((first, line_no)) = first else {
        return;
    };
    let is_audit = match opts.format {
        Some(f) => f == Format::Auditd,
        None => std::str::from_utf8(&first).is_ok_and(formats::auditd::sniff_line),
    };
    if is_audit {
        read_auditd(name, first, line_no, &mut *r, opts, summary, on_event);
        return;
    }
    let is_csv = match opts.format {
        Some(f) => f == Format::DefenderCsv,
        None => std::str::from_utf8(&first).is_ok_and(formats::defender::sniff_csv_header),
    };
    if is_csv {
        read_defender_csv(name, first, line_no, &mut *r, opts, summary, on_event);
        return;
    }
    if opts.format.is_none()
        && !matches!(
            first.iter().find(|c| !c.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
    {
        // Not JSON at all: one message for the file, not one per line.
        let what = if first.starts_with(b"ElfFile\0") {
            "EVTX on a stream: EVTX needs seeking, give the file's path instead".to_owned()
        } else {
            format!(
                "not a supported log format (tried windows-xml, auditd, defender-csv and the JSON formats: {})",
                json_format_names().join(", ")
            )
        };
        summary.unrecognized_files.push(format!("{name}: {what}"));
        return;
    }
    let first_is_record = serde_json::from_slice::<Value>(&first).is_ok_and(|v| v.is_object());
    if first_is_record {
        if let Some(par) = par {
            par.run(name, first, line_no, &mut *r, opts, summary);
            return;
        }
        decode_line(&first, at(line_no), opts, summary, on_event);
        each_line(
            name,
            &mut *r,
            line_no,
            opts,
            summary,
            &mut |t, line, summary| {
                decode_line(&t, at(line), opts, summary, on_event);
                true
            },
        );
        return;
    }
    // A document: the first line and the rest, read whole up to the limit.
    let mut head = first;
    head.push(b'\n');
    if let Some(doc) = read_document(name, head, &mut *r, opts, summary) {
        decode_document(&doc, line_no, name, opts, summary, on_event);
    }
}

/// The rest of a stream after `head`, whole, up to [`ReadOptions::max_document`] bytes; a longer
/// document or a read error is recorded in the summary (`None` when too large).
fn read_document(
    name: &str,
    head: Vec<u8>,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
) -> Option<Vec<u8>> {
    let mut doc = head;
    let limit = opts.max_document;
    if let Err(e) = r
        .take(limit.saturating_sub(doc.len() as u64) + 1)
        .read_to_end(&mut doc)
    {
        summary
            .input_errors
            .push(format!("{name}: reading stopped: {e}"));
    }
    if doc.len() as u64 > limit {
        summary.input_errors.push(
            InputError::TooLarge {
                path: PathBuf::from(name),
                size: doc.len() as u64,
                limit,
            }
            .to_string(),
        );
        return None;
    }
    Some(doc)
}

/// A Windows event XML document, read whole up to `max_document`.
fn read_windows_xml(
    name: &str,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let Some(doc) = read_document(name, Vec::new(), r, opts, summary) else {
        return;
    };
    let text = match formats::xml::document_text(&doc) {
        Ok(t) => t,
        Err(e) => {
            summary.skip(
                Skipped {
                    source: SourceRef {
                        path: name.to_owned(),
                        position: Position::Line(1),
                    },
                    reason: SkipReason::NotUtf8,
                    detail: format!("the XML document is not UTF-8 or UTF-16: {e}"),
                },
                opts.keep_skips,
            );
            return;
        }
    };
    formats::xml::decode_document(&text, 1, name, Decoding::of(opts), &mut |source, result| {
        summary.decoded(result, source, opts, on_event)
    });
}

fn decode_line(
    line: &[u8],
    source: SourceRef,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    match decode_line_result(line, source, opts) {
        Ok(e) => summary.event(e, opts, on_event),
        Err(s) => summary.skip(s, opts.keep_skips),
    }
}

/// One JSON line decoded, or why not.
fn decode_line_result(
    line: &[u8],
    source: SourceRef,
    opts: &ReadOptions,
) -> Result<Event, Skipped> {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            let (reason, detail) = if std::str::from_utf8(line).is_err() {
                (SkipReason::NotUtf8, "invalid UTF-8".to_owned())
            } else {
                (SkipReason::InvalidJson, e.to_string())
            };
            return Err(Skipped {
                source,
                reason,
                detail,
            });
        }
    };
    formats::decode_json(&value, source.clone(), opts.format, Decoding::of(opts)).map_err(
        |(reason, detail)| Skipped {
            source,
            reason,
            detail,
        },
    )
}

fn emit(
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

/// Concatenated JSON values, or one top-level array of them; each record's line is where it starts.
fn decode_document(
    doc: &[u8],
    first_line: u64,
    name: &str,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    // The reader put a newline after the first line whether or not the input had one: a position
    // at the very end belongs to the last line, not to one after it.
    let line_of = |offset: usize| {
        let end = offset.min(doc.len().saturating_sub(1));
        first_line + doc[..end].iter().filter(|&&c| c == b'\n').count() as u64
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(name: &str, text: &str) -> (Vec<Event>, Summary) {
        let mut events = Vec::new();
        let mut summary = Summary::default();
        read_stream(
            name,
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            0,
            &ReadOptions::default(),
            &mut summary,
            &mut |e| events.push(e),
            None,
        );
        (events, summary)
    }

    fn lines(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .map(|e| match e.source.position {
                Position::Line(n) | Position::Record { id: n, .. } => n,
            })
            .collect()
    }

    #[test]
    fn json_lines_with_bad_records_go_on_and_count_them() {
        let text = "{\"EventID\":3,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Image\":\"C:\\\\x\\\\curl.exe\",\"DestinationIp\":\"169.254.169.254\"}\n\n{not json\n[1,2]\n{\"hello\":\"world\"}\n{\"EventID\":5156,\"Channel\":\"Security\",\"Application\":\"\\\\device\\\\harddiskvolume2\\\\a.exe\",\"DestAddress\":\"10.0.0.1\",\"DestPort\":\"443\"}\n";
        let (events, summary) = read_text("t.jsonl", text);
        assert_eq!(lines(&events), vec![1, 6]);
        assert_eq!(
            events[0].network.as_ref().and_then(|n| n.dst_ip.as_deref()),
            Some("169.254.169.254")
        );
        assert_eq!(
            events[1].network.as_ref().and_then(|n| n.dst_port),
            Some(443)
        );
        assert_eq!(summary.skipped.get(&SkipReason::InvalidJson), Some(&1));
        assert_eq!(summary.skipped.get(&SkipReason::UnknownShape), Some(&2));
        let shown: Vec<String> = summary
            .first_skips
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            shown[0].starts_with("t.jsonl:3: invalid JSON:"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("t.jsonl:4: unrecognized record shape: a JSON array"),
            "{shown:?}"
        );
        assert!(shown[2].contains("t.jsonl:5: unrecognized record shape: no decoder recognizes this record (tried evtx-json, winlogbeat"), "{shown:?}");
    }

    #[test]
    fn pretty_printed_documents_and_arrays_keep_line_numbers() {
        let rec = |id: u32| {
            format!("{{\n  \"Event\": {{\n    \"System\": {{ \"EventID\": {id}, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\" }},\n    \"EventData\": {{ \"Image\": \"a.exe\" }}\n  }}\n}}")
        };
        let (events, summary) = read_text("d.json", &format!("{}\n{}\n", rec(1), rec(3)));
        assert_eq!(lines(&events), vec![1, 7]);
        assert_eq!(summary.total_skipped(), 0);
        let (events, _) = read_text("a.json", &format!("[\n{},\n{}\n]\n", rec(1), rec(22)));
        assert_eq!(lines(&events), vec![2, 8]);
        assert_eq!(events[1].native_id.as_deref(), Some("22"));
        let (_, summary) = read_text("open.json", "[");
        assert_eq!(
            summary.first_skips[0].to_string(),
            "open.json:1: invalid JSON: the array is not closed (truncated file?)"
        );
        let (events, summary) =
            read_text("cut.json", &format!("[\n{},\n{{\n  \"Event\": {{", rec(1)));
        assert_eq!(events.len(), 1, "what precedes a truncation is kept");
        assert_eq!(summary.total_skipped(), 1);
    }

    #[test]
    fn files_in_no_supported_format_are_named_once() {
        let (events, summary) = read_text("info.yml", "title: x\nid: 1\n");
        assert!(events.is_empty());
        assert_eq!(summary.total_skipped(), 0);
        assert_eq!(summary.unrecognized_files.len(), 1);
        assert!(
            summary.unrecognized_files[0].starts_with(
                "info.yml: not a supported log format (tried windows-xml, auditd, defender-csv and the JSON formats: evtx-json, "
            ),
            "{:?}",
            summary.unrecognized_files
        );
        let (_, summary) = read_text("s.evtx", "ElfFile\0\u{1}\u{2}");
        assert!(
            summary.unrecognized_files[0].contains("EVTX on a stream"),
            "{:?}",
            summary.unrecognized_files
        );
    }

    #[test]
    fn overlong_lines_are_skipped_not_loaded() {
        let mut summary = Summary::default();
        let mut events = Vec::new();
        let opts = ReadOptions {
            max_line: 64,
            ..ReadOptions::default()
        };
        let text = format!(
            "{{\"EventID\":1,\"Channel\":\"x\"}}\n{}\n{{\"EventID\":1,\"Channel\":\"x\"}}\n",
            "y".repeat(1000)
        );
        read_stream(
            "l.jsonl",
            Box::new(io::Cursor::new(text.into_bytes())),
            0,
            &opts,
            &mut summary,
            &mut |e| events.push(e),
            None,
        );
        assert_eq!(lines(&events), vec![1, 3]);
        assert_eq!(summary.skipped.get(&SkipReason::LineTooLong), Some(&1));
        assert_eq!(
            summary.first_skips[0].to_string(),
            "l.jsonl:2: line too long: 1000 bytes, more than 64"
        );
    }
}
