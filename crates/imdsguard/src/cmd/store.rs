//! `imdsguard alerts`, `incident` and `triage`: what the store keeps, for the analyst.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use imdsguard_event::{format_time_ms, parse_time_ms, Severity};
use imdsguard_store::{AlertFilter, Listed, Store, STATUSES};
use serde_json::Value;

use crate::out::JsonItems;

/// The store to use: the one given, else the default location.
pub fn db_path(given: Option<PathBuf>) -> Result<PathBuf> {
    given.or_else(imdsguard_store::default_path).context(
        "no store location: give --db PATH (neither $IMDSGUARD_DB, $XDG_DATA_HOME nor $HOME is set)",
    )
}

fn existing(given: Option<PathBuf>) -> Result<PathBuf> {
    let path = db_path(given)?;
    if !imdsguard_store::exists(&path) {
        anyhow::bail!(
            "no store at {} yet: `imdsguard hunt` (or `watch`) fills it",
            path.display()
        );
    }
    Ok(path)
}

/// The store, to write (`triage`).
fn open(given: Option<PathBuf>) -> Result<Store> {
    Ok(Store::open(&existing(given)?)?)
}

/// The store, to read: nothing is written, so another user's store or one on a read-only
/// mount is read as it is.
fn open_read(given: Option<PathBuf>) -> Result<Store> {
    Ok(Store::open_read(&existing(given)?)?)
}

/// Names the rows that did not read back (the listing goes on without them); returns how many.
fn say_unreadable(listed: &Listed) -> usize {
    for e in &listed.unreadable {
        eprintln!("imdsguard: {e}: left out");
    }
    listed.unreadable.len()
}

/// `--since`/`--until`: an RFC 3339 time, or a duration meaning that long ago (`24h`).
pub(crate) fn when(s: &str) -> Result<i64, String> {
    if let Some(t) = parse_time_ms(s) {
        return Ok(t);
    }
    let ago = crate::parse_duration_ms(s).map_err(|_| {
        format!("{s:?}: give a time (2026-11-20T10:00:00Z) or a duration ago (24h)")
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Ok(now - ago)
}

#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// The store (default as for `hunt`).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// Only this rule (`IMDS-004`, a Sigma rule id).
    #[arg(long)]
    rule: Option<String>,
    /// Only this host.
    #[arg(long)]
    host: Option<String>,
    /// At or above this severity.
    #[arg(long)]
    min_severity: Option<Severity>,
    /// From this time on: RFC 3339, or a duration ago (`24h`).
    #[arg(long, value_parser = when)]
    since: Option<i64>,
    /// Before this time: RFC 3339, or a duration ago.
    #[arg(long, value_parser = when)]
    until: Option<i64>,
    /// Only the alerts of this incident.
    #[arg(long)]
    incident: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value = "50")]
    limit: usize,
    /// How to print them.
    #[arg(long, value_enum, default_value = "table")]
    output: ListOutput,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
}

/// How `alerts` and `incident` print what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListOutput {
    /// One line each, with a heading and the triage status.
    Table,
    /// The JSON `hunt` printed, one a line, exactly as stored.
    Jsonl,
    /// The same JSON, as one array.
    Json,
    /// Alerts only: `hunt --output csv`'s columns.
    Csv,
}

/// How `watch` prints alerts as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoredOutput {
    /// One line per alert.
    Table,
    /// The alerts' JSON, one per line, as the store keeps them.
    Jsonl,
}

