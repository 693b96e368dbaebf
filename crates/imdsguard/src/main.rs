//! The `imdsguard` command: parses arguments, wires the library crates, maps outcomes to exit codes.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use imdsguard_event::{Format, LocalZone, Severity};
use imdsguard_parse::{read_inputs_parallel, ReadOptions, Summary};
use imdsguard_target::report::{table_header, TargetReport};
use imdsguard_target::{Catalog, MAX_INPUT};

mod hunt;
mod store_cmds;
mod watch;

/// Find theft of cloud credentials through instance metadata services.
#[derive(Debug, Parser)]
#[command(name = "imdsguard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say whether each string points at a cloud metadata service, however it is written.
    ///
    /// Reads each STRING (a URL, host, address, HTTP request or command line), or standard input
    /// line by line when none is given, and prints one JSON object per input.
    Target(TargetArgs),
    /// Print the endpoint catalog: providers, addresses, host names, paths and what they hand out.
    Catalog(CatalogArgs),
    /// Decode logs and print every record as a typed event, one JSON object per line.
    ///
    /// Reads files, directories (recursively) and `-` (standard input), gzip or not, sniffing each
    /// record's format. A closing summary on standard error counts files, events by format, and
    /// skipped records by reason, with the first few skipped records named by file and line.
    Events(EventsArgs),
    /// Hunt logs for metadata-service abuse with the built-in detections and any Sigma rules given.
    ///
    /// Reads files, directories (recursively) and `-` (standard input), gzip or not, in every
    /// format `events` reads, and prints one alert per detection that matches a record. A closing
    /// summary on standard error counts files, events by format, skipped records and alerts by rule
    /// and severity. Correlations (IMDS-101…104, Sigma correlation rules), incidents and triage are
    /// part of the output; alerts, incidents and baselines are kept in the store (`--db`). Exit status: 0 when the run completed, 1 when `--fail-on` found an alert at
    /// or above its severity, 2 for usage errors or when not one input could be read.
    Hunt(HuntArgs),
    /// List or show the built-in detections.
    Rules(RulesArgs),
    /// Print the agent allowlist: which processes may read the metadata service.
    Allowlist(AllowlistArgs),
    /// Work with Sigma rules.
    Sigma(SigmaArgs),
    /// Follow log files, standard input or syslog and detect continuously (same detections as `hunt`).
    ///
    /// Reads each FILE from where the store says it stopped (through rotation and truncation),
    /// commits each chunk's alerts with the file's new position in one transaction, and prints
    /// alerts once they are stored and only if new, so a restart, even after `kill -9`, loses and
    /// repeats nothing. Stops cleanly on SIGINT or SIGTERM.
    Watch(WatchArgs),
    /// List the alerts kept in the store, newest first, with filters.
    Alerts(store_cmds::AlertsArgs),
    /// Show one incident (timeline, stages, triage, analysts' actions), or list the latest.
    Incident(store_cmds::IncidentArgs),
    /// Show an alert's or incident's triage, and record an analyst's action on it.
    ///
    /// With `--status`, records who (`--who`, default $USER) set which status when, with the
    /// note; the store keeps every action.
    Triage(store_cmds::TriageArgs),
}

#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// Files to follow, or `-` for standard input.
    inputs: Vec<PathBuf>,
    /// Receive syslog (RFC 5424 or 3164) over UDP on this address (`0.0.0.0:514`); repeatable.
    #[arg(long, value_name = "ADDR")]
    syslog_udp: Vec<String>,
    /// Receive syslog over TCP on this address (octet-counted or newline-delimited frames).
    #[arg(long, value_name = "ADDR")]
    syslog_tcp: Vec<String>,
    /// POST every new alert (its JSON) to this URL, retrying with backoff until it answers 2xx;
    /// alerts wait in the store meanwhile, across restarts.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Decode every record with this format instead of sniffing.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The zone of record times written in local time without one (NXLog's `EventTime` when no
    /// UTC field is beside it): an IANA name (`America/New_York`, daylight saving included), an
    /// offset (`-04:00`) or `UTC`. Without it such times are read as UTC, and the summary counts them.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// Output format: jsonl (default) or table (one line per alert).
    #[arg(long, value_enum, default_value = "jsonl")]
    output: store_cmds::StoredOutput,
    /// Append alerts to FILE instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Report only alerts at or above this severity.
    #[arg(long, default_value = "info")]
    min_severity: Severity,
    /// An allowlist file that extends the built-in one.
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
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
    #[arg(long, value_name = "PATH")]
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
    #[command(flatten)]
    correlate: CorrelateArgs,
}

