//! `imdsguard watch`: signals, the printed forms of alerts, the status line and metrics on
//! standard error. The watch itself is `imdsguard_pipeline::watch`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use imdsguard_event::format_time_ms;
use imdsguard_pipeline::{AlertSink, Reporter, WatchConfig, WatchStatus};
use imdsguard_rules::Alert;

use crate::store_cmds::StoredOutput;

/// Alerts as `watch` prints them: JSON lines, or the line `imdsguard alerts` prints.
struct Printed {
    out: Box<dyn Write>,
    output: StoredOutput,
}

impl AlertSink for Printed {
    fn alert(&mut self, a: &Alert) -> io::Result<()> {
        match self.output {
            StoredOutput::Jsonl => {
                serde_json::to_writer(&mut *self.out, a)?;
                self.out.write_all(b"\n")
            }
            // The line `imdsguard alerts` prints, with the id `triage` takes.
            StoredOutput::Table => writeln!(
                self.out,
                "{}",
                crate::store_cmds::alert_line(&serde_json::to_value(a)?)
            ),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What the watch says on standard error: notes always, the status line on a terminal.
struct Stderr {
    status_line: bool,
}

impl Reporter for Stderr {
    fn note(&mut self, message: &str) {
        if self.status_line {
            eprint!("\r\x1b[K");
        }
        eprintln!("imdsguard: watch: {message}");
    }

    fn status(&mut self, s: &WatchStatus) {
        if self.status_line {
            eprint!("\r\x1b[K{}", status(s));
        }
    }

    fn metrics(&mut self, m: &serde_json::Value) {
        eprintln!("{m}");
    }
}

fn status(s: &WatchStatus) -> String {
    let secs = s.uptime_s.max(0.001);
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

/// Runs until SIGINT or SIGTERM (or, with `once`, until every input is read).
pub fn watch(
    cfg: WatchConfig,
    output: StoredOutput,
    out_file: Option<PathBuf>,
) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    // `kill -USR1 PID`: one line of metrics on standard error.
    let metrics = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&metrics))
        .context("installing signal handlers")?;
    let out: Box<dyn Write> = match &out_file {
        Some(p) => Box::new(BufWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut sink = Printed { out, output };
    let status_line = io::stderr().is_terminal();
    let mut reporter = Stderr { status_line };
    let report = imdsguard_pipeline::watch(
        &cfg,
        &mut sink,
        &mut reporter,
        &stop,
        &metrics,
        &mut crate::hunt::show_rule_errors,
    )?;
    if status_line {
        eprintln!();
    }
    if report.webhook_backlog > 0 {
        eprintln!(
            "imdsguard: webhook: {} alerts wait in the store for {}",
            report.webhook_backlog,
            cfg.webhook.as_deref().unwrap_or("")
        );
    }
    eprintln!(
        "imdsguard: watch stopped{}: {}",
        if report.signalled { " on a signal" } else { "" },
        status(&report.status)
    );
    crate::print_summary(
        &report.summary,
        std::time::Duration::from_secs_f64(report.status.uptime_s),
    );
    Ok(ExitCode::SUCCESS)
}
