//! `hunt`: read every input to its end, detect on worker threads, correlate in time order, keep
//! every alert in the store, hand the shown ones to the caller's sink, and report.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use imdsguard_correlate::{Baselines, Engine, Incident, Reorder};
use imdsguard_event::Severity;
use imdsguard_parse::{read_inputs_parallel, ReadOptions, Summary};
use imdsguard_rules::Alert;
use imdsguard_store::{Batch, Store};

use crate::config::HuntConfig;
use crate::detect::{Detector, Found};
use crate::error::PipelineError;
use crate::resources::Resources;
use crate::rules::{Rules, RulesReport};
use crate::run::Correlation;
use crate::sink::AlertSink;
use crate::spill::Spill;

/// Alerts per store transaction.
const BATCH: usize = 1000;

/// What a hunt found and did, for the caller's summary and exit status.
#[derive(Debug)]
pub struct HuntReport {
    /// What was read and skipped.
    pub summary: Summary,
    /// Wall time, rules loaded to the last line written.
    pub elapsed: Duration,
    /// What loading the rules found.
    pub rules: RulesReport,
    /// Alerts raised (the events' own and the correlations').
    pub raised: u64,
    /// Alerts shown, by rule and severity, with the rule's title: most severe first, then most
    /// frequent.
    pub shown: Vec<RuleCount>,
    /// Alerts shown by host, most first (`(no host)` for alerts that name none).
    pub by_host: Vec<(String, u64)>,
    /// Alerts shown by day (UTC, `YYYY-MM-DD`), most first.
    pub by_day: Vec<(String, u64)>,
    /// Alerts below the minimum severity: raised and stored, not shown.
    pub hidden: u64,
    /// The most severe alert shown.
    pub worst_shown: Option<Severity>,
    /// Events left out of correlation and incidents: their time could not be read.
    pub untimed: u64,
    /// Events not analysed: their time is outside `--from`/`--to`.
    pub outside: u64,
    /// Incidents made (each handed to the store when there is one).
    pub incidents: u64,
    /// Incidents shown (at or above the minimum severity), by severity, most severe first.
    pub incidents_shown: Vec<(Severity, u64)>,
    /// Why the incidents to show were held in memory rather than in a temporary file, if they
    /// were.
    pub incidents_note: Option<String>,
    /// The store, when one was used.
    pub store: Option<StoreReport>,
    /// Events older than one already correlated (past the reorder lateness, or after the
    /// buffer's memory was full).
    pub late: u64,
    /// Events correlated before their time because the reorder buffer's memory was full.
    pub early: u64,
    /// The reorder settings the hunt ran with: the lateness (`None`: the whole input) and the
    /// memory.
    pub reorder: (Option<i64>, usize),
    /// Keys dropped to keep the correlation state bounded.
    pub evicted: u64,
    /// Instances the inventory files listed (`--inventory` and those named among the inputs), and
    /// the inventory entries not read, each with why.
    pub inventory: (usize, Vec<String>),
}

/// Shown alerts of one rule at one severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    /// The rule's id.
    pub rule: String,
    /// Its title.
    pub title: String,
    /// The severity.
    pub severity: Severity,
    /// How many.
    pub alerts: u64,
}

/// What the store kept.
#[derive(Debug, Clone)]
pub struct StoreReport {
    /// The store's file.
    pub path: String,
    /// Alerts written (every alert raised).
    pub written: u64,
    /// Of which new to the store.
    pub new: u64,
}

impl HuntReport {
    /// Why nothing was analysed, when not one record was read (not even one skipped): no
    /// file found, or none readable, or none in a supported format.
    pub fn nothing_analysed(&self) -> Option<String> {
        let s = &self.summary;
        if s.total_events() > 0 || s.total_skipped() > 0 {
            return None;
        }
        let unsupported = s.unrecognized_files.len();
        let unreadable = s.input_errors.len();
        Some(if s.files == 0 && unreadable == 0 {
            "nothing analysed: no file found in the inputs given".to_owned()
        } else if unsupported > 0 && unreadable == 0 {
            format!(
                "nothing analysed: the {unsupported} files found are in no supported log format"
            )
        } else if unreadable > 0 {
            format!("nothing analysed: {unreadable} inputs could not be read and no other held a record")
        } else {
            "nothing analysed: the inputs hold no record".to_owned()
        })
    }

