//! `imdsguard hunt`: decode → enrich → detect → write, and the closing summary.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use imdsguard_correlate::{
    Baselines, Engine, Facts, Hit, Incident, Observation, Reorder, SigmaCorrelation, Touch,
};
use imdsguard_enrich::{Allowlist, Enricher};
use imdsguard_event::parse_time_ms;
use imdsguard_event::{Format, Severity};
use imdsguard_parse::{read_inputs_parallel, ReadOptions, Summary};
use imdsguard_rules::{Alert, Field, RuleSet};
use imdsguard_store::{Batch, Store};
use imdsguard_target::Normalizer;

use crate::{load_catalog, print_summary, AlertOutput};

/// What `hunt` was asked to do.
pub struct HuntConfig {
    pub inputs: Vec<PathBuf>,
    pub format: Option<Format>,
    pub timezone: Option<imdsguard_event::LocalZone>,
    pub output: Option<AlertOutput>,
    pub out_file: Option<PathBuf>,
    pub min_severity: Severity,
    pub fail_on: Option<Severity>,
    pub allowlist: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub sigma: Vec<PathBuf>,
    pub no_builtin: bool,
    pub progress: bool,
    pub color: bool,
    pub threads: usize,
    pub incidents: Option<PathBuf>,
    pub correlate: imdsguard_correlate::Config,
    pub incident_gap_ms: i64,
    pub reorder_ms: i64,
    /// The store to keep alerts, incidents and baselines in; `None` keeps nothing.
    pub db: Option<PathBuf>,
}

/// What a worker thread hands back for one event.
pub(crate) struct Found {
    /// What the correlation layer needs of the event (its reported alerts, its metadata
    /// requests, its hits of rules Sigma correlations name), when it has any. Boxed: results
    /// travel between threads in blocks, and an inline observation made every result hundreds
    /// of bytes to copy (worst-case hunt -j 2: 0.33 s → 0.26 s on 64 MB).
    pub(crate) obs: Option<Box<Observation>>,
    /// The event raised an alert or reached the service but its time could not be read.
    pub(crate) untimed: bool,
}

/// Detection on one event, on a worker thread: its alerts (every one, whatever the severity:
/// what is shown is decided when it is written), and what the correlation layer needs of it (its
/// metadata requests, the facts triage reads, its hits of rules Sigma correlations name) when it
/// has any of these.
pub(crate) fn observe(
    event: &imdsguard_event::Event,
    enricher: &Enricher<'_>,
    loaded: &Rules,
) -> Found {
    let ev = enricher.enrich(event);
    let time_ms = event.time.as_deref().and_then(parse_time_ms);
    let mut alerts = Vec::new();
    let mut hits = Vec::new();
    let mut hit_context = None;
    for hit in loaded.set.eval(&ev) {
        let names = loaded.referenced.get(&hit.rule.id);
        let alert = Alert::new(&hit, &ev);
        // A rule that only feeds correlations does not alert on its own, unless the event's time
        // cannot be read: then it feeds nothing, and its alert is shown rather than lost.
        let feeds = time_ms.is_some() && loaded.feeding.contains(&hit.rule.id);
        if let (Some(names), Some(time_ms)) = (names, time_ms) {
            hits.push(Hit {
                rule: names.clone(),
                time_ms,
                fields: loaded
                    .fields
                    .iter()
                    .filter_map(|(n, f)| Some((n.clone(), f.get(&ev)?.to_string())))
                    .collect(),
                id: alert.id.clone(),
            });
        }
        if !feeds {
            alerts.push(alert);
        } else if hit_context.is_none() {
            hit_context = Some(alert);
        }
    }
    let touch = time_ms.and_then(|t| Touch::of(&ev, t));
    let wanted = !alerts.is_empty() || touch.is_some() || !hits.is_empty();
    // Triage reads the facts for the event's alerts, or a correlation's on a touch that is not
    // a verified agent's (an agent's can only raise a rate alert).
    let facts = if !alerts.is_empty() || touch.as_ref().is_some_and(|t| !t.agent) {
        Facts::of(&ev)
    } else {
        Facts::default()
    };
    Found {
        untimed: wanted && time_ms.is_none(),
        obs: wanted.then(|| {
            Box::new(Observation {
                time_ms: time_ms.unwrap_or(i64::MIN),
                seq: 0,
                alerts,
                touch,
                facts,
                hits,
                hit_context,
            })
        }),
    }
}

