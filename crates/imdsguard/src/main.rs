//! The `imdsguard` command: parses arguments, wires the library crates, maps outcomes to exit codes.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use imdsguard_event::{Format, LocalZone};

mod cmd;
mod out;

use cmd::allowlist::{allowlist, AllowlistArgs};
use cmd::audit::{audit, AuditArgs};
use cmd::catalog::{catalog, CatalogArgs};
use cmd::events::{events, print_summary, EventsArgs};
use cmd::harden::{harden, HardenArgs};
use cmd::hunt::{hunt_with, HuntArgs};
use cmd::mock::{mock, MockArgs};
use cmd::proxy::{proxy, ProxyArgs};
use cmd::rules::{rules, RulesArgs};
use cmd::search::{metrics, search, MetricsArgs, SearchArgs};
use cmd::sigma::{sigma, SigmaArgs};
use cmd::store as store_cmds;
use cmd::target::{target, TargetArgs};
use cmd::watch::{watch_with, WatchArgs};

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
    /// and severity. Correlations (IMDS-101…106, Sigma correlation rules), incidents and triage are
    /// part of the output; alerts, incidents and baselines are kept in the store (`--db`). Exit status: 0 when the run completed, 1 when `--fail-on` found an alert at
    /// or above its severity, 2 for usage errors or when not one input could be read.
    Hunt(HuntArgs),
    /// Find records by keyword, regular expression or field value, in every format `hunt`
    /// reads, and print them as a timeline.
    ///
    /// Keywords match any of a record's values in any case; `--regex` uses Rust's regular
    /// expressions; `--field NAME=TEXT` reads the field a Windows event record names NAME.
    /// Records come in time order. Exit status 2 when not one input could be read.
    Search(SearchArgs),
    /// Count records by channel and event id, by host, or by file, with the first and last
    /// record time of each.
    Metrics(MetricsArgs),
    /// List or show the built-in detections.
    Rules(RulesArgs),
    /// Print the agent allowlist: which processes may read the metadata service.
    Allowlist(AllowlistArgs),
    /// Audit the hardening that stops credential theft through the metadata service.
    ///
    /// From an inventory (`--inventory`): instances that still allow IMDSv1, hop limits above 1
    /// (on container hosts above all). From logs when given: roles whose credentials CloudTrail
    /// says were delivered over IMDSv1, identities never used from their instance, and the hosts,
    /// clients and processes that still send IMDSv1 requests. Each finding comes with the
    /// command that fixes it. Exit status 1 when `--fail-on` found a finding at or above its
    /// severity.
    Audit(AuditArgs),
    /// Work with Sigma rules.
    Sigma(SigmaArgs),
    /// Serve a mock cloud metadata service that answers as the real ones do.
    ///
    /// AWS (IMDSv1 and IMDSv2: session tokens and their TTL, the token reply's hop limit, 401 for
    /// token-less requests with `--require-token`, `X-Forwarded-For` refused on token requests),
    /// Azure (`Metadata: true`, `api-version`), GCP (`Metadata-Flavor: Google`), and the ECS and
    /// EKS Pod Identity credential endpoints, handing out fake but well-formed credentials. For
    /// testing detections, policies and tools without a cloud. Runs until interrupted.
    Mock(MockArgs),
    /// Guard the metadata service: attribute every request to its process, decide it by a
    /// policy, record it, and forward or refuse it.
    ///
    /// Listens on `--listen` and forwards to `--upstream`. Each connection is attributed from its
    /// socket (process id, executable, command line, user, cgroup and container), never from an
    /// address or a header; each request is decided by the policy (`--policy`, TOML: per-process
    /// path and kind allowlists, IMDSv2 required, forwarding headers refused) and written to the
    /// audit log. In `enforce` mode a denied request gets the status the service itself would
    /// give (401 without an IMDSv2 token, 403 otherwise) and a body naming the rule; in `monitor`
    /// mode (the default without a policy) everything passes and the log says what enforcing
    /// would have done. An unreachable upstream gives 502. Runs until interrupted.
    Proxy(ProxyArgs),
    /// Print host controls around the metadata service: packet-filter rules that let only
    /// listed users (and cgroups) reach it, audit rules that log connect() calls, a Sysmon
    /// configuration fragment that captures what `hunt` needs.
    Harden(HardenArgs),
    /// Follow log files, standard input or syslog and detect continuously (same detections as `hunt`).
    ///
    /// Reads each FILE from where the store says it stopped (through rotation and truncation),
    /// commits each chunk's alerts with the file's new position in one transaction, and prints
    /// alerts once they are stored and only if new, so a restart, even after `kill -9`, loses and
    /// repeats nothing. Stops cleanly on SIGINT or SIGTERM.
    Watch(WatchArgs),
    /// Publish log files, line by line, to a NATS JetStream stream that `watch --nats` workers
    /// read.
    ///
    /// Each line goes to `imdsguard.logs.<host>` with the host in the header `Imdsguard-Host`
    /// and an id of its place in its file (`Nats-Msg-Id`: published again after a restart, the
    /// stream keeps it once); a file's position moves past a line only once the stream has
    /// acknowledged it, and is kept in the state file for the next run.
    Ship(cmd::ship::ShipArgs),
    /// List the alerts kept in the store, newest first, with filters.
    Alerts(store_cmds::AlertsArgs),
    /// Show one incident (timeline, stages, triage, analysts' actions), or list the latest.
    Incident(store_cmds::IncidentArgs),
    /// Show an alert's or incident's triage, and record an analyst's action on it.
    ///
    /// With `--status`, records who (`--who`, default $USER) set which status when, with the
    /// note; the store keeps every action.
    Triage(store_cmds::TriageArgs),
    /// Write what the store keeps as one self-contained HTML page.
    ///
    /// Detections by severity, rule, host and day as charts, each incident as a timeline with
    /// its stages, alerts and records and the playbook's answers and containment, the metadata
    /// targets seen, and the processes and clients that asked. The page fetches nothing and
    /// runs no script; every value from a log is shown as text. `hunt --html FILE` writes the
    /// same page for a hunt.
    Report(cmd::report::ReportArgs),
    /// A local web console over the store: the alert queue with filters and search, incident
    /// and alert pages with their records, triage actions, live updates while `watch` writes.
    ///
    /// Listens on loopback by default and prints an address carrying a random access token;
    /// `--no-auth` (loopback only) leaves the token out. Actions are the same as `imdsguard
    /// triage`'s, in the same store.
    Serve(cmd::report::ServeArgs),
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

