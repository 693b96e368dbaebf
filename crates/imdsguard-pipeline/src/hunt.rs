//! `hunt`: read every input to its end, detect on worker threads, correlate in time order, keep
//! every alert in the store, hand the shown ones to the caller's sink, and report.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use imdsguard_correlate::{Baselines, Incident};
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
    /// Alerts shown, by rule and severity, with the rule's title.
    pub shown: Vec<RuleCount>,
    /// Alerts below the minimum severity: raised and stored, not shown.
    pub hidden: u64,
    /// The most severe alert shown.
    pub worst_shown: Option<Severity>,
    /// Events left out of correlation and incidents: their time could not be read.
    pub untimed: u64,
    /// Every incident, by first alert time.
    pub incidents: Vec<Incident>,
    /// How many incidents were shown (at or above the minimum severity).
    pub incidents_shown: usize,
    /// The store, when one was used.
    pub store: Option<StoreReport>,
    /// Events that came more than the reorder lateness behind newer ones.
    pub late: u64,
    /// Keys dropped to keep the correlation state bounded.
    pub evicted: u64,
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
    /// The exit status a hunt ends with: 2 when not one input could be read (missing,
    /// unreadable, or in no supported format), 1 when `fail_on` is given and an alert at or
    /// above it was shown (never for one `min_severity` hides, nor for a hit of a rule that
    /// only feeds a correlation, which is no alert), else 0.
    pub fn exit_code(&self, fail_on: Option<Severity>) -> u8 {
        let s = &self.summary;
        let unread = s.input_errors.len() + s.unrecognized_files.len();
        if s.total_events() == 0 && s.total_skipped() == 0 && unread > 0 {
            return 2;
        }
        match (fail_on, self.worst_shown) {
            (Some(f), Some(w)) if w >= f => 1,
            _ => 0,
        }
    }
}

/// The store's side of a hunt: every alert, in transactions of [`BATCH`], then the incidents
/// and baselines. After a failure nothing more is stored (the error ends the run after the
/// output is written).
struct Keep {
    store: Store,
    pending: Vec<(Alert, Option<i64>)>,
    written: u64,
    new: u64,
    error: Option<imdsguard_store::StoreError>,
}

impl Keep {
    fn add(&mut self, a: &Alert, time_ms: Option<i64>) {
        self.pending.push((a.clone(), time_ms));
        if self.pending.len() >= BATCH {
            self.commit(&[], Vec::new(), None);
        }
    }

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

/// Opens the store at `path`, naming it in the error.
pub(crate) fn open_store(path: &Path) -> Result<Store, PipelineError> {
    Store::open(path).map_err(PipelineError::store(format!(
        "cannot use the store {} (give another --db, or --no-db)",
        path.display()
    )))
}

/// Runs a hunt: loads the catalog, allowlist and rules (`on_rules` sees what loading found
/// before any input is read), reads every input, and hands the shown alerts, then the shown
/// incidents, to `sink`. `progress` is called every 4,096 events with the events read and the
/// alerts raised so far.
pub fn hunt(
    cfg: &HuntConfig,
    sink: &mut dyn AlertSink,
    on_rules: &mut dyn FnMut(&RulesReport),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<HuntReport, PipelineError> {
    let common = &cfg.common;
    let resources = Resources::load(&common.resources)?;
    let normalizer = resources.normalizer();
    let (rules, rules_report) = Rules::load(&common.rules, common.threads)?;
    on_rules(&rules_report);
    let detector = Detector::new(resources.enricher(&normalizer), &rules);
    let mut keep = match &cfg.db {
        Some(p) => Some(Keep {
            store: open_store(p)?,
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
    let engine = rules.engine(&common.correlate, baselines)?;
    let mut run = Correlation::new(engine, Some(common.correlate.reorder_ms));
    let opts = ReadOptions {
        format: common.read.format,
        fields: rules.record_fields().clone(),
        timezone: common.read.timezone.clone(),
        ..ReadOptions::default()
    };
    let started = Instant::now();
    let min = common.min_severity;
    let mut summary = Summary::default();
    let mut shown: BTreeMap<(String, Severity), u64> = BTreeMap::new();
    let mut hidden = 0u64;
    let mut worst_shown: Option<Severity> = None;
    let mut write_error: Option<std::io::Error> = None;
    let mut seen = 0u64;
    let mut write = |a: Alert, time: Option<i64>| {
        if let Some(k) = &mut keep {
            k.add(&a, time);
        }
        if a.severity < min {
            hidden += 1;
            return;
        }
        worst_shown = worst_shown.max(Some(a.severity));
        *shown.entry((a.rule_id.clone(), a.severity)).or_default() += 1;
        if write_error.is_none() {
            if let Err(e) = sink.alert(&a) {
                write_error = Some(e);
            }
        }
    };
    let detect = |event: imdsguard_event::Event| detector.observe(&event);
    read_inputs_parallel(
        &cfg.inputs,
        &opts,
        common.threads.max(1),
        &mut summary,
        &detect,
        &mut |found: Found| {
            seen += 1;
            if seen.is_multiple_of(4096) {
                progress(seen, run.raised);
            }
            run.push(found, &mut write);
        },
    );
    run.finish(&mut write);
    let links = run.engine.take_links();
    let all = run.engine.incidents().all();
    if let Some(k) = &mut keep {
        k.commit(&all, links, run.engine.baselines());
    }
    // Incidents are shown as alerts are: those at or above the minimum severity.
    let shown_incidents: Vec<&Incident> =
        all.iter().copied().filter(|i| i.severity >= min).collect();
    if write_error.is_none() {
        if let Err(e) = sink.incidents(&shown_incidents).and_then(|()| sink.flush()) {
            write_error = Some(e);
        }
    }
    // The reader going away (`| head`) took what it wanted: the run itself completed.
    if let Some(e) = write_error.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
        return Err(PipelineError::Output(e));
    }
    let incidents_shown = shown_incidents.len();
    let incidents: Vec<Incident> = all.into_iter().cloned().collect();
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
    let shown = shown
        .into_iter()
        .map(|((rule, severity), alerts)| RuleCount {
            title: rules.title(&rule).unwrap_or("").to_owned(),
            rule,
            severity,
            alerts,
        })
        .collect();
    Ok(HuntReport {
        summary,
        elapsed: started.elapsed(),
        rules: rules_report,
        raised: run.raised,
        shown,
        hidden,
        worst_shown,
        untimed: run.untimed,
        incidents,
        incidents_shown,
        store,
        late: run.late(),
        evicted: run.engine.evicted(),
    })
}

/// Writes incidents as JSON lines to `path` (for CSV users, who get alerts only on the output).
pub fn write_incidents(path: &Path, incidents: &[&Incident]) -> Result<(), PipelineError> {
    use std::io::Write;
    let err = |source: std::io::Error| PipelineError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(err)?);
    for i in incidents {
        serde_json::to_writer(&mut w, i).map_err(|e| err(e.into()))?;
        w.write_all(b"\n").map_err(err)?;
    }
    w.flush().map_err(err)
}
