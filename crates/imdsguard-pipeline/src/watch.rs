//! `watch`: follow files as they grow, standard input and syslog, and detect continuously, with
//! the decoders, detections, correlation and triage `hunt` runs.
//!
//! Each input is read in chunks of complete lines. A chunk's alerts, the incidents they touch
//! and the file's new position are written to the store in one transaction, so a restart — even
//! after `kill -9` — resumes at the last committed position, and what it reads again adds no
//! alert twice (ids are stable). Alerts reach the caller's sink after they are committed and
//! only when they were new to the store, so the output repeats nothing either. Reading waits for
//! writing: when output is slow, input is read slowly, never dropped, and at most one chunk per
//! input is held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imdsguard_correlate::{Baselines, Engine, Incident};
use imdsguard_event::{Position as RecordPosition, Severity};
use imdsguard_parse::follow::{Follower, Position};
use imdsguard_parse::messages::{read_messages, Message};
use imdsguard_parse::{read_reader_at, ReadOptions, Summary};
use imdsguard_rules::Alert;
use imdsguard_store::{Batch, Checkpoint, Store};

use crate::config::WatchConfig;
use crate::detect::Detector;
use crate::error::PipelineError;
use crate::hunt::open_store;
use crate::resources::Resources;
use crate::rules::{Rules, RulesReport};
use crate::run::Correlation;
use crate::sink::AlertSink;
use crate::sources::{stdin_stream, syslog_tcp, syslog_udp, Input};

/// How `watch` tells its caller what it is doing; the caller decides what to print.
pub trait Reporter {
    /// A sentence worth a line on its own: a listener's address, an input that does not exist
    /// yet, an input that cannot be read (each different message once), a webhook failure.
    fn note(&mut self, message: &str);
    /// About once a second: where the watch is.
    fn status(&mut self, _status: &WatchStatus) {}
    /// When asked (`SIGUSR1`): the metrics, as one JSON object.
    fn metrics(&mut self, _metrics: &serde_json::Value) {}
}

/// Where a watch is.
#[derive(Debug, Clone, Default)]
pub struct WatchStatus {
    /// Events read so far.
    pub events: u64,
    /// Alerts shown so far.
    pub alerts: u64,
    /// The newest event time correlated.
    pub last_event_ms: Option<i64>,
    /// Seconds since the watch started.
    pub uptime_s: f64,
}

/// What a watch did, when it stops.
#[derive(Debug)]
pub struct WatchReport {
    /// What was read and skipped.
    pub summary: Summary,
    /// Where it stopped.
    pub status: WatchStatus,
    /// Whether it stopped on a signal (else: `once`, every input read).
    pub signalled: bool,
    /// Alerts waiting in the store for the webhook when it stopped.
    pub webhook_backlog: u64,
}

/// The watch's state between chunks.
struct Watcher<'a> {
    detector: Detector<'a>,
    run: Correlation,
    store: Store,
    opts: ReadOptions,
    min_severity: Severity,
    summary: Summary,
    events: u64,
    shown: u64,
    last_baseline_save: Instant,
    last_incident_save: Instant,
    webhook: Option<crate::Webhook>,
    /// (partition, host) pairs of a stream already written to the store.
    recorded: std::collections::HashSet<(u32, String)>,
}

/// What a commit saves besides the alerts and their incident links.
struct Saved<'a> {
    /// Input positions reached.
    checkpoints: Vec<Checkpoint>,
    /// The incidents changed or closed since they were last saved.
    incidents: bool,
    /// The baselines.
    baselines: bool,
    /// The webhook new alerts at or above a severity are queued for.
    outbox: Option<(&'a str, Severity)>,
    /// Hosts first seen on a stream's partition.
    stream_hosts: Vec<(String, u32, String)>,
}

/// What a chunk holds: lines numbered on from the line before them (a file's, standard
/// input's, syslog's), or a stream's messages, each numbered by its sequence.
enum Records<'a> {
    Lines(&'a [u8], u64),
    Messages(&'a [Message<'a>]),
}

