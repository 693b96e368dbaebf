//! The alert: what `imdsguard hunt` prints for one rule matching one event. The JSON shape is a
//! contract (`docs/ARCHITECTURE.md`).

use imdsguard_enrich::{Enriched, TargetSource, Verdict, VerdictKind};
use imdsguard_event::{stable_hash, Format, Severity, SourceRef, Technique};
use imdsguard_target::{Encoding, Kind};
use serde::{Deserialize, Serialize};

use crate::rule::Hit;

/// The tag every alert's JSON starts with, `"type": "alert"`, so that a JSON-lines stream of
/// alerts and incidents (`"type": "incident"`) is told line by line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertTag;

impl Serialize for AlertTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("alert")
    }
}

/// One alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Always `"alert"`.
    #[serde(rename = "type")]
    pub tag: AlertTag,
    /// The alert's own id: 16 hex digits, a hash of the rule id and the record's identity
    /// ([`imdsguard_event::Event::identity`]: format, host, time, its own record id or content;
    /// never the path, which a user spells many ways and a copy changes) — or, for a correlation,
    /// of the rule id and the alerts and records it joins — so the same input gives the same id
    /// on every run, from any path, and a store keeps each alert once.
    pub id: String,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// Severity after escalations.
    pub severity: Severity,
    /// ATT&CK technique ids.
    pub attack: Vec<Technique>,
    /// When, as the record writes it.
    pub time: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// Where the record is: `path` and `line` or `record`.
    pub source: SourceRef,
    /// The record: decoder, event kind, native id.
    pub event: AlertEvent,
    /// The most severe metadata target in the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<AlertTarget>,
    /// The acting process, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<AlertProcess>,
    /// Destination of a connection, when the event is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<AlertNetwork>,
    /// Container context, when the record carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<imdsguard_event::Container>,
    /// The HTTP request, for web, proxy and network logs: the client and the request as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<AlertHttp>>,
    /// The cloud API call, for cloud audit logs: who, from where, what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<Box<imdsguard_event::Cloud>>,
    /// Why, in sentences.
    pub reasons: Vec<String>,
    /// For a correlation: the ids of the alerts it joins, in time order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// The playbook's questions answered from the data, whether to escalate, and containment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
}

/// The SOC playbook's triage of an alert or incident (its four questions for analysis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// The four questions for analysis, in the playbook's order.
    pub questions: Vec<Answer>,
    /// Whether L1 escalates to T2, by the playbook's decision rule.
    pub escalate: bool,
    /// Why, naming the parts of the rule that hold (or that none does).
    pub escalate_reason: String,
    /// What to do, most urgent first.
    pub containment: Vec<Containment>,
}

/// One question answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Which question: `authorized`, `frequency`, `errors`, `ssrf`.
    pub key: Question,
    /// The question as the playbook asks it.
    pub question: String,
    /// `yes`, `no` or `unknown` (what the data cannot tell, said so).
    pub answer: Reply,
    /// The facts the answer rests on.
    pub evidence: String,
}

impl Answer {
    /// `question` answered `reply` on `evidence`, in the playbook's words.
    pub fn new(question: Question, reply: Reply, evidence: String) -> Answer {
        Answer {
            key: question,
            question: question.text().to_owned(),
            answer: reply,
            evidence,
        }
    }
}

/// The SOC playbook's four questions for analysis, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Question {
    /// Are access attempts coming from authorized applications or systems?
    Authorized,
    /// Is the frequency or volume of requests unusual?
    Frequency,
    /// Are there error logs showing failed, potentially unauthorized, access?
    Errors,
    /// Are external addresses making requests indicative of SSRF?
    Ssrf,
}

impl Question {
    /// The four, in the playbook's order.
    pub const ALL: [Question; 4] = [
        Question::Authorized,
        Question::Frequency,
        Question::Errors,
        Question::Ssrf,
    ];

