//! `imdsguard watch`: signals, the printed forms of alerts, the status line and metrics on
//! standard error. The watch itself is `imdsguard_pipeline::watch`.

use crate::{default_threads, format_parser, parse_duration_ms, parse_zone};
use imdsguard_event::{Format, LocalZone, Severity};
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

use crate::cmd::store::StoredOutput;

/// Alerts as `watch` prints them: JSON lines, or the line `imdsguard alerts` prints.
struct Printed {
    out: Box<dyn Write>,
    output: StoredOutput,
    /// The table's heading is written (before its first line).
    headed: bool,
}

impl AlertSink for Printed {
    fn alert(&mut self, a: &Alert) -> io::Result<()> {
        match self.output {
            StoredOutput::Jsonl => {
                serde_json::to_writer(&mut *self.out, a)?;
                self.out.write_all(b"\n")
            }
            // The line `imdsguard alerts` prints, with the id `triage` takes.
            StoredOutput::Table => {
                if !std::mem::replace(&mut self.headed, true) {
                    writeln!(self.out, "{}", crate::cmd::store::ALERT_HEADER)?;
                }
                writeln!(
                    self.out,
                    "{}",
                    crate::cmd::store::alert_line(&serde_json::to_value(a)?, imdsguard_store::OPEN)
                )
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What the watch says on standard error: notes always, the status line on a terminal.
struct Stderr<'a> {
    status_line: bool,
    /// Who speaks (`watch`).
    label: &'a str,
}

impl Reporter for Stderr<'_> {
    fn note(&mut self, message: &str) {
        if self.status_line {
            eprint!("\r\x1b[K");
        }
        eprintln!("imdsguard: {}: {message}", self.label);
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

/// Whether `path` is a regular file whose last byte is not a line end.
fn ends_in_a_cut_line(path: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let len = match f.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return false,
    };
    let mut last = [0u8; 1];
    len > 0
        && f.seek(SeekFrom::Start(len - 1)).is_ok()
        && f.read_exact(&mut last).is_ok()
        && last[0] != b'\n'
}

/// The watch itself: alerts printed to `out_file` (appended) or standard output, notes on
/// standard error, until `stop`.
fn follow(
    cfg: &WatchConfig,
    output: StoredOutput,
    out_file: Option<&std::path::Path>,
    stop: &AtomicBool,
    metrics: &AtomicBool,
    mut reporter: Stderr<'_>,
) -> Result<imdsguard_pipeline::WatchReport> {
    // A transaction's lines go out in one write where they fit: a crash then cuts at most
    // the last line.
    const OUT_BUFFER: usize = 1 << 20;
    let (mut out, appended_to): (Box<dyn Write>, PathBuf) = match out_file {
        Some(p) => (
            Box::new(BufWriter::with_capacity(
                OUT_BUFFER,
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?,
            )),
            p.to_path_buf(),
        ),
        None => (
            Box::new(BufWriter::with_capacity(OUT_BUFFER, io::stdout())),
            PathBuf::from("/proc/self/fd/1"),
        ),
    };
    // Output appended to a file that a crash left with a line cut short (`watch >> alerts.jsonl`
    // killed mid-line): that line is ended first, so the next one is whole. The alert it held
    // is printed again, whole: it was printed before it was stored.
    if ends_in_a_cut_line(&appended_to) {
        out.write_all(b"\n").context("writing the output")?;
        reporter.note("the output's last line was cut short (a crash): ended it; its alert is printed again whole");
    }
    let mut sink = Printed {
        out,
        output,
        headed: false,
    };
    Ok(imdsguard_pipeline::watch(
        cfg,
        &mut sink,
        &mut reporter,
        stop,
        metrics,
        &mut crate::cmd::hunt::show_rule_errors,
    )?)
}

/// The detections of `watch` over a file this process writes itself (the proxy's audit log),
/// on a thread of their own: alerts appended to `out_file` (or standard output) and stored,
/// notes on standard error under `label`. Once `stop` is set, the file is read to its end and
/// the thread ends with the watch's report; an error ends it at once and is said then.
#[cfg(feature = "guard")]
pub(crate) fn beside(
    cfg: WatchConfig,
    out_file: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    label: &'static str,
) -> Result<std::thread::JoinHandle<Result<imdsguard_pipeline::WatchReport>>> {
    std::thread::Builder::new()
        .name("detections".to_owned())
        .spawn(move || {
            let never = AtomicBool::new(false);
            let report = follow(
                &cfg,
                StoredOutput::Jsonl,
                out_file.as_deref(),
                &stop,
                &never,
                Stderr {
                    status_line: false,
                    label,
                },
            );
            // Said when it happens (a store that cannot be opened, say), not when the process
            // that runs beside it stops.
            if let Err(e) = &report {
                eprintln!("imdsguard: {label}: stopped: {e}");
            }
            report
        })
        .context("starting the detections' thread")
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
    let status_line = io::stderr().is_terminal();
    let report = follow(
        &cfg,
        output,
        out_file.as_deref(),
        &stop,
        &metrics,
        Stderr {
            status_line,
            label: "watch",
        },
    )?;
    if status_line {
        eprintln!();
    }
    if report.webhook_backlog > 0 {
        eprintln!(
            "imdsguard: webhook: {} alerts wait in the store for {}",
            report.webhook_backlog,
            cfg.webhook
                .as_ref()
                .map_or(String::new(), |w| w.name().to_owned())
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

#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// Files to follow, or `-` for standard input.
    inputs: Vec<PathBuf>,
    /// Receive syslog (RFC 5424 or 3164) over UDP on this address (`0.0.0.0:514`); repeatable.
    #[arg(long, value_name = "ADDR")]
    syslog_udp: Vec<String>,
    /// Receive syslog over TCP on this address (octet-counted or newline-delimited frames; at
    /// most 256 connections at once).
    #[arg(long, value_name = "ADDR")]
    syslog_tcp: Vec<String>,
    /// Read a NATS JetStream stream on this server (`nats://host:4222`): records published to
    /// `imdsguard.logs.<host>` (`imdsguard ship`, Vector, Fluent Bit), partitioned by host by
    /// the server's mapping (deploy/nats/imdsguard.conf). Each message is acknowledged once its
    /// alerts are stored; the stream is created when it does not exist.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    #[command(flatten)]
    nats_auth: super::ship::NatsAuthArgs,
    /// The stream `--nats` reads.
    #[arg(long, value_name = "NAME", default_value = imdsguard_pipeline::nats::DEFAULT_STREAM, requires = "nats")]
    stream: String,
    /// Close a syslog TCP connection silent for this many seconds (senders reconnect).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    syslog_idle: u64,
    /// POST every new alert (its JSON) to this URL, retrying with backoff until it answers 2xx;
    /// alerts wait in the store meanwhile, across restarts. `env:VAR` reads the URL from the
    /// environment variable VAR (keeps a token off the command line). Its secrets (`user:pass@`,
    /// query values) are masked wherever it is shown, and never stored.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// The name the store keeps the webhook's undelivered alerts under (default: the URL's
    /// scheme, host and path): a new URL or token with the same name delivers what waits.
    #[arg(long, value_name = "NAME", requires = "webhook")]
    webhook_name: Option<String>,
    /// Decode every record with this format instead of sniffing.
    #[arg(long, value_parser = format_parser())]
    format: Option<Format>,
    /// The zone of record times written in local time without one (NXLog's `EventTime` when no
    /// UTC field is beside it): an IANA name (`America/New_York`, daylight saving included), an
    /// offset (`-04:00`) or `UTC`. Without it such times are read as UTC, and the summary counts them.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// An access-log layout, as the server's configuration writes it: nginx's `log_format`
    /// (`'$remote_addr - $remote_user [$time_local] "$request" $status …'`) or Apache's
    /// `LogFormat` (`'%h %l %u %t \"%r\" %>s %b …'`). A file whose first record line follows
    /// it is read with it; the others are sniffed as usual.
    #[arg(long, value_name = "FORMAT", value_parser = crate::parse_log_format)]
    log_format: Option<std::sync::Arc<imdsguard_parse::LogFormat>>,
    /// Output format: jsonl (default) or table (one line per alert).
    #[arg(long, value_enum, default_value = "jsonl")]
    output: StoredOutput,
    /// Append alerts to FILE instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Report only alerts at or above this severity.
    #[arg(long, default_value = "info")]
    min_severity: Severity,
    /// An allowlist file that extends the built-in one.
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// An inventory of instances (the JSON of `aws ec2 describe-instances`, `az vm list -d` or
    /// `gcloud compute instances list --format=json`): their addresses and host names, for
    /// telling where their credentials are used from. Repeatable.
    #[arg(long, value_name = "FILE")]
    inventory: Vec<PathBuf>,
    /// A catalog file that extends the built-in one.
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Sigma rule files or directories to run beside the built-in detections.
    #[arg(long, value_name = "PATH")]
    sigma: Vec<PathBuf>,
    /// Run only the Sigma rules given.
    #[arg(long, requires = "sigma")]
    no_builtin: bool,
    /// The store: alerts, incidents, baselines and each file's position (default as for `hunt`).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// How long to wait when no file grew.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration_ms)]
    poll: i64,
    /// Most bytes read from a file per transaction.
    #[arg(long, value_name = "BYTES", default_value = "1048576")]
    max_chunk: usize,
    /// Stop once every file is read to its end (catch up, then exit).
    #[arg(long)]
    once: bool,
    /// Wait for files that do not exist yet (without it, a missing file is an error).
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    correlate: crate::cmd::hunt::CorrelateArgs,
}

/// `watch`'s arguments as the pipeline's configuration, then the watch.
pub(crate) fn watch_with(a: WatchArgs) -> Result<ExitCode> {
    if a.nats.is_none() && a.nats_auth.given() {
        anyhow::bail!("--nats-ca, --nats-cert, --nats-key and --nats-creds go with --nats");
    }
    let cfg = imdsguard_pipeline::WatchConfig {
        common: imdsguard_pipeline::Config {
            resources: imdsguard_pipeline::ResourceConfig {
                catalog: a.catalog,
                allowlist: a.allowlist,
                inventory: a.inventory,
            },
            rules: imdsguard_pipeline::RulesConfig {
                builtin: !a.no_builtin,
                sigma: a.sigma,
                select: Default::default(),
            },
            read: imdsguard_pipeline::ReadConfig {
                format: a.format,
                timezone: a.timezone,
                progress: None,
                extensions: Vec::new(),
                log_format: a.log_format,
            },
            correlate: a.correlate.config(None, 0),
            min_severity: a.min_severity,
            // Rules load on every core; the stream itself is read on one thread.
            threads: default_threads(None),
        },
        db: crate::cmd::store::db_path(a.db)?,
        inputs: a.inputs,
        syslog_udp: a.syslog_udp,
        syslog_tcp: a.syslog_tcp,
        nats: a.nats.map(|url| imdsguard_pipeline::NatsSource {
            url,
            stream: a.stream,
            auth: a.nats_auth.auth(),
        }),
        poll: std::time::Duration::from_millis(a.poll.max(1) as u64),
        syslog_idle: std::time::Duration::from_secs(a.syslog_idle.max(1)),
        max_chunk: a.max_chunk.max(4096),
        once: a.once,
        wait: a.wait,
        drain: false,
        webhook: a
            .webhook
            .as_deref()
            .map(|url| imdsguard_pipeline::Webhook::new(url, a.webhook_name.as_deref()))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?,
    };
    watch(cfg, a.output, a.out)
}