/// The correlation layer's settings, the same for `hunt` and `watch`.
#[derive(Debug, clap::Args)]
struct CorrelateArgs {
    /// How long a host's metadata requests only teach the baseline before first-seen (IMDS-102)
    /// and rate (IMDS-103) alerts start: `90s`, `30m`, `24h`, `7d`.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration_ms)]
    learn: i64,
    /// Alerts on one host further apart than this open a new incident.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration_ms)]
    incident_gap: i64,
    /// How long after an IMDSv2 token request a credential read by the same process counts as
    /// the token sequence (IMDS-101).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration_ms)]
    token_window: i64,
}

impl CorrelateArgs {
    /// The correlation settings, with `hunt`'s reorder lateness (`watch` reads in order).
    fn config(&self, reorder_ms: Option<i64>) -> imdsguard_pipeline::CorrelateConfig {
        imdsguard_pipeline::CorrelateConfig {
            imds: imdsguard_correlate::Config {
                learn_ms: self.learn,
                token_window_ms: self.token_window,
                ..imdsguard_correlate::Config::default()
            },
            incident_gap_ms: self.incident_gap,
            reorder_ms: reorder_ms.unwrap_or(0),
        }
    }
}

#[derive(Debug, clap::Args)]
struct SigmaArgs {
    #[command(subcommand)]
    action: SigmaAction,
}

#[derive(Debug, Subcommand)]
enum SigmaAction {
    /// Load Sigma rule files or directories (recursively) and check them against the Sigma
    /// specification: each file that does not load is named with the reason, and a summary counts
    /// rules by kind and failures by reason. Exit status 1 when any file failed.
    Check {
        /// Rule files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run a Sigma regression suite in SigmaHQ's layout: each `info.yml` under
    /// `ROOT/regression_data` names rules (by id) and event samples (EVTX, JSON, NDJSON) on which
    /// they must fire at least `match_count` times, with the pipelines and filters a JSON test
    /// names. Prints one line per test case (PASS/FAIL, matches wanted and found, why it could not
    /// run); a summary on standard error. Exit status 1 when any test case failed.
    Test {
        /// The suite's root: a SigmaHQ checkout, or any folder with `regression_data/` (or
        /// `info.yml` files) in it.
        root: PathBuf,
        /// Rule folders to find the tested rules in (default: ROOT's `rules*` folders).
        #[arg(long = "rules", value_name = "DIR")]
        rules: Vec<PathBuf>,
        /// `text` (one line per test case) or `jsonl` (one object per test case).
        #[arg(long, default_value = "text", value_parser = ["text", "jsonl"])]
        output: String,
    },
}

#[derive(Debug, clap::Args)]
struct HuntArgs {
    /// Files, directories or `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Decode every record with this format instead of sniffing (see `events --help`).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The zone of record times written in local time without one (NXLog's `EventTime` when no
    /// UTC field is beside it): an IANA name (`America/New_York`, daylight saving included), an
    /// offset (`-04:00`) or `UTC`. Without it such times are read as UTC, and the summary counts them.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// Output format: table (default on a terminal), jsonl (default otherwise), csv.
    #[arg(long, value_enum)]
    output: Option<AlertOutput>,
    /// Write alerts to FILE instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Report only alerts at or above this severity (info, low, medium, high, critical).
    #[arg(long, default_value = "info")]
    min_severity: Severity,
    /// Exit with status 1 when an alert at or above this severity was found.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// An allowlist file that extends the built-in one (same format as `imdsguard allowlist --toml`).
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// A catalog file that extends the built-in one (same format as `imdsguard catalog --toml`).
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Never show the progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Never color the table.
    #[arg(long)]
    no_color: bool,
    /// Worker threads for decoding and detection (default: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    threads: Option<usize>,
    /// Sigma rule files or directories to run beside the built-in detections (repeatable).
    #[arg(long, value_name = "PATH")]
    sigma: Vec<PathBuf>,
    /// Run only the Sigma rules given, not the built-in detections.
    #[arg(long, requires = "sigma")]
    no_builtin: bool,
    /// Write the incidents (alerts grouped per host, with timeline and stages) as JSON lines.
    #[arg(long, value_name = "FILE")]
    incidents: Option<PathBuf>,
    #[command(flatten)]
    correlate: CorrelateArgs,
    /// The store that keeps alerts, incidents and baselines (default: $IMDSGUARD_DB, else
    /// imdsguard/imdsguard.db under $XDG_DATA_HOME or ~/.local/share).
    #[arg(long, value_name = "PATH", conflicts_with = "no_db")]
    db: Option<PathBuf>,
    /// Keep nothing: no store is opened or written (baselines start empty).
    #[arg(long)]
    no_db: bool,
    /// How far out of time order records may come (across files) and still be correlated in
    /// order; later ones are correlated as they come, and counted.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration_ms)]
    reorder: i64,
}

/// `90s`, `30m`, `24h`, `7d`, `500ms` as milliseconds.
fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: give a unit (ms, s, m, h, d)"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 30m"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{s:?}: too long"))
}