    /// The short key outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Question::Authorized => "authorized",
            Question::Frequency => "frequency",
            Question::Errors => "errors",
            Question::Ssrf => "ssrf",
        }
    }

    /// The question as the playbook asks it.
    pub fn text(self) -> &'static str {
        match self {
            Question::Authorized => {
                "Are access attempts to the metadata API coming from authorized applications or \
                 systems?"
            }
            Question::Frequency => {
                "Is the frequency or volume of requests to the instance metadata API unusual?"
            }
            Question::Errors => {
                "Are there any error logs indicating failed, potentially unauthorized, access to \
                 the metadata service?"
            }
            Question::Ssrf => {
                "Are there any external IP addresses making requests indicative of SSRF?"
            }
        }
    }

    /// Whether `reply` to this question is a finding: `no` to "authorized?", `yes` to the
    /// others. A finding ranks above `unknown`, which ranks above the reassuring answer.
    pub fn rank(self, reply: Reply) -> u8 {
        match (self, reply) {
            (Question::Authorized, Reply::No)
            | (Question::Frequency | Question::Errors | Question::Ssrf, Reply::Yes) => 2,
            (_, Reply::Unknown) => 1,
            _ => 0,
        }
    }
}

/// An answer to one of the playbook's questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    /// Yes.
    Yes,
    /// No.
    No,
    /// The data cannot tell; the evidence says where to look.
    Unknown,
}

impl Reply {
    /// `yes`, `no`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reply::Yes => "yes",
            Reply::No => "no",
            Reply::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One containment step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Containment {
    /// What to do.
    pub action: String,
    /// Why, for this case.
    pub why: String,
    /// The command, where one can be given (placeholders in `<angle brackets>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The record an alert comes from.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    /// The format the record was decoded as.
    pub format: Format,
    /// The event kind.
    pub kind: imdsguard_event::EventKind,
    /// The format's own id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The Windows channel, when the record names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The record's fields that the loaded rules read (what a Sigma rule matched on) beyond
    /// those the alert's process and network parts carry, by the record's own names (Sysmon's
    /// where a field map gives them); a field with two values (as read and as mapped, such as a
    /// protocol number and its name) keeps both joined by `; `.
    #[serde(skip_serializing_if = "AlertFields::is_empty")]
    pub fields: AlertFields,
}

impl AlertEvent {
    /// The record fields an event carries (not the keyword search's values), by name.
    pub fn fields_of(e: &imdsguard_event::Event) -> AlertFields {
        AlertFields::of(
            e.fields
                .iter()
                .filter(|(sym, _)| *sym != imdsguard_event::Sym::ANY)
                .map(|(sym, v)| (*sym, v.as_str())),
        )
    }
}

/// The record's fields an alert carries, in name order, one value a name (a field read twice
/// keeps both values joined by `; `), the names by their interned symbol: a hunt holds its
/// alerts until it ends (to correlate them in time order), and a map of owned names and values
/// took several times the bytes of the values themselves. Written as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFields(Vec<(imdsguard_event::Sym, Box<str>)>);

impl AlertFields {
    /// The fields of these (name, value) pairs.
    pub fn of<'a>(pairs: impl IntoIterator<Item = (imdsguard_event::Sym, &'a str)>) -> Self {
        let mut named: Vec<(std::sync::Arc<str>, imdsguard_event::Sym, &str)> = pairs
            .into_iter()
            .map(|(sym, v)| (sym.name(), sym, v))
            .collect();
        // Stable: values of one name stay in the record's order.
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(imdsguard_event::Sym, Box<str>)> = Vec::with_capacity(named.len());
        let mut i = 0;
        while i < named.len() {
            let sym = named[i].1;
            let mut j = i + 1;
            while j < named.len() && named[j].1 == sym {
                j += 1;
            }
            let value: Box<str> = if j == i + 1 {
                Box::from(named[i].2)
            } else {
                named[i..j]
                    .iter()
                    .map(|n| n.2)
                    .collect::<Vec<_>>()
                    .join("; ")
                    .into_boxed_str()
            };
            out.push((sym, value));
            i = j;
        }
        AlertFields(out)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// (name, value) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (std::sync::Arc<str>, &str)> {
        self.0.iter().map(|(sym, v)| (sym.name(), &**v))
    }

    /// The value of the field named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(sym, _)| &*sym.name() == name)
            .map(|(_, v)| &**v)
    }

    /// About how many bytes its allocations take.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<(imdsguard_event::Sym, Box<str>)>()
            + self.0.iter().map(|(_, v)| v.len() + 16).sum::<usize>()
    }
}

