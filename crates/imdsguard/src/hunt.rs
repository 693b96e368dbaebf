//! `imdsguard hunt`: decode → enrich → detect → write, and the closing summary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use imdsguard_enrich::{Allowlist, Enricher};
use imdsguard_event::{Format, Severity};
use imdsguard_parse::{read_inputs_parallel, ReadOptions, Summary};
use imdsguard_rules::{Alert, RuleSet};
use imdsguard_target::Normalizer;

use crate::{load_catalog, print_summary, AlertOutput};

/// What `hunt` was asked to do.
pub struct HuntConfig {
    pub inputs: Vec<PathBuf>,
    pub format: Option<Format>,
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
}

/// What a worker thread hands back for one event.
struct Found {
    /// The most severe hit, whether reported or not (for `--fail-on`).
    worst: Option<Severity>,
    /// Alerts at or above `--min-severity`.
    alerts: Vec<Alert>,
}

fn load_allowlist(path: Option<&PathBuf>) -> Result<&'static Allowlist> {
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

    fn finish(self, color: bool) -> io::Result<()> {
        match self {
            Sink::Jsonl(mut w) => w.flush(),
            Sink::Csv(mut w) => w.flush(),
            Sink::Table(mut w, mut all) => {
                write_table(&mut w, &mut all, color)?;
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
/// Sigma file that does not load or compile named on standard error with its reason, and counted.
/// Returns the rule set, how many Sigma rules it holds, and the Sigma files not loaded by reason.
fn rule_set(cfg: &HuntConfig) -> Result<(RuleSet, usize, BTreeMap<&'static str, usize>)> {
    let mut rules = if cfg.no_builtin {
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
    for p in &cfg.sigma {
        if !p.exists() {
            anyhow::bail!("no Sigma rules at {}", p.display());
        }
        let (loaded, errors) = imdsguard_sigma::load_dir(p);
        errors.into_iter().for_each(&mut report);
        for r in &loaded {
            match imdsguard_sigma::compile(r) {
                Ok(c) if !ids.insert(c.id.clone()) => report(imdsguard_sigma::SigmaError {
                    path: r.path.clone(),
                    rule: Some(r.title.clone()),
                    kind: imdsguard_sigma::ErrorKind::Duplicate,
                    message: format!("rule id {} is already loaded", c.id),
                }),
                Ok(c) => rules.push(c),
                Err(e) => report(e),
            }
        }
    }
    if unshown > 0 {
        eprintln!(
            "imdsguard: sigma: … {unshown} more files not loaded, counted by reason in the summary"
        );
    }
    let sigma_rules = rules.len() - builtin;
    Ok((RuleSet::new(rules)?, sigma_rules, failed))
}

/// Runs the hunt.
pub fn hunt(cfg: HuntConfig) -> Result<ExitCode> {
    let cat = load_catalog(cfg.catalog.as_ref())?;
    let normalizer: &'static Normalizer<'static> = Box::leak(Box::new(Normalizer::new(cat)));
    let allowlist = load_allowlist(cfg.allowlist.as_ref())?;
    let enricher = Enricher::new(normalizer, allowlist);
    let (rules, sigma_rules, sigma_failed) = rule_set(&cfg)?;
    let rules = &rules;

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
    let mut sink = match output {
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
        ..ReadOptions::default()
    };
    let mut summary = Summary::default();
    let mut by_rule: BTreeMap<(String, Severity), u64> = BTreeMap::new();
    let mut worst: Option<Severity> = None;
    let mut alerts = 0u64;
    let mut write_error: Option<io::Error> = None;
    let mut seen = 0u64;
    let started = Instant::now();
    let min_severity = cfg.min_severity;
    let detect = |event: imdsguard_event::Event| {
        let ev = enricher.enrich(&event);
        let mut found = Found {
            worst: None,
            alerts: Vec::new(),
        };
        for hit in rules.eval(&ev) {
            found.worst = found.worst.max(Some(hit.severity));
            if hit.severity >= min_severity {
                found.alerts.push(Alert::new(&hit, &ev));
            }
        }
        found
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
                if seen % 4096 == 0 {
                    b.set_message(format!("{seen} events, {alerts} alerts"));
                }
            }
            worst = worst.max(found.worst);
            for a in found.alerts {
                alerts += 1;
                *by_rule.entry((a.rule_id.clone(), a.severity)).or_default() += 1;
                if write_error.is_none() {
                    if let Err(e) = sink.write(a) {
                        write_error = Some(e);
                    }
                }
            }
        },
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let finished = sink.finish(color);
    for e in write_error.into_iter().chain(finished.err()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing alerts");
        }
    }
    let elapsed = started.elapsed();
    print_summary(&summary, elapsed);
    if !cfg.sigma.is_empty() {
        let failed: usize = sigma_failed.values().sum();
        eprintln!("  sigma    {sigma_rules} rules run, {failed} files not loaded");
        for (reason, n) in &sigma_failed {
            eprintln!("  sigma    not loaded: {reason:<40} {n}");
        }
    }
    eprintln!("  alerts   {alerts}");
    for ((rule, sev), n) in &by_rule {
        let title = rules.get(rule).map(|r| r.title.as_str()).unwrap_or("");
        eprintln!("  alerts   {rule} {:<8} {n:>8}  {title}", sev.as_str());
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