pub fn alerts(a: AlertsArgs) -> Result<ExitCode> {
    let store = open_read(a.db)?;
    let found = store.alerts(&AlertFilter {
        rule: a.rule,
        host: a.host,
        min_severity: a.min_severity,
        since_ms: a.since,
        until_ms: a.until,
        incident: a.incident,
        limit: Some(a.limit),
    })?;
    let (mut out, _) = crate::out::destination(a.out.as_ref())?;
    match a.output {
        ListOutput::Table => {
            if !found.rows.is_empty() {
                writeln!(out, "{ALERT_HEADER}")?;
            }
            for v in &found.rows {
                let status = store.status(text(v, &["id"]))?;
                writeln!(out, "{}", alert_line(v, &status))?;
            }
            out.flush()?;
        }
        ListOutput::Jsonl | ListOutput::Json => {
            let mut items = JsonItems::new(out, a.output == ListOutput::Json);
            for v in &found.rows {
                items.item(v)?;
            }
            items.finish()?;
        }
        ListOutput::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(imdsguard_rules::Alert::CSV_HEADER)?;
            for v in &found.rows {
                w.write_record(imdsguard_rules::Alert::csv_record_json(v))?;
            }
            w.flush()?;
        }
    }
    let bad = say_unreadable(&found);
    eprintln!(
        "imdsguard: {} alerts from {}{}",
        found.rows.len(),
        store.path(),
        if bad > 0 {
            format!(" ({bad} rows left out: they do not read back)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or("-")
}

/// The heading of [`alert_line`]'s columns.
pub const ALERT_HEADER: &str = "SEVERITY ID                RULE       TIME                      STATUS        HOST                  PROCESS                                   TARGET";

/// One stored alert as a table line: severity, id, rule, time, triage status, host, process,
/// target.
pub fn alert_line(v: &Value, status: &str) -> String {
    let target = match (
        v["target"]["endpoint"].as_str(),
        v["target"]["path"].as_str(),
    ) {
        (Some(e), Some(p)) => format!("{e}{p}"),
        (Some(e), None) => e.to_owned(),
        _ => "-".into(),
    };
    format!(
        "{:<8} {}  {:<9}  {:<24}  {:<12}  {:<20}  {:<40}  {}",
        text(v, &["severity"]).to_uppercase(),
        text(v, &["id"]),
        text(v, &["rule_id"]),
        text(v, &["time"]),
        status,
        text(v, &["host"]),
        text(v, &["process", "image"]),
        target
    )
}

#[derive(Debug, clap::Args)]
pub struct IncidentArgs {
    /// The incident (`INC-…`); without one, the latest incidents are listed.
    id: Option<String>,
    /// The store (default as for `hunt`).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// When listing: at or above this severity.
    #[arg(long)]
    min_severity: Option<Severity>,
    /// When listing: at most this many.
    #[arg(long, default_value = "20")]
    limit: usize,
    /// How to print: `table` (text), `jsonl` (one incident a line; one incident with its alerts
    /// and actions), `json` (the same as one array when listing).
    #[arg(long, value_enum, default_value = "table")]
    output: ListOutput,
    /// The same as `--output jsonl`.
    #[arg(long, hide = true)]
    json: bool,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn incident(a: IncidentArgs) -> Result<ExitCode> {
    let output = match a.output {
        ListOutput::Table if a.json => ListOutput::Jsonl,
        ListOutput::Csv => anyhow::bail!(
            "incidents have no CSV form: use --output jsonl or json (`alerts --incident ID \
             --output csv` gives an incident's alerts as CSV)"
        ),
        o => o,
    };
    let json = output != ListOutput::Table;
    let store = open_read(a.db)?;
    let (mut out, _) = crate::out::destination(a.out.as_ref())?;
    let Some(id) = a.id else {
        let listed = store.incidents(a.min_severity, a.limit)?;
        if json {
            let mut items = JsonItems::new(out, output == ListOutput::Json);
            for i in &listed.rows {
                items.item(i)?;
            }
            items.finish()?;
        } else {
            if !listed.rows.is_empty() {
                writeln!(out, "{INCIDENT_HEADER}")?;
            }
            for i in &listed.rows {
                let status = store.status(text(i, &["incident_id"]))?;
                writeln!(out, "{}  {status}", incident_line(i))?;
            }
            out.flush()?;
        }
        say_unreadable(&listed);
        return Ok(ExitCode::SUCCESS);
    };
    let Some(inc) = store.incident(&id)? else {
        anyhow::bail!("no incident {id} in {}", store.path());
    };
    let alerts = store.alerts(&AlertFilter {
        incident: Some(id.clone()),
        ..AlertFilter::default()
    })?;
    say_unreadable(&alerts);
    let actions = store.actions(&id)?;
    if json {
        let mut v = inc.clone();
        v["alerts"] = Value::Array(alerts.rows);
        v["actions"] = actions_json(&actions);
        writeln!(out, "{v}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{}", incident_line(&inc))?;
    writeln!(out, "  {}", text(&inc, &["severity_reason"]))?;
    writeln!(out, "\ntimeline")?;
    for s in inc["timeline"].as_array().into_iter().flatten() {
        let stages: Vec<&str> = s["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        writeln!(
            out,
            "  {}  {:<8} {:<9} {}  [{}]  {}  ({})",
            text(s, &["time"]),
            text(s, &["severity"]).to_uppercase(),
            text(s, &["rule_id"]),
            text(s, &["alert_id"]),
            stages.join(", "),
            text(s, &["what"]),
            text(s, &["source"])
        )?;
    }
    if inc["triage"].is_object() {
        write_triage(&mut out, &inc["triage"])?;
    }
    write_actions(&mut out, &actions)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The heading of the incident list: [`incident_line`]'s columns, then the triage status.
const INCIDENT_HEADER: &str =
    "SEVERITY ID                HOST  FIRST → LAST  ALERTS  [STAGES]  STATUS";

fn incident_line(i: &Value) -> String {
    let stages: Vec<&str> = i["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "{:<8} {}  {}  {} → {}  {} alerts  [{}]",
        text(i, &["severity"]).to_uppercase(),
        text(i, &["incident_id"]),
        match text(i, &["host"]) {
            "" => "(no host)",
            h => h,
        },
        text(i, &["first"]),
        text(i, &["last"]),
        i["alerts"]
            .as_u64()
            .unwrap_or_else(|| i["timeline"].as_array().map_or(0, Vec::len) as u64),
        stages.join(" → ")
    )
}

fn write_triage(out: &mut dyn Write, t: &Value) -> io::Result<()> {
    writeln!(out, "\ntriage (the SOC playbook's questions)")?;
    for q in t["questions"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {:<8} {}\n           {}",
            text(q, &["answer"]).to_uppercase(),
            text(q, &["question"]),
            text(q, &["evidence"])
        )?;
    }
    writeln!(
        out,
        "\n  escalate: {}  {}",
        t["escalate"].as_bool().unwrap_or(false),
        text(t, &["escalate_reason"])
    )?;
    let steps = t["containment"].as_array().cloned().unwrap_or_default();
    if !steps.is_empty() {
        writeln!(out, "\ncontainment")?;
        for (n, c) in steps.iter().enumerate() {
            writeln!(
                out,
                "  {}. {}: {}",
                n + 1,
                text(c, &["action"]),
                text(c, &["why"])
            )?;
            if let Some(cmd) = c["command"].as_str() {
                writeln!(out, "     $ {cmd}")?;
            }
        }
    }
    Ok(())
}

fn actions_json(actions: &[imdsguard_store::Action]) -> Value {
    Value::Array(
        actions
            .iter()
            .map(|a| {
                serde_json::json!({
                    "status": a.status, "note": a.note, "who": a.who,
                    "at": format_time_ms(a.at_ms),
                })
            })
            .collect(),
    )
}

fn write_actions(out: &mut dyn Write, actions: &[imdsguard_store::Action]) -> io::Result<()> {
    if actions.is_empty() {
        return writeln!(out, "\nstatus: open (no analyst action yet)");
    }
    writeln!(out, "\nactions")?;
    for a in actions {
        writeln!(
            out,
            "  {}  {:<12} {}  {}",
            format_time_ms(a.at_ms),
            a.status,
            a.who,
            a.note.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct TriageArgs {
    /// An alert id (16 hex digits) or an incident id (`INC-…`).
    id: String,
    /// Set the status: acknowledged, escalated or closed.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(STATUSES))]
    status: Option<String>,
    /// What to keep with the action.
    #[arg(long, requires = "status")]
    note: Option<String>,
    /// Who acts (default: $USER).
    #[arg(long, requires = "status")]
    who: Option<String>,
    /// The store (default as for `hunt`).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
}

/// Who acts, when `--who` is not given: `$USER`, `$LOGNAME`, else the name `/etc/passwd` gives
/// this process's user id, else `uid N`.
fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Some(u) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
            return u;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // `/proc/self` belongs to the process's effective user.
        if let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) {
            let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
                t.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_owned())
                })
            });
            return name.unwrap_or_else(|| format!("uid {uid}"));
        }
    }
    "unknown".into()
}

