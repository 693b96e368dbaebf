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

mod archive;
mod error;
mod evtx_file;
mod fields;
pub mod follow;
mod formats;
pub mod inventory;
mod json;
mod json_reader;
pub mod messages;
pub mod notify;
mod parallel;
mod summary;
pub mod syslog;
mod utf16;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::json::Value;
pub use error::{InputError, SkipReason, Skipped};
pub use formats::json_format_names;
pub use formats::log_format::LogFormat;
use imdsguard_event::{Event, FieldSet, Format, LocalZone, Position, SourceRef};
pub(crate) use json_reader::{decode_document, decode_line, decode_line_result};
pub(crate) use summary::normalize_event;
pub use summary::Summary;

/// For the fuzz target: whether the fast JSON reader agrees with `serde_json` on a document.
#[doc(hidden)]
pub use json::agrees_with_serde as json_agrees_with_serde;
pub(crate) use summary::TimeNote;

/// How inputs are read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Use this decoder for every record instead of sniffing.
    pub format: Option<Format>,
    /// Longest line read in JSON lines mode; longer lines are skipped and counted.
    pub max_line: usize,
    /// Largest document read whole: a JSON document (not JSON lines), an XML export, a
    /// compressed EVTX file.
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
    /// How many lines that are no record a stream may start with before the whole stream is
    /// named as not a supported format (a file that is no log: a README, a YAML rule). Lines
    /// before the first record are skipped and counted one by one. `u64::MAX` for a live stream
    /// (`watch`'s standard input, syslog, a followed file's new lines), which is never named
    /// unsupported: each line that is no record is skipped and counted.
    pub leading_junk: u64,
    /// Where to count the bytes of input files consumed, for a progress bar.
    pub progress: Option<Arc<Progress>>,
    /// When not empty, a directory's files are read only when their names end in `.EXT` for
    /// one of these (any case, no leading dot: `evtx`, `jsonl.gz`); files named on the command
    /// line are read whatever their names.
    pub extensions: Arc<Vec<String>>,
    /// The user's access-log layout (`--log-format`): a file whose first record line follows it
    /// is read with it.
    pub log_format: Option<Arc<LogFormat>>,
}

