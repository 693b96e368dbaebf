//! Incidents: the alerts of one host grouped into one story with a timeline, the attack-chain
//! stages they cover (as the Suspicious IMDS API Request detection describes them: execution → discovery → credential access → use), and a severity
//! for the whole chain.
//!
//! An alert joins its host's open incident when it comes within [`Incidents::gap_ms`] of that
//! incident's last alert; otherwise it opens a new one. The incident id is a hash of the host
//! and its first alert's id, so it is the same on every run over the same input.

use std::collections::BTreeMap;

use imdsguard_event::{format_time_ms, EventKind, Severity};
use imdsguard_rules::{stable_hash, Alert, Triage};
use imdsguard_target::Kind;
use serde::{Deserialize, Serialize};

/// A step of the attack chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// A tool or payload runs: a process from a temp directory, a masquerading agent, a web
    /// server's child, a process start naming the service.
    Execution,
    /// The service is walked or listed (`/latest/meta-data/`, instance details).
    Discovery,
    /// Role credentials, tokens, identity documents or user-data are read.
    CredentialAccess,
    /// Stolen credentials are used elsewhere (cloud audit logs: IMDS-105).
    Use,
}

impl Stage {
    /// The name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Execution => "execution",
            Stage::Discovery => "discovery",
            Stage::CredentialAccess => "credential-access",
            Stage::Use => "use",
        }
    }
}

/// The stages an alert shows.
pub fn stages_of(a: &Alert) -> Vec<Stage> {
    stages_for(
        &a.rule_id,
        a.event.kind == EventKind::ProcessStart,
        a.target.as_ref().map(|t| t.kind),
    )
}

/// The stages of an alert of `rule_id` on a process start (or not) with a target of
/// `target_kind`: [`stages_of`] for an alert read back from the store.
pub fn stages_for(rule_id: &str, process_start: bool, target_kind: Option<Kind>) -> Vec<Stage> {
    let mut out = Vec::new();
    let runs_a_tool = matches!(rule_id, "IMDS-003" | "IMDS-006" | "IMDS-007")
        || (process_start && target_kind.is_none());
    if runs_a_tool {
        out.push(Stage::Execution);
    }
    match rule_id {
        "IMDS-101" => out.push(Stage::CredentialAccess),
        "IMDS-104" => out.push(Stage::Discovery),
        "IMDS-105" => out.push(Stage::Use),
        _ => match target_kind {
            Some(Kind::Credentials | Kind::Token | Kind::Identity | Kind::Userdata) => {
                out.push(Stage::CredentialAccess)
            }
            Some(_) => out.push(Stage::Discovery),
            None => {}
        },
    }
    out
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// RFC 3339 UTC.
    pub time: String,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The alert.
    pub alert_id: String,
    /// Its rule.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: Severity,
    /// The stages it shows.
    pub stages: Vec<Stage>,
    /// The process and target, in a few words.
    pub what: String,
    /// The record (`path:line` or `path record N`).
    pub source: String,
}

/// The tag every incident's JSON starts with, `"type": "incident"` (alerts say `"alert"`), so
/// that a JSON-lines stream of both is told line by line. Incidents stored before it read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncidentTag;

impl Serialize for IncidentTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("incident")
    }
}

impl<'de> Deserialize<'de> for IncidentTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| IncidentTag)
    }
}

/// Alerts of one host, grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Always `"incident"`.
    #[serde(rename = "type", default)]
    pub tag: IncidentTag,
    /// `INC-` and 12 hex digits.
    #[serde(rename = "incident_id")]
    pub id: String,
    /// The host, by its identity: the FQDN once one is seen (`workstation5.theshire.local`
    /// for alerts naming `WORKSTATION5` too); `null` when the alerts name none.
    pub host: Option<String>,
    /// First alert (RFC 3339 UTC).
    pub first: String,
    /// Last alert.
    pub last: String,
    /// The severity of the whole chain.
    pub severity: Severity,
    /// Why that severity, in a sentence.
    pub severity_reason: String,
    /// The stages covered, in chain order.
    pub stages: Vec<Stage>,
    /// How many alerts the incident holds.
    pub alerts: u64,
    /// The alerts in time order: the first [`Incident::MAX_STEPS`]; later alerts still count in
    /// `alerts`, `last`, the stages and the severity, and the store links every one.
    pub timeline: Vec<Step>,
    /// The most severe alert's severity.
    pub worst: Severity,
    /// Milliseconds since the epoch of the last alert.
    pub last_ms: i64,
    /// The playbook's triage of the whole incident: its alerts' triage folded together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
}