impl Watcher<'_> {
    /// Decodes, detects, correlates and commits one chunk (with the file's position, if it is a
    /// file), then hands the sink the alerts that were new. A record that names no host gets the
    /// one its syslog header named (`hosts`: line number and host).
    #[allow(clippy::too_many_arguments)]
    fn chunk(
        &mut self,
        name: &str,
        records: Records<'_>,
        hosts: &[(u64, String)],
        checkpoint: Option<Checkpoint>,
        part: Option<(&str, u32)>,
        sink: &mut dyn AlertSink,
    ) -> Result<(), PipelineError> {
        let mut events = Vec::new();
        match records {
            Records::Lines(bytes, lines_before) => read_reader_at(
                name,
                &mut &bytes[..],
                lines_before,
                &self.opts,
                &mut self.summary,
                &mut |e| events.push(e),
            ),
            Records::Messages(messages) => {
                read_messages(name, messages, &self.opts, &mut self.summary, &mut |e| {
                    events.push(e)
                })
            }
        }
        for e in events.iter_mut().filter(|e| e.host.is_none()) {
            // A line's number, or the message a Fluent Bit batch's record came in.
            if let RecordPosition::Line(line) | RecordPosition::Element { line, .. } =
                e.source.position
            {
                if let Ok(i) = hosts.binary_search_by_key(&line, |(l, _)| *l) {
                    e.host = imdsguard_event::host_name(&hosts[i].1);
                }
            }
        }
        // The hosts of a stream's partition, so that a worker taking it restores their state.
        let mut stream_hosts = Vec::new();
        if let Some((stream, p)) = part {
            for h in events.iter().filter_map(|e| e.host.as_deref()) {
                let h = h.to_ascii_lowercase();
                if !self.recorded.contains(&(p, h.clone())) {
                    self.recorded.insert((p, h.clone()));
                    stream_hosts.push((stream.to_owned(), p, h));
                }
            }
        }
        let mut alerts: Vec<(Alert, Option<i64>)> = Vec::new();
        for e in &events {
            self.events += 1;
            let found = self.detector.observe(e);
            self.run.push(found, &mut |a, t| alerts.push((a, t)));
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
        let outbox = self.webhook.as_ref().map(|w| (w.name(), self.min_severity));
        let min = self.min_severity;
        self.shown += commit(
            &mut self.store,
            &mut self.run.engine,
            &alerts,
            Saved {
                checkpoints: checkpoint.into_iter().collect(),
                incidents: save_incidents,
                baselines: save_baselines,
                outbox,
                stream_hosts,
            },
            &mut |new| show(&alerts, new, min, sink),
        )?;
        Ok(())
    }

    fn status(&self, started: Instant) -> WatchStatus {
        WatchStatus {
            events: self.events,
            alerts: self.shown,
            last_event_ms: self.run.last_event_ms,
            uptime_s: started.elapsed().as_secs_f64(),
        }
    }
}

/// Hands the sink each alert new to the store and at or above the minimum severity, and flushes
/// it; returns how many.
fn show(
    alerts: &[(Alert, Option<i64>)],
    new: &[bool],
    min: Severity,
    sink: &mut dyn AlertSink,
) -> Result<u64, PipelineError> {
    let mut shown = 0;
    for (i, (a, _)) in alerts.iter().enumerate() {
        if new[i] && a.severity >= min {
            shown += 1;
            sink.alert(a).map_err(PipelineError::Output)?;
        }
    }
    sink.flush().map_err(PipelineError::Output)?;
    Ok(shown)
}

/// Whether the file starts like an EVTX file.
fn is_evtx(p: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"ElfFile\0"
}

