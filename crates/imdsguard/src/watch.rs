//! `imdsguard watch`: follow files as they grow and detect continuously, with the same decoders,
//! detections, correlation and triage as `hunt`.
//!
//! Each file is read in chunks of complete lines ([`Follower`]). A chunk's alerts, the incidents
//! they touch and the file's new position are written to the store in one transaction, so a
//! restart — even after `kill -9` — resumes at the last committed position, and what it reads
//! again adds no alert twice (ids are stable). Alerts are printed after they are committed and
//! only when they were new to the store, so the output repeats nothing either. Reading waits for
//! writing: when output is slow, input is read slowly, never dropped, and at most one chunk per
//! file is held.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use imdsguard_correlate::{Baselines, Engine, Incident};
use imdsguard_enrich::Enricher;
use imdsguard_event::{format_time_ms, Format, Severity};
use imdsguard_parse::follow::{Follower, Position};
use imdsguard_parse::{read_reader_at, ReadOptions, Summary};
use imdsguard_rules::Alert;
use imdsguard_store::{Batch, Checkpoint, Store};
use imdsguard_target::Normalizer;

use crate::hunt::{observe, rule_set};
use crate::load_catalog;
use crate::store_cmds::StoredOutput;

/// What `watch` was asked to do.
pub struct WatchConfig {
    pub inputs: Vec<PathBuf>,
    pub format: Option<Format>,
    pub timezone: Option<imdsguard_event::LocalZone>,
    pub output: StoredOutput,
    pub out_file: Option<PathBuf>,
    pub min_severity: Severity,
    pub allowlist: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub sigma: Vec<PathBuf>,
    pub no_builtin: bool,
    pub correlate: imdsguard_correlate::Config,
    pub incident_gap_ms: i64,
    pub db: PathBuf,
    pub poll: Duration,
    pub max_chunk: usize,
    /// Stop when every file has been read to its end (for tests and one-shot catch-up).
    pub once: bool,
    /// Addresses to receive syslog on (RFC 5424/3164), UDP and TCP.
    pub syslog_udp: Vec<String>,
    pub syslog_tcp: Vec<String>,
    /// A URL every new alert is POSTed to (through the store's outbox).
    pub webhook: Option<String>,
}

#[derive(Default)]
struct Stats {
    events: u64,
    alerts: u64,
    last_event_ms: Option<i64>,
}

/// A source of lines that is not a file: standard input or a syslog listener. Lines arrive on a
/// bounded channel, so a slow watch slows its reader (standard input and TCP senders wait; UDP
/// datagrams beyond the socket's buffer are dropped by the kernel, as UDP does).
/// A line from a stream, with the host a syslog header named for it.
type StreamLine = (Vec<u8>, Option<String>);

/// Lines taken from a stream: their bytes, how many lines came before, and the line numbers a
/// syslog header named a host for.
type StreamChunk = (Vec<u8>, u64, Vec<(u64, String)>);

struct Stream {
    name: String,
    rx: Receiver<StreamLine>,
    lines: u64,
    open: bool,
}

enum Input {
    File(Follower),
    Stream(Stream),
}

/// Lines in flight from a stream's reader thread.
const STREAM_BOUND: usize = 10_000;

fn stdin_stream() -> Stream {
    let (tx, rx) = sync_channel(STREAM_BOUND);
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut r = stdin.lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match io::BufRead::read_until(&mut r, b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send((std::mem::take(&mut line), None)).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Stream {
        name: "-".into(),
        rx,
        lines: 0,
        open: true,
    }
}

/// The message of a syslog frame, as a line for the decoders (frames that are not syslog are
/// passed as they are: some senders strip the header), with the host its header names: the host
/// of a record that names none itself.
fn syslog_line(frame: &[u8]) -> StreamLine {
    let parsed = imdsguard_parse::syslog::parse(frame);
    let host = parsed.as_ref().and_then(|m| m.host).map(str::to_owned);
    let msg = parsed.map_or(frame, |m| m.msg);
    let mut line = msg.to_vec();
    line.push(b'\n');
    (line, host)
}

fn syslog_udp(addr: &str) -> Result<Stream> {
    let sock = std::net::UdpSocket::bind(addr)
        .with_context(|| format!("cannot listen for syslog on udp {addr}"))?;
    let name = format!("syslog+udp://{}", sock.local_addr()?);
    eprintln!("imdsguard: watch: listening on {name}");
    let (tx, rx) = sync_channel(STREAM_BOUND);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if tx.send(syslog_line(&buf[..n])).is_err() {
                break;
            }
        }
    });
    Ok(Stream {
        name,
        rx,
        lines: 0,
        open: true,
    })
}

