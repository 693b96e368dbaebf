//! One self-contained HTML page from a run's alerts and incidents (`hunt --html`,
//! `imdsguard report`): what was read and skipped, detections by severity, rule, host and day
//! as inline SVG charts, each incident as a timeline with its stages, alerts, records and the
//! SOC playbook's answers and containment, the metadata targets seen and the processes and
//! clients that asked.
//!
//! The page loads nothing: no script at all, styles inline, no fonts or images fetched, and a
//! Content-Security-Policy that forbids the browser to fetch anything should a later change
//! try. Every text that came from a log is escaped (log lines are attacker-controlled). Big
//! runs stay readable: counts cover every alert, but only the first alerts of each rule, the
//! most severe incidents and the first steps of each are shown, and the page says how many
//! more there were.

mod html;
mod view;

use std::collections::{BTreeMap, HashMap};

pub use html::{esc, triage};
pub use view::{rank, AlertView, IncidentView, TriageView, SEVERITIES};

/// How much a report shows (its counts cover everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Alerts shown per rule.
    pub alerts_per_rule: usize,
    /// Incidents shown, the most severe (then the latest) first.
    pub incidents: usize,
    /// Timeline steps shown per incident.
    pub steps: usize,
    /// Bars per chart (rules, hosts, targets, processes).
    pub bars: usize,
    /// Alerts whose details (reasons, process, target) are kept for the incidents' timelines.
    pub details: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            alerts_per_rule: 10,
            incidents: 200,
            steps: 30,
            bars: 15,
            details: 20_000,
        }
    }
}

/// A rule's alerts: counts by severity and the first ones.
#[derive(Debug, Default)]
struct RuleEntry {
    title: String,
    by_severity: [u64; 6],
    shown: Vec<AlertView>,
}

/// A report being built: hand it every alert and incident, then render it.
#[derive(Debug, Default)]
pub struct Report {
    title: String,
    source: String,
    run: Vec<(String, String)>,
    limits: Limits,
    alerts: u64,
    unreadable: Vec<String>,
    by_severity: [u64; 6],
    rules: BTreeMap<String, RuleEntry>,
    hosts: BTreeMap<String, u64>,
    days: BTreeMap<String, u64>,
    targets: BTreeMap<(String, String, String), u64>,
    encodings: BTreeMap<String, u64>,
    processes: BTreeMap<String, u64>,
    clients: BTreeMap<String, u64>,
    /// Details of alerts an incident may name: (what, reason, record).
    details: HashMap<String, Detail>,
    incidents: Vec<IncidentView>,
    incident_count: u64,
    incidents_by_severity: [u64; 6],
}

/// What the timeline shows of an alert beside its step.
#[derive(Debug, Clone)]
struct Detail {
    reason: Option<String>,
    command_line: Option<String>,
    request: Option<String>,
    record: String,
}

impl Report {
    /// A report titled `title`, built from `source` (`a hunt over …`, `the store at …`).
    pub fn new(title: &str, source: &str, limits: Limits) -> Report {
        Report {
            title: title.to_owned(),
            source: source.to_owned(),
            limits,
            ..Report::default()
        }
    }

    /// A line of the run's facts (inputs, formats, what was skipped and why).
    pub fn fact(&mut self, key: &str, value: &str) {
        self.run.push((key.to_owned(), value.to_owned()));
    }

    /// One alert, as its JSON. One that does not read as an alert is counted and named.
    pub fn alert(&mut self, json: &serde_json::Value) {
        match AlertView::deserialize_from(json) {
            Ok(a) => self.add_alert(a),
            Err(e) => self.unreadable.push(format!("an alert: {e}")),
        }
    }

    /// One incident, as its JSON.
    pub fn incident(&mut self, json: &serde_json::Value) {
        match IncidentView::deserialize_from(json) {
            Ok(i) => self.add_incident(i),
            Err(e) => self.unreadable.push(format!("an incident: {e}")),
        }
    }

    fn add_alert(&mut self, a: AlertView) {
        self.alerts += 1;
        let r = rank(&a.severity);
        self.by_severity[r] += 1;
        *self
            .hosts
            .entry(a.host.clone().unwrap_or_else(|| "(no host)".into()))
            .or_default() += 1;
        if let Some(day) = a.time.as_deref().and_then(|t| t.get(..10)) {
            *self.days.entry(day.to_owned()).or_default() += 1;
        }
        if let Some(t) = &a.target {
            let key = (
                t.provider.clone().unwrap_or_else(|| "?".into()),
                t.kind.clone().unwrap_or_else(|| "?".into()),
                t.endpoint.clone().unwrap_or_else(|| "?".into()),
            );
            *self.targets.entry(key).or_default() += 1;
            for e in &t.encoding {
                *self.encodings.entry(e.clone()).or_default() += 1;
            }
        }
        if let Some(image) = a.process.as_ref().and_then(|p| p.image.clone()) {
            *self.processes.entry(image).or_default() += 1;
        }
        if let Some(client) = a.http.as_ref().and_then(|h| h.client.clone()) {
            *self.clients.entry(client).or_default() += 1;
        } else if let Some(ip) = a.cloud.as_ref().and_then(|c| c.caller_ip.clone()) {
            *self.clients.entry(ip).or_default() += 1;
        }
        if self.details.len() < self.limits.details {
            self.details.insert(
                a.id.clone(),
                Detail {
                    reason: a.reasons.first().cloned(),
                    command_line: a.process.as_ref().and_then(|p| p.command_line.clone()),
                    request: a.http.as_ref().and_then(view::HttpView::request_line),
                    record: a.source.cite(),
                },
            );
        }
        let entry = self.rules.entry(a.rule_id.clone()).or_default();
        entry.by_severity[r] += 1;
        if entry.title.is_empty() {
            entry.title = a.title.clone();
        }
        if entry.shown.len() < self.limits.alerts_per_rule {
            entry.shown.push(a);
        }
    }

    fn add_incident(&mut self, i: IncidentView) {
        self.incident_count += 1;
        self.incidents_by_severity[rank(&i.severity)] += 1;
        self.incidents.push(i);
        // Keep the most severe, then the latest; trimmed in batches to stay linear.
        if self.incidents.len() >= self.limits.incidents * 2 {
            self.trim_incidents();
        }
    }

    fn trim_incidents(&mut self) {
        self.incidents.sort_by(|a, b| {
            rank(&a.severity)
                .cmp(&rank(&b.severity))
                .then_with(|| b.last.cmp(&a.last))
                .then_with(|| a.incident_id.cmp(&b.incident_id))
        });
        self.incidents.truncate(self.limits.incidents);
    }

    /// Alerts handed so far.
    pub fn alert_count(&self) -> u64 {
        self.alerts
    }

    /// Incidents handed so far.
    pub fn incident_count(&self) -> u64 {
        self.incident_count
    }

    /// The page. `generated` is the time to print as when it was made.
    pub fn html(&mut self, generated: &str) -> String {
        self.trim_incidents();
        html::render(self, generated)
    }
}

trait FromJson: Sized {
    fn deserialize_from(v: &serde_json::Value) -> Result<Self, serde_json::Error>;
}

impl<T: serde::de::DeserializeOwned> FromJson for T {
    fn deserialize_from(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        T::deserialize(v)
    }
}
