//! The console's pages: every value from the store escaped, forms that carry the CSRF token.

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use imdsguard_report::{esc, rank, AlertView, IncidentView, SEVERITIES};
use imdsguard_store::{AlertFilter, Store, StoreError, OPEN, STATUSES};

use crate::{respond, State};

type Page = Result<Response<Full<Bytes>>, StoreError>;

pub(crate) const STYLE: &str = r#"
:root { --fg:#1b1f24; --muted:#5b6470; --line:#d8dde3; --panel:#f5f7f9; --critical:#a4161a; --high:#d9480f; --medium:#e8a200; --low:#3b7dd8; --info:#6c757d; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); margin: 0 auto; max-width: 1200px; padding: 0 1rem 3rem; }
nav { display: flex; gap: 1rem; align-items: baseline; border-bottom: 3px solid var(--fg); padding: .8rem 0 .4rem; }
nav b { font-size: 1.2rem; } nav a { color: var(--fg); }
h1 { font-size: 1.35rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .45rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
td, th, p, li, div, summary { overflow-wrap: anywhere; }
pre { background: var(--panel); padding: .5rem; white-space: pre-wrap; word-break: break-all; font-size: .85rem; }
.mono { font-family: ui-monospace, monospace; font-size: .86rem; } .muted { color: var(--muted); } .wrap { word-break: break-all; }
.sev { display: inline-block; min-width: 4.6rem; text-align: center; border-radius: 3px; color: #fff; font-size: .78rem; font-weight: 600; padding: 0 .3rem; text-transform: uppercase; background: var(--info); }
.sev.critical { background: var(--critical); } .sev.high { background: var(--high); } .sev.medium { background: var(--medium); color: #1b1f24; } .sev.low { background: var(--low); }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; background: var(--panel); padding: .6rem; margin: .8rem 0; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
form.act { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; background: var(--panel); padding: .6rem; }
input, select, button { font: inherit; padding: .2rem .4rem; max-width: 100%; }
#live, .refused { background: #fff3bf; padding: .4rem .6rem; margin: .5rem 0; }
.answer-yes { color: var(--critical); font-weight: 600; } .answer-no { color: #2b8a3e; font-weight: 600; } .answer-unknown { color: var(--muted); font-weight: 600; }
.status { font-weight: 600; }
@media (max-width: 640px) { table, tbody, tr, td, th, thead { display: block; } thead { display: none; } tr { border-bottom: 1px solid var(--line); } td { border: none; } }
"#;

/// Live updates: the count of stored alerts, asked every two seconds; when it grows, a notice
/// with a link to reload. Text only (`textContent`), nothing from the store as markup.
pub(crate) const SCRIPT: &str = r#""use strict";
(function () {
  var live = document.getElementById("live");
  if (!live) { return; }
  var count = Number(live.getAttribute("data-count") || "0");
  function check() {
    fetch("/api/latest", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.alerts > count) {
          live.textContent = (j.alerts - count) + " new alert(s) in the store since this page was loaded: ";
          var a = document.createElement("a");
          a.href = location.pathname + location.search;
          a.id = "live-reload";
          a.textContent = "reload";
          live.appendChild(a);
          live.hidden = false;
        }
      })
      .catch(function () {});
  }
  setInterval(check, 2000);
})();
"#;

/// An id as a URL path segment.
pub(crate) fn path_part(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn badge(severity: &str) -> String {
    let class = match rank(severity) {
        r if r < SEVERITIES.len() => SEVERITIES[r],
        _ => "other",
    };
    format!("<span class=\"sev {class}\">{}</span>", esc(severity))
}

/// A whole page. `live`: the alert count the page was made with (live updates watch it).
pub(crate) fn page(title: &str, body: &str, live: Option<u64>) -> String {
    let live = live.map_or(String::new(), |n| {
        format!("<div id=\"live\" data-count=\"{n}\" hidden></div>")
    });
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · imdsguard</title><link rel=\"stylesheet\" href=\"/style.css\"><script src=\"/app.js\" defer></script></head><body><nav><b>imdsguard</b><a href=\"/\" id=\"nav-alerts\">Alerts</a><a href=\"/incidents\" id=\"nav-incidents\">Incidents</a></nav>{live}<h1>{}</h1>{body}</body></html>",
        esc(title),
        esc(title)
    )
}

fn html(body: String) -> Page {
    Ok(respond(StatusCode::OK, "text/html; charset=utf-8", body))
}

/// Alerts a page of the queue shows.
const PAGE: usize = 200;
/// The most alerts a queue page reads to filter by status and text.
const SEARCHED: usize = 20_000;

/// The alert queue: filters from the query string, newest first, a page at a time.
pub(crate) fn queue(state: &State, q: &[(String, String)]) -> Page {
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let store = Store::open_read(&state.db)?;
    // A value that does not read is said on the page, not silently dropped.
    let mut refused = Vec::new();
    let min_severity = get("severity").and_then(|s| {
        let v = s.parse().ok();
        if v.is_none() {
            refused.push(format!("level {s:?} is none of {}", SEVERITIES.join(", ")));
        }
        v
    });
    let since_ms = get("since").and_then(|s| {
        let v = imdsguard_event::parse_time_ms(&s);
        if v.is_none() {
            refused.push(format!("since {s:?} is not a time (2026-11-20T00:00:00Z)"));
        }
        v
    });
    let status = get("status");
    let text = get("q").map(|t| t.to_lowercase());
    let listed = store.alerts(&AlertFilter {
        rule: get("rule"),
        host: get("host"),
        min_severity,
        since_ms,
        limit: Some(SEARCHED),
        ..AlertFilter::default()
    })?;
    let capped = listed.rows.len() == SEARCHED;
    let mut rows = Vec::new();
    for v in &listed.rows {
        if let Some(t) = &text {
            if !v.to_string().to_lowercase().contains(t.as_str()) {
                continue;
            }
        }
        let id = v["id"].as_str().unwrap_or_default();
        let st = store.status(id)?;
        if status.as_deref().is_some_and(|s| s != st) {
            continue;
        }
        rows.push((v, st));
    }
    let total = store.alert_count()?;
    let mut b = String::new();
    b.push_str("<form class=\"filters\" method=\"get\" action=\"/\" id=\"filters\">");
    let _ = write!(
        b,
        "<label>level<select name=\"severity\" id=\"filter-severity\"><option value=\"\">any</option>{}</select></label>",
        SEVERITIES
            .iter()
            .map(|s| format!(
                "<option value=\"{s}\"{}>{s} and above</option>",
                if get("severity").as_deref() == Some(*s) { " selected" } else { "" }
            ))
            .collect::<String>()
    );
    let input = |name: &str, label: &str, hint: &str| {
        format!(
            "<label>{label}<input name=\"{name}\" id=\"filter-{name}\" value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(&get(name).unwrap_or_default())
        )
    };
    b.push_str(&input("rule", "rule", "IMDS-004"));
    b.push_str(&input("host", "host", "web01"));
    let _ = write!(
        b,
        "<label>status<select name=\"status\" id=\"filter-status\"><option value=\"\">any</option>{}</select></label>",
        std::iter::once(OPEN)
            .chain(STATUSES)
            .map(|s| format!(
                "<option value=\"{s}\"{}>{s}</option>",
                if status.as_deref() == Some(s) { " selected" } else { "" }
            ))
            .collect::<String>()
    );
    b.push_str(&input("since", "since", "2026-11-20T00:00:00Z"));
    b.push_str(&input("q", "text", "curl, 169.254…"));
    b.push_str(
        "<button type=\"submit\" id=\"filter-apply\">Filter</button><a href=\"/\">clear</a></form>",
    );
    for r in &refused {
        let _ = write!(b, "<p class=\"refused\">Not applied: {}.</p>", esc(r));
    }
    let pages = rows.len().div_ceil(PAGE).max(1);
    let page_no = get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let _ = write!(
        b,
        "<p class=\"muted\" id=\"matching\">{} matching of {} stored{}.</p>",
        rows.len(),
        total,
        if rows.len() > PAGE {
            format!("; page {page_no} of {pages}, {} a page, newest first", PAGE)
        } else {
            String::new()
        }
    );
    if capped {
        let _ = write!(
            b,
            "<p class=\"muted\" id=\"capped\">The newest {SEARCHED} alerts that pass the level, rule, host and time filters were searched; set a time to reach older ones.</p>"
        );
    }
    // Links to the pages around this one, keeping every filter.
    let link = |n: usize| {
        let mut q: Vec<(String, String)> = q.iter().filter(|(k, _)| k != "page").cloned().collect();
        q.push(("page".into(), n.to_string()));
        let qs: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        format!("/?{qs}")
    };
    let mut nav = String::new();
    if page_no > 1 {
        let _ = write!(
            nav,
            "<a id=\"page-newer\" href=\"{}\">newer</a> ",
            esc(&link(page_no - 1))
        );
    }
    if page_no < pages {
        let _ = write!(
            nav,
            "<a id=\"page-older\" href=\"{}\">older</a>",
            esc(&link(page_no + 1))
        );
    }
    if !nav.is_empty() {
        let _ = write!(b, "<p class=\"pages\">{nav}</p>");
    }
    b.push_str("<table id=\"queue\"><thead><tr><th>time</th><th>level</th><th>rule</th><th>host</th><th>what</th><th>status</th></tr></thead><tbody>");
    for (v, st) in rows.iter().skip((page_no - 1) * PAGE).take(PAGE) {
        let a: AlertView = serde_json::from_value((*v).clone()).unwrap_or_default();
        let _ = write!(
            b,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td><a class=\"alert-link\" href=\"/alert/{}\">{}</a> <span class=\"muted mono\">{}</span></td><td>{}</td><td class=\"wrap\">{}</td><td class=\"status\">{}</td></tr>",
            esc(a.time.as_deref().unwrap_or("")),
            badge(&a.severity),
            path_part(&a.id),
            esc(&a.title),
            esc(&a.rule_id),
            esc(a.host.as_deref().unwrap_or("")),
            esc(&a.what()),
            esc(st)
        );
    }
    b.push_str("</tbody></table>");
    html(page("Alerts", &b, Some(total)))
}

/// The incidents, newest first.
pub(crate) fn incidents(state: &State) -> Page {
    let store = Store::open_read(&state.db)?;
    let listed = store.incidents(None, 500)?;
    let mut b = String::from("<table id=\"incidents\"><thead><tr><th>level</th><th>incident</th><th>host</th><th>from</th><th>to</th><th>alerts</th><th>status</th></tr></thead><tbody>");
    for v in &listed.rows {
        let i: IncidentView = serde_json::from_value(v.clone()).unwrap_or_default();
        let st = store.status(&i.incident_id)?;
        let _ = write!(
            b,
            "<tr><td>{}</td><td><a class=\"incident-link\" href=\"/incident/{}\">{}</a></td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"status\">{}</td></tr>",
            badge(&i.severity),
            path_part(&i.incident_id),
            esc(&i.incident_id),
            esc(i.host.as_deref().unwrap_or("(no host)")),
            esc(i.first.as_deref().unwrap_or("")),
            esc(i.last.as_deref().unwrap_or("")),
            i.alerts,
            esc(&st)
        );
    }
    b.push_str("</tbody></table>");
    let total = store.alert_count()?;
    html(page("Incidents", &b, Some(total)))
}

fn not_found(what: &str) -> Page {
    Ok(respond(
        StatusCode::NOT_FOUND,
        "text/html; charset=utf-8",
        page(
            "Not found",
            &format!("<p>{} is not in the store.</p>", esc(what)),
            None,
        ),
    ))
}

/// The triage form and the actions so far.
fn actions(b: &mut String, store: &Store, state: &State, target: &str) -> Result<(), StoreError> {
    let _ = write!(
        b,
        "<h2>Triage</h2><p>Status: <span class=\"status\" id=\"status\">{}</span></p>",
        esc(&store.status(target)?)
    );
    let done = store.actions(target)?;
    if !done.is_empty() {
        b.push_str("<table id=\"actions\"><thead><tr><th>when</th><th>who</th><th>status</th><th>note</th></tr></thead><tbody>");
        for a in &done {
            let _ = write!(
                b,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&imdsguard_event::format_time_ms(a.at_ms)),
                esc(&a.who),
                esc(&a.status),
                esc(a.note.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</tbody></table>");
    }
    let _ = write!(
        b,
        "<form class=\"act\" method=\"post\" action=\"/act\" id=\"act\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"target\" value=\"{}\"><select name=\"status\" id=\"act-status\">{}</select><input name=\"who\" id=\"act-who\" placeholder=\"who\" required><input name=\"note\" id=\"act-note\" placeholder=\"note\" size=\"40\"><button type=\"submit\" id=\"act-submit\">Record</button></form>",
        esc(&state.csrf),
        esc(target),
        STATUSES
            .iter()
            .map(|s| format!("<option value=\"{s}\">{s}</option>"))
            .collect::<String>()
    );
    Ok(())
}

/// The line a record is on, when its file is here and readable (at most 16 KiB of it).
fn raw_line(path: &str, line: u64) -> Option<String> {
    use std::io::BufRead;
    if line == 0 || path.contains('!') || path.ends_with(".gz") {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    let text = std::io::BufReader::new(f)
        .split(b'\n')
        .nth(usize::try_from(line - 1).ok()?)?
        .ok()?;
    let cut = &text[..text.len().min(16 * 1024)];
    Some(String::from_utf8_lossy(cut).trim_end().to_owned())
}

/// An alert's evidence: what it says, its stored JSON, the record's line when readable.
fn evidence(b: &mut String, v: &serde_json::Value) {
    let a: AlertView = serde_json::from_value(v.clone()).unwrap_or_default();
    let _ = write!(
        b,
        "<p>{} <b>{}</b> <span class=\"muted mono\">{}</span> · {} · {}</p><p class=\"wrap\">{}</p>",
        badge(&a.severity),
        esc(&a.title),
        esc(&a.rule_id),
        esc(a.host.as_deref().unwrap_or("(no host)")),
        esc(a.time.as_deref().unwrap_or("")),
        esc(&a.what())
    );
    if !a.reasons.is_empty() {
        b.push_str("<ul>");
        for r in &a.reasons {
            let _ = write!(b, "<li>{}</li>", esc(r));
        }
        b.push_str("</ul>");
    }
    let _ = write!(
        b,
        "<p class=\"mono wrap\">record {}</p>",
        esc(&a.source.cite())
    );
    if let Some(line) = a.source.line.and_then(|l| raw_line(&a.source.path, l)) {
        let _ = write!(b, "<pre class=\"raw\">{}</pre>", esc(&line));
    }
    let _ = write!(
        b,
        "<details><summary>stored alert</summary><pre>{}</pre></details>",
        esc(&serde_json::to_string_pretty(v).unwrap_or_default())
    );
}

pub(crate) fn alert(state: &State, id: &str) -> Page {
    let store = Store::open_read(&state.db)?;
    let Some(v) = store.alert(id)? else {
        return not_found(id);
    };
    let mut b = String::new();
    evidence(&mut b, &v);
    actions(&mut b, &store, state, id)?;
    let total = store.alert_count()?;
    html(page(&format!("Alert {id}"), &b, Some(total)))
}

pub(crate) fn incident(state: &State, id: &str) -> Page {
    let store = Store::open_read(&state.db)?;
    let Some(v) = store.incident(id)? else {
        return not_found(id);
    };
    let i: IncidentView = serde_json::from_value(v.clone()).unwrap_or_default();
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>{} {} · {} alerts · {} → {}</p><p>{}</p>",
        badge(&i.severity),
        esc(i.host.as_deref().unwrap_or("(no host)")),
        i.alerts,
        esc(i.first.as_deref().unwrap_or("")),
        esc(i.last.as_deref().unwrap_or("")),
        esc(&i.stages.join(" → "))
    );
    b.push_str("<h2>Timeline</h2><ol id=\"timeline\">");
    for step in &i.timeline {
        let _ = write!(
            b,
            "<li><span class=\"mono\">{}</span> ",
            esc(step.time.as_deref().unwrap_or(""))
        );
        match store.alert(&step.alert_id)? {
            Some(a) => evidence(&mut b, &a),
            None => {
                let _ = write!(
                    b,
                    "{} {} <span class=\"muted\">(alert {} not in the store)</span>",
                    badge(&step.severity),
                    esc(&step.title),
                    esc(&step.alert_id)
                );
            }
        }
        let _ = write!(
            b,
            "<a href=\"/alert/{}\">alert {}</a></li>",
            path_part(&step.alert_id),
            esc(&step.alert_id)
        );
    }
    b.push_str("</ol>");
    if let Some(t) = &i.triage {
        b.push_str(&imdsguard_report::triage(t, "h2"));
    }
    actions(&mut b, &store, state, id)?;
    let total = store.alert_count()?;
    html(page(&format!("Incident {id}"), &b, Some(total)))
}

/// The count of stored alerts, for live updates.
pub(crate) fn latest(state: &State) -> Page {
    let store = Store::open_read(&state.db)?;
    let body = serde_json::json!({ "alerts": store.alert_count()? }).to_string();
    Ok(respond(StatusCode::OK, "application/json", body))
}