impl Serialize for AlertFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.iter() {
            m.serialize_entry(&*name, value)?;
        }
        m.end()
    }
}

/// The target part of an alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertTarget {
    /// Provider id, when known.
    pub provider: Option<String>,
    /// Canonical endpoint, when known.
    pub endpoint: Option<String>,
    /// Normalized path.
    pub path: Option<String>,
    /// What the path hands out.
    pub kind: Kind,
    /// Every non-canonical encoding seen in the event's targets.
    pub encoding: Vec<Encoding>,
    /// Where in the event: `destination`, `url`, `dns`, `command-line`.
    pub found_in: TargetSource,
    /// `PUT` for the token request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
}

impl AlertTarget {
    /// The encodings, comma-separated.
    pub fn encoding_text(&self) -> String {
        let names: Vec<&str> = self.encoding.iter().map(|e| e.as_str()).collect();
        names.join(",")
    }
}

/// The process part of an alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertProcess {
    /// Process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    /// Executable path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// Account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Parent executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_image: Option<String>,
    /// Parent command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_command_line: Option<String>,
    /// Allowlist verdict.
    pub verdict: VerdictKind,
    /// The agent entry the verdict names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The HTTP part of an alert: who asked, and the request and answer as the log records them.
#[derive(Debug, Clone, Serialize)]
pub struct AlertHttp {
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The request.
    #[serde(flatten)]
    pub request: imdsguard_event::Http,
}

/// The connection part of an alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertNetwork {
    /// Source address, for a record that names no process and no HTTP client (a flow, a
    /// connection or a lookup seen on the wire): the only "who" it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// Destination address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    /// Destination port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// Destination host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_host: Option<String>,
    /// URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Alert {
    /// The alert for a rule hit on an event.
    pub fn new(hit: &Hit<'_>, ev: &Enriched<'_>) -> Alert {
        let mut a = Alert::context(ev);
        a.id = format!(
            "{:016x}",
            stable_hash(&[&hit.rule.id, &format!("{:016x}", ev.event.identity()),])
        );
        a.rule_id = hit.rule.id.clone();
        a.title = hit.rule.title.clone();
        a.severity = hit.severity;
        a.attack = hit.rule.attack.clone();
        a.reasons = hit.reasons.clone();
        a
    }

    /// The event's part of an alert (time, host, source, target, process, network), with the
    /// rule's part empty: what a correlation fills in with its own rule.
    pub fn context(ev: &Enriched<'_>) -> Alert {
        let mut a = Alert::record(ev.event);
        a.target = ev.best().map(|f| AlertTarget {
            provider: f.target.provider_id().map(str::to_owned),
            endpoint: f.target.endpoint_text().map(str::to_owned),
            path: f.target.path.clone(),
            kind: f.target.kind,
            encoding: ev.encodings().iter().collect(),
            found_in: f.source,
            method: ev.targets().iter().find_map(|t| t.target.method),
        });
        let verdict = ev.verdict();
        if let Some(p) = &mut a.process {
            p.verdict = verdict.kind();
            p.agent = match verdict {
                Verdict::Unlisted | Verdict::Unknown => None,
                v => v.agent().map(|a| a.id.clone()),
            };
        }
        a
    }

    /// What the record itself says (time, host, source, event, process, network, container),
    /// without enrichment (no target, the process's verdict unknown) and with the rule's part
    /// empty: a record found by a search rather than a rule.
    pub fn record(e: &imdsguard_event::Event) -> Alert {
        let process = (!e.process.is_empty() || !e.parent.is_empty()).then(|| AlertProcess {
            pid: e.process.pid,
            image: e.process.image.clone(),
            command_line: e.process.command_line.clone(),
            user: e.process.user.clone(),
            parent_image: e.parent.image.clone(),
            parent_command_line: e.parent.command_line.clone(),
            verdict: imdsguard_enrich::VerdictKind::Unknown,
            agent: None,
        });
        Alert {
            tag: AlertTag,
            id: String::new(),
            rule_id: String::new(),
            title: String::new(),
            severity: Severity::Info,
            attack: Vec::new(),
            time: e.time.clone(),
            host: e.host.clone(),
            source: e.source.clone(),
            event: AlertEvent {
                format: e.format,
                kind: e.kind,
                id: e.native_id.clone(),
                channel: e.channel.clone(),
                fields: AlertEvent::fields_of(e),
            },
            target: None,
            process,
            network: e.network.as_ref().map(|n| AlertNetwork {
                src_ip: n
                    .src_ip
                    .clone()
                    .filter(|_| e.http.is_none() && e.process == Default::default()),
                dst_ip: n.dst_ip.clone(),
                dst_port: n.dst_port,
                dst_host: n.dst_host.clone(),
                url: n.url.clone(),
            }),
            container: e.container.clone(),
            http: e.http.as_ref().map(|h| {
                Box::new(AlertHttp {
                    client: e.network.as_ref().and_then(|n| n.src_ip.clone()),
                    request: (**h).clone(),
                })
            }),
            cloud: e.cloud.clone(),
            reasons: Vec::new(),
            related: Vec::new(),
            triage: None,
        }
    }
}