/// Where alerts go: the store keeps every one (in batches); the output sink, the counts and
/// the exit status see those at or above `min_severity`.
struct Out<'s> {
    sink: Sink,
    min_severity: Severity,
    /// The most severe alert written (for `--fail-on`).
    worst: Option<Severity>,
    /// Alerts below `min_severity`: raised and stored, not written.
    hidden: u64,
    by_rule: BTreeMap<(String, Severity), u64>,
    write_error: Option<io::Error>,
    store: Option<&'s mut Store>,
    pending: Vec<(Alert, Option<i64>)>,
    /// (alert id, incident id) to store with the next batch.
    links: Vec<(String, String)>,
    stored: u64,
    new_in_store: u64,
    store_error: Option<imdsguard_store::StoreError>,
}

impl Out<'_> {
    /// Alerts per store transaction.
    const BATCH: usize = 1000;

    fn write(&mut self, a: Alert, time_ms: Option<i64>) {
        if self.store.is_some() {
            self.pending.push((a.clone(), time_ms));
            if self.pending.len() >= Self::BATCH {
                self.commit(&[], None);
            }
        }
        if a.severity < self.min_severity {
            self.hidden += 1;
            return;
        }
        self.worst = self.worst.max(Some(a.severity));
        *self
            .by_rule
            .entry((a.rule_id.clone(), a.severity))
            .or_default() += 1;
        if self.write_error.is_none() {
            if let Err(e) = self.sink.write(a) {
                self.write_error = Some(e);
            }
        }
    }

    /// One transaction: the pending alerts, and the incidents and baselines given. After a
    /// failure nothing more is stored (the error is reported at the end; alerts still print).
    fn commit(&mut self, incidents: &[&Incident], baselines: Option<&Baselines>) {
        let Some(store) = self.store.as_deref_mut() else {
            return;
        };
        if self.store_error.is_some() {
            self.pending.clear();
            return;
        }
        // Links are stored with the batch after their alerts are (the last one, with the
        // incidents); one whose alert is still pending waits for it.
        let links = if incidents.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut self.links)
        };
        let batch = Batch {
            alerts: self.pending.iter().map(|(a, t)| (a, *t)).collect(),
            incidents: incidents.to_vec(),
            links,
            baselines,
            checkpoints: Vec::new(),
            outbox: None,
        };
        match store.commit(&batch) {
            Ok(n) => {
                self.stored += self.pending.len() as u64;
                self.new_in_store += n as u64;
            }
            Err(e) => self.store_error = Some(e),
        }
        self.pending.clear();
    }
}

/// The rules to run and what the correlation layer needs to know of them.
pub(crate) struct Rules {
    set: RuleSet,
    sigma_rules: usize,
    /// Sigma filters that applied, with how many rules each tunes.
    filters: Vec<(String, usize)>,
    failed: BTreeMap<&'static str, usize>,
    pub(crate) correlations: Vec<SigmaCorrelation>,
    /// Rule id → the names Sigma correlations may use for it, for the rules they name.
    referenced: HashMap<String, Vec<String>>,
    /// Sigma rules that only feed correlations (named by one without `generate: true`): their
    /// hits count, they do not alert on their own.
    feeding: std::collections::HashSet<String>,
    /// The fields correlations group or count by, resolved once.
    fields: Vec<(String, Field)>,
}

pub(crate) fn load_allowlist(path: Option<&PathBuf>) -> Result<&'static Allowlist> {
    let Some(path) = path else {
        return Ok(Allowlist::builtin());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read allowlist {}", path.display()))?;
    let a = Allowlist::builtin_extended(&text, &path.display().to_string())?;
    Ok(Box::leak(Box::new(a)))
}