impl Incident {
    fn new(key: &str, first: Step, triage: Option<&Triage>) -> Incident {
        let mut i = Incident {
            tag: IncidentTag,
            id: format!(
                "INC-{:012x}",
                stable_hash(&[key, &first.alert_id]) & 0xffff_ffff_ffff
            ),
            host: (!key.is_empty()).then(|| key.to_owned()),
            first: first.time.clone(),
            last: first.time.clone(),
            severity: first.severity,
            severity_reason: String::new(),
            stages: Vec::new(),
            alerts: 0,
            worst: first.severity,
            last_ms: first.time_ms,
            timeline: Vec::new(),
            triage: None,
        };
        i.add(first, triage);
        i
    }

    /// The timeline keeps this many steps; an incident of thousands of alerts (a noisy host
    /// over days) stays a few hundred kilobytes.
    pub const MAX_STEPS: usize = 1000;

    /// Adds an alert read back from the store that the saved incident does not count yet (a
    /// crash came between storing the alert and rewriting its incident).
    pub fn absorb(&mut self, step: Step, triage: Option<&Triage>) {
        self.add(step, triage);
    }

    fn add(&mut self, step: Step, triage: Option<&Triage>) {
        self.last = step.time.clone();
        self.last_ms = step.time_ms;
        self.alerts += 1;
        self.worst = self.worst.max(step.severity);
        for s in &step.stages {
            if let Err(at) = self.stages.binary_search(s) {
                self.stages.insert(at, *s);
            }
        }
        if self.timeline.len() < Self::MAX_STEPS {
            self.timeline.push(step);
        }
        match (&mut self.triage, triage) {
            (Some(mine), Some(t)) => crate::triage::merge(mine, t),
            (None, Some(t)) => self.triage = Some(t.clone()),
            _ => {}
        }
        self.rate();
    }

    /// Stages and severity from the timeline: the most severe alert, raised when the chain
    /// shows credential access after execution or discovery (high), or three stages or use of
    /// the credentials (critical).
    fn rate(&mut self) {
        let stages = &self.stages;
        let worst = self.worst;
        let creds = stages.contains(&Stage::CredentialAccess);
        let (chain, why) = if creds && (stages.contains(&Stage::Use) || stages.len() >= 3) {
            (
                Severity::Critical,
                "credential access within a chain of three or more stages",
            )
        } else if creds && stages.len() >= 2 {
            (
                Severity::High,
                "credential access after execution or discovery on the same host",
            )
        } else {
            (Severity::Info, "")
        };
        if chain > worst {
            self.severity = chain;
            self.severity_reason = format!(
                "{}: raised from {} by the chain ({}).",
                chain.as_str(),
                worst.as_str(),
                why
            );
        } else {
            self.severity = worst;
            self.severity_reason = format!("{}: its most severe alert.", worst.as_str());
        }
    }
}

/// Groups alerts into incidents per host.
pub struct Incidents {
    /// Alerts further apart than this on one host open a new incident.
    pub gap_ms: i64,
    open: BTreeMap<String, Incident>,
    closed: Vec<Incident>,
    /// Hosts whose open incident changed since [`Incidents::take_changed`].
    changed: std::collections::BTreeSet<String>,
    /// Hosts whose open incident was opened since [`Incidents::take_opened`].
    opened: std::collections::BTreeSet<String>,
}

impl Incidents {
    /// No incidents yet.
    pub fn new(gap_ms: i64) -> Incidents {
        Incidents {
            gap_ms,
            open: BTreeMap::new(),
            closed: Vec::new(),
            changed: Default::default(),
            opened: Default::default(),
        }
    }

    /// Adds an alert of the host `key` ([`crate::Hosts`]) at `time_ms` (alerts come in time
    /// order); returns the incident's id.
    pub fn add(&mut self, a: &Alert, key: &str, time_ms: i64) -> String {
        let host = key.to_owned();
        self.changed.insert(host.clone());
        let step = Step {
            time: format_time_ms(time_ms),
            time_ms,
            alert_id: a.id.clone(),
            rule_id: a.rule_id.clone(),
            title: a.title.clone(),
            severity: a.severity,
            stages: stages_of(a),
            what: format!("{} → {}", a.process_text(), a.target_text()),
            source: a.source_text(),
        };
        match self.open.get_mut(&host) {
            Some(i) if time_ms - i.last_ms <= self.gap_ms => {
                i.add(step, a.triage.as_ref());
                i.id.clone()
            }
            _ => {
                let i = Incident::new(&host, step, a.triage.as_ref());
                let id = i.id.clone();
                self.opened.insert(host.clone());
                if let Some(old) = self.open.insert(host, i) {
                    self.closed.push(old);
                }
                id
            }
        }
    }