/// One transaction: the alerts with their incident links, and what `saved` names. Before it,
/// `show` sees, per alert, whether it is new to the store: what it prints is printed before the
/// store holds it, so at least once even across a crash, and no write lock is held while the
/// output is slow. Returns what `show` returned.
fn commit(
    store: &mut Store,
    engine: &mut Engine,
    alerts: &[(Alert, Option<i64>)],
    saved: Saved<'_>,
    show: &mut dyn FnMut(&[bool]) -> Result<u64, PipelineError>,
) -> Result<u64, PipelineError> {
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
    // The hosts the correlations touched: their baselines and open windows go with this batch,
    // so that a restart (or the worker taking them over) goes on exactly from its end; every
    // host's baseline now and then as well.
    let (touched, windows) = engine.take_touched();
    let baselines: Option<Baselines> = if saved.baselines {
        engine.baselines().cloned()
    } else {
        (!touched.is_empty()).then_some(touched)
    };
    let links = engine.take_links();
    let batch = Batch {
        alerts: alerts.iter().map(|(a, t)| (a, *t)).collect(),
        incidents,
        links,
        baselines: baselines.as_ref(),
        checkpoints: saved.checkpoints,
        outbox: saved.outbox,
        stream_hosts: saved.stream_hosts,
        windows,
    };
    let ids: Vec<&str> = alerts.iter().map(|(a, _)| a.id.as_str()).collect();
    let new = store
        .unseen(&ids)
        .map_err(PipelineError::store("looking up a chunk's alerts"))?;
    let shown = show(&new)?;
    store
        .commit_new(&batch)
        .map_err(PipelineError::store("storing a chunk's alerts"))?;
    Ok(shown)
}