/// How far a read has got: the bytes of input files consumed (as stored, compressed or not),
/// shared with whoever shows progress. A file counts its whole size once it is done with, read
/// to its end or not.
#[derive(Debug, Default)]
pub struct Progress {
    bytes: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// The bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The total size of the files `inputs` name (directories walked as a read walks them), for a
/// progress bar; `None` when one is standard input or not a regular file (its size is unknown).
pub fn input_size(inputs: &[PathBuf], extensions: &[String]) -> Option<u64> {
    let mut total = 0u64;
    for input in inputs {
        if input.as_os_str() == "-" {
            return None;
        }
        let mut files = Vec::new();
        let (mut notes, mut passed) = (Vec::new(), Vec::new());
        if collect_files(input, extensions, &mut files, &mut notes, &mut passed).is_err() {
            continue;
        }
        for f in files {
            let meta = std::fs::metadata(&f).ok()?;
            if !meta.is_file() {
                return None;
            }
            total += meta.len();
        }
    }
    Some(total)
}

/// An input file whose reads are counted into a [`Progress`], when one is given; dropped, it
/// counts the rest of its size.
struct Counted {
    file: File,
    progress: Option<Arc<Progress>>,
    size: u64,
    counted: u64,
}

impl Counted {
    fn count(&mut self, n: u64) {
        if let Some(p) = &self.progress {
            let n = n.min(self.size - self.counted);
            self.counted += n;
            p.add(n);
        }
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.count(n as u64);
        Ok(n)
    }
}

impl Seek for Counted {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.count(u64::MAX);
    }
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
            leading_junk: 16,
            progress: None,
            extensions: Arc::default(),
            log_format: None,
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
        let walked = collect_files(
            input,
            &opts.extensions,
            &mut files,
            &mut summary.input_errors,
            &mut summary.passed_over,
        );
        if let Err(e) = walked {
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

/// The files an input names: the input itself when it is not a directory (read whatever it is:
/// a FIFO given by name is the user's choice), else every regular file under it, sorted. What a
/// walk finds and does not read — a dangling or looping symbolic link, a directory reached
/// again through a link, a FIFO, socket or device, an unreadable directory — goes to `notes`,
/// one line each, and the walk goes on; hidden entries it passes over on purpose go to
/// `passed`, one line per folder. Only an input that cannot be opened at all is an error.
pub(crate) fn collect_files(
    path: &Path,
    extensions: &[String],
    out: &mut Vec<PathBuf>,
    notes: &mut Vec<String>,
    passed: &mut Vec<String>,
) -> Result<(), InputError> {
    let meta = std::fs::metadata(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    walk(
        path,
        extensions,
        out,
        notes,
        passed,
        &mut std::collections::HashSet::new(),
    );
    Ok(())
}

/// Whether a file's name ends in `.EXT` for one of `extensions`, in any case.
fn has_extension(path: &Path, extensions: &[String]) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    let name = name.to_string_lossy().to_ascii_lowercase();
    extensions.iter().any(|e| {
        name.len() > e.len() + 1
            && name.ends_with(e.as_str())
            && name.as_bytes()[name.len() - e.len() - 1] == b'.'
    })
}

fn walk(
    dir: &Path,
    extensions: &[String],
    out: &mut Vec<PathBuf>,
    notes: &mut Vec<String>,
    passed: &mut Vec<String>,
    seen: &mut std::collections::HashSet<PathBuf>,
) {
    // A directory is walked once, however many links lead to it: no loop, no file read twice.
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !seen.insert(key) {
        notes.push(format!(
            "{}: a directory already walked (a symbolic link to it): not walked again",
            dir.display()
        ));
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            notes.push(format!("{}: {e}: not walked", dir.display()));
            return;
        }
    };
    entries.sort();
    // Hidden entries (`.git`, `.cache`, editors' swap files) are not logs: passed over, said
    // once per folder; a hidden folder named on the command line is walked.
    let hidden: Vec<&PathBuf> = entries
        .iter()
        .filter(|e| {
            e.file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        })
        .collect();
    if !hidden.is_empty() {
        passed.push(format!(
            "{}: {} hidden entries not read ({}{}): name them to read them",
            dir.display(),
            hidden.len(),
            hidden
                .iter()
                .take(3)
                .filter_map(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", "),
            if hidden.len() > 3 { ", …" } else { "" }
        ));
    }
    let mut other = 0usize;
    for entry in entries {
        if entry
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        {
            continue;
        }
        match std::fs::metadata(&entry) {
            Ok(m) if m.is_dir() => walk(&entry, extensions, out, notes, passed, seen),
            Ok(m)
                if m.is_file() && !extensions.is_empty() && !has_extension(&entry, extensions) =>
            {
                other += 1;
            }
            Ok(m) if m.is_file() => out.push(entry),
            Ok(m) => notes.push(format!(
                "{}: {}: not read (only regular files are read in a directory)",
                entry.display(),
                special_kind(&m)
            )),
            Err(e) => {
                let link = std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_symlink());
                notes.push(if link {
                    format!(
                        "{}: a symbolic link that leads nowhere ({e}): not read",
                        entry.display()
                    )
                } else {
                    format!("{}: {e}: not read", entry.display())
                });
            }
        }
    }
    if other > 0 {
        passed.push(format!(
            "{}: {other} files not named .{} not read (--ext)",
            dir.display(),
            extensions.join(", .")
        ));
    }
}

