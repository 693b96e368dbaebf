//! The page: HTML and inline SVG, every text escaped, no script.

use std::fmt::Write as _;

use crate::view::{rank, AlertView, IncidentView, SEVERITIES};
use crate::Report;

/// Text as HTML text or attribute value: the five characters that could open markup or end an
/// attribute, escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour class of a severity.
fn sev_class(severity: &str) -> &'static str {
    match rank(severity) {
        0 => "critical",
        1 => "high",
        2 => "medium",
        3 => "low",
        4 => "info",
        _ => "other",
    }
}

/// A number with thousands separated.
fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const STYLE: &str = r#"
:root { --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --bg: #ffffff; --panel: #f5f7f9;
  --critical: #a4161a; --high: #d9480f; --medium: #e8a200; --low: #3b7dd8; --info: #6c757d; --other: #8d99ae; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; padding: 0 1rem 3rem; max-width: 1100px; margin-inline: auto; }
header { border-bottom: 3px solid var(--fg); padding: 1rem 0 .5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
.muted, .note { color: var(--muted); }
.note { font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: .25rem 0 1rem; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td, th, p, li, summary, div { overflow-wrap: anywhere; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .86rem; }
pre { background: var(--panel); padding: .5rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; margin: .25rem 0; }
.wrap { word-break: break-all; }
.sev { display: inline-block; min-width: 4.6rem; text-align: center; border-radius: 3px; color: #fff;
  font-size: .78rem; font-weight: 600; padding: .05rem .35rem; text-transform: uppercase; }
.sev.critical { background: var(--critical); } .sev.high { background: var(--high); }
.sev.medium { background: var(--medium); color: #1b1f24; } .sev.low { background: var(--low); }
.sev.info { background: var(--info); } .sev.other { background: var(--other); }
.tiles { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; }
.tile { background: var(--panel); border-left: 4px solid var(--other); padding: .4rem .7rem; min-width: 8rem; }
.tile b { display: block; font-size: 1.3rem; }
.tile.critical { border-color: var(--critical); } .tile.high { border-color: var(--high); }
.tile.medium { border-color: var(--medium); } .tile.low { border-color: var(--low); } .tile.info { border-color: var(--info); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .25rem; }
svg text { font: 13px system-ui, sans-serif; fill: var(--fg); }
svg .critical { fill: var(--critical); } svg .high { fill: var(--high); } svg .medium { fill: var(--medium); }
svg .low { fill: var(--low); } svg .info { fill: var(--info); } svg .other { fill: var(--other); }
details.incident { border: 1px solid var(--line); border-left: 5px solid var(--other); margin: .5rem 0; padding: .4rem .7rem; }
details.incident.critical { border-left-color: var(--critical); } details.incident.high { border-left-color: var(--high); }
details.incident.medium { border-left-color: var(--medium); } details.incident.low { border-left-color: var(--low); }
summary { cursor: pointer; font-weight: 600; }
ol.timeline { list-style: none; padding-left: 0; margin: .5rem 0; border-left: 2px solid var(--line); }
ol.timeline li { position: relative; padding: .2rem 0 .5rem 1rem; }
ol.timeline li::before { content: ""; position: absolute; left: -7px; top: .55rem; width: 12px; height: 12px;
  border-radius: 50%; background: var(--other); }
ol.timeline li.critical::before { background: var(--critical); } ol.timeline li.high::before { background: var(--high); }
ol.timeline li.medium::before { background: var(--medium); } ol.timeline li.low::before { background: var(--low); }
.stage { display: inline-block; border: 1px solid var(--line); border-radius: 10px; padding: 0 .45rem; margin: 0 .2rem .2rem 0; font-size: .8rem; }
.answer-yes { color: var(--critical); font-weight: 600; } .answer-no { color: #2b8a3e; font-weight: 600; }
.answer-unknown { color: var(--muted); font-weight: 600; }
@media (max-width: 640px) {
  body { font-size: 14px; padding: 0 .5rem 2rem; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { display: none; }
  td { border: none; padding: .1rem 0; }
  tr { border-bottom: 1px solid var(--line); padding: .3rem 0; }
  td.num { text-align: left; }
}
@media print {
  body { max-width: none; font-size: 11pt; }
  details.incident { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// A horizontal bar chart of `(label, count, class)`.
fn bars(caption: &str, rows: &[(String, u64, &str)]) -> String {
    let mut s = String::new();
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let row_h = 22;
    let h = rows.len().max(1) * row_h + 4;
    let _ = write!(
        s,
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 400 {h}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">",
        esc(caption),
        esc(caption)
    );
    if rows.is_empty() {
        let _ = write!(s, "<text x=\"0\" y=\"16\">none</text>");
    }
    for (i, (label, count, class)) in rows.iter().enumerate() {
        let y = i * row_h;
        let w = (*count as f64 / max as f64 * 150.0).max(2.0);
        let short: String = if label.chars().count() > 27 {
            let mut t: String = label.chars().take(26).collect();
            t.push('…');
            t
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            "<g><title>{} — {}</title><text x=\"0\" y=\"{}\">{}</text><rect class=\"{class}\" x=\"200\" y=\"{}\" width=\"{w:.1}\" height=\"16\"/><text x=\"{:.1}\" y=\"{}\">{}</text></g>",
            esc(label),
            n(*count),
            y + 15,
            esc(&short),
            y + 3,
            206.0 + w,
            y + 15,
            n(*count)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// Alerts by day (or by month when there are many days), in time order.
fn days_chart(days: &std::collections::BTreeMap<String, u64>) -> String {
    let by_month = days.len() > 120;
    let mut cols: Vec<(String, u64)> = Vec::new();
    for (d, c) in days {
        let key = if by_month {
            d.get(..7).unwrap_or(d).to_owned()
        } else {
            d.clone()
        };
        match cols.last_mut() {
            Some((k, v)) if *k == key => *v += c,
            _ => cols.push((key, *c)),
        }
    }
    let caption = if by_month {
        "Alerts by month"
    } else {
        "Alerts by day"
    };
    let mut s = String::new();
    let max = cols.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let bw = (370.0 / cols.len().max(1) as f64).clamp(2.0, 40.0);
    let _ = write!(
        s,
        "<figure><figcaption>{caption}</figcaption><svg role=\"img\" aria-label=\"{caption}\" viewBox=\"0 0 400 170\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">"
    );
    if cols.is_empty() {
        s.push_str("<text x=\"0\" y=\"16\">no alert has a time</text>");
    }
    for (i, (label, count)) in cols.iter().enumerate() {
        let h = (*count as f64 / max as f64 * 130.0).max(2.0);
        let x = 20.0 + i as f64 * bw;
        let _ = write!(
            s,
            "<g><title>{} — {}</title><rect class=\"low\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/></g>",
            esc(label),
            n(*count),
            140.0 - h,
            (bw - 1.0).max(1.0)
        );
    }
    if let (Some(first), Some(last)) = (cols.first(), cols.last()) {
        let _ = write!(
            s,
            "<text x=\"20\" y=\"160\">{}</text><text x=\"{:.1}\" y=\"160\" text-anchor=\"end\">{}</text><text x=\"0\" y=\"12\">{}</text>",
            esc(&first.0),
            (20.0 + cols.len() as f64 * bw).max(120.0),
            esc(&last.0),
            n(max)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// The `count` largest entries of a map, largest first, then by name.
fn top<K: Clone + Ord>(m: &std::collections::BTreeMap<K, u64>, count: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(count);
    v
}

fn sev_badge(severity: &str) -> String {
    format!(
        "<span class=\"sev {}\">{}</span>",
        sev_class(severity),
        esc(severity)
    )
}

pub(crate) fn render(r: &Report, generated: &str) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&r.title)
    );
    let _ = write!(
        s,
        "<header><h1>{}</h1><div class=\"muted\">{} · generated {}</div></header>",
        esc(&r.title),
        esc(&r.source),
        esc(generated)
    );
    // At a glance.
    s.push_str("<section id=\"summary\"><h2>At a glance</h2><div class=\"tiles\">");
    let _ = write!(
        s,
        "<div class=\"tile\"><b>{}</b>alerts</div><div class=\"tile\"><b>{}</b>incidents</div>",
        n(r.alerts),
        n(r.incident_count)
    );
    for (i, sev) in SEVERITIES.iter().enumerate() {
        if r.by_severity[i] > 0 {
            let _ = write!(
                s,
                "<div class=\"tile {sev}\"><b>{}</b>{sev}</div>",
                n(r.by_severity[i])
            );
        }
    }
    s.push_str("</div>");
    let escalate = r
        .incidents
        .iter()
        .filter(|i| i.triage.as_ref().is_some_and(|t| t.escalate))
        .count();
    if r.incident_count > 0 {
        let _ = write!(
            s,
            "<p>{} of the {} incidents shown are to be escalated to T2 by the playbook's rule.</p>",
            n(escalate as u64),
            n(r.incidents.len() as u64)
        );
    }
    s.push_str("</section>");
    // The run.
    s.push_str("<section id=\"run\"><h2>The run</h2>");
    if r.run.is_empty() && r.unreadable.is_empty() {
        s.push_str("<p class=\"muted\">No facts of the run were recorded.</p>");
    } else {
        s.push_str("<table><tbody>");
        for (k, v) in &r.run {
            let _ = write!(
                s,
                "<tr><th>{}</th><td class=\"wrap\">{}</td></tr>",
                esc(k),
                esc(v)
            );
        }
        if !r.unreadable.is_empty() {
            let _ = write!(
                s,
                "<tr><th>not shown</th><td>{} records that do not read as alerts or incidents: {}</td></tr>",
                n(r.unreadable.len() as u64),
                esc(&r.unreadable.iter().take(5).cloned().collect::<Vec<_>>().join("; "))
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");
    // Charts.
    s.push_str("<section id=\"detections\"><h2>Detections</h2><div class=\"charts\">");
    let sev_rows: Vec<(String, u64, &str)> = SEVERITIES
        .iter()
        .enumerate()
        .map(|(i, sev)| ((*sev).to_owned(), r.by_severity[i], sev_class(sev)))
        .collect();
    s.push_str(&bars("Alerts by severity", &sev_rows));
    let mut rules: Vec<(&String, &crate::RuleEntry, u64, usize)> = r
        .rules
        .iter()
        .map(|(id, e)| {
            let total = e.by_severity.iter().sum::<u64>();
            let worst = e.by_severity.iter().position(|c| *c > 0).unwrap_or(5);
            (id, e, total, worst)
        })
        .collect();
    rules.sort_by(|a, b| a.3.cmp(&b.3).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    let rule_rows: Vec<(String, u64, &str)> = {
        let mut v: Vec<_> = rules
            .iter()
            .map(|(id, e, total, worst)| {
                let class = SEVERITIES.get(*worst).map_or("other", |s| sev_class(s));
                (format!("{} ({id})", e.title), *total, class)
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(r.limits.bars);
        v
    };
    s.push_str(&bars("Alerts by rule", &rule_rows));
    let host_rows: Vec<(String, u64, &str)> = top(&r.hosts, r.limits.bars)
        .into_iter()
        .map(|(h, c)| (h, c, "low"))
        .collect();
    s.push_str(&bars("Alerts by host", &host_rows));
    s.push_str(&days_chart(&r.days));
    s.push_str("</div>");
    if r.rules.len() > r.limits.bars || r.hosts.len() > r.limits.bars {
        let _ = write!(
            s,
            "<p class=\"note\">The charts show the {} largest; the tables below list every rule.</p>",
            r.limits.bars
        );
    }
    s.push_str("</section>");
    // Incidents.
    s.push_str("<section id=\"incidents\"><h2>Incidents</h2>");
    if r.incidents.is_empty() {
        s.push_str("<p class=\"muted\">None.</p>");
    } else if r.incident_count > r.incidents.len() as u64 {
        let _ = write!(
            s,
            "<p class=\"note\">The {} most severe (then latest) of {} incidents; the store and <code>imdsguard incident ID</code> hold every one.</p>",
            n(r.incidents.len() as u64),
            n(r.incident_count)
        );
    }
    for (i, inc) in r.incidents.iter().enumerate() {
        incident(&mut s, r, inc, i < 3);
    }
    s.push_str("</section>");
    // Targets and who asked.
    s.push_str("<section id=\"targets\"><h2>Metadata targets</h2>");
    if r.targets.is_empty() {
        s.push_str("<p class=\"muted\">No alert named a metadata target.</p>");
    } else {
        s.push_str("<table><thead><tr><th>provider</th><th>what the path hands out</th><th>endpoint</th><th class=\"num\">alerts</th></tr></thead><tbody>");
        for ((p, k, e), c) in top(&r.targets, usize::MAX) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"mono wrap\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&p),
                esc(&k),
                esc(&e),
                n(c)
            );
        }
        s.push_str("</tbody></table>");
        if !r.encodings.is_empty() {
            s.push_str("<p>Address encodings that hide the target: ");
            let parts: Vec<String> = top(&r.encodings, usize::MAX)
                .into_iter()
                .map(|(e, c)| format!("<b>{}</b> {}", esc(&e), n(c)))
                .collect();
            s.push_str(&parts.join(", "));
            s.push_str("</p>");
        }
    }
    s.push_str("</section><section id=\"who\"><h2>Who asked</h2><div class=\"charts\">");
    let procs: Vec<(String, u64, &str)> = top(&r.processes, r.limits.bars)
        .into_iter()
        .map(|(p, c)| (p, c, "high"))
        .collect();
    s.push_str(&bars("Processes", &procs));
    let clients: Vec<(String, u64, &str)> = top(&r.clients, r.limits.bars)
        .into_iter()
        .map(|(p, c)| (p, c, "medium"))
        .collect();
    s.push_str(&bars("Clients (web, proxy and cloud logs)", &clients));
    s.push_str("</div></section>");
    // Alerts by rule.
    s.push_str("<section id=\"alerts\"><h2>Alerts by rule</h2>");
    if rules.is_empty() {
        s.push_str("<p class=\"muted\">None.</p>");
    }
    for (id, e, total, worst) in &rules {
        let sev = SEVERITIES.get(*worst).copied().unwrap_or("other");
        let _ = write!(
            s,
            "<details class=\"rule\"><summary>{} {} <span class=\"muted mono\">{}</span> — {} alerts</summary>",
            sev_badge(sev),
            esc(&e.title),
            esc(id),
            n(*total)
        );
        s.push_str("<table><thead><tr><th>time</th><th>host</th><th>severity</th><th>what</th><th>record</th></tr></thead><tbody>");
        for a in &e.shown {
            alert_row(&mut s, a);
        }
        s.push_str("</tbody></table>");
        if *total > e.shown.len() as u64 {
            let _ = write!(
                s,
                "<p class=\"note\">The first {} of {}.</p>",
                n(e.shown.len() as u64),
                n(*total)
            );
        }
        s.push_str("</details>");
    }
    s.push_str("</section><footer class=\"note\"><p>Made by imdsguard. The page fetches nothing and runs no script; every value from a log is shown as text.</p></footer></body></html>\n");
    s
}

fn alert_row(s: &mut String, a: &AlertView) {
    let _ = write!(
        s,
        "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"wrap\">{}",
        esc(a.time.as_deref().unwrap_or("")),
        esc(a.host.as_deref().unwrap_or("")),
        sev_badge(&a.severity),
        esc(&a.what())
    );
    if let Some(cl) = a.process.as_ref().and_then(|p| p.command_line.as_deref()) {
        let _ = write!(s, "<pre>{}</pre>", esc(cl));
    }
    if let Some(req) = a
        .http
        .as_ref()
        .and_then(crate::view::HttpView::request_line)
    {
        let _ = write!(s, "<pre>{}</pre>", esc(&req));
    }
    if let Some(r) = a.reasons.first() {
        let _ = write!(s, "<div class=\"note\">{}</div>", esc(r));
    }
    let _ = write!(
        s,
        "</td><td class=\"mono wrap\">{}<br><span class=\"muted\">{}</span></td></tr>",
        esc(&a.source.cite()),
        esc(&a.id)
    );
}

fn incident(s: &mut String, r: &Report, inc: &IncidentView, open: bool) {
    let class = sev_class(&inc.severity);
    let _ = write!(
        s,
        "<details class=\"incident {class}\" id=\"{}\"{}><summary>{} {} — {} · {} alerts · {} → {}</summary>",
        esc(&inc.incident_id),
        if open { " open" } else { "" },
        sev_badge(&inc.severity),
        esc(&inc.incident_id),
        esc(inc.host.as_deref().unwrap_or("(no host)")),
        n(inc.alerts),
        esc(inc.first.as_deref().unwrap_or("?")),
        esc(inc.last.as_deref().unwrap_or("?")),
    );
    if !inc.stages.is_empty() {
        s.push_str("<div>");
        for st in &inc.stages {
            let _ = write!(s, "<span class=\"stage\">{}</span>", esc(st));
        }
        s.push_str("</div>");
    }
    if let Some(why) = &inc.severity_reason {
        let _ = write!(s, "<p class=\"note\">{}</p>", esc(why));
    }
    s.push_str("<h3>Timeline</h3><ol class=\"timeline\">");
    for step in inc.timeline.iter().take(r.limits.steps) {
        let _ = write!(
            s,
            "<li class=\"{}\"><span class=\"mono\">{}</span> {} <b>{}</b> <span class=\"muted mono\">{}</span>",
            sev_class(&step.severity),
            esc(step.time.as_deref().unwrap_or("")),
            sev_badge(&step.severity),
            esc(&step.title),
            esc(&step.rule_id)
        );
        if let Some(w) = &step.what {
            let _ = write!(s, "<div class=\"wrap\">{}</div>", esc(w));
        }
        let detail = r.details.get(&step.alert_id);
        if let Some(cl) = detail.and_then(|d| d.command_line.as_deref()) {
            let _ = write!(s, "<pre>{}</pre>", esc(cl));
        }
        if let Some(req) = detail.and_then(|d| d.request.as_deref()) {
            let _ = write!(s, "<pre>{}</pre>", esc(req));
        }
        if let Some(reason) = detail.and_then(|d| d.reason.as_deref()) {
            let _ = write!(s, "<div class=\"note\">{}</div>", esc(reason));
        }
        let record = step
            .source
            .clone()
            .or_else(|| detail.map(|d| d.record.clone()))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<div class=\"note mono wrap\">record {} · alert {}</div></li>",
            esc(&record),
            esc(&step.alert_id)
        );
    }
    s.push_str("</ol>");
    if inc.timeline.len() > r.limits.steps {
        let _ = write!(
            s,
            "<p class=\"note\">The first {} of {} steps.</p>",
            r.limits.steps,
            n(inc.timeline.len() as u64)
        );
    }
    if let Some(t) = &inc.triage {
        s.push_str(&triage(t, "h3"));
    }
    s.push_str("</details>");
}

/// The playbook's answers, the escalation decision and the containment steps, headed by `h`
/// (`h2`, `h3`): the report's incidents and the console's incident pages show them alike.
pub fn triage(t: &crate::TriageView, h: &str) -> String {
    let mut s = String::new();
    let _ = write!(s, "<{h}>The playbook's questions</{h}><table><tbody>");
    for q in &t.questions {
        let _ = write!(
            s,
            "<tr><th>{}</th><td><span class=\"answer-{}\">{}</span> — {}</td></tr>",
            esc(&q.question),
            match q.answer.as_str() {
                "yes" => "yes",
                "no" => "no",
                _ => "unknown",
            },
            esc(&q.answer),
            esc(&q.evidence)
        );
    }
    s.push_str("</tbody></table>");
    let _ = write!(
        s,
        "<p><b>{}</b> {}</p>",
        if t.escalate {
            "Escalate to T2."
        } else {
            "No escalation."
        },
        esc(t.escalate_reason.as_deref().unwrap_or(""))
    );
    if !t.containment.is_empty() {
        let _ = write!(s, "<{h}>Containment</{h}><ol>");
        for c in &t.containment {
            let _ = write!(s, "<li><b>{}</b>", esc(&c.action));
            if let Some(why) = &c.why {
                let _ = write!(s, " — {}", esc(why));
            }
            if let Some(cmd) = &c.command {
                let _ = write!(s, "<pre>{}</pre>", esc(cmd));
            }
            s.push_str("</li>");
        }
        s.push_str("</ol>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Report};

    #[test]
    fn markup_in_log_text_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert('x')</script> & "q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn numbers_have_thousands_separated() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1000), "1,000");
        assert_eq!(n(1234567), "1,234,567");
    }

    fn alert(i: usize, rule: &str, sev: &str, cmd: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "alert", "id": format!("a{i:04}"), "rule_id": rule, "title": format!("Rule {rule}"),
            "severity": sev, "time": format!("2026-01-{:02}T10:00:00Z", 1 + i % 3), "host": format!("h{}", i % 2),
            "source": {"path": "x.log", "line": i + 1},
            "target": {"provider": "aws", "endpoint": "169.254.169.254", "path": "/latest/meta-data/iam/security-credentials/", "kind": "credentials", "encoding": ["decimal"]},
            "process": {"image": "/tmp/c", "command_line": cmd},
            "reasons": ["because"]
        })
    }

    /// Counts cover every alert, the page shows the first of each rule and says how many more,
    /// incidents past the limit are left out most severe first, and what came from a log
    /// is text.
    #[test]
    fn a_report_counts_everything_shows_a_bounded_part_and_escapes_log_text() {
        let limits = Limits {
            alerts_per_rule: 3,
            incidents: 2,
            steps: 1,
            bars: 15,
            details: 100,
        };
        let mut r = Report::new("Hunt", "a hunt over x.log", limits);
        r.fact("files", "1");
        for i in 0..10 {
            r.alert(&alert(
                i,
                "IMDS-003",
                "high",
                "curl <img src=x onerror=alert(1)>",
            ));
        }
        r.alert(&alert(10, "IMDS-005", "critical", "wget"));
        r.alert(&serde_json::json!({"severity": 5}));
        for (i, sev) in ["low", "critical", "medium"].iter().enumerate() {
            r.incident(&serde_json::json!({
                "incident_id": format!("INC-{i}"), "host": "h0", "severity": sev, "alerts": 2,
                "first": "2026-01-01T10:00:00Z", "last": "2026-01-02T10:00:00Z", "stages": ["credential-access"],
                "timeline": [
                    {"alert_id": "a0000", "rule_id": "IMDS-003", "title": "Rule IMDS-003", "severity": "high", "what": "<script>x</script>"},
                    {"alert_id": "a0001", "rule_id": "IMDS-003", "title": "Rule IMDS-003", "severity": "high"}
                ],
                "triage": {"questions": [{"question": "Q?", "answer": "yes", "evidence": "E"}], "escalate": true,
                           "containment": [{"action": "Block", "command": "iptables -I OUTPUT -d 169.254.169.254 -j REJECT"}]}
            }));
        }
        assert_eq!(r.alert_count(), 11);
        assert_eq!(r.incident_count(), 3);
        let page = r.html("2026-12-07T00:00:00Z");
        assert!(page.contains("<b>11</b>alerts"));
        assert!(page.contains("The first 3 of 10."));
        assert!(page.contains("The 2 most severe (then latest) of 3 incidents"));
        assert!(page.contains("INC-1") && page.contains("INC-2") && !page.contains("INC-0"));
        assert!(page.contains("The first 1 of 2 steps."));
        assert!(page.contains("1 records that do not read as alerts or incidents"));
        assert!(page.contains("curl &lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!page.contains("<img") && !page.contains("<script"));
        assert!(page.contains("<b>decimal</b> 11"));
        assert!(page.contains("default-src 'none'"));
    }
}
