//! What the report reads of an alert and an incident: the parts of their JSON (the output
//! contract of `hunt --output jsonl` and of the store) it shows. Every part is optional, so a
//! record from an older store or another version reads as far as it goes.

use serde::Deserialize;

/// An alert, as far as the report shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertView {
    /// The alert's id.
    pub id: String,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// `critical` … `info`.
    pub severity: String,
    /// When, as the record writes it.
    pub time: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// Where the record is.
    pub source: SourceView,
    /// The metadata target.
    pub target: Option<TargetView>,
    /// The acting process.
    pub process: Option<ProcessView>,
    /// The HTTP request, for web, proxy and network logs.
    pub http: Option<HttpView>,
    /// The cloud API call, for cloud audit logs.
    pub cloud: Option<CloudView>,
    /// Why, in sentences.
    pub reasons: Vec<String>,
}

impl AlertView {
    /// What the alert is about, shortly: who (process, client or principal) → what (the
    /// metadata target, else the request or the cloud operation).
    pub fn what(&self) -> String {
        let a = self;
        let who = a
            .process
            .as_ref()
            .and_then(|p| p.image.clone())
            .or_else(|| a.http.as_ref().and_then(|h| h.client.clone()))
            .or_else(|| a.cloud.as_ref().and_then(|c| c.principal.clone()))
            .unwrap_or_default();
        let target = a
            .target
            .as_ref()
            .map(|t| {
                format!(
                    "{}{}",
                    t.endpoint.clone().unwrap_or_default(),
                    t.path.clone().unwrap_or_default()
                )
            })
            .or_else(|| a.http.as_ref().and_then(|h| h.uri.clone()))
            .or_else(|| a.cloud.as_ref().and_then(|c| c.action.clone()))
            .unwrap_or_default();
        match (who.is_empty(), target.is_empty()) {
            (false, false) => format!("{who} → {target}"),
            (false, true) => who,
            _ => target,
        }
    }
}

/// Where a record is: a file and its line or record number.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SourceView {
    /// The file.
    pub path: String,
    /// Its line, for text formats.
    pub line: Option<u64>,
    /// Its record number, for EVTX.
    pub record: Option<u64>,
}

impl SourceView {
    /// `path:line`, `path#record` or the path alone.
    pub fn cite(&self) -> String {
        match (self.line, self.record) {
            (Some(l), _) => format!("{}:{l}", self.path),
            (None, Some(r)) => format!("{}#{r}", self.path),
            (None, None) => self.path.clone(),
        }
    }
}

/// The metadata target of an alert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetView {
    /// Provider id (`aws`, `azure`, `gcp` …).
    pub provider: Option<String>,
    /// The endpoint (`169.254.169.254`).
    pub endpoint: Option<String>,
    /// The normalized path.
    pub path: Option<String>,
    /// What the path hands out (`credentials`, `token` …).
    pub kind: Option<String>,
    /// Non-canonical encodings of the address (`decimal`, `hex` …).
    pub encoding: Vec<String>,
}

/// The process part of an alert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProcessView {
    /// The executable.
    pub image: Option<String>,
    /// Its command line.
    pub command_line: Option<String>,
    /// Its user.
    pub user: Option<String>,
}

/// The HTTP part of an alert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HttpView {
    /// The client address.
    pub client: Option<String>,
    /// The method.
    pub method: Option<String>,
    /// The request target.
    pub uri: Option<String>,
    /// The status.
    pub status: Option<u16>,
}

impl HttpView {
    /// `METHOD URI → STATUS`, as far as the log recorded them.
    pub fn request_line(&self) -> Option<String> {
        let uri = self.uri.as_deref()?;
        let mut line = match &self.method {
            Some(m) => format!("{m} {uri}"),
            None => uri.to_owned(),
        };
        if let Some(st) = self.status {
            line.push_str(&format!(" → {st}"));
        }
        Some(line)
    }
}

/// The cloud part of an alert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CloudView {
    /// Where the call came from.
    pub caller_ip: Option<String>,
    /// The operation.
    pub action: Option<String>,
    /// Who made it.
    pub principal: Option<String>,
}

/// An incident, as far as the report shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IncidentView {
    /// `INC-…`.
    pub incident_id: String,
    /// The host.
    pub host: Option<String>,
    /// Its first alert's time.
    pub first: Option<String>,
    /// Its last alert's time.
    pub last: Option<String>,
    /// Its severity.
    pub severity: String,
    /// Why that severity.
    pub severity_reason: Option<String>,
    /// The attack-chain stages it covers.
    pub stages: Vec<String>,
    /// How many alerts.
    pub alerts: u64,
    /// Its alerts in time order.
    pub timeline: Vec<StepView>,
    /// The playbook's triage.
    pub triage: Option<TriageView>,
}

/// One alert of an incident's timeline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StepView {
    /// When.
    pub time: Option<String>,
    /// The alert's id.
    pub alert_id: String,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// The alert's severity.
    pub severity: String,
    /// Its stages.
    pub stages: Vec<String>,
    /// What happened, shortly (`curl → 169.254.169.254/latest/…`).
    pub what: Option<String>,
    /// Where its record is.
    pub source: Option<String>,
}

/// The SOC playbook's triage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TriageView {
    /// The four questions for analysis.
    pub questions: Vec<QuestionView>,
    /// Whether L1 escalates to T2.
    pub escalate: bool,
    /// Why.
    pub escalate_reason: Option<String>,
    /// Containment steps.
    pub containment: Vec<StepToTake>,
}

/// One question, answered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct QuestionView {
    /// The question.
    pub question: String,
    /// `yes`, `no` or `unknown`.
    pub answer: String,
    /// What the answer rests on.
    pub evidence: String,
}

/// One containment step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StepToTake {
    /// What to do.
    pub action: String,
    /// Why.
    pub why: Option<String>,
    /// A command that does it.
    pub command: Option<String>,
}

/// Severities, most severe first.
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// The rank of a severity: 0 for `critical` … 4 for `info`, 5 for anything else.
pub fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(severity))
        .unwrap_or(SEVERITIES.len())
}