impl Alert {
    /// About how many bytes the alert's allocations take (its strings and lists), for memory
    /// budgets; `size_of::<Alert>()` is the rest.
    pub fn heap_bytes(&self) -> usize {
        let s = |v: &String| v.capacity();
        let o = |v: &Option<String>| v.as_ref().map_or(0, String::capacity);
        let mut n = s(&self.id)
            + s(&self.rule_id)
            + s(&self.title)
            + o(&self.time)
            + o(&self.host)
            + s(&self.source.path)
            + self.attack.capacity() * std::mem::size_of::<Technique>()
            + o(&self.event.id)
            + o(&self.event.channel)
            + self.event.fields.heap_bytes()
            + self
                .reasons
                .iter()
                .chain(&self.related)
                .map(|r| r.capacity() + 24)
                .sum::<usize>();
        if let Some(t) = &self.target {
            n += std::mem::size_of::<AlertTarget>()
                + o(&t.provider)
                + o(&t.endpoint)
                + o(&t.path)
                + t.encoding.capacity() * std::mem::size_of::<Encoding>();
        }
        if let Some(p) = &self.process {
            n += std::mem::size_of::<AlertProcess>()
                + o(&p.image)
                + o(&p.command_line)
                + o(&p.user)
                + o(&p.parent_image)
                + o(&p.parent_command_line)
                + o(&p.agent);
        }
        if let Some(c) = &self.cloud {
            n += std::mem::size_of::<imdsguard_event::Cloud>() + c.heap_bytes();
        }
        if let Some(w) = &self.network {
            n += std::mem::size_of::<AlertNetwork>() + o(&w.dst_ip) + o(&w.dst_host) + o(&w.url);
        }
        if let Some(c) = &self.container {
            n += std::mem::size_of::<imdsguard_event::Container>()
                + o(&c.id)
                + o(&c.name)
                + o(&c.image)
                + o(&c.pod);
        }
        if let Some(h) = &self.http {
            let r = &h.request;
            n += std::mem::size_of::<AlertHttp>()
                + o(&h.client)
                + o(&r.method)
                + o(&r.uri)
                + o(&r.host)
                + o(&r.version)
                + o(&r.user_agent)
                + o(&r.referer)
                + o(&r.forwarded_for);
        }
        if let Some(t) = &self.triage {
            n += std::mem::size_of::<Triage>()
                + s(&t.escalate_reason)
                + t.questions
                    .iter()
                    .map(|a| std::mem::size_of::<Answer>() + s(&a.question) + s(&a.evidence))
                    .sum::<usize>()
                + t.containment
                    .iter()
                    .map(|c| {
                        std::mem::size_of::<Containment>()
                            + s(&c.action)
                            + s(&c.why)
                            + o(&c.command)
                    })
                    .sum::<usize>();
        }
        n
    }

