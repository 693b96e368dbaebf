//! `imdsguard hunt`: the printed forms of alerts (JSON lines, CSV, a table), the progress line and
//! the closing summary. The hunt itself is `imdsguard_pipeline::hunt`.

use crate::{default_threads, format_parser, parse_duration_ms, parse_zone};
use imdsguard_event::{Format, LocalZone};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use imdsguard_correlate::Incident;
use imdsguard_event::Severity;
use imdsguard_pipeline::{AlertSink, HuntConfig, HuntReport, RulesReport};
use imdsguard_rules::Alert;

use crate::out::JsonItems;
use crate::{print_summary, AlertOutput};

/// How many hosts and days the summary names.
const TOP: usize = 5;

/// How many Sigma load errors are named one by one (the rest are counted by reason).
const SHOWN_ERRORS: usize = 10;

/// When the table is colored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always, also into a pipe or file.
    Always,
    /// Never.
    Never,
}

/// What `hunt` prints and where, beside what the pipeline does.
pub struct Printing {
    pub output: Option<AlertOutput>,
    pub profile: crate::cmd::timeline::Profile,
    pub out_file: Option<PathBuf>,
    pub incidents_file: Option<PathBuf>,
    /// Also write the run as one HTML page there.
    pub html: Option<PathBuf>,
    pub progress: bool,
    pub color: ColorWhen,
    pub fail_on: Option<Severity>,
}

/// The printed forms of alerts.
enum Form {
    /// JSON lines or one JSON array.
    Json(JsonItems<Box<dyn Write>>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    /// A timeline: held until the end, then sorted by time.
    Timeline {
        w: Box<dyn Write>,
        alerts: Vec<Alert>,
        profile: crate::cmd::timeline::Profile,
        json: bool,
    },
    /// Grouped by host: held until the first incident or the end.
    Table {
        w: Box<dyn Write>,
        alerts: Vec<Alert>,
        color: bool,
        /// The alert table and the incidents' heading are written.
        written: bool,
    },
}

/// The output, and the incidents file when one is given.
struct Sink {
    form: Form,
    incidents: Option<BufWriter<File>>,
    /// `--html`: the page being built.
    report: Option<imdsguard_report::Report>,
}

impl Form {
    /// A timeline's rows, once, in time order.
    fn timeline_written(&mut self) -> io::Result<()> {
        use crate::cmd::timeline;
        let Form::Timeline {
            w,
            alerts,
            profile,
            json,
        } = self
        else {
            return Ok(());
        };
        if alerts.is_empty() {
            return Ok(());
        }
        timeline::sort(alerts);
        let header = timeline::header(*profile);
        if *json {
            for a in alerts.iter() {
                let mut m = serde_json::Map::new();
                for (k, v) in header.iter().zip(timeline::row(a, *profile)) {
                    m.insert((*k).to_owned(), serde_json::Value::String(v));
                }
                serde_json::to_writer(&mut *w, &m)?;
                w.write_all(b"\n")?;
            }
        } else {
            let mut c = csv::Writer::from_writer(&mut *w);
            c.write_record(&header).map_err(io::Error::other)?;
            for a in alerts.iter() {
                c.write_record(timeline::row(a, *profile))
                    .map_err(io::Error::other)?;
            }
            c.flush()?;
        }
        alerts.clear();
        Ok(())
    }

    /// A table's alerts, once, with the incidents' heading when incidents follow.
    fn table_written(&mut self, heading: bool) -> io::Result<()> {
        if let Form::Table {
            w,
            alerts,
            color,
            written,
        } = self
        {
            if !*written {
                *written = true;
                write_table(&mut **w, alerts, *color)?;
                alerts.clear();
                if heading {
                    writeln!(w, "\nincidents")?;
                }
            }
        }
        Ok(())
    }
}

impl AlertSink for Sink {
    fn alert(&mut self, a: &Alert) -> io::Result<()> {
        if let Some(r) = &mut self.report {
            r.alert(&serde_json::to_value(a)?);
        }
        match &mut self.form {
            Form::Json(w) => w.item(a),
            Form::Csv(w) => w.write_record(a.csv_record()).map_err(io::Error::other),
            Form::Table { alerts, .. } | Form::Timeline { alerts, .. } => {
                alerts.push(a.clone());
                Ok(())
            }
        }
    }

    fn wants_incidents(&self) -> bool {
        self.incidents.is_some()
            || self.report.is_some()
            || !matches!(self.form, Form::Csv(_) | Form::Timeline { .. })
    }