    /// The exit status a hunt ends with: 2 when nothing was analysed (no file found, none
    /// readable, or none in a supported format: [`HuntReport::nothing_analysed`]), 1 when `fail_on` is given and an alert at or
    /// above it was shown (never for one `min_severity` hides, nor for a hit of a rule that
    /// only feeds a correlation, which is no alert), else 0.
    pub fn exit_code(&self, fail_on: Option<Severity>) -> u8 {
        if self.nothing_analysed().is_some() {
            return 2;
        }
        match (fail_on, self.worst_shown) {
            (Some(f), Some(w)) if w >= f => 1,
            _ => 0,
        }
    }
}

/// The store's side of a hunt: every alert, in transactions of [`BATCH`] with the incidents
/// finished meanwhile and the links of those alerts, then the rest of the incidents and the
/// baselines. After a failure nothing more is stored (the error ends the run after the output
/// is written).
struct Keep {
    store: Store,
    pending: Vec<(Alert, Option<i64>)>,
    written: u64,
    new: u64,
    error: Option<imdsguard_store::StoreError>,
}

impl Keep {
    fn commit(
        &mut self,
        incidents: &[&Incident],
        links: Vec<(String, String)>,
        baselines: Option<&Baselines>,
    ) {
        if self.error.is_some() {
            self.pending.clear();
            return;
        }
        let batch = Batch {
            alerts: self.pending.iter().map(|(a, t)| (a, *t)).collect(),
            incidents: incidents.to_vec(),
            links,
            baselines,
            checkpoints: Vec::new(),
            outbox: None,
            stream_hosts: Vec::new(),
            windows: Vec::new(),
        };
        match self.store.commit(&batch) {
            Ok(n) => {
                self.written += self.pending.len() as u64;
                self.new += n as u64;
            }
            Err(e) => self.error = Some(e),
        }
        self.pending.clear();
    }
}

/// Where a hunt's alerts and incidents go as correlation releases them: the store, the
/// caller's sink, the counts of the report; finished incidents leave memory for the spill.
struct Out<'a> {
    keep: Option<Keep>,
    sink: &'a mut dyn AlertSink,
    min: Severity,
    shown: BTreeMap<(String, Severity), u64>,
    /// Shown alerts by host (`(no host)` for none) and by UTC day.
    by_host: BTreeMap<String, u64>,
    by_day: BTreeMap<String, u64>,
    hidden: u64,
    worst_shown: Option<Severity>,
    write_error: Option<std::io::Error>,
    /// Finished incidents waiting for the store's next transaction.
    finished: Vec<Incident>,
    spill: Spill,
    incidents: u64,
    incidents_shown: BTreeMap<Severity, u64>,
    /// The newest alert time so far, and observations since quiet incidents were closed.
    newest_ms: i64,
    since_close: u32,
    /// Incidents quiet for longer than this behind the newest alert are finished: the gap,
    /// plus the lateness the reorder buffer allows.
    quiet_ms: i64,
}