    /// `path:line` or `path record N`.
    pub fn source_text(&self) -> String {
        self.source.to_string()
    }

    /// The target as one short string: `endpoint/path [encodings]`.
    pub fn target_text(&self) -> String {
        let Some(t) = &self.target else {
            return "-".into();
        };
        let mut s = t.endpoint.clone().unwrap_or_else(|| "?".into());
        if let Some(p) = &t.path {
            s.push_str(p);
        }
        if !t.encoding.is_empty() {
            s.push_str(&format!(" [{}]", t.encoding_text()));
        }
        s
    }

    /// The acting process as one short string: the image, or the first word of the command line.
    pub fn process_text(&self) -> String {
        let Some(p) = &self.process else {
            return "-".into();
        };
        p.image
            .clone()
            .or_else(|| {
                p.command_line
                    .as_ref()
                    .and_then(|c| c.split_whitespace().next())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "-".into())
    }

    /// The CSV header matching [`Alert::csv_record`].
    pub const CSV_HEADER: [&'static str; 24] = [
        "id",
        "severity",
        "rule_id",
        "title",
        "time",
        "host",
        "source",
        "format",
        "channel",
        "event_id",
        "event_kind",
        "process_image",
        "process_command_line",
        "process_user",
        "parent_image",
        "verdict",
        "target_provider",
        "target_endpoint",
        "target_path",
        "target_kind",
        "target_encoding",
        "attack",
        "escalate",
        "reasons",
    ];

    /// The event's key fields in a few words, as Hayabusa's details are: `Proc`, `Cmdline`,
    /// `User`, `Parent`, `Dst` (address and port, or host), `Url`, `Target` (the metadata path
    /// asked for), joined with ` ¦ `; long values shortened in the middle.
    pub fn details(&self) -> String {
        let short = |s: &str, max: usize| -> String {
            let n = s.chars().count();
            if n <= max {
                return s.to_owned();
            }
            let head: String = s.chars().take(max / 2).collect();
            let tail: String = s.chars().skip(n - (max - max / 2 - 1)).collect();
            format!("{head}…{tail}")
        };
        let file = |p: &str| p.rsplit(['\\', '/']).next().unwrap_or(p).to_owned();
        let mut out: Vec<String> = Vec::new();
        if let Some(p) = &self.process {
            if let Some(i) = &p.image {
                out.push(format!("Proc: {}", file(i)));
            }
            if let Some(c) = &p.command_line {
                out.push(format!("Cmdline: {}", short(c, 120)));
            }
            if let Some(u) = &p.user {
                out.push(format!("User: {u}"));
            }
            if let Some(pi) = &p.parent_image {
                out.push(format!("Parent: {}", file(pi)));
            }
        }
        if let Some(h) = &self.http {
            if let Some(c) = &h.client {
                out.push(format!("Client: {c}"));
            }
            let r = &h.request;
            let answer: Vec<String> = [
                r.method.clone(),
                r.status.map(|s| s.to_string()),
                r.bytes_out.map(|b| format!("{b} bytes")),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !answer.is_empty() {
                out.push(format!("Req: {}", answer.join(" ")));
            }
            if let Some(ua) = &r.user_agent {
                out.push(format!("UA: {}", short(ua, 60)));
            }
        }
        if let Some(c) = &self.cloud {
            let call: Vec<&str> = [c.service.as_deref(), c.action.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if !call.is_empty() {
                out.push(format!("Call: {}", call.join(" ")));
            }
            if let Some(p) = &c.principal {
                out.push(format!("Principal: {}", short(p, 80)));
            }
            if let Some(e) = &c.error {
                out.push(format!("Error: {e}"));
            }
            if let Some(ua) = &c.user_agent {
                out.push(format!("UA: {}", short(ua, 60)));
            }
        }
        if let Some(n) = &self.network {
            if let Some(src) = &n.src_ip {
                out.push(format!("Src: {src}"));
            }
            match (&n.dst_host, &n.dst_ip, n.dst_port) {
                (Some(h), _, Some(port)) => out.push(format!("Dst: {h}:{port}")),
                (Some(h), _, None) => out.push(format!("Dst: {h}")),
                (None, Some(ip), Some(port)) if ip.contains(':') => {
                    out.push(format!("Dst: [{ip}]:{port}"))
                }
                (None, Some(ip), Some(port)) => out.push(format!("Dst: {ip}:{port}")),
                (None, Some(ip), None) => out.push(format!("Dst: {ip}")),
                _ => {}
            }
            if let Some(u) = &n.url {
                out.push(format!("Url: {}", short(u, 100)));
            }
        }
        if let Some(t) = &self.target {
            let at = format!(
                "{}{}",
                t.endpoint.as_deref().unwrap_or(""),
                t.path.as_deref().unwrap_or("")
            );
            if !at.is_empty() {
                out.push(format!("Target: {}", short(&at, 100)));
            }
        }
        out.join(" ¦ ")
    }

    /// One CSV record: the alert's id first (what `imdsguard triage ID` takes), its event's
    /// format and native id, the ATT&CK ids joined with `;`, `escalate` as `true`/`false`
    /// (empty without triage), the encodings joined with `;`, the reasons with ` | `.
    pub fn csv_record(&self) -> [String; 24] {
        let p = self.process.as_ref();
        let t = self.target.as_ref();
        let o = |v: Option<&String>| v.cloned().unwrap_or_default();
        [
            self.id.clone(),
            self.severity.as_str().to_owned(),
            self.rule_id.clone(),
            self.title.clone(),
            o(self.time.as_ref()),
            o(self.host.as_ref()),
            self.source_text(),
            self.event.format.as_str().to_owned(),
            o(self.event.channel.as_ref()),
            o(self.event.id.as_ref()),
            self.event.kind.as_str().to_owned(),
            o(p.and_then(|p| p.image.as_ref())),
            o(p.and_then(|p| p.command_line.as_ref())),
            o(p.and_then(|p| p.user.as_ref())),
            o(p.and_then(|p| p.parent_image.as_ref())),
            p.map(|p| p.verdict.as_str().to_owned()).unwrap_or_default(),
            o(t.and_then(|t| t.provider.as_ref())),
            o(t.and_then(|t| t.endpoint.as_ref())),
            o(t.and_then(|t| t.path.as_ref())),
            t.map(|t| t.kind.as_str().to_owned()).unwrap_or_default(),
            t.map(|t| t.encoding_text().replace(',', ";"))
                .unwrap_or_default(),
            self.attack
                .iter()
                .map(Technique::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            self.triage
                .as_ref()
                .map(|t| t.escalate.to_string())
                .unwrap_or_default(),
            self.reasons.join(" | "),
        ]
    }

    /// [`Alert::csv_record`] of an alert as its JSON (what the store keeps), the same columns.
    pub fn csv_record_json(v: &serde_json::Value) -> [String; 24] {
        let text = |path: &[&str]| -> String {
            let mut v = v;
            for p in path {
                v = &v[*p];
            }
            match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }
        };
        let list = |path: &[&str], sep: &str| -> String {
            let mut v = v;
            for p in path {
                v = &v[*p];
            }
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .collect::<Vec<_>>()
                        .join(sep)
                })
                .unwrap_or_default()
        };
        // As the alert itself writes it (`path:line`, `path record N`, `path:line [index]`).
        let source = serde_json::from_value::<SourceRef>(v["source"].clone())
            .map(|s| s.to_string())
            .unwrap_or_else(|_| text(&["source", "path"]));
        [
            text(&["id"]),
            text(&["severity"]),
            text(&["rule_id"]),
            text(&["title"]),
            text(&["time"]),
            text(&["host"]),
            source,
            text(&["event", "format"]),
            text(&["event", "channel"]),
            text(&["event", "id"]),
            text(&["event", "kind"]),
            text(&["process", "image"]),
            text(&["process", "command_line"]),
            text(&["process", "user"]),
            text(&["process", "parent_image"]),
            text(&["process", "verdict"]),
            text(&["target", "provider"]),
            text(&["target", "endpoint"]),
            text(&["target", "path"]),
            text(&["target", "kind"]),
            list(&["target", "encoding"], ";"),
            list(&["attack"], ";"),
            text(&["triage", "escalate"]),
            list(&["reasons"], " | "),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record's fields: name order, a name read twice keeps both values (in the record's
    /// order) joined by `; `, written as the JSON object a map of names to values would be.
    #[test]
    fn alert_fields_are_in_name_order_with_repeated_names_joined() {
        use imdsguard_event::Sym;
        let (image, proto, user) = (
            Sym::intern("Image"),
            Sym::intern("Protocol"),
            Sym::intern("User"),
        );
        let f = AlertFields::of([
            (user, "SYSTEM"),
            (proto, "6"),
            (image, "C:\\Windows\\curl.exe"),
            (proto, "tcp"),
        ]);
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("Protocol"), Some("6; tcp"));
        assert_eq!(f.get("Nope"), None);
        let names: Vec<String> = f.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, ["Image", "Protocol", "User"]);
        let as_map: std::collections::BTreeMap<&str, &str> = [
            ("User", "SYSTEM"),
            ("Protocol", "6; tcp"),
            ("Image", "C:\\Windows\\curl.exe"),
        ]
        .into();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            serde_json::to_string(&as_map).unwrap()
        );
        assert!(AlertFields::default().is_empty());
    }