fn default_threads(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// How `hunt` writes alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertOutput {
    /// One line per alert, grouped by host, severity colored on a terminal.
    Table,
    /// One JSON object per alert and line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    #[command(subcommand)]
    action: RulesAction,
}

#[derive(Debug, Subcommand)]
enum RulesAction {
    /// One line per detection: id, severity, ATT&CK, title.
    List,
    /// Everything about one detection: description, false positives, condition, reasons.
    Show {
        /// The detection's id (`IMDS-001`).
        id: String,
    },
    /// Export the built-in detections to another rule language.
    ///
    /// `--to sigma` writes one Sigma rule per detection and log source it can be written for
    /// (process_creation, network_connection, dns_query), the enriched checks spelled out in the
    /// log source's fields (catalog addresses and names, allowlisted agent paths, ...); what is
    /// approximated is said in each rule's description, and detections or log sources that cannot
    /// be written are named on standard error.
    ///
    /// `--to kql|spl|eql|esql|sql` writes a query per rule: Defender XDR KQL, Splunk SPL, Elastic
    /// EQL and ES|QL (ECS fields), SQL (DuckDB, Trino, Spark SQL). The built-in detections go
    /// through their Sigma form; Sigma files or directories given after the options are converted
    /// instead. Where the language is wider than the rule, a comment says so; rules a language
    /// cannot express are named on standard error with the reason.
    Export {
        /// The target language.
        #[arg(long, value_parser = ["sigma", "kql", "spl", "eql", "esql", "sql"])]
        to: String,
        /// Export only this detection (or Sigma rule, by id or title).
        #[arg(long)]
        rule: Option<String>,
        /// `text` (queries with comments) or `jsonl` (one object per query: id, title, path,
        /// lang, query, notes).
        #[arg(long, default_value = "text", value_parser = ["text", "jsonl"])]
        output: String,
        /// SQL: the table to read.
        #[arg(long, default_value = "logs")]
        table: String,
        /// SQL: the engine (regex function, quoting).
        #[arg(long, default_value = "duckdb", value_parser = ["duckdb", "trino", "spark"])]
        dialect: String,
        /// ES|QL: the index pattern to read.
        #[arg(long, default_value = "logs-*")]
        index: String,
        /// Sigma rule files or directories to convert instead of the built-in detections.
        sigma: Vec<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct AllowlistArgs {
    /// Print the built-in allowlist's TOML source instead of a summary.
    #[arg(long)]
    toml: bool,
}

#[derive(Debug, clap::Args)]
struct EventsArgs {
    /// Files, directories or `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Decode every record with this format instead of sniffing: evtx-json, nxlog-json,
    /// sentinel-windowsevent, sentinel-securityevent, sentinel-syslog, winlogbeat, defender-json,
    /// defender-streaming, defender-csv, ecs, auditd, windows-xml (EVTX files are recognized by their header).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The zone of record times written in local time without one (NXLog's `EventTime` when no
    /// UTC field is beside it): an IANA name (`America/New_York`, daylight saving included), an
    /// offset (`-04:00`) or `UTC`. Without it such times are read as UTC, and the summary counts them.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// Worker threads for decoding (default: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    threads: Option<usize>,
}

fn parse_zone(s: &str) -> Result<LocalZone, String> {
    LocalZone::parse(s)
}

fn parse_format(s: &str) -> Result<Format, String> {
    const ALL: &[Format] = &[
        Format::EvtxJson,
        Format::NxlogJson,
        Format::SentinelWindowsEvent,
        Format::SentinelSecurityEvent,
        Format::Winlogbeat,
        Format::DefenderJson,
        Format::DefenderStreaming,
        Format::Ecs,
        Format::Auditd,
        Format::DefenderCsv,
        Format::SentinelSyslog,
        Format::WindowsXml,
    ];
    ALL.iter()
        .copied()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|f| f.as_str()).collect();
            format!("unknown format {s:?}; formats: {}", names.join(", "))
        })
}