/// What a file that is neither a directory nor a regular file is.
fn special_kind(m: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    let _ = m;
    "not a regular file"
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
    let file = File::open(path).map_err(io_err)?;
    let mut file = Counted {
        size: match &opts.progress {
            Some(_) => file.metadata().map_or(0, |m| m.len()),
            None => 0,
        },
        file,
        progress: opts.progress.clone(),
        counted: 0,
    };
    // The first 512 bytes tell EVTX, archives and gzip from text.
    let mut magic = [0u8; 512];
    let mut n = 0;
    while n < magic.len() {
        match file.read(&mut magic[n..]).map_err(io_err)? {
            0 => break,
            k => n += k,
        }
    }
    if n >= 8 && magic.starts_with(evtx_file::MAGIC) {
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        evtx_file::read_evtx(&name, file, opts, summary, on_event);
        return Ok(());
    }
    // An EVTX file whose header was overwritten still has its chunks.
    if n >= 8 && evtx_file::has_chunks(&mut file) {
        evtx_file::read_headless(&name, file, opts, summary, on_event);
        return Ok(());
    }
    // An archive counts as the files it holds.
    if archive::is_zip(&magic[..n]) || archive::is_tar(&magic[..n]) {
        summary.files = summary.files.saturating_sub(1);
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut r = BufReader::with_capacity(READ_BUFFER, file);
        if archive::is_zip(&magic[..n]) {
            archive::read_zip(&name, r, opts, summary, on_event, par);
        } else {
            archive::read_tar(&name, &mut r, opts, summary, on_event, par);
        }
        return Ok(());
    }
    file.seek(SeekFrom::Start(n as u64)).map_err(io_err)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(file);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let mut gz = BufReader::new(flate2::read::MultiGzDecoder::new(head));
        if gz.fill_buf().is_ok_and(archive::is_tar) {
            summary.files = summary.files.saturating_sub(1);
            archive::read_tar(&name, &mut gz, opts, summary, on_event, par);
            return Ok(());
        }
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
                    what: "a gzip-compressed EVTX file",
                    limit: opts.max_document,
                    advice: "decompress it first",
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

/// Hands `first` (line `first_line`, already read to choose the reading), then every line
/// after it, to `f` with its number: the loop of the line formats.
pub(crate) fn each_line_from(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    f: &mut dyn FnMut(Vec<u8>, u64, &mut Summary),
) {
    f(first, first_line, summary);
    each_line(name, r, first_line, opts, summary, &mut |t, n, summary| {
        f(t, n, summary);
        true
    });
}

/// The reading of a line format whose every line is one record: each line from `first` on, read
/// lossily (a byte that is not UTF-8 costs that byte, and the record is marked), its line end cut,
/// handed to `decode` with its place, and the event counted or the line skipped with why.
#[allow(clippy::too_many_arguments)] // a line reader's own seven, and its decoder
pub(crate) fn each_record_line(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
    decode: &dyn Fn(&str, SourceRef) -> Result<Event, formats::Skip>,
) {
    let mut one = |t: Vec<u8>, n: u64, summary: &mut Summary| {
        let source = SourceRef {
            path: name.to_owned(),
            position: Position::Line(n),
        };
        let text = String::from_utf8_lossy(&t);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            summary.lossy(source.clone(), opts.keep_skips);
        }
        let line = text.trim_end_matches(['\r', '\n']);
        summary.decoded(decode(line, source.clone()), source, opts, on_event);
    };
    each_line_from(name, first, first_line, r, opts, summary, &mut one);
}