fn syslog_tcp(addr: &str) -> Result<Stream> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen for syslog on tcp {addr}"))?;
    let name = format!("syslog+tcp://{}", listener.local_addr()?);
    eprintln!("imdsguard: watch: listening on {name}");
    let (tx, rx) = sync_channel(STREAM_BOUND);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let tx: SyncSender<StreamLine> = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65_536];
                loop {
                    let n = match io::Read::read(&mut conn, &mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let (frames, used) = imdsguard_parse::syslog::split_tcp(&buf);
                    for f in frames {
                        if tx.send(syslog_line(f)).is_err() {
                            return;
                        }
                    }
                    buf.drain(..used);
                    if buf.len() > 1 << 20 {
                        // A frame over 1 MiB without its end: dropped, said once per connection.
                        eprintln!("imdsguard: watch: a syslog frame over 1 MiB was dropped");
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    let _ = tx.send(syslog_line(&buf));
                }
            });
        }
    });
    Ok(Stream {
        name,
        rx,
        lines: 0,
        open: true,
    })
}

impl Stream {
    /// The lines waiting, up to about `max_bytes`, with the line numbers a syslog header named
    /// a host for.
    fn take(&mut self, max_bytes: usize) -> Option<StreamChunk> {
        let mut bytes = Vec::new();
        let mut hosts = Vec::new();
        let before = self.lines;
        while bytes.len() < max_bytes {
            match self.rx.try_recv() {
                Ok((mut line, host)) => {
                    if line.last() != Some(&b'\n') {
                        line.push(b'\n');
                    }
                    bytes.extend_from_slice(&line);
                    self.lines += 1;
                    if let Some(h) = host {
                        hosts.push((self.lines, h));
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.open = false;
                    break;
                }
            }
        }
        (!bytes.is_empty()).then_some((bytes, before, hosts))
    }
}

/// The watch's state: everything detection, correlation and the store need between chunks.
struct Watcher<'a> {
    enricher: Enricher<'a>,
    loaded: crate::hunt::Rules,
    engine: Engine,
    store: Store,
    out: Box<dyn Write>,
    output: StoredOutput,
    opts: ReadOptions,
    min_severity: Severity,
    summary: Summary,
    stats: Stats,
    seq: u64,
    last_baseline_save: Instant,
    last_incident_save: Instant,
    webhook: Option<String>,
}