#[derive(Debug, clap::Args)]
struct TargetArgs {
    /// Strings to classify; standard input, one per line, when none are given.
    strings: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Output::Json)]
    output: Output,
    /// A catalog file that extends the built-in one (same format as `imdsguard catalog --toml`).
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Print only the inputs that point at a metadata service.
    #[arg(long)]
    only_targets: bool,
    /// What each input is: `text` (a command line or any free text; weak host forms such as a
    /// bare number count only where a port, path or network client says they are hosts), `host`
    /// (a host name or address with an optional port, as DNS queries, HTTP `Host` and proxy
    /// `CONNECT` targets hold: `2852039166` is an address), or `url`.
    #[arg(long = "as", value_enum, default_value_t = ReadAsArg::Text, value_name = "KIND")]
    read_as: ReadAsArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReadAsArg {
    /// Free text.
    Text,
    /// A host name or address, with an optional port.
    Host,
    /// A URL (a scheme-less one is `host[:port]/path`).
    Url,
}

impl From<ReadAsArg> for imdsguard_target::ReadAs {
    fn from(a: ReadAsArg) -> Self {
        match a {
            ReadAsArg::Text => imdsguard_target::ReadAs::Text,
            ReadAsArg::Host => imdsguard_target::ReadAs::Host,
            ReadAsArg::Url => imdsguard_target::ReadAs::Url,
        }
    }
}

#[derive(Debug, clap::Args)]
struct CatalogArgs {
    /// Print the built-in catalog's TOML source instead of a summary.
    #[arg(long)]
    toml: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// One JSON object per line.
    Json,
    /// Aligned columns for people.
    Table,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        // The reader went away (`| head`): what it wanted was written.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imdsguard: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Target(args) => target(args),
        Command::Catalog(args) => catalog(args),
        Command::Events(args) => events(args),
        Command::Hunt(a) => {
            let db = if a.no_db {
                None
            } else {
                Some(store_cmds::db_path(a.db.clone())?)
            };
            hunt_with(a, db)
        }
        Command::Rules(args) => rules(args),
        Command::Allowlist(args) => allowlist(args),
        Command::Sigma(args) => sigma(args),
        Command::Watch(a) => {
            let cfg = imdsguard_pipeline::WatchConfig {
                common: imdsguard_pipeline::Config {
                    resources: imdsguard_pipeline::ResourceConfig {
                        catalog: a.catalog,
                        allowlist: a.allowlist,
                    },
                    rules: imdsguard_pipeline::RulesConfig {
                        builtin: !a.no_builtin,
                        sigma: a.sigma,
                    },
                    read: imdsguard_pipeline::ReadConfig {
                        format: a.format,
                        timezone: a.timezone,
                    },
                    correlate: a.correlate.config(None),
                    min_severity: a.min_severity,
                    // Rules load on every core; the stream itself is read on one thread.
                    threads: default_threads(None),
                },
                db: store_cmds::db_path(a.db)?,
                inputs: a.inputs,
                syslog_udp: a.syslog_udp,
                syslog_tcp: a.syslog_tcp,
                poll: std::time::Duration::from_millis(a.poll.max(1) as u64),
                max_chunk: a.max_chunk.max(4096),
                once: a.once,
                webhook: a.webhook,
            };
            watch::watch(cfg, a.output, a.out)
        }
        Command::Alerts(a) => store_cmds::alerts(a),
        Command::Incident(a) => store_cmds::incident(a),
        Command::Triage(a) => store_cmds::triage(a),
    }
}

fn hunt_with(a: HuntArgs, db: Option<PathBuf>) -> Result<ExitCode> {
    let cfg = imdsguard_pipeline::HuntConfig {
        common: imdsguard_pipeline::Config {
            resources: imdsguard_pipeline::ResourceConfig {
                catalog: a.catalog,
                allowlist: a.allowlist,
            },
            rules: imdsguard_pipeline::RulesConfig {
                builtin: !a.no_builtin,
                sigma: a.sigma,
            },
            read: imdsguard_pipeline::ReadConfig {
                format: a.format,
                timezone: a.timezone,
            },
            correlate: a.correlate.config(Some(a.reorder)),
            min_severity: a.min_severity,
            threads: default_threads(a.threads),
        },
        inputs: a.inputs,
        db,
    };
    hunt::hunt(
        cfg,
        hunt::Printing {
            output: a.output,
            out_file: a.out,
            incidents_file: a.incidents,
            progress: !a.no_progress,
            color: !a.no_color,
            fail_on: a.fail_on,
        },
    )
}

