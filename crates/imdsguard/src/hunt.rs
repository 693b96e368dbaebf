//! `imdsguard hunt`: the printed forms of alerts (JSON lines, CSV, a table), the progress line and
//! the closing summary. The hunt itself is `imdsguard_pipeline::hunt`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use imdsguard_correlate::Incident;
use imdsguard_event::Severity;
use imdsguard_pipeline::{AlertSink, HuntConfig, HuntReport, RulesReport};
use imdsguard_rules::Alert;

use crate::{print_summary, AlertOutput};

/// How many Sigma load errors are named one by one (the rest are counted by reason).
const SHOWN_ERRORS: usize = 10;

/// What `hunt` prints and where, beside what the pipeline does.
pub struct Printing {
    pub output: Option<AlertOutput>,
    pub out_file: Option<PathBuf>,
    pub incidents_file: Option<PathBuf>,
    pub progress: bool,
    pub color: bool,
    pub fail_on: Option<Severity>,
}

/// The printed forms of alerts.
enum Sink {
    Jsonl(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    /// Grouped by host: held until the end.
    Table(Box<dyn Write>, Vec<Alert>, bool),
}

impl AlertSink for Sink {
    fn alert(&mut self, a: &Alert) -> io::Result<()> {
        match self {
            Sink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, a)?;
                w.write_all(b"\n")
            }
            Sink::Csv(w) => w.write_record(a.csv_record()).map_err(io::Error::other),
            Sink::Table(_, all, _) => {
                all.push(a.clone());
                Ok(())
            }
        }
    }

    /// The incidents after the alerts: JSON lines with `incident_id` (the output contract), a
    /// section of the table; CSV has alert rows only (`--incidents FILE` writes them for any
    /// output).
    fn incidents(&mut self, incidents: &[&Incident]) -> io::Result<()> {
        match self {
            Sink::Jsonl(w) => {
                for i in incidents {
                    serde_json::to_writer(&mut *w, i)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            }
            Sink::Csv(_) => Ok(()),
            Sink::Table(w, all, color) => {
                write_table(&mut **w, all, *color)?;
                write_incident_table(&mut **w, incidents, *color)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Jsonl(w) | Sink::Table(w, _, _) => w.flush(),
            Sink::Csv(w) => w.flush(),
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
    // Grouped by host; within a host, in output order.
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

/// Names the first Sigma files that did not load (the summary counts all of them by reason).
pub(crate) fn show_rule_errors(r: &RulesReport) {
    for e in r.errors.iter().take(SHOWN_ERRORS) {
        eprintln!("imdsguard: sigma: {e}");
    }
    if r.errors.len() > SHOWN_ERRORS {
        eprintln!(
            "imdsguard: sigma: … {} more files not loaded, counted by reason in the summary",
            r.errors.len() - SHOWN_ERRORS
        );
    }
}

/// Runs the hunt and prints what it found.
pub fn hunt(cfg: HuntConfig, p: Printing) -> Result<ExitCode> {
    let (out, to_terminal): (Box<dyn Write>, bool) = match &p.out_file {
        Some(path) => (
            Box::new(BufWriter::new(
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            )),
            false,
        ),
        None => (
            Box::new(BufWriter::new(io::stdout())),
            io::stdout().is_terminal(),
        ),
    };
    let output = p.output.unwrap_or(if to_terminal {
        AlertOutput::Table
    } else {
        AlertOutput::Jsonl
    });
    let color = p.color && to_terminal && output == AlertOutput::Table;
    let mut sink = match output {
        AlertOutput::Jsonl => Sink::Jsonl(out),
        AlertOutput::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(Alert::CSV_HEADER)
                .context("writing CSV header")?;
            Sink::Csv(Box::new(w))
        }
        AlertOutput::Table => Sink::Table(out, Vec::new(), color),
    };
    let bar = (p.progress && io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let sigma = !cfg.common.rules.sigma.is_empty();
    let min = cfg.common.min_severity;
    let result = imdsguard_pipeline::hunt(&cfg, &mut sink, &mut show_rule_errors, &mut |e, a| {
        if let Some(b) = &bar {
            b.set_message(format!("{e} events, {a} alerts"));
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = result?;
    if let Some(path) = &p.incidents_file {
        let shown: Vec<&Incident> = report
            .incidents
            .iter()
            .filter(|i| i.severity >= min)
            .collect();
        imdsguard_pipeline::write_incidents(path, &shown)?;
    }
    print_hunt_summary(&report, sigma, min);
    Ok(ExitCode::from(report.exit_code(p.fail_on)))
}

/// The closing summary on standard error.
fn print_hunt_summary(r: &HuntReport, sigma: bool, min: Severity) {
    print_summary(&r.summary, r.elapsed);
    if sigma {
        let failed = r.rules.failed_by_reason();
        eprintln!(
            "  sigma    {} rules run, {} correlation rules, {} files not loaded",
            r.rules.sigma_rules,
            r.rules.correlations,
            r.rules.errors.len()
        );
        for (reason, n) in &failed {
            eprintln!("  sigma    not loaded: {reason:<40} {n}");
        }
        for (title, n) in &r.rules.filters {
            eprintln!("  sigma    filter {title:?} tunes {n} rules");
        }
    }
    eprintln!("  alerts   {}", r.raised);
    if r.hidden > 0 {
        eprintln!(
            "  alerts   {} below --min-severity {} not shown (the store keeps them)",
            r.hidden,
            min.as_str()
        );
    }
    if r.untimed > 0 {
        eprintln!(
            "  alerts   {} events left out of correlation and incidents: their time could not be read",
            r.untimed
        );
    }
    for c in &r.shown {
        eprintln!(
            "  alerts   {} {:<8} {:>8}  {}",
            c.rule,
            c.severity.as_str(),
            c.alerts,
            c.title
        );
    }
    let mut by_sev: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for i in r.incidents.iter().filter(|i| i.severity >= min) {
        *by_sev.entry(std::cmp::Reverse(i.severity)).or_default() += 1;
    }
    eprintln!(
        "  incidents {}{}",
        r.incidents_shown,
        by_sev
            .iter()
            .map(|(s, n)| format!(", {n} {}", s.0.as_str()))
            .collect::<String>()
    );
    if let Some(s) = &r.store {
        eprintln!(
            "  store    {}: {} alerts written ({} new), {} incidents",
            s.path,
            s.written,
            s.new,
            r.incidents.len()
        );
    }
    if r.late > 0 {
        eprintln!(
            "  correlate {} events came more than --reorder behind newer ones and were correlated late",
            r.late
        );
    }
    if r.evicted > 0 {
        eprintln!(
            "  correlate {} keys dropped to keep the state bounded",
            r.evicted
        );
    }
}