/// Hands each non-blank line after line `after` to `f` with its number, until `f` returns false
/// or the stream ends. Lines longer than `max_line` are skipped and counted; a read error (a
/// truncated gzip) ends the stream, keeping what was read, and is reported with the line reached.
pub(crate) fn each_line(
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

/// Reads an EVTX file held in memory (a whole file, cut short, or with its header damaged) as
/// a file of that name would be read: its records, what was lost said in `summary`. Bytes that
/// are no EVTX at all are an input error.
pub fn read_evtx_bytes(
    name: &str,
    bytes: &[u8],
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let mut c = io::Cursor::new(bytes);
    if bytes.starts_with(evtx_file::MAGIC) {
        evtx_file::read_evtx(name, c, opts, summary, on_event);
    } else if evtx_file::has_chunks(&mut c) {
        evtx_file::read_headless(name, c, opts, summary, on_event);
    } else {
        summary.input_errors.push(format!(
            "{name}: not an EVTX file: neither file nor chunk header"
        ));
    }
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
        None => r.fill_buf().is_ok_and(formats::windows_xml::sniff_start),
    };
    if head_is_xml {
        formats::windows_xml::read(name, &mut *r, lines_before, opts, summary, on_event);
        return;
    }
    // UTF-16 with its byte-order mark (PowerShell's `Out-File`): read as UTF-8.
    let bom = r.fill_buf().ok().and_then(|b| match b {
        [0xFF, 0xFE, ..] => Some(true),
        [0xFE, 0xFF, ..] => Some(false),
        _ => None,
    });
    if let Some(little) = bom {
        r.consume(2);
        let utf8 = utf16::Utf16Reader::new(r, little);
        read_stream(
            name,
            Box::new(BufReader::with_capacity(READ_BUFFER, utf8)),
            lines_before,
            opts,
            summary,
            on_event,
            par,
        );
        return;
    }
    // A log file of one array of records (CloudTrail's `{"Records": [...]}` as delivered to S3,
    // Azure's `{"records": [...]}`) is one line of many megabytes: read as a document from its
    // first byte, whatever the line limit.
    let records_file = opts.format.is_none_or(|f| {
        matches!(
            f,
            Format::AwsCloudTrail | Format::AzureActivity | Format::AzureEntra | Format::AzureHttp
        )
    }) && r
        .fill_buf()
        .is_ok_and(|b| json_reader::records_array(b, 0).is_some());
    if records_file {
        if let Some(doc) =
            read_document(name, DocumentKind::Json, Vec::new(), &mut *r, opts, summary)
        {
            decode_document(&doc, lines_before + 1, name, opts, summary, on_event);
        }
        return;
    }
    // The first line that is a record of some reading chooses it: audit, CSV, JSON lines or a JSON
    // document. Lines before it that are none (a banner, a shell's noise, a syslog sender's junk)
    // are skipped and counted, each with its line, once a reading is found; a file that starts
    // with more of them than `leading_junk`, or holds nothing else, is named once as not a
    // supported format.
    let mut leading: Vec<u64> = Vec::new();
    let mut leading_count = 0u64;
    let mut evtx_head = false;
    let mut gave_up = false;
    let mut utf16 = false;
    let mut first: Option<(Vec<u8>, u64)> = None;
    each_line(
        name,
        &mut *r,
        lines_before,
        opts,
        summary,
        &mut |t, line, _| {
            if !starts_a_reading(&t, opts) {
                if leading_count >= opts.leading_junk {
                    gave_up = true;
                    return false;
                }
                evtx_head |= leading_count == 0 && t.starts_with(b"ElfFile\0");
                // UTF-16 without its byte-order mark: ASCII with a NUL after (or before) each byte.
                utf16 |= leading_count == 0
                    && t.len() >= 4
                    && ((t[1] == 0 && t[3] == 0 && t[0] != 0)
                        || (t[0] == 0 && t[2] == 0 && t[1] != 0));
                leading_count += 1;
                if leading.len() < opts.keep_skips {
                    leading.push(line);
                }
                return !evtx_head;
            }
            first = Some((t, line));
            false
        },
    );
    let Some((first, line_no)) = first else {
        // Nothing but lines that are no record: one message for a file, not one per line; on a
        // live stream, each line skipped and counted.
        if gave_up || (leading_count > 0 && opts.leading_junk != u64::MAX) {
            let what = if evtx_head {
                "EVTX on a stream: EVTX needs seeking, give the file's path instead".to_owned()
            } else if utf16 {
                "UTF-16 text without a byte-order mark, whose byte order cannot be told: convert \
                 it to UTF-8 (iconv -f UTF-16LE -t UTF-8, or Out-File -Encoding utf8)"
                    .to_owned()
            } else {
                format!(
                    "not a supported log format (tried windows-xml, {} and the JSON formats: {})",
                    formats::line_format_names().join(", "),
                    json_format_names().join(", ")
                )
            };
            summary.unrecognized_files.push(format!("{name}: {what}"));
            return;
        }
        skip_leading(&leading, leading_count, &at, opts, summary);
        return;
    };
    skip_leading(&leading, leading_count, &at, opts, summary);
    if formats::follows_layout(&first, opts) {
        formats::log_format::read(name, first, line_no, &mut *r, opts, summary, on_event);
        return;
    }
    if let Some(lines) = formats::line_reader(&first, opts.format) {
        match lines.read {
            formats::Reading::Lines(read) => {
                read(name, first, line_no, &mut *r, opts, summary, on_event)
            }
            formats::Reading::EveryLine(decode) => each_record_line(
                name, first, line_no, &mut *r, opts, summary, on_event, &decode,
            ),
        }
        return;
    }
    // A log file holding its records in one array (CloudTrail's `{"Records": [...]}`, one line
    // as delivered) is a document, whose records are its array's elements.
    let first_is_record = json_reader::records_array(&first, 0).is_none()
        && serde_json::from_str::<Value>(&String::from_utf8_lossy(&first))
            .is_ok_and(|v| v.is_object());
    if first_is_record {
        if let Some(par) = par {
            par.run(name, first, line_no, &mut *r, opts, summary);
            return;
        }
        each_line_from(
            name,
            first,
            line_no,
            &mut *r,
            opts,
            summary,
            &mut |t, line, summary| decode_line(&t, at(line), opts, summary, on_event),
        );
        return;
    }
    // A document: the first line and the rest, read whole up to the limit.
    let mut head = first;
    head.push(b'\n');
    if let Some(doc) = read_document(name, DocumentKind::Json, head, &mut *r, opts, summary) {
        decode_document(&doc, line_no, name, opts, summary, on_event);
    }
}