fn target(args: TargetArgs) -> Result<ExitCode> {
    let resources = imdsguard_pipeline::Resources::load(&imdsguard_pipeline::ResourceConfig {
        catalog: args.catalog.clone(),
        allowlist: None,
    })?;
    let normalizer = resources.normalizer();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    const WIDTH: usize = 60;
    if args.output == Output::Table {
        writeln!(out, "{}", table_header(WIDTH))?;
    }
    let emit = |input: &str, out: &mut BufWriter<io::StdoutLock<'_>>| -> Result<()> {
        if input.len() > MAX_INPUT {
            eprintln!(
                "imdsguard target: an input of {} bytes was read up to its first {} bytes",
                input.len(),
                MAX_INPUT
            );
        }
        let report = TargetReport::build_as(&normalizer, input, args.read_as.into());
        if args.only_targets && !report.metadata {
            return Ok(());
        }
        match args.output {
            Output::Json => {
                serde_json::to_writer(&mut *out, &report)?;
                out.write_all(b"\n")?;
            }
            Output::Table => writeln!(out, "{}", report.table_row(WIDTH))?,
        }
        Ok(())
    };
    if args.strings.is_empty() {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            eprintln!("imdsguard target: reading strings from standard input, one per line (Ctrl-D to end)");
        }
        let mut reader = stdin.lock();
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if reader
                .read_until(b'\n', &mut buf)
                .context("reading standard input")?
                == 0
            {
                break;
            }
            line_no += 1;
            while buf.last().is_some_and(|&c| c == b'\n' || c == b'\r') {
                buf.pop();
            }
            match std::str::from_utf8(&buf) {
                Ok(line) => emit(line, &mut out)?,
                Err(_) => {
                    // Bytes that are not UTF-8 are read as Latin-1-ish lossy text and said so.
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    eprintln!("imdsguard target: <stdin>:{line_no}: not UTF-8; invalid bytes replaced with U+FFFD");
                    emit(&line, &mut out)?;
                }
            }
        }
    } else {
        for s in &args.strings {
            emit(s, &mut out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn catalog(args: CatalogArgs) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.toml {
        out.write_all(Catalog::builtin_toml().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    for p in Catalog::builtin().providers() {
        let addrs: Vec<String> = p
            .addresses
            .iter()
            .map(ToString::to_string)
            .chain(p.hosts.iter().cloned())
            .collect();
        writeln!(out, "{:<22} {}", p.id, p.name)?;
        writeln!(out, "{:<22} endpoints: {}", "", addrs.join(", "))?;
        if !p.ports.is_empty() {
            let ports: Vec<String> = p.ports.iter().map(ToString::to_string).collect();
            let only = if p.port_required {
                "; the address alone is not the service"
            } else {
                ""
            };
            writeln!(out, "{:<22} ports: {} (TCP{only})", "", ports.join(", "))?;
        }
        for h in &p.headers {
            writeln!(
                out,
                "{:<22} header: {}{}",
                "",
                h.name,
                h.value
                    .as_deref()
                    .map(|v| format!(": {v}"))
                    .unwrap_or_default()
            )?;
        }
        for path in &p.paths {
            let q = path
                .query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{:<22} {:<11} {}{}",
                "",
                path.kind.as_str(),
                path.pattern,
                q
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn events(args: EventsArgs) -> Result<ExitCode> {
    let opts = ReadOptions {
        format: args.format,
        timezone: args.timezone,
        ..ReadOptions::default()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut write_error: Option<io::Error> = None;
    let started = std::time::Instant::now();
    // Workers serialize; this thread writes, in input order.
    let to_json = |event: imdsguard_event::Event| {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        line
    };
    read_inputs_parallel(
        &args.inputs,
        &opts,
        default_threads(args.threads),
        &mut summary,
        &to_json,
        &mut |line: Vec<u8>| {
            if write_error.is_none() {
                if let Err(e) = out.write_all(&line) {
                    write_error = Some(e);
                }
            }
        },
    );
    if let Some(e) = write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing events");
        }
    }
    out.flush().ok();
    print_summary(&summary, started.elapsed());
    // Exit 2 when inputs were named and not one of them could be read: missing, unreadable, or in
    // no supported format. A readable input that holds no events is a completed run.
    let unread = summary.input_errors.len() as u64 + summary.unrecognized_files.len() as u64;
    let none_read = summary.total_events() == 0 && summary.total_skipped() == 0 && unread > 0;
    Ok(if none_read {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn print_summary(s: &Summary, elapsed: std::time::Duration) {
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "imdsguard: {} files ({} in no supported format), {} events, {} records skipped, {:.2} s ({:.0} events/s)",
        s.files,
        s.unrecognized_files.len(),
        s.total_events(),
        s.total_skipped(),
        secs,
        s.total_events() as f64 / secs.max(1e-9)
    );
    for (format, n) in &s.events {
        eprintln!("  events   {:<24} {n}", format.as_str());
    }
    for (reason, n) in &s.skipped {
        eprintln!("  skipped  {:<24} {n}", reason.as_str());
    }
    for skip in &s.first_skips {
        eprintln!("  skipped: {skip}");
    }
    if s.total_skipped() > s.first_skips.len() as u64 {
        eprintln!(
            "  ... {} more skipped records counted above",
            s.total_skipped() - s.first_skips.len() as u64
        );
    }
    for (format, n) in &s.local_times {
        eprintln!(
            "  time     {n} {} records write local time without a zone: read as UTC (give --timezone)",
            format.as_str()
        );
    }
    for (format, n) in &s.unreadable_times {
        eprintln!(
            "  time     {n} {} records have a time that is not one; they are left out of correlation",
            format.as_str()
        );
    }
    for (source, text) in &s.first_unreadable_times {
        eprintln!("  time     {source}: {text:?} is not a time");
    }
    for f in &s.unrecognized_files {
        eprintln!("  not read: {f}");
    }
    for e in &s.input_errors {
        eprintln!("  error: {e}");
    }
}

fn rules(args: RulesArgs) -> Result<ExitCode> {
    let pack = imdsguard_detections::pack();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.action {
        RulesAction::List => {
            for r in pack.rules() {
                let attack: Vec<&str> = r.attack.iter().map(|t| t.as_str()).collect();
                writeln!(
                    out,
                    "{}  {:<8}  {:<20}  {}",
                    r.id,
                    r.severity.as_str(),
                    attack.join(","),
                    r.title
                )?;
            }
            for m in imdsguard_correlate::imds::RULES {
                writeln!(
                    out,
                    "{}  {:<8}  {:<20}  {}  (correlation)",
                    m.id,
                    m.severity.as_str(),
                    "T1552.005",
                    m.title
                )?;
            }
        }
        RulesAction::Export {
            to,
            rule,
            output,
            table,
            dialect,
            index,
            sigma,
        } if to != "sigma" || !sigma.is_empty() => {
            drop(out);
            let opts = imdsguard_query::Options {
                table,
                dialect: imdsguard_query::SqlDialect::from_name(&dialect).unwrap_or_default(),
                index,
            };
            return export_queries(pack, &to, rule, &output, &opts, &sigma);
        }
        RulesAction::Export { rule, .. } => {
            let cat = Catalog::builtin();
            let allow = imdsguard_enrich::Allowlist::builtin();
            let mut first = true;
            let mut found = false;
            for r in pack.rules() {
                if rule
                    .as_deref()
                    .is_some_and(|id| !r.id.eq_ignore_ascii_case(id))
                {
                    continue;
                }
                found = true;
                let (exported, skipped) = imdsguard_sigma::export_rule(r, cat, allow);
                for e in exported {
                    if !first {
                        writeln!(out, "---")?;
                    }
                    first = false;
                    out.write_all(e.yaml.as_bytes())?;
                }
                for s in skipped {
                    eprintln!(
                        "imdsguard: {} not exported for {}: {}",
                        s.rule_id,
                        s.target
                            .map_or("any log source".to_owned(), |t| format!("{t:?}")),
                        s.reason
                    );
                }
            }
            if !found {
                anyhow::bail!("no detection {:?}", rule.unwrap_or_default());
            }
        }
        RulesAction::Show { id } => {
            let correlation = imdsguard_correlate::imds::RULES
                .iter()
                .find(|m| m.id.eq_ignore_ascii_case(&id));
            if let Some(m) = correlation {
                writeln!(
                    out,
                    "{}  {}  (correlation over metadata requests)",
                    m.id, m.title
                )?;
                writeln!(out, "severity:   {}", m.severity)?;
                writeln!(out, "ATT&CK:     T1552.005")?;
                writeln!(out, "\n{}\n", m.description)?;
                writeln!(out, "false positives:")?;
                for fp in m.false_positives {
                    writeln!(out, "  - {fp}")?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let Some(r) = pack.get(&id) else {
                let ids: Vec<&str> = pack
                    .rules()
                    .iter()
                    .map(|r| r.id.as_str())
                    .chain(imdsguard_correlate::imds::RULES.iter().map(|m| m.id))
                    .collect();
                anyhow::bail!("no detection {id:?}; detections: {}", ids.join(", "));
            };
            let attack: Vec<&str> = r.attack.iter().map(|t| t.as_str()).collect();
            writeln!(out, "{}  {}", r.id, r.title)?;
            writeln!(out, "severity:   {}", r.severity)?;
            for e in &r.escalations {
                writeln!(out, "            {} when {}", e.severity, e.when)?;
            }
            writeln!(out, "ATT&CK:     {}", attack.join(", "))?;
            writeln!(out, "\n{}\n", r.description)?;
            writeln!(out, "condition:\n  {}\n", r.when)?;
            writeln!(out, "reasons:")?;
            for reason in &r.reasons {
                match &reason.when {
                    Some(w) => writeln!(out, "  - {}\n      when {}", reason.text, w)?,
                    None => writeln!(out, "  - {}", reason.text)?,
                }
            }
            for e in &r.escalations {
                writeln!(out, "  - {}\n      when {}", e.reason, e.when)?;
            }
            writeln!(out, "\nfalse positives:")?;
            for fp in &r.false_positives {
                writeln!(out, "  - {fp}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn allowlist(args: AllowlistArgs) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.toml {
        out.write_all(imdsguard_enrich::Allowlist::builtin_toml().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    for a in imdsguard_enrich::Allowlist::builtin().agents() {
        writeln!(out, "{:<24} {}", a.id, a.name)?;
        let names = a.name_texts();
        if !names.is_empty() {
            writeln!(out, "{:<24} names: {}", "", names.join(", "))?;
        }
        let paths = a.path_texts();
        if !paths.is_empty() {
            writeln!(out, "{:<24} paths: {}", "", paths.join(", "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sigma(args: SigmaArgs) -> Result<ExitCode> {
    let paths = match args.action {
        SigmaAction::Check { paths } => paths,
        SigmaAction::Test {
            root,
            rules,
            output,
        } => return sigma_test(&root, &rules, &output),
    };
    let mut rules = 0usize;
    let mut correlations = 0usize;
    let mut filters = 0usize;
    let mut by_reason: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for p in &paths {
        let (loaded, errors) = imdsguard_sigma::load_dir(p);
        correlations += loaded.iter().filter(|r| r.correlation.is_some()).count();
        filters += loaded.iter().filter(|r| r.filter.is_some()).count();
        rules += loaded.len();
        for e in errors {
            println!("{e}");
            *by_reason.entry(e.kind.as_str()).or_default() += 1;
        }
    }
    let failed: usize = by_reason.values().sum();
    eprintln!(
        "imdsguard: {rules} Sigma rules loaded ({} detection, {correlations} correlation, {filters} filters), {failed} files failed",
        rules - correlations - filters
    );
    for (reason, n) in &by_reason {
        eprintln!("  failed   {reason:<40} {n}");
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `sigma test`: a regression suite in SigmaHQ's layout.
fn sigma_test(root: &Path, rule_dirs: &[PathBuf], output: &str) -> Result<ExitCode> {
    let suite = imdsguard_regress::Suite::open(root, rule_dirs)?;
    let report = suite.run();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for o in &report.outcomes {
        if output == "jsonl" {
            serde_json::to_writer(&mut out, o)?;
            writeln!(out)?;
            continue;
        }
        let status = if o.passed() { "PASS" } else { "FAIL" };
        match &o.problem {
            // It could not run: say why, not a count of nothing.
            Some(p) => writeln!(
                out,
                "{status} {} {:?} [{}] could not run: {p}",
                o.rule, o.title, o.test
            )?,
            None => writeln!(
                out,
                "{status} {} {:?} [{}] {} of {} records matched, wants {}: {}",
                o.rule, o.title, o.test, o.got, o.records, o.want, o.sample
            )?,
        }
        for u in &o.unreadable {
            writeln!(out, "     unreadable: {u}")?;
        }
    }
    out.flush()?;
    let failed = report.outcomes.len() - report.passed();
    eprintln!(
        "imdsguard: {} info.yml, {} test cases: {} passed, {failed} failed; {} info.yml list no test case, {} do not read; {} rules loaded, {} rule files did not load",
        suite.infos().len(),
        report.outcomes.len(),
        report.passed(),
        report.empty.len(),
        report.bad_info.len(),
        report.rules_loaded,
        report.rule_errors.len()
    );
    for b in &report.bad_info {
        eprintln!("  unreadable info.yml: {b}");
    }
    Ok(if failed > 0 || !report.bad_info.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `rules export --to kql|spl|eql|esql|sql`: the pack (through its Sigma form) or Sigma files as
/// queries.
fn export_queries(
    pack: &imdsguard_rules::RuleSet,
    to: &str,
    only: Option<String>,
    output: &str,
    opts: &imdsguard_query::Options,
    sigma: &[PathBuf],
) -> Result<ExitCode> {
    use imdsguard_query::{convert, Lang};
    let Some(lang) = Lang::from_name(to) else {
        anyhow::bail!("Sigma files are already Sigma: give --to kql, spl, eql, esql or sql");
    };
    let mut rules = Vec::new();
    let mut load_errors = 0usize;
    if sigma.is_empty() {
        let cat = Catalog::builtin();
        let allow = imdsguard_enrich::Allowlist::builtin();
        for r in pack.rules() {
            let (exported, skipped) = imdsguard_sigma::export_rule(r, cat, allow);
            for e in exported {
                let path = format!("{} (built-in)", r.id);
                let parsed = imdsguard_sigma::parse_rule(&e.yaml, &path).map_err(|e| {
                    anyhow::anyhow!("the pack's own Sigma export does not read back: {e}")
                })?;
                rules.extend(parsed.into_iter().map(|s| (r.id.clone(), s)));
            }
            for s in skipped {
                eprintln!(
                    "imdsguard: {} not exported for {}: {}",
                    s.rule_id,
                    s.target
                        .map_or("any log source".to_owned(), |t| format!("{t:?}")),
                    s.reason
                );
            }
        }
    } else {
        let mut all = Vec::new();
        for p in sigma {
            let (rs, errs) = imdsguard_sigma::load_dir(p);
            for e in &errs {
                eprintln!("imdsguard: {e}");
            }
            load_errors += errs.len();
            all.extend(rs);
        }
        // Sigma filters among the files tune the rules they name before those are written.
        let (all, filters) = imdsguard_sigma::apply_filters(all);
        for e in &filters.unused {
            eprintln!("imdsguard: {e}");
        }
        load_errors += filters.unused.len();
        for (title, n) in &filters.applied {
            eprintln!("imdsguard: filter {title:?} tunes {n} rules");
        }
        rules.extend(
            all.into_iter()
                .map(|r| (r.id.clone().unwrap_or_else(|| r.title.clone()), r)),
        );
    }
    if let Some(want) = &only {
        rules.retain(|(id, r)| {
            id.eq_ignore_ascii_case(want)
                || r.id
                    .as_deref()
                    .is_some_and(|i| i.eq_ignore_ascii_case(want))
                || r.title.eq_ignore_ascii_case(want)
        });
        if rules.is_empty() {
            anyhow::bail!("no rule {want:?}");
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (comment, end) = match lang {
        Lang::Kql | Lang::Eql | Lang::Esql => ("// ", ""),
        Lang::Spl => ("```", "```"),
        Lang::Sql => ("-- ", ""),
    };
    let mut written = 0usize;
    let mut refused: std::collections::BTreeMap<String, usize> = Default::default();
    for (id, r) in &rules {
        match convert(r, lang, opts) {
            Ok(q) => {
                written += 1;
                if output == "jsonl" {
                    let line = serde_json::json!({
                        "id": id,
                        "title": r.title,
                        "path": r.path,
                        "lang": lang.name(),
                        "query": q.text,
                        "notes": q.notes,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    if written > 1 {
                        writeln!(out)?;
                    }
                    writeln!(out, "{comment}{} ({id}){end}", r.title)?;
                    for n in &q.notes {
                        writeln!(out, "{comment}note: {n}{end}")?;
                    }
                    writeln!(out, "{}", q.text)?;
                }
            }
            Err(e) => {
                eprintln!("imdsguard: {e}");
                *refused.entry(e.message).or_default() += 1;
            }
        }
    }
    out.flush()?;
    let n_refused: usize = refused.values().sum();
    eprintln!(
        "imdsguard: {written} {} queries from {} rules; {n_refused} not expressible; {load_errors} files did not load",
        lang.name(),
        rules.len()
    );
    Ok(if written == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