    /// The incidents after the alerts: JSON lines with `incident_id` (the output contract), a
    /// section of the table; CSV has alert rows only (`--incidents FILE` writes them for any
    /// output).
    fn incident(&mut self, i: &Incident) -> io::Result<()> {
        if let Some(r) = &mut self.report {
            r.incident(&serde_json::to_value(i)?);
        }
        if let Some(f) = &mut self.incidents {
            serde_json::to_writer(&mut *f, i)?;
            f.write_all(b"\n")?;
        }
        self.form.table_written(true)?;
        match &mut self.form {
            Form::Json(w) => w.item(i),
            Form::Csv(_) | Form::Timeline { .. } => Ok(()),
            Form::Table { w, color, .. } => write_incident_line(&mut **w, i, *color),
        }
    }

    fn incident_json(&mut self, json: &[u8]) -> io::Result<bool> {
        if matches!(self.form, Form::Table { .. }) {
            return Ok(false);
        }
        if let Some(r) = &mut self.report {
            r.incident(&serde_json::from_slice(json)?);
        }
        if let Some(f) = &mut self.incidents {
            f.write_all(json)?;
            f.write_all(b"\n")?;
        }
        if let Form::Json(w) = &mut self.form {
            w.raw(json)?;
        }
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.form.table_written(false)?;
        self.form.timeline_written()?;
        if let Some(f) = &mut self.incidents {
            f.flush()?;
        }
        match &mut self.form {
            Form::Json(w) => w.finish(),
            Form::Table { w, .. } | Form::Timeline { w, .. } => w.flush(),
            Form::Csv(w) => w.flush(),
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
        // Severity, time, the rule's title and id, the record's format and event id, the
        // event's key fields, and where the record is.
        let event = match &a.event.id {
            Some(id) => format!("{} {id}", a.event.format.as_str()),
            None => a.event.format.as_str().to_owned(),
        };
        writeln!(
            w,
            "  {} {:<24}  {} ({})  [{}]  {}  ({})",
            paint(a.severity, color),
            a.time.as_deref().unwrap_or("-"),
            shorten_end(&a.title, 70),
            a.rule_id,
            event,
            a.details(),
            a.source_text()
        )?;
    }
    Ok(())
}

fn write_incident_line(w: &mut dyn Write, i: &Incident, color: bool) -> io::Result<()> {
    let stages: Vec<&str> = i.stages.iter().map(|s| s.as_str()).collect();
    writeln!(
        w,
        "  {} {}  {}  {} → {}  {} alerts  [{}]",
        paint(i.severity, color),
        i.id,
        i.host.as_deref().unwrap_or("(no host)"),
        i.first,
        i.last,
        i.alerts,
        stages.join(" → ")
    )
}

/// `s` cut to `width` characters at its end (a title's start says most).
fn shorten_end(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let head: String = s.chars().take(width - 1).collect();
    format!("{head}…")
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
pub fn hunt(mut cfg: HuntConfig, p: Printing) -> Result<ExitCode> {
    let (out, to_terminal) = crate::out::destination(p.out_file.as_ref())?;
    let output = p.output.unwrap_or(if to_terminal {
        AlertOutput::Table
    } else {
        AlertOutput::Jsonl
    });
    let color = output == AlertOutput::Table
        && match p.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            // https://no-color.org: any non-empty NO_COLOR turns color off.
            ColorWhen::Auto => {
                to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
    let form = match output {
        AlertOutput::Jsonl => Form::Json(JsonItems::new(out, false)),
        AlertOutput::Json => Form::Json(JsonItems::new(out, true)),
        AlertOutput::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(Alert::CSV_HEADER)
                .context("writing CSV header")?;
            Form::Csv(Box::new(w))
        }
        AlertOutput::CsvTimeline | AlertOutput::JsonTimeline => Form::Timeline {
            w: out,
            alerts: Vec::new(),
            profile: p.profile,
            json: output == AlertOutput::JsonTimeline,
        },
        AlertOutput::Table => Form::Table {
            w: out,
            alerts: Vec::new(),
            color,
            written: false,
        },
    };
    let incidents = match &p.incidents_file {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };
    // The page is written at the end; a path that cannot be created fails now, not then.
    if let Some(path) = &p.html {
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let inputs: Vec<String> = cfg.inputs.iter().map(|i| i.display().to_string()).collect();
    let mut sink = Sink {
        form,
        incidents,
        report: p.html.as_ref().map(|_| {
            imdsguard_report::Report::new(
                "imdsguard hunt",
                &format!("a hunt over {}", inputs.join(", ")),
                imdsguard_report::Limits::default(),
            )
        }),
    };
    let (bar, read) = progress_bar(p.progress, &mut cfg);
    let sigma = !cfg.common.rules.sigma.is_empty();
    let min = cfg.common.min_severity;
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        // The bar follows the bytes read between the pipeline's own calls.
        if let (Some(b), Some(read)) = (&bar, &read) {
            let done = &done;
            scope.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    b.set_position(read.bytes());
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let r = imdsguard_pipeline::hunt(&cfg, &mut sink, &mut show_rule_errors, &mut |e, a| {
            if let Some(b) = &bar {
                match &read {
                    Some(read) => {
                        b.set_position(read.bytes());
                        b.set_message(format!("{a} alerts"));
                    }
                    None => b.set_message(format!("{e} events, {a} alerts")),
                }
            }
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = result?;
    print_hunt_summary(&report, sigma, min);
    if let (Some(path), Some(page)) = (&p.html, sink.report.as_mut()) {
        crate::cmd::report::run_facts(page, &report);
        std::fs::write(path, page.html(&crate::cmd::report::now()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "  report   {} ({} alerts, {} incidents)",
            path.display(),
            page.alert_count(),
            page.incident_count()
        );
    }
    Ok(ExitCode::from(report.exit_code(p.fail_on)))
}

/// The progress bar on standard error, when it is a terminal and not turned off: by bytes (with
/// percentage, rate and time left) when the inputs' total size is known, else a spinner with
/// counts; and the counter the reader adds the bytes it consumes to.
fn progress_bar(
    wanted: bool,
    cfg: &mut HuntConfig,
) -> (
    Option<indicatif::ProgressBar>,
    Option<Arc<imdsguard_parse::Progress>>,
) {
    if !wanted || !io::stderr().is_terminal() {
        return (None, None);
    }
    let (bar, read) = match imdsguard_parse::input_size(&cfg.inputs, &cfg.common.read.extensions) {
        Some(total) => {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{wide_bar}] {percent:>3}% {binary_bytes}/{binary_total_bytes} \
                     {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let read = Arc::new(imdsguard_parse::Progress::default());
            cfg.common.read.progress = Some(Arc::clone(&read));
            (b, Some(read))
        }
        None => {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            (b, None)
        }
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    (Some(bar), read)
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
        for (why, n) in &r.rules.left_out {
            eprintln!("  sigma    not selected ({why}): {n}");
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
    if r.outside > 0 {
        eprintln!(
            "  time     {} events outside --from/--to: not analysed",
            r.outside
        );
    }
    if r.untimed > 0 {
        eprintln!(
            "  alerts   {} events left out of correlation and incidents: their time could not be read",
            r.untimed
        );
    }
    if let (Some(first), Some(last)) = (r.summary.first_ms, r.summary.last_ms) {
        eprintln!(
            "  time     events from {} to {}",
            imdsguard_event::format_time_ms(first),
            imdsguard_event::format_time_ms(last)
        );
    }
    let mut levels: Vec<(Severity, u64)> = Vec::new();
    for c in &r.shown {
        match levels.last_mut() {
            Some((s, n)) if *s == c.severity => *n += c.alerts,
            _ => levels.push((c.severity, c.alerts)),
        }
    }
    if !levels.is_empty() {
        eprintln!(
            "  shown    {}",
            levels
                .iter()
                .map(|(s, n)| format!("{n} {}", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for c in &r.shown {
        eprintln!(
            "  alerts   {:<8} {:>8}  {} ({})",
            c.severity.as_str(),
            c.alerts,
            c.title,
            c.rule
        );
    }
    let top = |v: &[(String, u64)]| {
        let mut text = v
            .iter()
            .take(TOP)
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        if v.len() > TOP {
            text.push_str(&format!(" (and {} more)", v.len() - TOP));
        }
        text
    };
    if !r.by_host.is_empty() {
        eprintln!("  hosts    {}", top(&r.by_host));
    }
    if !r.by_day.is_empty() {
        eprintln!("  days     {}", top(&r.by_day));
    }
    eprintln!(
        "  incidents {}{}",
        r.incidents_shown.iter().map(|(_, n)| n).sum::<u64>(),
        r.incidents_shown
            .iter()
            .map(|(s, n)| format!(", {n} {}", s.as_str()))
            .collect::<String>()
    );
    if let Some(note) = &r.incidents_note {
        eprintln!("  incidents {note}");
    }
    if let Some(s) = &r.store {
        eprintln!(
            "  store    {}: {} alerts written ({} new), {} incidents",
            s.path, s.written, s.new, r.incidents
        );
    }
    match r.reorder {
        (None, bytes) if r.late > 0 => eprintln!(
            "  correlate the records held to put the input in time order reached \
             --reorder-memory {}: {} were correlated before the input was read to its end, and \
             {} came older than records already correlated, so a sequence or rate spanning them \
             can be missed; give more memory to correlate them in order",
            crate::show_size(bytes),
            r.early,
            r.late
        ),
        (Some(ms), _) if r.late > 0 => eprintln!(
            "  correlate {} events came more than --reorder {} behind newer ones (inputs not in \
             time order): they were correlated as they came, so a sequence or rate spanning \
             them can be missed; without --reorder the whole input is put in time order first",
            r.late,
            crate::show_duration(ms)
        ),
        _ => {}
    }
    if r.evicted > 0 {
        eprintln!(
            "  correlate {} keys dropped to keep the state bounded",
            r.evicted
        );
    }
    if r.inventory.0 > 0 || !r.inventory.1.is_empty() {
        eprintln!("  inventory {} instances", r.inventory.0);
    }
    for s in &r.inventory.1 {
        eprintln!("  inventory not read: {s}");
    }
    if let Some(why) = r.nothing_analysed() {
        eprintln!("imdsguard: {why}");
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct HuntArgs {
    /// Files, directories or `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Decode every record with this format instead of sniffing (see `events --help`).
    #[arg(long, value_parser = format_parser())]
    format: Option<Format>,
    /// The zone of record times written in local time without one (NXLog's `EventTime` when no
    /// UTC field is beside it): an IANA name (`America/New_York`, daylight saving included), an
    /// offset (`-04:00`) or `UTC`. Without it such times are read as UTC, and the summary counts them.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// Output format: table (default on a terminal), jsonl (default otherwise), csv, or a
    /// timeline in time order (csv-timeline, json-timeline).
    #[arg(long, value_enum)]
    output: Option<AlertOutput>,
    /// The timeline's columns: minimal, standard, verbose, timesketch.
    #[arg(long, value_enum, default_value = "standard")]
    profile: crate::cmd::timeline::Profile,
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
    /// An inventory of instances (the JSON of `aws ec2 describe-instances`, `az vm list -d` or
    /// `gcloud compute instances list --format=json`): their addresses and host names, for
    /// telling where their credentials are used from. Repeatable.
    #[arg(long, value_name = "FILE")]
    inventory: Vec<PathBuf>,
    /// A catalog file that extends the built-in one (same format as `imdsguard catalog --toml`).
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Never show the progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Color the table: `auto` (on a terminal, unless `NO_COLOR` is set), `always`, `never`.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorWhen,
    /// Never color the table (the same as `--color never`).
    #[arg(long)]
    no_color: bool,
    /// Worker threads for decoding and detection (default, or 0: one per CPU).
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
    /// Also write the run as one self-contained HTML page (charts, incidents with their
    /// timelines and the playbook's answers, targets, who asked; it fetches nothing).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    correlate: CorrelateArgs,
    /// The store that keeps alerts, incidents and baselines: a SQLite file, or a PostgreSQL
    /// database shared by several processes (`postgres://user@host/db`) (default:
    /// $IMDSGUARD_DB, else imdsguard/imdsguard.db under $XDG_DATA_HOME or ~/.local/share).
    #[arg(long, value_name = "PATH|URL", conflicts_with = "no_db")]
    db: Option<PathBuf>,
    /// Keep nothing: no store is opened or written (baselines start empty).
    #[arg(long)]
    no_db: bool,
    /// Run only Sigma rules at or above this level.
    #[arg(long, value_name = "LEVEL")]
    min_level: Option<Severity>,
    /// Run only Sigma rules of this level.
    #[arg(long, value_name = "LEVEL", conflicts_with = "min_level")]
    exact_level: Option<Severity>,
    /// Run Sigma rules marked deprecated too (left out by default).
    #[arg(long)]
    include_deprecated: bool,
    /// Run Sigma rules marked unsupported too (left out by default).
    #[arg(long)]
    include_unsupported: bool,
    /// Run only Sigma rules with this tag (repeatable; any case: `attack.t1552.005`).
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// Run only the Sigma rule with this id (repeatable).
    #[arg(long, value_name = "ID")]
    rule_id: Vec<String>,
    /// In directories, read only files with this extension (`evtx`, `jsonl.gz`; repeatable);
    /// files named on the command line are read whatever their names.
    #[arg(long, value_name = "EXT", value_parser = crate::parse_ext)]
    ext: Vec<String>,
    /// An access-log layout, as the server's configuration writes it: nginx's `log_format`
    /// (`'$remote_addr - $remote_user [$time_local] "$request" $status …'`) or Apache's
    /// `LogFormat` (`'%h %l %u %t \"%r\" %>s %b …'`). A file whose first record line follows
    /// it is read with it; the others are sniffed as usual.
    #[arg(long, value_name = "FORMAT", value_parser = crate::parse_log_format)]
    log_format: Option<std::sync::Arc<imdsguard_parse::LogFormat>>,
    /// Analyse only events from this time on: RFC 3339 (`2026-11-20T10:00:00Z`) or a duration
    /// ago (`24h`). Events whose time cannot be read are analysed.
    #[arg(long, value_name = "TIME", value_parser = crate::cmd::store::when)]
    from: Option<i64>,
    /// Analyse only events before this time (same forms as --from).
    #[arg(long, value_name = "TIME", value_parser = crate::cmd::store::when)]
    to: Option<i64>,
    /// Correlate records held at most this far behind the newest (alerts then come while the
    /// input is read) instead of putting the whole input in time order first (the default);
    /// records later than that are correlated as they come, and counted.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    reorder: Option<i64>,
    /// The most memory the records waiting to be put in time order may take; past it the oldest
    /// are correlated early, and the summary says so.
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = crate::parse_size)]
    reorder_memory: usize,
}

/// The correlation layer's settings, the same for `hunt` and `watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct CorrelateArgs {
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
    /// The correlation settings, with `hunt`'s reorder lateness and memory (`watch` reads in
    /// order).
    pub(crate) fn config(
        &self,
        reorder_ms: Option<i64>,
        reorder_bytes: usize,
    ) -> imdsguard_pipeline::CorrelateConfig {
        imdsguard_pipeline::CorrelateConfig {
            imds: imdsguard_correlate::Config {
                learn_ms: self.learn,
                token_window_ms: self.token_window,
                ..imdsguard_correlate::Config::default()
            },
            incident_gap_ms: self.incident_gap,
            reorder_ms,
            reorder_bytes,
        }
    }
}

/// `hunt`'s arguments as the pipeline's configuration, then the hunt.
pub(crate) fn hunt_with(a: HuntArgs) -> Result<ExitCode> {
    let db = if a.no_db {
        None
    } else {
        Some(crate::cmd::store::db_path(a.db.clone())?)
    };
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f >= t {
            anyhow::bail!("--from must come before --to");
        }
    }
    let cfg = imdsguard_pipeline::HuntConfig {
        from_ms: a.from,
        to_ms: a.to,
        common: imdsguard_pipeline::Config {
            resources: imdsguard_pipeline::ResourceConfig {
                catalog: a.catalog,
                allowlist: a.allowlist,
                inventory: a.inventory,
            },
            rules: imdsguard_pipeline::RulesConfig {
                builtin: !a.no_builtin,
                sigma: a.sigma,
                select: imdsguard_pipeline::config::Selection {
                    min_level: a.min_level,
                    exact_level: a.exact_level,
                    deprecated: a.include_deprecated,
                    unsupported: a.include_unsupported,
                    tags: a.tag,
                    ids: a.rule_id,
                },
            },
            read: imdsguard_pipeline::ReadConfig {
                format: a.format,
                timezone: a.timezone,
                progress: None,
                extensions: a.ext,
                log_format: a.log_format,
            },
            correlate: a.correlate.config(a.reorder, a.reorder_memory),
            min_severity: a.min_severity,
            threads: default_threads(a.threads),
        },
        inputs: a.inputs,
        db,
    };
    hunt(
        cfg,
        Printing {
            output: a.output,
            profile: a.profile,
            out_file: a.out,
            incidents_file: a.incidents,
            html: a.html,
            progress: !a.no_progress,
            color: if a.no_color {
                ColorWhen::Never
            } else {
                a.color
            },
            fail_on: a.fail_on,
        },
    )
}