/// Records the lines before a stream's first record (`kept` of `count` by line) as skipped.
fn skip_leading(
    kept: &[u64],
    count: u64,
    at: &dyn Fn(u64) -> SourceRef,
    opts: &ReadOptions,
    summary: &mut Summary,
) {
    for line in kept {
        summary.skip(
            Skipped {
                source: at(*line),
                reason: SkipReason::Malformed,
                detail: "not a record of any supported format".into(),
            },
            opts.keep_skips,
        );
    }
    summary.count_skips(SkipReason::Malformed, count - kept.len() as u64);
}

/// Whether `line` can start a reading: the first line of a line format (an audit record, a Zeek
/// or W3C header, an access-log line, a Defender CSV header …), or JSON (a whole
/// value, or one the line's end cuts: a pretty-printed document) — not a line such as
/// `[INFO] started` that JSON cannot read at all. With a format forced, what that format's
/// reading takes.
fn starts_a_reading(line: &[u8], opts: &ReadOptions) -> bool {
    let json = || {
        // A log file of one array of records reads element by element, a bad one skipped.
        if json_reader::records_array(line, 0).is_some() {
            return true;
        }
        if !matches!(
            line.iter().find(|c| !c.is_ascii_whitespace()),
            Some(b'{' | b'[')
        ) {
            return false;
        }
        // A line that is not UTF-8 is judged as it will be read: with U+FFFD in place.
        let text = String::from_utf8_lossy(line);
        let mut values =
            serde_json::Deserializer::from_str(&text).into_iter::<serde::de::IgnoredAny>();
        match values.next() {
            Some(Ok(_)) => true,
            Some(Err(e)) => e.is_eof(),
            None => false,
        }
    };
    if formats::follows_layout(line, opts) {
        return true;
    }
    let text = String::from_utf8_lossy(line);
    match opts.format {
        Some(Format::WindowsXml) => true,
        Some(f) => match formats::LINE_FORMATS
            .iter()
            .find(|l| l.formats.contains(&f))
        {
            Some(l) if !l.also_json => true,
            Some(l) => (l.sniff)(&text) || json(),
            None => json(),
        },
        None => formats::LINE_FORMATS.iter().any(|l| (l.sniff)(&text)) || json(),
    }
}

