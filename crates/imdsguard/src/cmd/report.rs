//! `imdsguard report` (one HTML page from the store) and what `hunt --html` adds to its page:
//! the run's facts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use imdsguard_event::Severity;
use imdsguard_pipeline::HuntReport;
use imdsguard_report::{Limits, Report};
use imdsguard_store::AlertFilter;

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The store (default as for `hunt`).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// Alerts from this time on, and incidents that lasted into it: RFC 3339, or a duration
    /// ago (`24h`).
    #[arg(long, value_parser = crate::cmd::store::when)]
    since: Option<i64>,
    /// Alerts and incidents at or above this severity.
    #[arg(long)]
    min_severity: Option<Severity>,
    /// The page to write.
    #[arg(short = 'o', long = "out", value_name = "FILE", required = true)]
    out: PathBuf,
    /// Incidents shown (the most severe, then the latest); the counts cover all.
    #[arg(long, default_value_t = 200)]
    incidents: usize,
    /// Alerts shown per rule; the counts cover all.
    #[arg(long, default_value_t = 10)]
    alerts_per_rule: usize,
}

/// Now, as RFC 3339 UTC to the second.
pub(crate) fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let t = imdsguard_event::format_time_ms(ms - ms % 1000);
    t.replace(".000Z", "Z")
}

/// What a hunt read and skipped, and how, as the page's facts.
pub(crate) fn run_facts(page: &mut Report, r: &HuntReport) {
    let s = &r.summary;
    page.fact("files read", &s.files.to_string());
    let events: u64 = s.events.values().sum();
    let formats: Vec<String> = s.events.iter().map(|(f, n)| format!("{f} {n}")).collect();
    page.fact("events", &format!("{events} ({})", formats.join(", ")));
    let skipped: u64 = s.skipped.values().sum();
    let reasons: Vec<String> = s
        .skipped
        .iter()
        .map(|(why, n)| format!("{} {n}", why.as_str()))
        .collect();
    page.fact(
        "records skipped",
        &if skipped == 0 {
            "0".to_owned()
        } else {
            format!("{skipped} ({})", reasons.join(", "))
        },
    );
    for k in s.first_skips.iter().take(5) {
        page.fact("skipped", &k.to_string());
    }
    for e in &s.input_errors {
        page.fact("not read", e);
    }
    for u in &s.unrecognized_files {
        page.fact("no supported format", u);
    }
    let local: u64 = s.local_times.values().sum();
    if local > 0 {
        page.fact(
            "local times",
            &format!("{local} records write local time without a zone: read as UTC"),
        );
    }
    if let (Some(first), Some(last)) = (s.first_ms, s.last_ms) {
        page.fact(
            "events from",
            &format!(
                "{} to {}",
                imdsguard_event::format_time_ms(first),
                imdsguard_event::format_time_ms(last)
            ),
        );
    }
    page.fact(
        "rules",
        &format!(
            "{} Sigma rules, {} Sigma correlations{}",
            r.rules.sigma_rules,
            r.rules.correlations,
            if r.rules.errors.is_empty() {
                String::new()
            } else {
                format!(", {} rule files not loaded", r.rules.errors.len())
            }
        ),
    );
    page.fact(
        "alerts raised",
        &format!(
            "{}{}",
            r.raised,
            if r.hidden > 0 {
                format!(" ({} below the minimum severity not shown)", r.hidden)
            } else {
                String::new()
            }
        ),
    );
    if r.untimed > 0 {
        page.fact(
            "not correlated",
            &format!("{} events whose time could not be read", r.untimed),
        );
    }
    page.fact("took", &format!("{:.2} s", r.elapsed.as_secs_f64()));
}

pub(crate) fn report(a: ReportArgs) -> Result<ExitCode> {
    let path = crate::cmd::store::db_path(a.db)?;
    let store = imdsguard_store::Store::open_read(&path)?;
    let mut page = Report::new(
        "imdsguard report",
        &format!("the store at {}", imdsguard_store::shown(&path)),
        Limits {
            alerts_per_rule: a.alerts_per_rule,
            incidents: a.incidents,
            ..Limits::default()
        },
    );
    // One alert at a time, in time order: a store of millions of alerts makes a page without
    // holding them.
    let mut unreadable = 0usize;
    store.each_alert(
        &AlertFilter {
            min_severity: a.min_severity,
            since_ms: a.since,
            ..AlertFilter::default()
        },
        true,
        &mut |row| match row {
            Ok(v) => page.alert(&v),
            Err(e) => {
                unreadable += 1;
                eprintln!("imdsguard: {e}: left out");
            }
        },
    )?;
    let mut shown = 0u64;
    store.each_incident(a.min_severity, a.since, &mut |row| match row {
        Ok(v) => {
            shown += 1;
            page.incident(&v);
        }
        Err(e) => {
            unreadable += 1;
            eprintln!("imdsguard: {e}: left out");
        }
    })?;
    page.fact("store", &imdsguard_store::shown(&path));
    if let Some(since) = a.since {
        page.fact("since", &imdsguard_event::format_time_ms(since));
    }
    if let Some(m) = a.min_severity {
        page.fact("minimum severity", m.as_str());
    }
    if unreadable > 0 {
        page.fact(
            "left out",
            &format!("{unreadable} stored rows that do not read back"),
        );
    }
    std::fs::write(&a.out, page.html(&now()))
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!(
        "imdsguard: {} ({} alerts, {shown} incidents from {})",
        a.out.display(),
        page.alert_count(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The store (default as for `hunt`); `watch` may write to it meanwhile.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// Where to listen: loopback by default; another address needs the access token.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8765")]
    listen: std::net::SocketAddr,
    /// No access token (loopback addresses only): anyone on this machine can read and act.
    #[arg(long)]
    no_auth: bool,
}

#[cfg(feature = "console")]
pub(crate) fn serve(a: ServeArgs) -> Result<ExitCode> {
    let db = crate::cmd::store::db_path(a.db)?;
    let token = if a.no_auth {
        None
    } else {
        Some(imdsguard_console::random_token()?)
    };
    let config = imdsguard_console::Config {
        listen: a.listen,
        db: db.clone(),
        token: token.clone(),
    };
    imdsguard_console::serve(config, |addr| {
        let url = match &token {
            Some(t) => format!("http://{addr}/?token={t}"),
            None => format!("http://{addr}/"),
        };
        eprintln!(
            "imdsguard serve: console on {url} (store {}; {})",
            imdsguard_store::shown(&db),
            if token.is_some() {
                "the address carries the access token: keep it to yourself"
            } else {
                "no access token: anyone on this machine can read and act"
            }
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "console"))]
pub(crate) fn serve(_: ServeArgs) -> Result<ExitCode> {
    anyhow::bail!("this imdsguard was built without the `console` feature, which `serve` needs")
}