    /// The open incident of host `from` continues as `into`'s (a short name joined to its
    /// FQDN); the later of the two stays open when both have one.
    pub(crate) fn rename_host(&mut self, from: &str, into: &str) {
        let Some(mut moved) = self.open.remove(from) else {
            return;
        };
        moved.host = Some(into.to_owned());
        self.changed.remove(from);
        self.changed.insert(into.to_owned());
        if self.opened.remove(from) {
            self.opened.insert(into.to_owned());
        }
        match self.open.remove(into) {
            Some(other) if other.last_ms > moved.last_ms => {
                self.closed.push(moved);
                self.open.insert(into.to_owned(), other);
            }
            Some(other) => {
                self.closed.push(other);
                self.open.insert(into.to_owned(), moved);
            }
            None => {
                self.open.insert(into.to_owned(), moved);
            }
        }
    }

    /// Whether `key` has an open incident that an alert at `time_ms` would join.
    pub(crate) fn joins(&self, key: &str, time_ms: i64) -> bool {
        self.open
            .get(key)
            .is_some_and(|i| time_ms - i.last_ms <= self.gap_ms)
    }

    /// The incident with this id, open or closed.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.open
            .values()
            .chain(self.closed.iter())
            .find(|i| i.id == id)
    }

    /// Takes back incidents saved by an earlier run (the latest of each host), so that alerts
    /// after a restart join the incident they belong to instead of opening another.
    pub fn restore(&mut self, saved: Vec<Incident>) {
        for i in saved {
            let key = i.host.clone().unwrap_or_default();
            match self.open.get(&key) {
                Some(o) if o.last_ms >= i.last_ms => {}
                _ => {
                    self.open.insert(key, i);
                }
            }
        }
    }

    /// Incidents closed since the last call (a newer one opened on their host), handed over and
    /// dropped from memory: what a long-running `watch` stores and forgets.
    pub fn take_closed(&mut self) -> Vec<Incident> {
        std::mem::take(&mut self.closed)
    }

    /// The incidents opened since the last call: what a `watch` commit writes at once, so that
    /// the alerts it links to them never point at an incident the store lacks.
    pub fn take_opened(&mut self) -> Vec<&Incident> {
        let hosts = std::mem::take(&mut self.opened);
        hosts.iter().filter_map(|h| self.open.get(h)).collect()
    }

    /// The open incidents that changed since the last call: what a `watch` commit rewrites.
    pub fn take_changed(&mut self) -> Vec<&Incident> {
        let hosts = std::mem::take(&mut self.changed);
        hosts.iter().filter_map(|h| self.open.get(h)).collect()
    }

    /// Drops the open incidents of the hosts `gone` names (they are saved, and another worker
    /// now reads those hosts): nothing of theirs is written from here again.
    pub fn forget(&mut self, gone: &dyn Fn(&str) -> bool) {
        self.open.retain(|h, _| !gone(h));
        self.changed.retain(|h| !gone(h));
        self.opened.retain(|h| !gone(h));
    }

    /// Closes the open incidents whose last alert is older than `before` (milliseconds since
    /// the epoch): a host quiet for longer than the gap has finished its incident, which can
    /// then leave memory with [`Incidents::take_closed`]. Returns how many closed.
    pub fn close_quiet(&mut self, before: i64) -> usize {
        let quiet: Vec<String> = self
            .open
            .iter()
            .filter(|(_, i)| i.last_ms < before)
            .map(|(h, _)| h.clone())
            .collect();
        for h in &quiet {
            if let Some(i) = self.open.remove(h) {
                self.changed.remove(h);
                self.opened.remove(h);
                self.closed.push(i);
            }
        }
        quiet.len()
    }

    /// Every incident, closed and open, handed over and dropped from memory: the end of a
    /// `hunt`.
    pub fn take_all(&mut self) -> Vec<Incident> {
        self.changed.clear();
        self.opened.clear();
        let mut all = std::mem::take(&mut self.closed);
        all.extend(std::mem::take(&mut self.open).into_values());
        all
    }

    /// Every incident, by first alert time then host.
    pub fn all(&self) -> Vec<&Incident> {
        let mut v: Vec<&Incident> = self.closed.iter().chain(self.open.values()).collect();
        v.sort_by(|a, b| {
            let t = |i: &Incident| i.timeline.first().map_or(0, |s| s.time_ms);
            t(a).cmp(&t(b)).then_with(|| a.host.cmp(&b.host))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::{Position, SourceRef};
    use imdsguard_rules::{AlertEvent, AlertTarget};

    fn alert(id: &str, rule: &str, host: &str, kind: Option<&'static str>, sev: Severity) -> Alert {
        Alert {
            tag: imdsguard_rules::AlertTag,
            id: id.into(),
            rule_id: rule.into(),
            title: rule.into(),
            severity: sev,
            attack: Vec::new(),
            time: None,
            host: Some(host.into()),
            source: SourceRef {
                path: "x".into(),
                position: Position::Line(1),
            },
            event: AlertEvent {
                format: imdsguard_event::Format::NxlogJson,
                kind: EventKind::NetworkConnect,
                id: None,
                channel: None,
                fields: Default::default(),
            },
            target: kind.map(|k| AlertTarget {
                provider: None,
                endpoint: None,
                path: None,
                kind: serde_json::from_value(k.into()).unwrap(),
                encoding: Vec::new(),
                found_in: imdsguard_enrich::TargetSource::Destination,
                method: None,
            }),
            process: None,
            network: None,
            container: None,
            http: None,
            cloud: None,
            reasons: Vec::new(),
            related: Vec::new(),
            triage: None,
        }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn stages_come_from_the_rule_and_the_target() {
        let s = |rule, kind| stages_of(&alert("a", rule, "h", kind, Severity::High));
        assert_eq!(s("IMDS-105", None), [Stage::Use]);
        assert_eq!(
            s("IMDS-003", Some("other")),
            [Stage::Execution, Stage::Discovery]
        );
        assert_eq!(
            s("IMDS-004", Some("credentials")),
            [Stage::CredentialAccess]
        );
        assert_eq!(s("IMDS-001", Some("userdata")), [Stage::CredentialAccess]);
        assert_eq!(s("IMDS-101", Some("other")), [Stage::CredentialAccess]);
        assert_eq!(s("IMDS-104", Some("credentials")), [Stage::Discovery]);
        assert_eq!(s("sigma-x", None), Vec::<Stage>::new());
    }

    #[test]
    fn a_chain_on_one_host_is_one_incident_rated_by_the_chain() {
        let mut inc = Incidents::new(60 * MIN);
        let a = alert("a1", "IMDS-003", "web01", Some("other"), Severity::Medium);
        let b = alert(
            "a2",
            "IMDS-004",
            "WEB01",
            Some("credentials"),
            Severity::Medium,
        );
        let c = alert("a3", "IMDS-001", "db01", Some("other"), Severity::Low);
        let id = inc.add(&a, "web01", 0);
        assert_eq!(inc.add(&b, "web01", 10 * MIN), id);
        assert_ne!(inc.add(&c, "db01", 11 * MIN), id);
        let all = inc.all();
        assert_eq!(all.len(), 2);
        let web = inc.get(&id).unwrap();
        assert_eq!(web.timeline.len(), 2);
        assert_eq!(
            web.stages,
            [Stage::Execution, Stage::Discovery, Stage::CredentialAccess]
        );
        // Two medium alerts, but execution → discovery → credential access.
        assert_eq!(web.severity, Severity::Critical);
        assert!(web.severity_reason.contains("raised from medium"));
        let db = all
            .iter()
            .find(|i| i.host.as_deref() == Some("db01"))
            .unwrap();
        assert_eq!(db.severity, Severity::Low);
        assert_eq!(db.stages, [Stage::Discovery]);
    }

    #[test]
    fn quiet_incidents_close_and_a_later_alert_opens_another() {
        let mut inc = Incidents::new(60 * MIN);
        let a = alert("a1", "IMDS-001", "web01", Some("other"), Severity::Low);
        let b = alert("a2", "IMDS-001", "db01", Some("other"), Severity::Low);
        let first = inc.add(&a, "web01", 0);
        inc.add(&b, "db01", 50 * MIN);
        // Only web01 has been quiet since before minute 30.
        assert_eq!(inc.close_quiet(30 * MIN), 1);
        let closed = inc.take_closed();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].id, first);
        assert_eq!(inc.all().len(), 1);
        let later = alert("a3", "IMDS-001", "web01", Some("other"), Severity::Low);
        assert_ne!(inc.add(&later, "web01", 55 * MIN), first);
        assert_eq!(inc.take_all().len(), 2);
        assert!(inc.all().is_empty());
    }

    #[test]
    fn quiet_longer_than_the_gap_opens_a_new_incident() {
        let mut inc = Incidents::new(60 * MIN);
        let a = alert(
            "a1",
            "IMDS-004",
            "web01",
            Some("credentials"),
            Severity::High,
        );
        let b = alert(
            "a2",
            "IMDS-004",
            "web01",
            Some("credentials"),
            Severity::High,
        );
        let first = inc.add(&a, "web01", 0);
        let second = inc.add(&b, "web01", 61 * MIN);
        assert_ne!(first, second);
        assert_eq!(inc.all().len(), 2);
        // Ids are a function of host and first alert: the same input gives the same ids.
        let mut again = Incidents::new(60 * MIN);
        assert_eq!(again.add(&a, "web01", 0), first);
    }
}