impl Watcher<'_> {
    /// Decodes, detects, correlates and commits one chunk (with the file's position, if it is a
    /// file), then prints the alerts that were new.
    fn chunk(
        &mut self,
        name: &str,
        bytes: &[u8],
        lines_before: u64,
        hosts: &[(u64, String)],
        checkpoint: Option<Checkpoint>,
    ) -> Result<()> {
        let mut events = Vec::new();
        read_reader_at(
            name,
            &mut &bytes[..],
            lines_before,
            &self.opts,
            &mut self.summary,
            &mut |e| events.push(e),
        );
        // A record that names no host is the syslog sender's.
        for e in events.iter_mut().filter(|e| e.host.is_none()) {
            if let imdsguard_event::Position::Line(line) = e.source.position {
                if let Ok(i) = hosts.binary_search_by_key(&line, |(l, _)| *l) {
                    e.host = imdsguard_event::host_name(&hosts[i].1);
                }
            }
        }
        let mut alerts: Vec<(Alert, Option<i64>)> = Vec::new();
        for e in &events {
            self.stats.events += 1;
            let found = observe(e, &self.enricher, &self.loaded);
            let Some(mut obs) = found.obs else {
                continue;
            };
            self.seq += 1;
            obs.seq = self.seq;
            if found.untimed {
                Engine::triage_only(&mut obs.alerts, &obs.facts);
                alerts.extend(obs.alerts.drain(..).map(|a| (a, None)));
            } else {
                self.stats.last_event_ms = Some(obs.time_ms);
                let time = Some(obs.time_ms);
                let more = self.engine.push(&mut obs);
                alerts.extend(obs.alerts.drain(..).chain(more).map(|a| (a, time)));
            }
        }
        let save_baselines = self.last_baseline_save.elapsed() > Duration::from_secs(60);
        if save_baselines {
            self.last_baseline_save = Instant::now();
        }
        // Incidents are a summary, rewritten whole: at most once a second (the alerts and their
        // links are in every transaction).
        let save_incidents = self.last_incident_save.elapsed() > Duration::from_secs(1);
        if save_incidents {
            self.last_incident_save = Instant::now();
        }
        let printed = commit(
            &mut self.store,
            &mut self.engine,
            &alerts,
            Saved {
                checkpoints: checkpoint.into_iter().collect(),
                incidents: save_incidents,
                baselines: save_baselines,
                outbox: self.webhook.as_deref().map(|w| (w, self.min_severity)),
            },
        )?;
        self.print(&alerts, &printed)
    }

    fn print(&mut self, alerts: &[(Alert, Option<i64>)], printed: &[bool]) -> Result<()> {
        for (i, (a, _)) in alerts.iter().enumerate() {
            // New to the store, and at or above --min-severity (the store keeps the rest).
            if printed[i] && a.severity >= self.min_severity {
                self.stats.alerts += 1;
                write_alert(&mut *self.out, a, self.output)?;
            }
        }
        self.out.flush().context("writing alerts")
    }
}