/// Runs until `stop` is set (or, with `cfg.once`, until every file is read to its end and
/// standard input is closed). `metrics` set asks for one metrics report. `on_rules` sees what
/// loading the rules found before any input is read.
pub fn watch(
    cfg: &WatchConfig,
    sink: &mut dyn AlertSink,
    reporter: &mut dyn Reporter,
    stop: &AtomicBool,
    metrics: &AtomicBool,
    on_rules: &mut dyn FnMut(&RulesReport),
) -> Result<WatchReport, PipelineError> {
    let common = &cfg.common;
    let resources = Resources::load(&common.resources)?;
    let normalizer = resources.normalizer();
    let (rules, rules_report) = Rules::load(&common.rules, common.threads)?;
    on_rules(&rules_report);
    rules.require_some(&rules_report)?;
    let store = open_store(&cfg.db, "give another --db")?;
    // Workers of a stream count one another (a shared lock in the store) and each takes its
    // share of the partitions below.
    if let Some(src) = &cfg.nats {
        if !cfg.inputs.is_empty() || !cfg.syslog_udp.is_empty() || !cfg.syslog_tcp.is_empty() {
            return Err(PipelineError::Nats(format!(
                "{}: --nats reads the stream alone (its hosts' state comes and goes with its partitions); run another watch for files and syslog",
                crate::nats::shown(&src.url)
            )));
        }
        store
            .join(&members_lock(&src.stream))
            .map_err(PipelineError::store("joining the stream's workers"))?;
    }
    let baselines = if cfg.nats.is_some() {
        Baselines::new()
    } else {
        store
            .baselines()
            .map_err(PipelineError::store("reading the saved baselines"))?
    };
    let mut engine = rules
        .engine(&common.correlate, baselines)?
        .with_inventory(resources.inventory().clone());
    for s in resources.inventory_skipped() {
        reporter.note(&format!("{s}: not read"));
    }
    let (saved_incidents, unreadable) = if cfg.nats.is_some() {
        (Vec::new(), Vec::new())
    } else {
        store
            .latest_incidents()
            .map_err(PipelineError::store("reading the saved incidents"))?
    };
    for e in unreadable {
        reporter.note(&format!(
            "{e}: left out; its host's next alert opens a new incident"
        ));
    }
    engine.restore_incidents(saved_incidents);
    if cfg.nats.is_none() {
        let (windows, unreadable) = store
            .windows()
            .map_err(PipelineError::store("reading the saved windows"))?;
        for e in unreadable {
            reporter.note(&format!("{e}: left out; its host's windows start empty"));
        }
        engine.restore_windows(windows);
    }
    let mut inputs = Vec::new();
    for p in &cfg.inputs {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stream(stdin_stream()));
            continue;
        }
        let name = p.display().to_string();
        let saved = store
            .checkpoint(&name)
            .map_err(PipelineError::store("reading the saved positions"))?
            .and_then(|c| {
                c.identity.map(|identity| Position {
                    identity,
                    offset: c.offset,
                    lines: c.lines,
                    tail: c
                        .tail
                        .as_deref()
                        .and_then(|t| u64::from_str_radix(t, 16).ok()),
                })
            });
        if !p.exists() {
            if !cfg.wait {
                return Err(PipelineError::NotFollowable {
                    path: p.clone(),
                    why: "no such file (give --wait to wait for it to appear)".into(),
                });
            }
            reporter.note(&format!(
                "{} does not exist yet; waiting for it",
                p.display()
            ));
        } else if is_evtx(p) {
            return Err(PipelineError::NotFollowable {
                path: p.clone(),
                why: "an EVTX file: watch follows logs written line by line (JSON lines, audit \
                      logs) as they grow; read EVTX files with `imdsguard hunt`, or forward the \
                      events as JSON (Winlogbeat, NXLog) to a file or syslog that watch follows"
                    .into(),
            });
        }
        inputs.push(Input::File(Follower::new(p, saved)));
    }
    if let Some(src) = &cfg.nats {
        let n = crate::nats::NatsInput::connect(src)?;
        reporter.note(&format!(
            "reading the stream {} on {} ({} partitions)",
            src.stream,
            crate::nats::shown(&src.url),
            crate::nats::PARTITIONS
        ));
        inputs.push(Input::Nats(Box::new(n)));
    }
    for a in &cfg.syslog_udp {
        let s = syslog_udp(a)?;
        reporter.note(&format!("listening on {}", s.name));
        inputs.push(Input::Stream(s));
    }
    for a in &cfg.syslog_tcp {
        let s = syslog_tcp(a, cfg.syslog_idle)?;
        reporter.note(&format!("listening on {}", s.name));
        inputs.push(Input::Stream(s));
    }
    if inputs.is_empty() {
        return Err(PipelineError::NothingToWatch);
    }
    let mut w = Watcher {
        detector: Detector::new(resources.enricher(&normalizer), &rules),
        run: Correlation::new(engine, None),
        store,
        opts: ReadOptions {
            format: common.read.format,
            fields: rules.record_fields().clone(),
            timezone: common.read.timezone.clone(),
            log_format: common.read.log_format.clone(),
            // Live input: a line that is no record is skipped and counted, never the chunk.
            leading_junk: u64::MAX,
            ..ReadOptions::default()
        },
        min_severity: common.min_severity,
        summary: Summary::default(),
        events: 0,
        shown: 0,
        last_baseline_save: Instant::now(),
        last_incident_save: Instant::now(),
        webhook: cfg.webhook.clone(),
        recorded: Default::default(),
    };
    let sender_stop = Arc::new(AtomicBool::new(false));
    let (notes_tx, notes) = std::sync::mpsc::channel::<String>();
    for n in crate::webhook::adopt_outbox(&mut w.store, cfg.webhook.as_ref())? {
        reporter.note(&n);
    }
    let sender = match &cfg.webhook {
        Some(hook) => Some(crate::webhook::start(
            cfg.db.clone(),
            hook.clone(),
            Arc::clone(&sender_stop),
            notes_tx,
        )?),
        None => None,
    };
    // Followed files wake the loop when they change (inotify), so a line is read as it is
    // written; the poll interval bounds the wait for standard input, the listeners, a stop, and
    // is the fallback where change notification is off.
    let files: Vec<std::path::PathBuf> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::File(f) => Some(f.path().to_path_buf()),
            Input::Stream(_) | Input::Nats(_) => None,
        })
        .collect();
    let notify = imdsguard_parse::notify::Notify::new(&files);
    if let (Some(why), false) = (&notify.off, files.is_empty()) {
        reporter.note(why);
    }
    let started = Instant::now();
    let mut last_status = Instant::now();
    let mut read_errors: Vec<String> = Vec::new();
    let mut claims = Claims {
        once: cfg.once,
        // Workers started together see one another before the first takes its share.
        next: if cfg.once {
            Instant::now()
        } else {
            Instant::now() + CLAIM_EVERY
        },
        said_waiting: false,
    };
    loop {
        // Stopped: at once, or (`drain`) after one more pass that finds nothing new.
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && !cfg.drain {
            break;
        }
        if Instant::now() >= claims.next {
            claims.next = Instant::now() + CLAIM_EVERY;
            for input in inputs.iter_mut() {
                if let Input::Nats(n) = input {
                    claim(&mut claims, n, &mut w, reporter)?;
                }
            }
        }
        let mut progressed = false;
        for input in inputs.iter_mut() {
            if !cfg.drain && stop.load(Ordering::Relaxed) {
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
                                reporter.note(&msg);
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
                        tail: chunk.end.tail.map(|t| format!("{t:016x}")),
                    };
                    w.chunk(
                        &name,
                        Records::Lines(&chunk.bytes, chunk.lines_before),
                        &[],
                        Some(checkpoint),
                        None,
                        sink,
                    )?;
                }
                Input::Stream(s) => {
                    if let Some((bytes, before, hosts)) = s.take(cfg.max_chunk) {
                        progressed = true;
                        let name = s.name.clone();
                        w.chunk(
                            &name,
                            Records::Lines(&bytes, before),
                            &hosts,
                            None,
                            None,
                            sink,
                        )?;
                    }
                    for n in s.news() {
                        reporter.note(&n);
                    }
                }
                Input::Nats(n) => {
                    if let Some(t) = n.take(cfg.max_chunk)? {
                        progressed = true;
                        let name = n.name.clone();
                        let messages: Vec<Message<'_>> = t
                            .messages
                            .iter()
                            .map(|(seq, r)| Message {
                                seq: *seq,
                                payload: &t.payloads[r.clone()],
                            })
                            .collect();
                        let stream = n.stream.clone();
                        w.chunk(
                            &name,
                            Records::Messages(&messages),
                            &t.hosts,
                            Some(t.checkpoint),
                            Some((&stream, t.partition)),
                            sink,
                        )?;
                        // Committed: the messages can go.
                        n.ack()?;
                    }
                }
            }
        }
        for n in notes.try_iter() {
            reporter.note(&n);
        }
        if metrics.swap(false, Ordering::Relaxed) {
            reporter.metrics(&metrics_of(&w, &mut inputs, started));
        }
        if last_status.elapsed() > Duration::from_secs(1) {
            last_status = Instant::now();
            reporter.status(&w.status(started));
        }
        if !progressed {
            if stopping {
                break;
            }
            // `once`: files read to their end, standard input closed (listeners never close).
            // A stream is read to its end once this worker holds every partition (`once`
            // waits for those another worker holds).
            let streams_done = inputs.iter().all(|i| match i {
                Input::Stream(s) => !(s.open && s.name == "-"),
                Input::Nats(n) => n.owned().len() == crate::nats::PARTITIONS as usize,
                Input::File(_) => true,
            });
            // Standard input alone (`watch -`, a pipe): its end is the end, as for any filter.
            let stdin_only = !inputs.is_empty()
                && inputs
                    .iter()
                    .all(|i| matches!(i, Input::Stream(s) if s.name == "-"));
            if (cfg.once || stdin_only) && streams_done {
                break;
            }
            notify.wait(cfg.poll);
        }
    }
    // Clean shutdown: judge what is open, store everything with the baselines.
    let mut last: Vec<(Alert, Option<i64>)> = Vec::new();
    w.run.finish(&mut |a, t| last.push((a, t)));
    let outbox = w.webhook.as_ref().map(|h| (h.name(), w.min_severity));
    let min = w.min_severity;
    w.shown += commit(
        &mut w.store,
        &mut w.run.engine,
        &last,
        Saved {
            checkpoints: Vec::new(),
            incidents: true,
            baselines: true,
            outbox,
            stream_hosts: Vec::new(),
        },
        &mut |new| show(&last, new, min, sink),
    )?;
    let mut webhook_backlog = 0;
    if let Some(sender) = sender {
        // One last pass over what is due, for at most the grace period (a receiver that hangs
        // does not hold the stop); the rest waits in the outbox for the next run.
        sender_stop.store(true, Ordering::Relaxed);
        if !sender.stopped_within(crate::webhook::STOP_GRACE) {
            reporter.note(&format!(
                "webhook: the receiver did not answer within {} s of the stop; undelivered alerts wait in the store",
                crate::webhook::STOP_GRACE.as_secs()
            ));
        }
        for n in notes.try_iter() {
            reporter.note(&n);
        }
        if let Some(hook) = &w.webhook {
            webhook_backlog = w
                .store
                .outbox_len(hook.name())
                .map_err(PipelineError::store("counting the webhook's outbox"))?;
        }
    }
    // The summary counts the files followed (their chunks are read as streams).
    w.summary.files = inputs
        .iter()
        .filter(|i| matches!(i, Input::File(_)))
        .count() as u64;
    Ok(WatchReport {
        status: w.status(started),
        summary: w.summary,
        signalled: stop.load(Ordering::Relaxed),
        webhook_backlog,
    })
}