impl Out<'_> {
    fn alert(&mut self, a: Alert, time: Option<i64>) {
        if self.a_shown(&a) && self.write_error.is_none() {
            if let Err(e) = self.sink.alert(&a) {
                self.write_error = Some(e);
            }
        }
        if let Some(t) = time {
            self.newest_ms = self.newest_ms.max(t);
        }
        if let Some(k) = &mut self.keep {
            k.pending.push((a, time));
        }
    }

    fn a_shown(&mut self, a: &Alert) -> bool {
        if a.severity < self.min {
            self.hidden += 1;
            return false;
        }
        self.worst_shown = self.worst_shown.max(Some(a.severity));
        *self
            .shown
            .entry((a.rule_id.clone(), a.severity))
            .or_default() += 1;
        *self
            .by_host
            .entry(a.host.clone().unwrap_or_else(|| "(no host)".into()))
            .or_default() += 1;
        if let Some(day) = a.time.as_deref().and_then(|t| t.get(..10)) {
            *self.by_day.entry(day.to_owned()).or_default() += 1;
        }
        true
    }

    /// After each observation: incidents finished meanwhile are counted and leave memory (to
    /// the store's next transaction, then to the spill when shown); the store gets a
    /// transaction once [`BATCH`] alerts or finished incidents wait.
    fn settle(&mut self, engine: &mut Engine) {
        self.since_close += 1;
        if self.since_close >= 4096 {
            self.since_close = 0;
            engine
                .incidents_mut()
                .close_quiet(self.newest_ms.saturating_sub(self.quiet_ms));
        }
        let closed = engine.incidents_mut().take_closed();
        for i in closed {
            self.finish(i);
        }
        match &self.keep {
            Some(k) if k.pending.len() >= BATCH || self.finished.len() >= BATCH => {
                self.commit(engine, None)
            }
            Some(_) => {}
            None => {
                engine.take_links();
                self.release();
            }
        }
    }

    fn finish(&mut self, i: Incident) {
        self.incidents += 1;
        if i.severity >= self.min {
            *self.incidents_shown.entry(i.severity).or_default() += 1;
        }
        self.finished.push(i);
    }

    /// One store transaction: the waiting alerts, the finished incidents, the links made so
    /// far, and `baselines` when given.
    fn commit(&mut self, engine: &mut Engine, baselines: Option<&Baselines>) {
        let links = engine.take_links();
        // The hosts whose incidents changed: the last transaction writes the open ones.
        engine.incidents_mut().take_changed();
        engine.incidents_mut().take_opened();
        if let Some(k) = &mut self.keep {
            let refs: Vec<&Incident> = self.finished.iter().collect();
            k.commit(&refs, links, baselines);
        }
        self.release();
    }

    /// Finished incidents the sink shows go to the spill; the others are done with.
    fn release(&mut self) {
        let wants = self.sink.wants_incidents();
        for i in self.finished.drain(..) {
            if wants && i.severity >= self.min {
                self.spill.push(i);
            }
        }
    }
}

/// Opens the store at `path`, naming it in the error with what the user can do (`hint`).
pub(crate) fn open_store(path: &Path, hint: &str) -> Result<Store, PipelineError> {
    Store::open(path).map_err(PipelineError::store(format!(
        "cannot use the store {} ({hint})",
        imdsguard_store::shown(path)
    )))
}