/// Runs until SIGINT or SIGTERM (or, with `once`, until every input is read).
pub fn watch(cfg: WatchConfig) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    // `kill -USR1 PID`: one line of metrics on standard error.
    let metrics = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&metrics))
        .context("installing signal handlers")?;
    let cat = load_catalog(cfg.catalog.as_ref())?;
    let normalizer: &'static Normalizer<'static> = Box::leak(Box::new(Normalizer::new(cat)));
    let allowlist = crate::hunt::load_allowlist(cfg.allowlist.as_ref())?;
    // Rules load on every core; the stream itself is read on one thread.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loaded = rule_set(&cfg.sigma, cfg.no_builtin, cores)?;
    let store = Store::open(&cfg.db)
        .with_context(|| format!("cannot use the store {}", cfg.db.display()))?;
    let engine = Engine::new(
        (!cfg.no_builtin).then(|| cfg.correlate.clone()),
        store.baselines()?,
        loaded.correlations.clone(),
        cfg.incident_gap_ms,
    )
    .map_err(|e| anyhow::anyhow!("Sigma correlation {}: {}", e.correlation, e.message))?;
    let mut engine = engine;
    engine.restore_incidents(store.latest_incidents()?);
    let mut inputs = Vec::new();
    for p in &cfg.inputs {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stream(stdin_stream()));
            continue;
        }
        let name = p.display().to_string();
        let saved = store.checkpoint(&name)?.and_then(|c| {
            c.identity.map(|identity| Position {
                identity,
                offset: c.offset,
                lines: c.lines,
            })
        });
        if !p.exists() {
            eprintln!(
                "imdsguard: watch: {} does not exist yet; waiting for it",
                p.display()
            );
        }
        inputs.push(Input::File(Follower::new(p, saved)));
    }
    for a in &cfg.syslog_udp {
        inputs.push(Input::Stream(syslog_udp(a)?));
    }
    for a in &cfg.syslog_tcp {
        inputs.push(Input::Stream(syslog_tcp(a)?));
    }
    if inputs.is_empty() {
        anyhow::bail!("nothing to watch: give files, `-`, --syslog-udp or --syslog-tcp");
    }
    let out: Box<dyn Write> = match &cfg.out_file {
        Some(p) => Box::new(BufWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut w = Watcher {
        enricher: Enricher::new(normalizer, allowlist),
        loaded,
        engine,
        store,
        out,
        output: cfg.output,
        opts: ReadOptions {
            format: cfg.format,
            keep_fields: !cfg.sigma.is_empty(),
            timezone: cfg.timezone.clone(),
            ..ReadOptions::default()
        },
        min_severity: cfg.min_severity,
        summary: Summary::default(),
        stats: Stats::default(),
        seq: 0,
        last_baseline_save: Instant::now(),
        last_incident_save: Instant::now(),
        webhook: cfg.webhook.clone(),
    };
    let sender_stop = Arc::new(AtomicBool::new(false));
    let sender = match &cfg.webhook {
        Some(url) => Some(crate::webhook::start(
            cfg.db.clone(),
            url.clone(),
            Arc::clone(&sender_stop),
        )?),
        None => None,
    };
    let status_line = io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_status = Instant::now();
    let mut read_errors: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        for input in inputs.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match input {
                Input::File(f) => {
                    let chunk = match f.poll(cfg.max_chunk) {
                        Ok(Some(c)) => c,
                        Ok(None) => continue,
                        Err(e) => {
                            let msg = format!("{}: {e}", f.path().display());
                            if !read_errors.contains(&msg) {
                                eprintln!("imdsguard: watch: {msg}");
                                read_errors.push(msg);
                            }
                            continue;
                        }
                    };
                    progressed = true;
                    let name = f.path().display().to_string();
                    let checkpoint = Checkpoint {
                        input: name.clone(),
                        offset: chunk.end.offset,
                        lines: chunk.end.lines,
                        identity: Some(chunk.end.identity.clone()),
                    };
                    w.chunk(
                        &name,
                        &chunk.bytes,
                        chunk.lines_before,
                        &[],
                        Some(checkpoint),
                    )?;
                }
                Input::Stream(s) => {
                    if let Some((bytes, before, hosts)) = s.take(cfg.max_chunk) {
                        progressed = true;
                        let name = s.name.clone();
                        w.chunk(&name, &bytes, before, &hosts, None)?;
                    }
                }
            }
        }
        if metrics.swap(false, Ordering::Relaxed) {
            eprintln!("{}", metrics_line(&w, &inputs, started));
        }
        if status_line && last_status.elapsed() > Duration::from_secs(1) {
            last_status = Instant::now();
            eprint!("\r\x1b[K{}", status(&w.stats, started));
        }
        if !progressed {
            // `--once`: files read to their end, standard input closed (listeners never close).
            let streams_done = inputs
                .iter()
                .all(|i| !matches!(i, Input::Stream(s) if s.open && s.name == "-"));
            if cfg.once && streams_done {
                break;
            }
            std::thread::sleep(cfg.poll);
        }
    }
    // Clean shutdown: judge what is open, store everything with the baselines.
    let last: Vec<(Alert, Option<i64>)> = w
        .engine
        .finish()
        .into_iter()
        .map(|a| {
            let t = a.time.as_deref().and_then(imdsguard_event::parse_time_ms);
            (a, t)
        })
        .collect();
    let printed = commit(
        &mut w.store,
        &mut w.engine,
        &last,
        Saved {
            checkpoints: Vec::new(),
            incidents: true,
            baselines: true,
            outbox: w.webhook.as_deref().map(|u| (u, w.min_severity)),
        },
    )?;
    w.print(&last, &printed)?;
    if let Some(t) = sender {
        // One last pass over what is due, then the rest waits in the outbox.
        sender_stop.store(true, Ordering::Relaxed);
        let _ = t.join();
        if let Some(url) = &w.webhook {
            let left = w.store.outbox_len(url)?;
            if left > 0 {
                eprintln!("imdsguard: webhook: {left} alerts wait in the store for {url}");
            }
        }
    }
    if status_line {
        eprintln!();
    }
    eprintln!(
        "imdsguard: watch stopped{}: {}",
        if stop.load(Ordering::Relaxed) {
            " on a signal"
        } else {
            ""
        },
        status(&w.stats, started)
    );
    crate::print_summary(&w.summary, started.elapsed());
    Ok(ExitCode::SUCCESS)
}

