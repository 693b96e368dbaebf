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
use crate::{load_catalog, AlertOutput};

/// What `watch` was asked to do.
pub struct WatchConfig {
    pub inputs: Vec<PathBuf>,
    pub format: Option<Format>,
    pub output: AlertOutput,
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
}

#[derive(Default)]
struct Stats {
    events: u64,
    alerts: u64,
    last_event_ms: Option<i64>,
}

/// Runs until SIGINT or SIGTERM (or, with `once`, until every file is read).
pub fn watch(cfg: WatchConfig) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let cat = load_catalog(cfg.catalog.as_ref())?;
    let normalizer: &'static Normalizer<'static> = Box::leak(Box::new(Normalizer::new(cat)));
    let allowlist = crate::hunt::load_allowlist(cfg.allowlist.as_ref())?;
    let enricher = Enricher::new(normalizer, allowlist);
    let loaded = rule_set(&cfg.sigma, cfg.no_builtin)?;
    let mut store = Store::open(&cfg.db)
        .with_context(|| format!("cannot use the store {}", cfg.db.display()))?;
    let baselines = store.baselines()?;
    let mut engine = Engine::new(
        (!cfg.no_builtin).then(|| cfg.correlate.clone()),
        baselines,
        loaded.correlations.clone(),
        cfg.incident_gap_ms,
        cfg.min_severity,
    )
    .map_err(|e| anyhow::anyhow!("Sigma correlation {}: {}", e.correlation, e.message))?;
    let mut followers = Vec::new();
    for p in &cfg.inputs {
        let name = p.display().to_string();
        let saved = store.checkpoint(&name)?.and_then(|c| {
            c.identity.map(|identity| Position {
                identity,
                offset: c.offset,
                lines: c.lines,
            })
        });
        followers.push(Follower::new(p, saved));
    }
    let mut out: Box<dyn Write> = match &cfg.out_file {
        Some(p) => Box::new(BufWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let opts = ReadOptions {
        format: cfg.format,
        keep_fields: !cfg.sigma.is_empty(),
        ..ReadOptions::default()
    };
    let status_line = io::stderr().is_terminal();
    let mut summary = Summary::default();
    let mut stats = Stats::default();
    let started = Instant::now();
    let mut last_status = Instant::now();
    let mut last_baseline_save = Instant::now();
    let mut last_incident_save = Instant::now();
    let mut read_errors: Vec<String> = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        for f in followers.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
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
            let mut events = Vec::new();
            read_reader_at(
                &name,
                &mut chunk.bytes.as_slice(),
                chunk.lines_before,
                &opts,
                &mut summary,
                &mut |e| events.push(e),
            );
            let mut alerts: Vec<(Alert, Option<i64>)> = Vec::new();
            for e in &events {
                stats.events += 1;
                let found = observe(e, &enricher, &loaded, cfg.min_severity);
                let Some(mut obs) = found.obs else {
                    continue;
                };
                seq += 1;
                obs.seq = seq;
                if found.untimed {
                    Engine::triage_only(&mut obs.alerts, &obs.facts);
                    alerts.extend(obs.alerts.drain(..).map(|a| (a, None)));
                } else {
                    stats.last_event_ms = Some(obs.time_ms);
                    let time = Some(obs.time_ms);
                    let more = engine.push(&mut obs);
                    alerts.extend(obs.alerts.drain(..).chain(more).map(|a| (a, time)));
                }
            }
            let save_baselines = last_baseline_save.elapsed() > Duration::from_secs(60);
            // Incidents are a summary, rewritten whole: at most once a second (the alerts and
            // their links are in every transaction).
            let save_incidents = last_incident_save.elapsed() > Duration::from_secs(1);
            if save_incidents {
                last_incident_save = Instant::now();
            }
            let checkpoint = Checkpoint {
                input: name,
                offset: chunk.end.offset,
                lines: chunk.end.lines,
                identity: Some(chunk.end.identity.clone()),
            };
            let printed = commit(
                &mut store,
                &mut engine,
                &alerts,
                vec![checkpoint],
                save_incidents,
                save_baselines,
            )?;
            if save_baselines {
                last_baseline_save = Instant::now();
            }
            for (i, (a, _)) in alerts.iter().enumerate() {
                if printed[i] {
                    stats.alerts += 1;
                    write_alert(&mut *out, a, cfg.output)?;
                }
            }
            out.flush().context("writing alerts")?;
        }
        if status_line && last_status.elapsed() > Duration::from_secs(1) {
            last_status = Instant::now();
            eprint!("\r\x1b[K{}", status(&stats, started));
        }
        if !progressed {
            if cfg.once {
                break;
            }
            std::thread::sleep(cfg.poll);
        }
    }
    // Clean shutdown: judge what is open, store everything with the baselines.
    let last: Vec<(Alert, Option<i64>)> = engine
        .finish()
        .into_iter()
        .map(|a| {
            let t = a.time.as_deref().and_then(imdsguard_event::parse_time_ms);
            (a, t)
        })
        .collect();
    let printed = commit(&mut store, &mut engine, &last, Vec::new(), true, true)?;
    for (i, (a, _)) in last.iter().enumerate() {
        if printed[i] {
            stats.alerts += 1;
            write_alert(&mut *out, a, cfg.output)?;
        }
    }
    out.flush().context("writing alerts")?;
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
        status(&stats, started)
    );
    crate::print_summary(&summary, started.elapsed());
    Ok(ExitCode::SUCCESS)
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

/// One transaction: the alerts with their incident links, the checkpoints, the incidents
/// changed or closed since they were last saved (when `incidents`), and the baselines (when
/// `baselines`). Returns, per alert, whether
/// it was new to the store.
fn commit(
    store: &mut Store,
    engine: &mut Engine,
    alerts: &[(Alert, Option<i64>)],
    checkpoints: Vec<Checkpoint>,
    incidents: bool,
    baselines: bool,
) -> Result<Vec<bool>> {
    let (closed, changed): (Vec<Incident>, Vec<Incident>) = if incidents {
        let closed = engine.incidents_mut().take_closed();
        let changed = engine
            .incidents_mut()
            .take_changed()
            .into_iter()
            .cloned()
            .collect();
        (closed, changed)
    } else {
        (Vec::new(), Vec::new())
    };
    let incidents: Vec<&Incident> = closed.iter().chain(changed.iter()).collect();
    let saved: Option<Baselines> = if baselines {
        engine.baselines().cloned()
    } else {
        None
    };
    let links = engine.take_links();
    let batch = Batch {
        alerts: alerts.iter().map(|(a, t)| (a, *t)).collect(),
        incidents,
        links,
        baselines: saved.as_ref(),
        checkpoints,
    };
    Ok(store.commit_new(&batch)?)
}

fn write_alert(out: &mut dyn Write, a: &Alert, output: AlertOutput) -> Result<()> {
    match output {
        AlertOutput::Jsonl | AlertOutput::Csv => {
            serde_json::to_writer(&mut *out, a)?;
            out.write_all(b"\n")?;
        }
        AlertOutput::Table => writeln!(
            out,
            "{:<8} {}  {:<24}  {:<20}  {:<40}  {}",
            a.severity.as_str().to_uppercase(),
            a.rule_id,
            a.time.as_deref().unwrap_or("-"),
            a.host.as_deref().unwrap_or("-"),
            a.process_text(),
            a.target_text()
        )?,
    }
    Ok(())
}