enum Sink {
    Jsonl(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Table(Box<dyn Write>, Vec<Alert>),
}

impl Sink {
    fn write(&mut self, a: Alert) -> io::Result<()> {
        match self {
            Sink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, &a)?;
                w.write_all(b"\n")
            }
            Sink::Csv(w) => w.write_record(a.csv_record()).map_err(io::Error::other),
            Sink::Table(_, all) => {
                all.push(a);
                Ok(())
            }
        }
    }

    /// Flushes the alerts, then the incidents: JSON lines with `incident_id` after the alerts
    /// (the output contract), a section of the table; CSV has alert rows only
    /// (`--incidents FILE` writes them for any output).
    fn finish(self, color: bool, incidents: &[&Incident]) -> io::Result<()> {
        match self {
            Sink::Jsonl(mut w) => {
                for i in incidents {
                    serde_json::to_writer(&mut *w, i)?;
                    w.write_all(b"\n")?;
                }
                w.flush()
            }
            Sink::Csv(mut w) => w.flush(),
            Sink::Table(mut w, mut all) => {
                write_table(&mut w, &mut all, color)?;
                write_incident_table(&mut w, incidents, color)?;
                w.flush()
            }
        }
    }
}

fn paint(s: Severity, color: bool) -> String {
    let name = format!("{:<8}", s.as_str().to_uppercase());
    if !color {
        return name;
    }
    let code = match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{name}\x1b[0m")
}

fn write_table(w: &mut dyn Write, all: &mut [Alert], color: bool) -> io::Result<()> {
    // Grouped by host; within a host, in input order (time as the records write it).
    all.sort_by(|a, b| a.host.cmp(&b.host));
    let mut host: Option<Option<&str>> = None;
    for a in all.iter() {
        if host != Some(a.host.as_deref()) {
            host = Some(a.host.as_deref());
            writeln!(w, "{}", a.host.as_deref().unwrap_or("(no host)"))?;
        }
        writeln!(
            w,
            "  {} {}  {:<24}  {:<40}  {}  ({})",
            paint(a.severity, color),
            a.rule_id,
            a.time.as_deref().unwrap_or("-"),
            shorten(&a.process_text(), 40),
            a.target_text(),
            a.source_text()
        )?;
    }
    Ok(())
}

fn write_incident_table(w: &mut dyn Write, all: &[&Incident], color: bool) -> io::Result<()> {
    if all.is_empty() {
        return Ok(());
    }
    writeln!(w, "\nincidents")?;
    for i in all {
        let stages: Vec<&str> = i.stages.iter().map(|s| s.as_str()).collect();
        writeln!(
            w,
            "  {} {}  {}  {} → {}  {} alerts  [{}]",
            paint(i.severity, color),
            i.id,
            i.host.as_deref().unwrap_or("(no host)"),
            i.first,
            i.last,
            i.timeline.len(),
            stages.join(" → ")
        )?;
    }
    Ok(())
}

fn write_incidents(path: &PathBuf, all: &[&Incident]) -> Result<()> {
    let mut w = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for i in all {
        serde_json::to_writer(&mut w, i).context("writing incidents")?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(width - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// The rules to run: the built-in pack (unless `--no-builtin`) and the Sigma rules given, each
/// Sigma file that does not load or compile named on standard error with its reason, and counted;
/// Sigma correlation rules go to the correlation layer.
pub(crate) fn rule_set(sigma: &[PathBuf], no_builtin: bool, threads: usize) -> Result<Rules> {
    let mut rules = if no_builtin {
        Vec::new()
    } else {
        imdsguard_detections::pack().rules().to_vec()
    };
    let builtin = rules.len();
    let mut ids: std::collections::HashSet<String> = rules.iter().map(|r| r.id.clone()).collect();
    let mut failed: BTreeMap<&'static str, usize> = BTreeMap::new();
    const SHOWN: usize = 10;
    let mut shown = 0;
    let mut unshown = 0;
    let mut report = |e: imdsguard_sigma::SigmaError| {
        if shown < SHOWN {
            eprintln!("imdsguard: sigma: {e}");
            shown += 1;
        } else {
            unshown += 1;
        }
        *failed.entry(e.kind.as_str()).or_default() += 1;
    };
    let mut correlations = Vec::new();
    // Rule id → the names a correlation may refer to it by (its `name`, its `id`).
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    // Every path loads first: a Sigma filter in one folder tunes rules of another.
    let mut all = Vec::new();
    for p in sigma {
        if !p.exists() {
            anyhow::bail!("no Sigma rules at {}", p.display());
        }
        let (loaded, errors) = imdsguard_sigma::load_dir_with(p, threads);
        errors.into_iter().for_each(&mut report);
        all.extend(loaded);
    }
    let (all, filter_report) = imdsguard_sigma::apply_filters(all);
    filter_report.unused.into_iter().for_each(&mut report);
    let filters = filter_report.applied;
    let compiled = imdsguard_sigma::compile_all(&all, threads);
    for (r, compiled) in all.iter().zip(compiled) {
        if let Some(c) = &r.correlation {
            correlations.push(SigmaCorrelation {
                name: r.name.clone(),
                id: r.id.clone().unwrap_or_else(|| r.title.clone()),
                title: r.title.clone(),
                severity: imdsguard_sigma::severity(r.level),
                correlation: c.clone(),
            });
            continue;
        }
        match compiled {
            Ok(c) if !ids.insert(c.id.clone()) => report(imdsguard_sigma::SigmaError {
                path: r.path.clone(),
                rule: Some(r.title.clone()),
                kind: imdsguard_sigma::ErrorKind::Duplicate,
                message: format!("rule id {} is already loaded", c.id),
            }),
            Ok(c) => {
                let n = names.entry(c.id.clone()).or_default();
                n.extend(r.name.iter().cloned());
                n.push(c.id.clone());
                rules.push(c);
            }
            Err(e) => report(e),
        }
    }
    if unshown > 0 {
        eprintln!(
            "imdsguard: sigma: … {unshown} more files not loaded, counted by reason in the summary"
        );
    }
    let sigma_rules = rules.len() - builtin;
    let named: std::collections::HashSet<&str> = correlations
        .iter()
        .flat_map(|c| c.correlation.rules.iter().map(String::as_str))
        .collect();
    let referenced: HashMap<String, Vec<String>> = names
        .into_iter()
        .filter(|(_, ns)| ns.iter().any(|n| named.contains(n.as_str())))
        .collect();
    let feeding = referenced
        .iter()
        .filter(|(_, ns)| {
            let ns: Vec<&str> = ns.iter().map(String::as_str).collect();
            imdsguard_correlate::only_feeds(&ns, &correlations)
        })
        .map(|(id, _)| id.clone())
        .collect();
    let mut field_names: Vec<String> = correlations
        .iter()
        .flat_map(|c| {
            c.correlation
                .group_by
                .iter()
                .chain(c.correlation.field.iter())
                .chain(
                    c.correlation
                        .aliases
                        .iter()
                        .flat_map(|(_, m)| m.iter().map(|(_, f)| f)),
                )
                .cloned()
        })
        .collect();
    field_names.sort();
    field_names.dedup();
    let fields = field_names
        .into_iter()
        .map(|n| {
            let f = imdsguard_sigma::sigma_field(&n);
            (n, f)
        })
        .collect();
    Ok(Rules {
        set: RuleSet::new(rules)?,
        sigma_rules,
        filters,
        failed,
        correlations,
        referenced,
        feeding,
        fields,
    })
}

/// Runs the hunt.
pub fn hunt(cfg: HuntConfig) -> Result<ExitCode> {
    let cat = load_catalog(cfg.catalog.as_ref())?;
    let normalizer: &'static Normalizer<'static> = Box::leak(Box::new(Normalizer::new(cat)));
    let allowlist = load_allowlist(cfg.allowlist.as_ref())?;
    let enricher = Enricher::new(normalizer, allowlist);
    let loaded = rule_set(&cfg.sigma, cfg.no_builtin, cfg.threads)?;
    let rules = &loaded.set;
    let mut store = match &cfg.db {
        Some(p) => Some(Store::open(p).with_context(|| {
            format!(
                "cannot use the store {} (give another --db, or --no-db)",
                p.display()
            )
        })?),
        None => None,
    };
    let baselines = match &store {
        Some(s) => s.baselines()?,
        None => Baselines::new(),
    };
    let mut engine = Engine::new(
        (!cfg.no_builtin).then(|| cfg.correlate.clone()),
        baselines,
        loaded.correlations.clone(),
        cfg.incident_gap_ms,
    )
    .map_err(|e| {
        let c = &loaded.correlations[e.correlation];
        anyhow::anyhow!("Sigma correlation {} ({}): {}", c.id, c.title, e.message)
    })?;

    let (out, to_terminal): (Box<dyn Write>, bool) = match &cfg.out_file {
        Some(p) => (
            Box::new(BufWriter::new(
                File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            )),
            false,
        ),
        None => (
            Box::new(BufWriter::new(io::stdout())),
            io::stdout().is_terminal(),
        ),
    };
    let output = cfg.output.unwrap_or(if to_terminal {
        AlertOutput::Table
    } else {
        AlertOutput::Jsonl
    });
    let sink = match output {
        AlertOutput::Jsonl => Sink::Jsonl(out),
        AlertOutput::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(Alert::CSV_HEADER)
                .context("writing CSV header")?;
            Sink::Csv(Box::new(w))
        }
        AlertOutput::Table => Sink::Table(out, Vec::new()),
    };
    let color = cfg.color && to_terminal && output == AlertOutput::Table;

    let bar = if cfg.progress && io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        Some(b)
    } else {
        None
    };

    let opts = ReadOptions {
        format: cfg.format,
        // Sigma rules read records' own fields; the built-in pack needs only the typed ones.
        keep_fields: !cfg.sigma.is_empty(),
        timezone: cfg.timezone.clone(),
        ..ReadOptions::default()
    };
    let mut summary = Summary::default();
    let mut alerts = 0u64;
    let mut seen = 0u64;
    let started = Instant::now();
    let detect = |event: imdsguard_event::Event| observe(&event, &enricher, &loaded);
    let mut reorder = Reorder::new(cfg.reorder_ms, 100_000);
    let mut untimed = 0u64;
    let mut correlations = 0u64;
    // Each observation, once the reorder buffer releases it, goes through correlation and
    // triage; its alerts are written then, followed by the correlations it completed. An event
    // whose time could not be read is triaged without a baseline and written at once.
    let mut out = Out {
        sink,
        min_severity: cfg.min_severity,
        worst: None,
        hidden: 0,
        by_rule: BTreeMap::new(),
        write_error: None,
        store: store.as_mut(),
        pending: Vec::new(),
        links: Vec::new(),
        stored: 0,
        new_in_store: 0,
        store_error: None,
    };
    let mut emit = |obs: Observation, timed: bool| {
        let mut obs = obs;
        let more = if timed {
            let more = engine.push(&mut obs);
            out.links.extend(engine.take_links());
            more
        } else {
            Engine::triage_only(&mut obs.alerts, &obs.facts);
            Vec::new()
        };
        correlations += more.len() as u64;
        let time = timed.then_some(obs.time_ms);
        for a in obs.alerts.into_iter().chain(more) {
            out.write(a, time);
        }
    };
    read_inputs_parallel(
        &cfg.inputs,
        &opts,
        cfg.threads,
        &mut summary,
        &detect,
        &mut |found: Found| {
            seen += 1;
            if let Some(b) = &bar {
                if seen.is_multiple_of(4096) {
                    b.set_message(format!("{seen} events, {alerts} alerts"));
                }
            }
            let Some(mut obs) = found.obs else {
                return;
            };
            alerts += obs.alerts.len() as u64;
            obs.seq = seen;
            if found.untimed {
                untimed += 1;
                emit(*obs, false);
            } else {
                for o in reorder.push(obs) {
                    emit(*o, true);
                }
            }
        },
    );
    for o in reorder.finish() {
        emit(*o, true);
    }
    let finished = engine.finish();
    out.links.extend(engine.take_links());
    for a in finished {
        correlations += 1;
        let time = a.time.as_deref().and_then(parse_time_ms);
        out.write(a, time);
    }
    alerts += correlations;
    let incidents = engine.incidents().all();
    out.commit(&incidents, engine.baselines());
    let Out {
        sink,
        worst,
        hidden,
        by_rule,
        write_error,
        stored,
        new_in_store,
        store_error,
        ..
    } = out;
    // Incidents are shown as alerts are: those at or above --min-severity (the store has all).
    let incidents: Vec<&Incident> = incidents
        .into_iter()
        .filter(|i| i.severity >= cfg.min_severity)
        .collect();
    if let Some(path) = &cfg.incidents {
        write_incidents(path, &incidents)?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let finished = sink.finish(color, &incidents);
    for e in write_error.into_iter().chain(finished.err()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing alerts");
        }
    }
    let elapsed = started.elapsed();
    print_summary(&summary, elapsed);
    if !cfg.sigma.is_empty() {
        let failed: usize = loaded.failed.values().sum();
        eprintln!(
            "  sigma    {} rules run, {} correlation rules, {failed} files not loaded",
            loaded.sigma_rules,
            loaded.correlations.len()
        );
        for (reason, n) in &loaded.failed {
            eprintln!("  sigma    not loaded: {reason:<40} {n}");
        }
        for (title, n) in &loaded.filters {
            eprintln!("  sigma    filter {title:?} tunes {n} rules");
        }
    }
    eprintln!("  alerts   {alerts}");
    if hidden > 0 {
        eprintln!(
            "  alerts   {hidden} below --min-severity {} not shown (the store keeps them)",
            cfg.min_severity.as_str()
        );
    }
    if untimed > 0 {
        eprintln!(
            "  alerts   {untimed} events left out of correlation and incidents: their time could not be read"
        );
    }
    for ((rule, sev), n) in &by_rule {
        let title = rules
            .get(rule)
            .map(|r| r.title.as_str())
            .or_else(|| {
                imdsguard_correlate::imds::RULES
                    .iter()
                    .find(|m| m.id == rule)
                    .map(|m| m.title)
            })
            .or_else(|| {
                loaded
                    .correlations
                    .iter()
                    .find(|c| &c.id == rule)
                    .map(|c| c.title.as_str())
            })
            .unwrap_or("");
        eprintln!("  alerts   {rule} {:<8} {n:>8}  {title}", sev.as_str());
    }
    let mut by_sev: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for i in &incidents {
        *by_sev.entry(std::cmp::Reverse(i.severity)).or_default() += 1;
    }
    eprintln!(
        "  incidents {}{}",
        incidents.len(),
        by_sev
            .iter()
            .map(|(s, n)| format!(", {n} {}", s.0.as_str()))
            .collect::<String>()
    );
    if let Some(s) = &store {
        eprintln!(
            "  store    {}: {stored} alerts written ({new_in_store} new), {} incidents",
            s.path(),
            incidents.len()
        );
    }
    if let Some(e) = store_error {
        return Err(e).context("keeping results in the store");
    }
    if reorder.late > 0 {
        eprintln!(
            "  correlate {} events came more than --reorder behind newer ones and were correlated late",
            reorder.late
        );
    }
    if engine.evicted() > 0 {
        eprintln!(
            "  correlate {} keys dropped to keep the state bounded",
            engine.evicted()
        );
    }
    let unread = summary.input_errors.len() as u64 + summary.unrecognized_files.len() as u64;
    if summary.total_events() == 0 && summary.total_skipped() == 0 && unread > 0 {
        return Ok(ExitCode::from(2));
    }
    if let (Some(fail_on), Some(worst)) = (cfg.fail_on, worst) {
        if worst >= fail_on {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