/// How often a worker of a stream looks for partitions to take.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// The shared lock the workers of a stream hold, to count one another.
fn members_lock(stream: &str) -> String {
    format!("nats:{stream}:workers")
}

/// Partitions as a note says them: `0, 2, 5`.
fn partitions_said(ps: &[u32]) -> String {
    ps.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// When a worker of a stream next looks for partitions, and what it said.
struct Claims {
    once: bool,
    next: Instant,
    said_waiting: bool,
}

/// Takes partitions of the stream no worker holds, up to this worker's share (every one with
/// `once`: the stream read to its end), each from where the store says it stands, with the
/// baselines and latest incidents of the hosts its records came from; gives back those above
/// its share when more workers have come, once everything of theirs is saved, forgetting their
/// hosts. A worker that stops (or dies: its locks go with its connection to the store) leaves
/// its partitions to the others.
fn claim(
    c: &mut Claims,
    n: &mut crate::nats::NatsInput,
    w: &mut Watcher<'_>,
    reporter: &mut dyn Reporter,
) -> Result<(), PipelineError> {
    use crate::nats::{partition_input, PARTITIONS};
    let workers = w
        .store
        .members(&members_lock(&n.stream))
        .map_err(PipelineError::store("counting the stream's workers"))?
        .max(1);
    let share = if c.once {
        PARTITIONS
    } else {
        PARTITIONS.div_ceil(workers as u32)
    };
    let mut owned = n.owned();
    if owned.len() as u32 > share {
        let give: Vec<u32> = owned
            .iter()
            .rev()
            .take(owned.len() - share as usize)
            .copied()
            .collect();
        // Everything of theirs saved (incidents, baselines) before another worker reads them.
        let outbox = w.webhook.as_ref().map(|h| (h.name(), w.min_severity));
        commit(
            &mut w.store,
            &mut w.run.engine,
            &[],
            Saved {
                checkpoints: Vec::new(),
                incidents: true,
                baselines: true,
                outbox,
                stream_hosts: Vec::new(),
            },
            &mut |_| Ok(0),
        )?;
        let keys = hosts_of(&w.store, &n.stream, &give)?;
        w.run
            .engine
            .forget_hosts(&|h| keys.contains(imdsguard_event::host_key(&h.to_ascii_lowercase())));
        for p in &give {
            n.release(*p);
            w.store
                .unlock(&partition_input(&n.stream, *p))
                .map_err(PipelineError::store("giving up a partition's lock"))?;
        }
        reporter.note(&format!(
            "left partitions {} of the stream {} to the workers that came ({} of {PARTITIONS}; {})",
            partitions_said(&give),
            n.stream,
            owned.len() - give.len(),
            workers_said(workers)
        ));
        return Ok(());
    }
    let store = &w.store;
    let mut got = Vec::new();
    for p in 0..PARTITIONS {
        if owned.len() as u32 >= share {
            break;
        }
        if owned.contains(&p)
            || !store
                .try_lock(&partition_input(&n.stream, p))
                .map_err(PipelineError::store("taking a partition's lock"))?
        {
            continue;
        }
        let last = store
            .checkpoint(&partition_input(&n.stream, p))
            .map_err(PipelineError::store("reading a partition's position"))?
            .map_or(0, |cp| cp.offset);
        n.claim(p, last)?;
        owned.push(p);
        got.push(p);
    }
    if !got.is_empty() {
        // Their hosts' state, before any of their records is read: the store read once for all.
        let keys = hosts_of(store, &n.stream, &got)?;
        if !keys.is_empty() {
            restore_hosts(store, &mut w.run.engine, &keys, reporter)?;
        }
        reporter.note(&format!(
            "reading partitions {} of the stream {} ({} of {PARTITIONS}; {})",
            partitions_said(&got),
            n.stream,
            owned.len(),
            workers_said(workers)
        ));
        c.said_waiting = false;
    } else if owned.is_empty() && !c.said_waiting {
        reporter.note(&format!(
            "every partition of the stream {} is read by another worker; waiting to take over",
            n.stream
        ));
        c.said_waiting = true;
    }
    Ok(())
}

/// "1 worker", "3 workers".
fn workers_said(n: u64) -> String {
    if n == 1 {
        "1 worker".into()
    } else {
        format!("{n} workers")
    }
}

/// The keys ([`imdsguard_event::host_key`]) of the hosts whose records came on the partitions.
fn hosts_of(
    store: &Store,
    stream: &str,
    parts: &[u32],
) -> Result<std::collections::HashSet<String>, PipelineError> {
    let mut keys = std::collections::HashSet::new();
    for p in parts {
        for h in store
            .stream_hosts(stream, *p)
            .map_err(PipelineError::store("reading a partition's hosts"))?
        {
            keys.insert(imdsguard_event::host_key(&h).to_owned());
        }
    }
    Ok(keys)
}

/// The saved baselines, latest incidents and open windows of the hosts `keys` names, into the
/// engine.
fn restore_hosts(
    store: &Store,
    engine: &mut Engine,
    keys: &std::collections::HashSet<String>,
    reporter: &mut dyn Reporter,
) -> Result<(), PipelineError> {
    let ours = |h: &str| keys.contains(imdsguard_event::host_key(&h.to_ascii_lowercase()));
    let mut baselines = store
        .baselines()
        .map_err(PipelineError::store("reading the saved baselines"))?;
    baselines.retain(|h, _| ours(h));
    engine.restore_baselines(baselines);
    let (incidents, unreadable) = store
        .latest_incidents()
        .map_err(PipelineError::store("reading the saved incidents"))?;
    for e in unreadable {
        reporter.note(&format!(
            "{e}: left out; its host's next alert opens a new incident"
        ));
    }
    engine.restore_incidents(
        incidents
            .into_iter()
            .filter(|i| i.host.as_deref().is_some_and(ours))
            .collect(),
    );
    let (windows, unreadable) = store
        .windows()
        .map_err(PipelineError::store("reading the saved windows"))?;
    for e in unreadable {
        reporter.note(&format!("{e}: left out; its host's windows start empty"));
    }
    engine.restore_windows(windows.into_iter().filter(|(h, _)| ours(h)).collect());
    Ok(())
}

/// The metrics: events and alerts so far and per second, the lag behind the newest record, each
/// input's position, and the webhook's backlog.
fn metrics_of(w: &Watcher<'_>, inputs: &mut [Input], started: Instant) -> serde_json::Value {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let inputs: Vec<serde_json::Value> = inputs
        .iter_mut()
        .map(|i| match i {
            Input::File(f) => serde_json::json!({
                "input": f.path().display().to_string(),
                "offset": f.position().offset,
                "lines": f.position().lines,
            }),
            Input::Stream(s) => match s.dropped() {
                Some(d) => serde_json::json!({
                    "input": s.name,
                    "lines": s.lines,
                    "dropped_by_kernel": d,
                }),
                None => serde_json::json!({ "input": s.name, "lines": s.lines }),
            },
            Input::Nats(n) => serde_json::json!({ "input": n.name, "messages": n.messages }),
        })
        .collect();
    let outbox = w
        .webhook
        .as_ref()
        .and_then(|h| w.store.outbox_len(h.name()).ok());
    serde_json::json!({
        "metrics": "imdsguard watch",
        "uptime_s": (secs * 10.0).round() / 10.0,
        "events": w.events,
        "events_per_s": (w.events as f64 / secs).round(),
        "alerts": w.shown,
        "lag_s": w.run.last_event_ms.map(|t| (now - t) as f64 / 1000.0),
        "inputs": inputs,
        "webhook_backlog": outbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Collect, Config, CorrelateConfig, ReadConfig, ResourceConfig, RulesConfig};

    struct Quiet;
    impl Reporter for Quiet {
        fn note(&mut self, _: &str) {}
    }

    fn config(dir: &std::path::Path, drain: bool) -> WatchConfig {
        WatchConfig {
            nats: None,
            common: Config {
                resources: ResourceConfig::default(),
                rules: RulesConfig {
                    sigma: Vec::new(),
                    builtin: true,
                    select: Default::default(),
                },
                read: ReadConfig::default(),
                correlate: CorrelateConfig::default(),
                min_severity: imdsguard_event::Severity::Info,
                threads: 1,
            },
            inputs: vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../samples/logs/winlogbeat.ndjson")],
            syslog_udp: Vec::new(),
            syslog_tcp: Vec::new(),
            db: dir.join(format!("drain-{drain}.db")),
            poll: Duration::from_millis(10),
            syslog_idle: Duration::from_secs(1),
            max_chunk: 1 << 20,
            once: false,
            wait: false,
            drain,
            webhook: None,
        }
    }

    /// Stopped before it starts: `drain` still reads every file to its end (the writer beside
    /// it has stopped, its last records are judged now); without it, nothing is read.
    #[test]
    fn a_stopped_watch_reads_its_files_to_the_end_only_when_draining() {
        let dir = std::env::temp_dir().join(format!("imdsguard-drain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stop = AtomicBool::new(true);
        let metrics = AtomicBool::new(false);
        let mut drained = Collect::default();
        let report = watch(
            &config(&dir, true),
            &mut drained,
            &mut Quiet,
            &stop,
            &metrics,
            &mut |_| {},
        )
        .unwrap();
        let lines = std::fs::read_to_string(&config(&dir, true).inputs[0])
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as u64;
        assert_eq!(report.status.events, lines);
        assert!(!drained.alerts.is_empty());
        let mut stopped = Collect::default();
        let report = watch(
            &config(&dir, false),
            &mut stopped,
            &mut Quiet,
            &stop,
            &metrics,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(report.status.events, 0);
        assert!(stopped.alerts.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