/// An access-log layout as `--log-format` takes it: nginx's `log_format` or Apache's `LogFormat`.
fn parse_log_format(s: &str) -> Result<std::sync::Arc<imdsguard_parse::LogFormat>, String> {
    imdsguard_parse::LogFormat::parse(s)
        .map(std::sync::Arc::new)
        .map_err(|e| e.to_string())
}

/// A file extension as `--ext` takes it: without its leading dot, in lower case.
fn parse_ext(s: &str) -> Result<String, String> {
    let e = s.trim().trim_start_matches('.').to_ascii_lowercase();
    if e.is_empty() || e.contains(['/', '\\']) {
        return Err(format!("{s:?}: give an extension such as evtx or jsonl.gz"));
    }
    Ok(e)
}

/// A size in bytes: a number with `K`, `M` or `G` (powers of 1,024), or bytes alone.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: usize = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 512M"))?;
    let scale: usize = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M, G)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// A duration as `parse_duration_ms` reads it, in the largest unit that divides it: `5m`, `90s`.
fn show_duration(ms: i64) -> String {
    for (unit, scale) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % scale == 0 {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

/// A size as people read it: `512 MiB`, `1.5 GiB`.
fn show_size(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Worker threads: as asked, or one per CPU when not given or given as 0 (`-j 0`: automatic,
/// as make and ripgrep read it).
fn default_threads(requested: Option<usize>) -> usize {
    match requested {
        Some(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// How `hunt` writes alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertOutput {
    /// One line per alert, grouped by host, severity colored on a terminal.
    Table,
    /// One JSON object per alert and line, then one per incident.
    Jsonl,
    /// One JSON array: the alerts, then the incidents (each with its `type`).
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// A timeline in time order as CSV, its columns chosen by `--profile`.
    CsvTimeline,
    /// A timeline in time order as JSON lines, its fields chosen by `--profile`.
    JsonTimeline,
}

fn parse_zone(s: &str) -> Result<LocalZone, String> {
    LocalZone::parse(s)
}

/// `--format`'s values and their help, from the format registry.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        Format::selectable().map(|i| PossibleValue::new(i.name).help(i.about)),
    )
    .try_map(|s| s.parse::<Format>())
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
            eprintln!("imdsguard: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, each said once: the library errors already name their cause in
/// their message, which a plain `{:#}` would repeat.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Target(args) => target(args),
        Command::Catalog(args) => catalog(args),
        Command::Events(args) => events(args),
        Command::Hunt(a) => hunt_with(a),
        Command::Search(a) => search(a),
        Command::Metrics(a) => metrics(a),
        Command::Rules(args) => rules(args),
        Command::Allowlist(args) => allowlist(args),
        Command::Audit(a) => audit(a),
        Command::Sigma(args) => sigma(args),
        Command::Mock(args) => mock(args),
        Command::Proxy(args) => proxy(args),
        Command::Harden(args) => harden(args),
        Command::Watch(a) => watch_with(a),
        Command::Ship(a) => cmd::ship::ship(a),
        Command::Alerts(a) => store_cmds::alerts(a),
        Command::Report(a) => cmd::report::report(a),
        Command::Serve(a) => cmd::report::serve(a),
        Command::Incident(a) => store_cmds::incident(a),
        Command::Triage(a) => store_cmds::triage(a),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_threads_means_one_per_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(super::default_threads(Some(0)), cpus);
        assert_eq!(super::default_threads(None), cpus);
        assert_eq!(super::default_threads(Some(3)), 3);
    }

    #[test]
    fn sizes_and_durations_read_and_print_as_people_write_them() {
        use super::{parse_size, show_duration, show_size};
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("12X").unwrap_err().contains("unknown unit"));
        assert_eq!(show_size(512 << 20), "512 MiB");
        assert_eq!(show_size(1536 << 20), "1.5 GiB");
        assert_eq!(show_size(1000), "1000 bytes");
        assert_eq!(show_duration(300_000), "5m");
        assert_eq!(show_duration(90_000), "90s");
        assert_eq!(show_duration(1_500), "1500ms");
    }
}
