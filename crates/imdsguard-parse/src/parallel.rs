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

use crate::{decode_line_result, each_line, ReadOptions, Skipped, Summary};

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
    Event(Format, T),
    Skip(Skipped),
}

#[derive(Default)]
struct Batch {
    lines: Vec<(Vec<u8>, u64)>,
    bytes: usize,
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
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Batch)>(self.threads * 2);
        let job_rx = Mutex::new(job_rx);
        let (res_tx, res_rx) = mpsc::channel::<(u64, Vec<Item<T>>)>();
        std::thread::scope(|s| {
            for _ in 0..self.threads {
                let job_rx = &job_rx;
                let res_tx = res_tx.clone();
                let map = self.map;
                let at = &at;
                s.spawn(move || loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, batch)) = job else { return };
                    let items = batch
                        .lines
                        .into_iter()
                        .map(|(bytes, line)| match decode_line_result(&bytes, at(line), opts) {
                            Ok(e) => Item::Event(e.format, map(e)),
                            Err(skip) => Item::Skip(skip),
                        })
                        .collect();
                    if res_tx.send((seq, items)).is_err() {
                        return;
                    }
                });
            }
            drop(res_tx);

            let mut next_seq = 0u64;
            let mut next_emit = 0u64;
            let mut pending: BTreeMap<u64, Vec<Item<T>>> = BTreeMap::new();
            let apply = |summary: &mut Summary, items: Vec<Item<T>>| {
                for it in items {
                    match it {
                        Item::Event(f, t) => {
                            *summary.events.entry(f).or_default() += 1;
                            (self.sink.borrow_mut())(t);
                        }
                        Item::Skip(skip) => summary.skip(skip, opts.keep_skips),
                    }
                }
            };
            let drain = |summary: &mut Summary,
                             pending: &mut BTreeMap<u64, Vec<Item<T>>>,
                             next_emit: &mut u64,
                             block_until: Option<u64>| {
                loop {
                    while let Some(items) = pending.remove(next_emit) {
                        apply(summary, items);
                        *next_emit += 1;
                    }
                    let got = match block_until {
                        Some(end) if *next_emit < end => res_rx.recv().ok(),
                        _ => res_rx.try_recv().ok(),
                    };
                    match got {
                        Some((seq, items)) => {
                            pending.insert(seq, items);
                        }
                        None => return,
                    }
                }
            };
            let mut batch = Batch::default();
            batch.bytes = first.len();
            batch.lines.push((first, first_line));
            let mut failed = false;
            each_line(name, r, first_line, opts, summary, &mut |t, line, summary| {
                batch.bytes += t.len();
                batch.lines.push((t, line));
                if batch.bytes >= BATCH_BYTES {
                    if job_tx.send((next_seq, std::mem::take(&mut batch))).is_err() {
                        failed = true;
                        return false;
                    }
                    next_seq += 1;
                    drain(summary, &mut pending, &mut next_emit, None);
                }
                true
            });
            if !batch.lines.is_empty() && !failed && job_tx.send((next_seq, batch)).is_ok() {
                next_seq += 1;
            }
            drop(job_tx);
            drain(summary, &mut pending, &mut next_emit, Some(next_seq));
        });
    }
}
