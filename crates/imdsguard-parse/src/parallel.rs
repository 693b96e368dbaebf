//! JSON lines decoded on worker threads, results handed on in input order.
//!
//! The calling thread reads and splits lines (cheap) and batches them; workers parse, decode and
//! apply the caller's `map` (for `hunt`: enrich and evaluate the rules); the calling thread puts
//! the results back in input order, counts them in the [`Summary`] and passes them to `sink`.
//! The job queue holds at most `2 × threads` batches, so memory is bounded.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::{mpsc, Mutex};

use imdsguard_event::{Event, Format, Position, SourceRef};

use crate::{
    decode_line_result, normalize_event, ReadOptions, SkipReason, Skipped, Summary, TimeNote,
};

/// The skip of a line longer than the limit.
fn too_long<T>(source: SourceRef, len: usize, max: usize) -> Item<T> {
    Item::Skip(Skipped {
        source,
        reason: SkipReason::LineTooLong,
        detail: format!("{len} bytes, more than {max}"),
    })
}

/// A worker: takes numbered jobs until the queue closes, sends each result with its number.
fn serve<J, R>(
    jobs: &Mutex<mpsc::Receiver<(u64, J)>>,
    results: mpsc::Sender<(u64, R)>,
    work: impl Fn(J) -> R,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, job)) = job else { return };
        if results.send((seq, work(job))).is_err() {
            return;
        }
    }
}

/// Results put back in job order: those that arrive early wait until their turn.
struct InOrder<R> {
    results: mpsc::Receiver<(u64, R)>,
    pending: BTreeMap<u64, R>,
    next: u64,
}