pub fn triage(a: TriageArgs) -> Result<ExitCode> {
    let mut store = open(a.db)?;
    if let Some(status) = &a.status {
        let who = a.who.clone().unwrap_or_else(os_user);
        let act = store.act(&a.id, status, a.note.as_deref(), &who)?;
        // One line: what was recorded (`imdsguard triage ID` without --status shows it all).
        println!(
            "{}  {}  by {}  at {}{}",
            act.target,
            act.status,
            act.who,
            format_time_ms(act.at_ms),
            a.note
                .as_deref()
                .map(|n| format!("  {n}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let subject = match store.incident(&a.id)? {
        Some(i) => i,
        None => store
            .alert(&a.id)?
            .with_context(|| format!("no alert or incident {} in {}", a.id, store.path()))?,
    };
    let mut out = BufWriter::new(io::stdout().lock());
    if subject.get("incident_id").is_some() {
        writeln!(out, "{}", incident_line(&subject))?;
    } else {
        writeln!(out, "{}", alert_line(&subject, &store.status(&a.id)?))?;
        for r in subject["reasons"].as_array().into_iter().flatten() {
            writeln!(out, "  - {}", r.as_str().unwrap_or(""))?;
        }
    }
    if subject["triage"].is_object() {
        write_triage(&mut out, &subject["triage"])?;
    }
    write_actions(&mut out, &store.actions(&a.id)?)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