/// What a document read whole is, for the message when it is too large.
#[derive(Clone, Copy)]
pub(crate) enum DocumentKind {
    Json,
    Xml,
}

impl DocumentKind {
    fn what(self) -> &'static str {
        match self {
            DocumentKind::Json => "a JSON document (not JSON lines)",
            DocumentKind::Xml => "an XML document",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            DocumentKind::Json => "write it as JSON lines, one record a line",
            DocumentKind::Xml => "split it, or export the events as EVTX or JSON lines",
        }
    }
}

/// The rest of a stream after `head`, whole, up to [`ReadOptions::max_document`] bytes; a longer
/// document or a read error is recorded in the summary (`None` when too large).
pub(crate) fn read_document(
    name: &str,
    kind: DocumentKind,
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
                what: kind.what(),
                limit,
                advice: kind.advice(),
            }
            .to_string(),
        );
        return None;
    }
    Some(doc)
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

    const CT: &str = r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"X"}"#;

    #[test]
    fn a_records_array_is_read_element_by_element_each_cited_by_line_and_index() {
        let one_line = format!("{{\"Records\":[{},{}]}}", CT, CT.replace("\"X\"", "\"Y\""));
        let (events, summary) = read_text("ct.json", &one_line);
        assert!(summary.skipped.is_empty());
        let at: Vec<Position> = events.iter().map(|e| e.source.position).collect();
        assert_eq!(
            at,
            [
                Position::Element { line: 1, index: 0 },
                Position::Element { line: 1, index: 1 }
            ]
        );
        assert_eq!(events[1].record_id.as_deref(), Some("Y"));
        assert_eq!(events[1].source.to_string(), "ct.json:1 [1]");
        // Pretty-printed, and two files' worth concatenated.
        let pretty =
            format!("{{\n  \"Records\": [\n    {CT},\n    {CT}\n  ]\n}}\n{{\"Records\":[{CT}]}}\n");
        let (events, _) = read_text("ct.json", &pretty);
        let at: Vec<Position> = events.iter().map(|e| e.source.position).collect();
        assert_eq!(
            at,
            [
                Position::Element { line: 3, index: 0 },
                Position::Element { line: 4, index: 1 },
                Position::Element { line: 7, index: 0 }
            ]
        );
    }

    #[test]
    fn a_csv_record_a_lone_carriage_return_starts_in_the_last_line_is_cited_there() {
        let text = b"Timestamp,DeviceName,ActionType,InitiatingProcessFileName\r\xff\xfe,a,b,c";
        let mut summary = Summary::default();
        read_stream(
            "h.csv",
            Box::new(io::Cursor::new(text.to_vec())),
            0,
            &ReadOptions::default(),
            &mut summary,
            &mut |_| {},
            None,
        );
        assert!(!summary.first_skips.is_empty(), "{summary:?}");
        for s in &summary.first_skips {
            assert_eq!(s.source.position, Position::Line(1), "{s}");
        }
    }

    #[test]
    fn a_records_file_longer_than_the_line_limit_is_read_whole() {
        // CloudTrail delivers a file of many megabytes on one line.
        let many: Vec<String> = (0..50)
            .map(|i| CT.replace("\"X\"", &format!("\"E{i}\"")))
            .collect();
        let text = format!("{{\"Records\":[{}]}}", many.join(","));
        let opts = ReadOptions {
            max_line: 256,
            ..ReadOptions::default()
        };
        let mut events = Vec::new();
        let mut summary = Summary::default();
        read_stream(
            "big.json",
            Box::new(io::Cursor::new(text.into_bytes())),
            0,
            &opts,
            &mut summary,
            &mut |e| events.push(e),
            None,
        );
        assert!(summary.skipped.is_empty(), "{:?}", summary.first_skips);
        assert_eq!(events.len(), 50);
        assert_eq!(
            events[49].source.position,
            Position::Element { line: 1, index: 49 }
        );
    }

    #[test]
    fn a_cut_records_array_keeps_what_came_before_and_says_where_it_stopped() {
        let cut = format!("{{\"Records\":[{CT},{CT},{{\"eventVersion\":\"1.0");
        let (events, summary) = read_text("ct.json", &cut);
        assert_eq!(events.len(), 2);
        assert_eq!(summary.skipped.values().sum::<u64>(), 1);
        let s = &summary.first_skips[0];
        assert_eq!(s.source.position, Position::Element { line: 1, index: 2 });
        // Bad JSON inside an element names it too.
        let bad = format!("{{\"Records\":[{CT},{{\"a\":tru}}]}}");
        let (events, summary) = read_text("ct.json", &bad);
        assert_eq!(events.len(), 1);
        assert_eq!(
            summary.first_skips[0].source.position,
            Position::Element { line: 1, index: 1 }
        );
    }

    #[test]
    fn a_document_over_the_limit_is_named_by_what_it_is() {
        let opts = ReadOptions {
            max_document: 64,
            ..ReadOptions::default()
        };
        let cases = [
            (
                "big.xml",
                format!("<Events>{}</Events>", "<Event></Event>".repeat(20)),
                "big.xml: an XML document larger than the 64 bytes read whole",
            ),
            (
                "big.json",
                format!("[\n{}{{}}]", "{},\n".repeat(30)),
                "big.json: a JSON document (not JSON lines) larger than the 64 bytes read whole",
            ),
        ];
        for (name, text, want) in cases {
            let mut summary = Summary::default();
            read_stream(
                name,
                Box::new(io::Cursor::new(text.into_bytes())),
                0,
                &opts,
                &mut summary,
                &mut |_| {},
                None,
            );
            assert_eq!(
                summary.input_errors.len(),
                1,
                "{name}: {:?}",
                summary.input_errors
            );
            assert!(
                summary.input_errors[0].starts_with(want),
                "{}",
                summary.input_errors[0]
            );
        }
    }

    fn lines(events: &[Event]) -> Vec<u64> {
        events.iter().map(|e| e.source.position.number()).collect()
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
    fn lines_before_the_first_record_are_skipped_one_by_one_not_the_stream() {
        let rec = "{\"EventID\":3,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Image\":\"C:\\\\x\\\\curl.exe\",\"DestinationIp\":\"169.254.169.254\"}";
        // A banner, a log line that looks like JSON to a first glance, and a blank line, then
        // records: the records are read, each junk line is skipped by its line.
        let text = format!("starting up\n[INFO] tail -f\n\n{rec}\n{rec}\n");
        let (events, summary) = read_text("s.jsonl", &text);
        assert_eq!(lines(&events), vec![4, 5]);
        assert!(summary.unrecognized_files.is_empty());
        assert_eq!(summary.skipped.get(&SkipReason::Malformed), Some(&2));
        let shown: Vec<String> = summary
            .first_skips
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            shown[0].starts_with("s.jsonl:1: malformed record: not a record"),
            "{shown:?}"
        );
        assert!(shown[1].starts_with("s.jsonl:2: "), "{shown:?}");
        // An audit log behind a junk line is still an audit log.
        let audit = "type=SYSCALL msg=audit(1763630000.300:3001): arch=c000003e syscall=59 success=yes exit=0 ppid=2200 pid=2201 uid=1001 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"exec\"\ntype=EXECVE msg=audit(1763630000.300:3001): argc=2 a0=\"curl\" a1=\"http://169.254.169.254/latest/meta-data/\"\ntype=EOE msg=audit(1763630000.300:3001):\n";
        let (events, summary) = read_text("a.log", &format!("-- Logs begin --\n{audit}"));
        assert_eq!(events.len(), 1, "{:?}", summary.first_skips);
        assert_eq!(summary.skipped.get(&SkipReason::Malformed), Some(&1));
        // A pretty-printed document still starts a reading on its first line.
        let (events, _) = read_text("d.json", &format!("[\n{rec}\n]\n"));
        assert_eq!(events.len(), 1);
        // A file that starts with more such lines than `leading_junk` is no log: named once.
        let readme = format!("{}{rec}\n", "# A README\n".repeat(17));
        let (events, summary) = read_text("README.md", &readme);
        assert!(events.is_empty());
        assert_eq!(summary.unrecognized_files.len(), 1);
        assert_eq!(summary.total_skipped(), 0);
        // A live stream's chunk of junk alone: each line skipped and counted, nothing named
        // unsupported, and the next chunk's records read.
        let live = ReadOptions {
            leading_junk: u64::MAX,
            ..ReadOptions::default()
        };
        let mut summary = Summary::default();
        let mut events = Vec::new();
        for chunk in ["junk\n".repeat(20), format!("{rec}\n")] {
            read_stream(
                "-",
                Box::new(io::Cursor::new(chunk.into_bytes())),
                0,
                &live,
                &mut summary,
                &mut |e| events.push(e),
                None,
            );
        }
        assert_eq!(events.len(), 1);
        assert!(summary.unrecognized_files.is_empty());
        assert_eq!(summary.skipped.get(&SkipReason::Malformed), Some(&20));
    }

    /// JSON lines in UTF-16 with a byte-order mark, as Windows PowerShell's `Out-File` writes
    /// them, are read as the same lines in UTF-8 (before, the file was named and not read).
    #[test]
    fn utf16_json_lines_read_as_their_utf8_twins() {
        let text = concat!(
            r#"{"EventTime":"2026-11-20 08:00:00","Hostname":"web01","SourceModuleType":"im_msvistalog","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","ProcessId":"4","Image":"C:\\Windows\\System32\\curl.exe","CommandLine":"curl.exe http://169.254.169.254/latest/meta-data/ zoë"}"#,
            "\r\n",
            "not json\r\n",
            r#"{"EventTime":"2026-11-20 08:00:01","Hostname":"web01","SourceModuleType":"im_msvistalog","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","ProcessId":"5","Image":"C:\\x.exe"}"#,
            "\r\n"
        );
        let (want, want_summary) = read_text("ps.json", text);
        assert_eq!(want.len(), 2);
        for little in [true, false] {
            let mut bytes = if little {
                vec![0xFF, 0xFE]
            } else {
                vec![0xFE, 0xFF]
            };
            for u in text.encode_utf16() {
                bytes.extend_from_slice(&if little {
                    u.to_le_bytes()
                } else {
                    u.to_be_bytes()
                });
            }
            let mut summary = Summary::default();
            let mut events = Vec::new();
            read_stream(
                "ps.json",
                Box::new(io::Cursor::new(bytes)),
                0,
                &ReadOptions::default(),
                &mut summary,
                &mut |e| events.push(e),
                None,
            );
            assert_eq!(events, want);
            assert_eq!(summary.total_skipped(), want_summary.total_skipped());
            assert_eq!(summary.first_skips[0].source.position, Position::Line(2));
        }
    }

    #[test]
    fn files_in_no_supported_format_are_named_once() {
        let (events, summary) = read_text("info.yml", "title: x\nid: 1\n");
        assert!(events.is_empty());
        assert_eq!(summary.total_skipped(), 0);
        assert_eq!(summary.unrecognized_files.len(), 1);
        assert!(
            summary.unrecognized_files[0].starts_with(
                "info.yml: not a supported log format (tried windows-xml, auditd, zeek-http, zeek-conn, zeek-dns, w3c, web-access, haproxy, squid, aws-alb, aws-vpc-flow, defender-csv and the JSON formats: evtx-json, "
            ),
            "{:?}",
            summary.unrecognized_files
        );
        // UTF-16 with no byte-order mark: named, with what to do.
        let mut u16 = Vec::new();
        for u in "title: x\n".encode_utf16() {
            u16.extend_from_slice(&u.to_le_bytes());
        }
        let mut summary = Summary::default();
        read_stream(
            "ps.txt",
            Box::new(io::Cursor::new(u16)),
            0,
            &ReadOptions::default(),
            &mut summary,
            &mut |_| {},
            None,
        );
        assert!(
            summary.unrecognized_files[0].contains("ps.txt: UTF-16 text without a byte-order mark"),
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