    #[test]
    fn details_name_the_key_fields_shortly() {
        let a = Alert {
            tag: AlertTag,
            id: "x".into(),
            rule_id: "r".into(),
            title: "t".into(),
            severity: Severity::High,
            attack: Vec::new(),
            time: None,
            host: None,
            source: SourceRef {
                path: "f".into(),
                position: imdsguard_event::Position::Line(1),
            },
            event: AlertEvent {
                format: Format::Auditd,
                kind: imdsguard_event::EventKind::NetworkConnect,
                id: None,
                channel: None,
                fields: Default::default(),
            },
            target: None,
            process: Some(AlertProcess {
                pid: None,
                image: Some("C:\\Windows\\System32\\curl.exe".into()),
                command_line: Some(format!("curl {}", "a".repeat(200))),
                user: Some("CORP\\bob".into()),
                parent_image: Some("/usr/bin/bash".into()),
                parent_command_line: None,
                verdict: VerdictKind::Unlisted,
                agent: None,
            }),
            network: Some(AlertNetwork {
                src_ip: None,
                dst_ip: Some("fd00:ec2::254".into()),
                dst_port: Some(80),
                dst_host: None,
                url: None,
            }),
            container: None,
            http: None,
            cloud: None,
            reasons: Vec::new(),
            related: Vec::new(),
            triage: None,
        };
        let d = a.details();
        assert!(d.starts_with("Proc: curl.exe ¦ Cmdline: curl aaa"), "{d}");
        assert!(d.contains('…'), "{d}");
        assert!(
            d.contains(" ¦ User: CORP\\bob ¦ Parent: bash ¦ Dst: [fd00:ec2::254]:80"),
            "{d}"
        );
        let cmd = d.split(" ¦ ").nth(1).unwrap();
        assert_eq!(cmd.chars().count(), "Cmdline: ".len() + 120);
    }
}