/// Runs a hunt: loads the catalog, allowlist and rules (`on_rules` sees what loading found
/// before any input is read), reads every input, and hands the shown alerts, then the shown
/// incidents, to `sink`. `progress` is called every 4,096 events read, and every 4,096 events
/// correlated once the input has been read, with the events read and the alerts raised so far.
pub fn hunt(
    cfg: &HuntConfig,
    sink: &mut dyn AlertSink,
    on_rules: &mut dyn FnMut(&RulesReport),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<HuntReport, PipelineError> {
    let common = &cfg.common;
    // An inventory named among the inputs is used as one.
    let (inputs, found) = imdsguard_parse::inventory::split_inputs(&cfg.inputs);
    let mut resource_cfg = common.resources.clone();
    resource_cfg.inventory.extend(found);
    let resources = Resources::load(&resource_cfg)?;
    let normalizer = resources.normalizer();
    crate::memory::tune_allocator();
    let (rules, rules_report) = Rules::load(&common.rules, common.threads)?;
    crate::memory::release_free_memory();
    on_rules(&rules_report);
    rules.require_some(&rules_report)?;
    let detector =
        Detector::new(resources.enricher(&normalizer), &rules).within(cfg.from_ms, cfg.to_ms);
    let keep = match &cfg.db {
        Some(p) => Some(Keep {
            store: open_store(p, "give another --db, or --no-db")?,
            pending: Vec::new(),
            written: 0,
            new: 0,
            error: None,
        }),
        None => None,
    };
    let baselines = match &keep {
        Some(k) => k
            .store
            .baselines()
            .map_err(PipelineError::store("reading the saved baselines"))?,
        None => Baselines::new(),
    };
    let engine = rules
        .engine(&common.correlate, baselines)?
        .with_inventory(resources.inventory().clone());
    let mut run = Correlation::new(
        engine,
        Some(Reorder::new(
            common.correlate.reorder_ms,
            common.correlate.reorder_bytes,
        )),
    );
    let opts = ReadOptions {
        format: common.read.format,
        fields: rules.record_fields().clone(),
        timezone: common.read.timezone.clone(),
        progress: common.read.progress.clone(),
        extensions: std::sync::Arc::new(common.read.extensions.clone()),
        log_format: common.read.log_format.clone(),
        ..ReadOptions::default()
    };
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut out = Out {
        keep,
        sink,
        min: common.min_severity,
        shown: BTreeMap::new(),
        by_host: BTreeMap::new(),
        by_day: BTreeMap::new(),
        hidden: 0,
        worst_shown: None,
        write_error: None,
        finished: Vec::new(),
        spill: Spill::default(),
        incidents: 0,
        incidents_shown: BTreeMap::new(),
        newest_ms: i64::MIN,
        since_close: 0,
        quiet_ms: common
            .correlate
            .incident_gap_ms
            .saturating_add(common.correlate.reorder_ms.unwrap_or(0)),
    };
    let mut seen = 0u64;
    let mut outside = 0u64;
    let detect = |event: imdsguard_event::Event| detector.observe(&event);
    read_inputs_parallel(
        &inputs,
        &opts,
        common.threads.max(1),
        &mut summary,
        &detect,
        &mut |found: Found| {
            seen += 1;
            outside += u64::from(found.outside);
            if seen.is_multiple_of(4096) {
                progress(seen, run.raised);
            }
            run.push(found, &mut |a, t| out.alert(a, t));
            out.settle(&mut run.engine);
        },
    );
    // What the reorder buffer holds, in time order, settling as it goes (so incidents that end
    // are finished and leave memory).
    let mut released = 0u64;
    while run.release_one(&mut |a, t| out.alert(a, t)) {
        out.settle(&mut run.engine);
        released += 1;
        if released.is_multiple_of(4096) {
            progress(seen, run.raised);
        }
    }
    run.finish(&mut |a, t| out.alert(a, t));
    // What is still open finishes with the input.
    for i in run.engine.incidents_mut().take_all() {
        out.finish(i);
    }
    let baselines = run.engine.baselines().cloned();
    out.commit(&mut run.engine, baselines.as_ref());
    let Out {
        keep,
        sink,
        shown,
        by_host,
        by_day,
        hidden,
        worst_shown,
        mut write_error,
        spill,
        incidents,
        incidents_shown,
        ..
    } = out;
    let spill_note = spill.note.clone();
    // Incidents are shown as alerts are: those at or above the minimum severity, in order of
    // their first alert.
    if write_error.is_none() {
        if let Err(e) = spill.drain(&mut *sink).and_then(|()| sink.flush()) {
            write_error = Some(e);
        }
    }
    // The reader going away (`| head`) took what it wanted: the run itself completed.
    if let Some(e) = write_error.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
        return Err(PipelineError::Output(e));
    }
    let store = match keep {
        Some(k) => {
            if let Some(e) = k.error {
                return Err(PipelineError::Store {
                    context: "keeping results in the store".into(),
                    source: Box::new(e),
                });
            }
            Some(StoreReport {
                path: k.store.path().to_owned(),
                written: k.written,
                new: k.new,
            })
        }
        None => None,
    };
    let mut shown: Vec<RuleCount> = shown
        .into_iter()
        .map(|((rule, severity), alerts)| RuleCount {
            title: rules.title(&rule).unwrap_or("").to_owned(),
            rule,
            severity,
            alerts,
        })
        .collect();
    // Most severe first, then the most frequent, then by title.
    shown.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.alerts.cmp(&a.alerts))
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let top = |m: BTreeMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    Ok(HuntReport {
        summary,
        elapsed: started.elapsed(),
        rules: rules_report,
        raised: run.raised,
        shown,
        by_host: top(by_host),
        by_day: top(by_day),
        hidden,
        worst_shown,
        untimed: run.untimed,
        outside,
        incidents,
        incidents_shown: incidents_shown.into_iter().rev().collect(),
        incidents_note: spill_note,
        store,
        late: run.late(),
        early: run.early(),
        reorder: (common.correlate.reorder_ms, common.correlate.reorder_bytes),
        evicted: run.engine.evicted(),
        inventory: (
            resources.inventory().instances().len(),
            resources.inventory_skipped().to_vec(),
        ),
    })
}