impl<R> InOrder<R> {
    fn new(results: mpsc::Receiver<(u64, R)>) -> Self {
        InOrder {
            results,
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    /// Hands on every result whose turn has come; with `until`, waits for all jobs before it.
    fn drain(&mut self, until: Option<u64>, apply: &mut dyn FnMut(R)) {
        loop {
            while let Some(r) = self.pending.remove(&self.next) {
                apply(r);
                self.next += 1;
            }
            let got = match until {
                Some(end) if self.next < end => self.results.recv().ok(),
                _ => self.results.try_recv().ok(),
            };
            match got {
                Some((seq, r)) => {
                    self.pending.insert(seq, r);
                }
                None => return,
            }
        }
    }
}

/// Bytes of lines per batch.
const BATCH_BYTES: usize = 1 << 20;

/// Runs the JSON-lines reading of one stream, from its first line on.
pub(crate) trait JsonLines {
    fn run(
        &self,
        name: &str,
        first: Vec<u8>,
        first_line: u64,
        r: &mut dyn BufRead,
        opts: &ReadOptions,
        summary: &mut Summary,
    );
}

pub(crate) struct Parallel<'a, 's, T> {
    pub threads: usize,
    pub map: &'a (dyn Fn(Event) -> T + Sync),
    pub sink: &'a RefCell<&'s mut dyn FnMut(T)>,
}

enum Item<T> {
    /// An event's format, what its time was (and when, or the unreadable text), and what `map`
    /// made of it.
    Event(
        Format,
        TimeNote,
        Option<i64>,
        Option<Box<(SourceRef, String)>>,
        Option<SourceRef>,
        T,
    ),
    Skip(Skipped),
}

/// A unit of work: a block of whole lines starting at a known line number, or a line too long
/// to keep (its skip travels in order with the rest).
enum Job {
    Lines { first_line: u64, bytes: Vec<u8> },
    TooLong { line: u64, len: usize },
}

/// Receives a line's number and its bytes, or the length of a line over the limit.
type LineFn<'a> = dyn FnMut(u64, Result<&[u8], usize>) + 'a;

/// Splits a block into lines, numbered from `first_line`; calls `f` with each non-blank line that
/// fits in `max`, or with the length of one that does not.
fn split_lines(bytes: &[u8], first_line: u64, max: usize, f: &mut LineFn<'_>) {
    let mut line = first_line;
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        // Measured with a CR of a CRLF end, as the serial reader measures it.
        let raw = &bytes[start..end];
        let l = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > max {
            f(line, Err(raw.len()));
        } else if !l.iter().all(u8::is_ascii_whitespace) {
            f(line, Ok(l));
        }
        line += 1;
        start = end + 1;
    }
}

impl<T: Send> JsonLines for Parallel<'_, '_, T> {
    fn run(
        &self,
        name: &str,
        first: Vec<u8>,
        first_line: u64,
        r: &mut dyn BufRead,
        opts: &ReadOptions,
        summary: &mut Summary,
    ) {
        let at = |line: u64| SourceRef {
            path: name.to_owned(),
            position: Position::Line(line),
        };
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Job)>(self.threads * 2);
        let job_rx = Mutex::new(job_rx);
        let (res_tx, res_rx) = mpsc::channel::<(u64, Vec<Item<T>>)>();
        std::thread::scope(|s| {
            for _ in 0..self.threads {
                let job_rx = &job_rx;
                let res_tx = res_tx.clone();
                let map = self.map;
                let at = &at;
                s.spawn(move || {
                    serve(job_rx, res_tx, |job| {
                        let mut items = Vec::new();
                        match job {
                            Job::Lines { first_line, bytes } => {
                                split_lines(&bytes, first_line, opts.max_line, &mut |line, l| {
                                    items.push(match l {
                                        Ok(l) => match decode_line_result(l, at(line), opts) {
                                            Ok((mut e, lossy)) => {
                                                let (note, raw, ms) =
                                                    normalize_event(&mut e, opts.timezone.as_ref());
                                                let raw =
                                                    raw.map(|r| Box::new((e.source.clone(), r)));
                                                let lossy = lossy.then(|| e.source.clone());
                                                Item::Event(e.format, note, ms, raw, lossy, map(e))
                                            }
                                            Err(skip) => Item::Skip(skip),
                                        },
                                        Err(len) => too_long(at(line), len, opts.max_line),
                                    })
                                })
                            }
                            Job::TooLong { line, len } => {
                                items.push(too_long(at(line), len, opts.max_line))
                            }
                        }
                        items
                    })
                });
            }
            drop(res_tx);

            let mut next_seq = 0u64;
            let mut in_order = InOrder::new(res_rx);
            let drain = |summary: &mut Summary, in_order: &mut InOrder<Vec<Item<T>>>, until| {
                in_order.drain(until, &mut |items| {
                    for it in items {
                        match it {
                            Item::Event(f, note, ms, raw, lossy, t) => {
                                if let Some(at) = lossy {
                                    summary.lossy(at, opts.keep_skips);
                                }
                                summary.count(f, note, ms, raw.map(|b| *b), opts.keep_skips);
                                (self.sink.borrow_mut())(t);
                            }
                            Item::Skip(skip) => summary.skip(skip, opts.keep_skips),
                        }
                    }
                })
            };
            // Blocks of whole lines: the calling thread only copies bytes and counts newlines.
            let mut block = Vec::with_capacity(BATCH_BYTES + first.len() + 1);
            block.extend_from_slice(&first);
            block.push(b'\n');
            let mut block_line = first_line;
            // While a line too long to keep is being passed over: its number and length so far.
            let mut discarding: Option<(u64, usize)> = None;
            let mut send = |job: Job, summary: &mut Summary| -> bool {
                if job_tx.send((next_seq, job)).is_err() {
                    return false;
                }
                next_seq += 1;
                drain(summary, &mut in_order, None);
                true
            };
            loop {
                let chunk = match r.fill_buf() {
                    Ok(c) => c,
                    Err(e) => {
                        let line = block_line + memchr::memchr_iter(b'\n', &block).count() as u64;
                        summary
                            .input_errors
                            .push(format!("{name}:{}: reading stopped: {e}", line + 1));
                        break;
                    }
                };
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len();
                if let Some((line, len)) = discarding.as_mut() {
                    match memchr::memchr(b'\n', chunk) {
                        Some(i) => {
                            let (line, len) = (*line, *len + i);
                            r.consume(i + 1);
                            discarding = None;
                            if !send(Job::TooLong { line, len }, summary) {
                                break;
                            }
                            block_line = line + 1;
                        }
                        None => {
                            *len += n;
                            r.consume(n);
                        }
                    }
                    continue;
                }
                block.extend_from_slice(chunk);
                r.consume(n);
                if block.len() < BATCH_BYTES {
                    continue;
                }
                match memchr::memrchr(b'\n', &block) {
                    Some(last) => {
                        let tail = block.split_off(last + 1);
                        let lines = memchr::memchr_iter(b'\n', &block).count() as u64;
                        let full = std::mem::replace(&mut block, tail);
                        let job = Job::Lines {
                            first_line: block_line,
                            bytes: full,
                        };
                        block_line += lines;
                        if !send(job, summary) {
                            break;
                        }
                    }
                    None if block.len() > opts.max_line => {
                        // One line longer than the limit: pass over the rest of it.
                        discarding = Some((block_line, block.len()));
                        block.clear();
                    }
                    None => {}
                }
            }
            if let Some((line, len)) = discarding {
                send(Job::TooLong { line, len }, summary);
            } else if !block.is_empty() {
                send(
                    Job::Lines {
                        first_line: block_line,
                        bytes: block,
                    },
                    summary,
                );
            }
            drop(job_tx);
            drain(summary, &mut in_order, Some(next_seq));
        });
    }
}