/// The metrics `SIGUSR1` asks for, as one JSON object: events and alerts so far and per second,
/// the lag behind the newest record, each input's position, and the webhook's backlog.
fn metrics_line(w: &Watcher<'_>, inputs: &[Input], started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let inputs: Vec<serde_json::Value> = inputs
        .iter()
        .map(|i| match i {
            Input::File(f) => serde_json::json!({
                "input": f.path().display().to_string(),
                "offset": f.position().offset,
                "lines": f.position().lines,
            }),
            Input::Stream(s) => serde_json::json!({ "input": s.name, "lines": s.lines }),
        })
        .collect();
    let outbox = w
        .webhook
        .as_deref()
        .and_then(|u| w.store.outbox_len(u).ok());
    serde_json::json!({
        "metrics": "imdsguard watch",
        "uptime_s": (secs * 10.0).round() / 10.0,
        "events": w.stats.events,
        "events_per_s": (w.stats.events as f64 / secs).round(),
        "alerts": w.stats.alerts,
        "lag_s": w.stats.last_event_ms.map(|t| (now - t) as f64 / 1000.0),
        "inputs": inputs,
        "webhook_backlog": outbox,
    })
    .to_string()
}

fn status(s: &Stats, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let lag = s.last_event_ms.map(|t| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        (now - t) as f64 / 1000.0
    });
    format!(
        "{} events ({:.0}/s), {} alerts, last event at {}{}",
        s.events,
        s.events as f64 / secs,
        s.alerts,
        s.last_event_ms.map_or("-".into(), format_time_ms),
        lag.map_or(String::new(), |l| format!(" (lag {l:.1} s)"))
    )
}

/// What a commit saves besides the alerts and their incident links.
struct Saved<'a> {
    /// Input positions reached.
    checkpoints: Vec<Checkpoint>,
    /// The incidents changed or closed since they were last saved.
    incidents: bool,
    /// The baselines.
    baselines: bool,
    /// The webhook new alerts are queued for.
    outbox: Option<(&'a str, Severity)>,
}

/// One transaction: the alerts with their incident links, and what `saved` names. Returns, per
/// alert, whether it was new to the store.
fn commit(
    store: &mut Store,
    engine: &mut Engine,
    alerts: &[(Alert, Option<i64>)],
    saved: Saved<'_>,
) -> Result<Vec<bool>> {
    // A new incident is written at once (alerts link to it in this transaction); changes to
    // existing ones wait for `saved.incidents`.
    let (closed, changed): (Vec<Incident>, Vec<Incident>) = if saved.incidents {
        let closed = engine.incidents_mut().take_closed();
        engine.incidents_mut().take_opened();
        let changed = engine
            .incidents_mut()
            .take_changed()
            .into_iter()
            .cloned()
            .collect();
        (closed, changed)
    } else {
        let opened = engine
            .incidents_mut()
            .take_opened()
            .into_iter()
            .cloned()
            .collect();
        // A host's old incident closes when its new one opens: written now too.
        (engine.incidents_mut().take_closed(), opened)
    };
    let incidents: Vec<&Incident> = closed.iter().chain(changed.iter()).collect();
    let baselines: Option<Baselines> = if saved.baselines {
        engine.baselines().cloned()
    } else {
        None
    };
    let links = engine.take_links();
    let batch = Batch {
        alerts: alerts.iter().map(|(a, t)| (a, *t)).collect(),
        incidents,
        links,
        baselines: baselines.as_ref(),
        checkpoints: saved.checkpoints,
        outbox: saved.outbox,
    };
    Ok(store.commit_new(&batch)?)
}

fn write_alert(out: &mut dyn Write, a: &Alert, output: StoredOutput) -> Result<()> {
    match output {
        StoredOutput::Jsonl => {
            serde_json::to_writer(&mut *out, a)?;
            out.write_all(b"\n")?;
        }
        // The line `imdsguard alerts` prints, with the id `triage` takes.
        StoredOutput::Table => writeln!(
            out,
            "{}",
            crate::store_cmds::alert_line(&serde_json::to_value(a)?)
        )?,
    }
    Ok(())
}