/// Files at most this large are read whole on a worker thread, their results buffered until their
/// turn; larger ones are streamed from the calling thread, their JSON lines split across the
/// workers. The limit bounds the buffered results (for `events`, about the size of the input)
/// of the `3 × threads` files that can be in flight.
const WHOLE_FILE_LIMIT: u64 = 16 << 20;

/// One file read on a worker: what it found and what `map` made of its events.
struct FileJob<T> {
    summary: Summary,
    items: Vec<T>,
}

/// Reads inputs with files read in parallel: small files whole on worker threads (so many EVTX
/// files use every core), large files and standard input streamed with their JSON lines split
/// across the workers. Results reach `sink` in input order.
pub(crate) fn read_files<T: Send>(
    inputs: &[std::path::PathBuf],
    opts: &ReadOptions,
    threads: usize,
    summary: &mut Summary,
    map: &(dyn Fn(Event) -> T + Sync),
    sink: &RefCell<&mut dyn FnMut(T)>,
    lines: &dyn JsonLines,
) {
    enum Work {
        File(std::path::PathBuf),
        Stream(std::path::PathBuf),
        Error(String),
    }
    let mut work = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            work.push(Work::Stream(input.clone()));
            continue;
        }
        let mut files = Vec::new();
        let walked = crate::collect_files(
            input,
            &opts.extensions,
            &mut files,
            &mut summary.input_errors,
            &mut summary.passed_over,
        );
        match walked {
            Err(e) => work.push(Work::Error(e.to_string())),
            Ok(()) => {
                for f in files {
                    let big = std::fs::metadata(&f).is_ok_and(|m| m.len() > WHOLE_FILE_LIMIT);
                    work.push(if big { Work::Stream(f) } else { Work::File(f) });
                }
            }
        }
    }
    let (job_tx, job_rx) = mpsc::sync_channel::<(u64, std::path::PathBuf)>(threads * 2);
    let job_rx = Mutex::new(job_rx);
    let (res_tx, res_rx) = mpsc::channel::<(u64, FileJob<T>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let job_rx = &job_rx;
            let res_tx = res_tx.clone();
            s.spawn(move || {
                serve(job_rx, res_tx, |path: std::path::PathBuf| {
                    let mut fs = Summary::default();
                    let mut items = Vec::new();
                    fs.files += 1;
                    if let Err(e) =
                        crate::read_file(&path, opts, &mut fs, &mut |e| items.push(map(e)), None)
                    {
                        fs.input_errors.push(e.to_string());
                    }
                    FileJob { summary: fs, items }
                })
            });
        }
        drop(res_tx);
        let mut next_seq = 0u64;
        let mut in_order = InOrder::new(res_rx);
        let mut drain = |summary: &mut Summary, until: Option<u64>| {
            in_order.drain(until, &mut |job: FileJob<T>| {
                summary.merge(job.summary, opts.keep_skips);
                let mut sink = sink.borrow_mut();
                for t in job.items {
                    sink(t);
                }
            })
        };
        for w in work {
            match w {
                Work::File(path) => {
                    if job_tx.send((next_seq, path)).is_err() {
                        break;
                    }
                    next_seq += 1;
                    drain(summary, None);
                }
                Work::Stream(path) => {
                    // Everything before it first, then the stream itself, split across workers.
                    drain(summary, Some(next_seq));
                    summary.files += 1;
                    let mut on_event = |e: Event| (sink.borrow_mut())(map(e));
                    if path.as_os_str() == "-" {
                        let stdin = std::io::stdin();
                        crate::read_stream(
                            "-",
                            Box::new(stdin.lock()),
                            0,
                            opts,
                            summary,
                            &mut on_event,
                            Some(lines),
                        );
                    } else if let Err(e) =
                        crate::read_file(&path, opts, summary, &mut on_event, Some(lines))
                    {
                        summary.input_errors.push(e.to_string());
                    }
                }
                Work::Error(e) => {
                    drain(summary, Some(next_seq));
                    summary.input_errors.push(e);
                }
            }
        }
        drop(job_tx);
        drain(summary, Some(next_seq));
    });
}
