//! The typed event every decoder produces and every later stage reads.
//!
//! One [`Event`] per log record, whatever the format: the fields detections need are named once
//! here (process, parent, network destination, DNS query, HTTP request), so a rule written against
//! `network.dst_ip` runs unchanged over Sysmon, Windows Security, Defender or ECS records.

use serde::Serialize;

use crate::{Format, SourceRef};

/// What happened, as far as metadata abuse is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A process started (Sysmon 1, Security 4688, Defender `ProcessCreated`, ECS `process`/`start`).
    ProcessStart,
    /// A network connection (Sysmon 3, Security 5156, Defender `ConnectionSuccess`..., ECS `network`).
    NetworkConnect,
    /// A DNS query (Sysmon 22, Defender `DnsQueryResponse`, ECS `dns`).
    DnsQuery,
    /// An HTTP request (web and proxy logs, ECS `url`).
    HttpRequest,
    /// A call to a cloud provider's API, from its audit log (CloudTrail).
    CloudCall,
    /// Anything else the format carries; kept so Sigma rules can still match it.
    Other,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [EventKind] = &[
        EventKind::ProcessStart,
        EventKind::NetworkConnect,
        EventKind::DnsQuery,
        EventKind::HttpRequest,
        EventKind::CloudCall,
        EventKind::Other,
    ];

    /// The kebab-case name used in every output and by rules.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProcessStart => "process-start",
            EventKind::NetworkConnect => "network-connect",
            EventKind::DnsQuery => "dns-query",
            EventKind::HttpRequest => "http-request",
            EventKind::CloudCall => "cloud-call",
            EventKind::Other => "other",
        }
    }
}

/// A process as a record names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Process {
    /// Process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    /// Full path of the executable as written (`C:\...`, `\device\harddiskvolume2\...`, `/usr/bin/curl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// Account the process runs as (`DOMAIN\user` or `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Hashes as the record gives them (`SHA256=...,MD5=...`, or one value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashes: Option<String>,
    /// The kernel's short name for the process (Linux `comm`, at most 15 bytes). For a script run
    /// through its `#!` line it is the script's file name, not the interpreter's, which tells
    /// `/usr/bin/python3` running an agent from the same interpreter running anything else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}

impl Process {
    /// Whether nothing is known of the process.
    pub fn is_empty(&self) -> bool {
        *self == Process::default()
    }

    /// The executable's file name, without its directory (`powershell.exe`).
    pub fn name(&self) -> Option<&str> {
        let image = self.image.as_deref()?;
        let name = image.rsplit(['\\', '/']).next().unwrap_or(image);
        (!name.is_empty()).then_some(name)
    }
}

/// A network connection's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Network {
    /// `tcp`, `udp`, ... (protocol numbers are named).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Source address as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// Source port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination address as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    /// Destination port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// Destination host name, when the record resolved or requested one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_host: Option<String>,
    /// URL, when the record has one (Defender `RemoteUrl`, ECS `url.full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether this host opened the connection (`true`) or accepted it (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<bool>,
}

/// Where an HTTP request was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vantage {
    /// By the web server or reverse proxy that received it (an access log).
    Inbound,
    /// By a forward proxy that sent it on (Squid).
    Outbound,
    /// On the wire, by a network monitor (Zeek).
    Wire,
    /// The log does not say (an ECS web event without `network.direction`).
    Unknown,
}

impl Vantage {
    /// Every vantage.
    pub const ALL: &'static [Vantage] = &[
        Vantage::Inbound,
        Vantage::Outbound,
        Vantage::Wire,
        Vantage::Unknown,
    ];

    /// The kebab-case name used in every output and by rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Vantage::Inbound => "inbound",
            Vantage::Outbound => "outbound",
            Vantage::Wire => "wire",
            Vantage::Unknown => "unknown",
        }
    }
}

/// An HTTP request as a web, proxy or network log records it. The client is the network part's
/// source, the full URL (scheme and host where the log gives them) its `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Http {
    /// Where it was recorded.
    pub vantage: Vantage,
    /// `GET`, `PUT`, … as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request target as logged: path and query (`/fetch?u=http%3A%2F%2F…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The `Host` header, or the virtual host that served it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP/1.1`, … as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The answer's status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bytes of the answer's body (or of the whole answer, as the log counts them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// The `User-Agent` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The `Referer` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referer: Option<String>,
    /// The `X-Forwarded-For` header: the addresses a request came through, the client first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<String>,
    /// The names of the request's headers, when the log records them (Zeek's
    /// `client_header_names`, a WAF's headers): what the request did not send is known too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_names: Option<Vec<String>>,
}

/// Who made a cloud API call, as the provider's audit log names the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Principal {
    /// A role session (CloudTrail `AssumedRole`): temporary credentials.
    AssumedRole,
    /// A long-lived user (`IAMUser`, `Root`, an identity-center user).
    User,
    /// The provider's own service acting on the account's behalf (`AWSService`).
    Service,
    /// A workload's identity: an Azure managed identity, a Google Cloud service account.
    Workload,
    /// Anything else the log names (`FederatedUser`, `AWSAccount`, unknown types).
    Other,
}

impl Principal {
    /// The kebab-case name used in every output and by rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Principal::AssumedRole => "assumed-role",
            Principal::User => "user",
            Principal::Service => "service",
            Principal::Workload => "workload",
            Principal::Other => "other",
        }
    }
}

/// The instance metadata settings a call sets, as its request parameters give them; `None` where
/// the call leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataOptions {
    /// `HttpTokens`: `required` (IMDSv2 only) or `optional` (IMDSv1 allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tokens: Option<String>,
    /// `HttpPutResponseHopLimit`: how many network hops the token answer may travel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_limit: Option<u32>,
    /// `HttpEndpoint`: `enabled` or `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// What the settings apply to: an instance id, a launch template, or `account default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl MetadataOptions {
    /// How these settings weaken the metadata service's protection, each said in a few words:
    /// IMDSv1 allowed, a hop limit above 1 (the token reaches containers and forwarded hops),
    /// the endpoint turned on.
    pub fn weakens(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self
            .http_tokens
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("optional"))
        {
            out.push("imdsv1-allowed");
        }
        if self.hop_limit.is_some_and(|h| h > 1) {
            out.push("hop-limit-raised");
        }
        if self
            .endpoint
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("enabled"))
        {
            out.push("endpoint-enabled");
        }
        out
    }
}

/// A call to a cloud provider's API as its audit log records it: who (the identity, and for a
/// role session the instance whose credentials it is), from where, what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cloud {
    /// `aws`, `azure`, `gcp`.
    pub provider: &'static str,
    /// The service called (`s3.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The operation (`GetObject`, `ModifyInstanceMetadataOptions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The caller's address (`sourceIPAddress`), or the service name the provider writes there
    /// when one of its services called.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_ip: Option<String>,
    /// The caller's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The kind of identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<Principal>,
    /// The identity (`arn:aws:sts::…:assumed-role/Role/i-0abc…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The role a session was issued for (its ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The session's name: for an instance profile, the instance id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The instance whose credentials made the call, when the record says so: the EC2 instance
    /// a role session is named after, the Azure VM a managed identity's token names
    /// (`xms_mirid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The access key used (`ASIA…` keys are temporary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// How the instance got the credentials: `1.0` over IMDSv1, `2.0` over IMDSv2
    /// (CloudTrail's `ec2RoleDelivery`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// The service that made the call on the caller's behalf (`invokedBy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    /// The VPC endpoint the call came through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint: Option<String>,
    /// The error the call failed with (`AccessDenied`), if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The account the call was made in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The instance metadata settings the call sets, for calls that set them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_options: Option<MetadataOptions>,
    /// For a role assumed on an instance's behalf: the session name and the access key issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued: Option<(String, String)>,
}

impl Cloud {
    /// About how many bytes its strings take, for memory budgets.
    pub fn heap_bytes(&self) -> usize {
        [
            &self.service,
            &self.action,
            &self.caller_ip,
            &self.user_agent,
            &self.principal,
            &self.role,
            &self.session,
            &self.instance,
            &self.access_key,
            &self.delivery,
            &self.invoked_by,
            &self.vpc_endpoint,
            &self.error,
            &self.account,
            &self.region,
        ]
        .into_iter()
        .map(|v| v.as_ref().map_or(0, String::capacity))
        .sum()
    }
}

/// The container a process runs in, when the record says (ECS `container.*`, Kubernetes pod).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Container id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Container name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image the container runs (`registry/name:tag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Kubernetes pod name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Kubernetes namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One decoded log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Where the record is.
    pub source: SourceRef,
    /// Which decoder read it.
    pub format: Format,
    /// What happened.
    pub kind: EventKind,
    /// The Windows channel (`Security`, `Microsoft-Windows-Sysmon/Operational`), for Windows
    /// events that name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The format's own event id (`1`, `3`, `22`, `4688`, `5156`), or its action name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_id: Option<String>,
    /// The record's own number or id where its format has one: Windows `EventRecordID` (NXLog's
    /// `RecordNumber`, Winlogbeat's `record_id`), Defender's `ReportId`, the audit serial,
    /// ECS `event.id`. With the host and format it names the record wherever the file lies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// When: UTC RFC 3339 with milliseconds once the reader has normalized it (decoders put the
    /// record's most reliable time field here as written, and say its [`Clock`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Whether [`Event::time`], as a decoder wrote it without a zone, is UTC or local time.
    #[serde(skip)]
    pub clock: crate::Clock,
    /// The host the record comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The acting process.
    #[serde(skip_serializing_if = "Process::is_empty")]
    pub process: Process,
    /// Its parent.
    #[serde(skip_serializing_if = "Process::is_empty")]
    pub parent: Process,
    /// Network detail, for connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// The HTTP request, for web, proxy and network logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<Http>>,
    /// The API call, for cloud audit logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<Box<Cloud>>,
    /// The queried name, for DNS queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_query: Option<String>,
    /// The container the acting process runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The record's own fields (Windows EventData and System fields, by their names), kept only
    /// under names a loaded rule reads ([`crate::Sym`]), for rules that test fields the typed model
    /// does not name. Values that no rule names by field are kept under [`Event::ANY_FIELD`] when
    /// keyword rules need them.
    #[serde(skip)]
    pub fields: Vec<(crate::Sym, String)>,
}

impl Event {
    /// An event of `kind` read by `format` at `source`, every other part empty: what a decoder
    /// fills in (`Event { time, network, ..Event::empty(source, format, kind) }`), so a part added
    /// to the model is written once here, not in every decoder.
    pub fn empty(source: SourceRef, format: Format, kind: EventKind) -> Event {
        Event {
            source,
            format,
            kind,
            channel: None,
            native_id: None,
            record_id: None,
            time: None,
            clock: crate::Clock::Utc,
            host: None,
            process: Process::default(),
            parent: Process::default(),
            network: None,
            http: None,
            cloud: None,
            dns_query: None,
            container: None,
            fields: Vec::new(),
        }
    }

    /// The symbol under which values are kept for keyword searches.
    pub const ANY_FIELD: &'static str = "*";

    /// What names this record whatever file it was read from, however the path was spelled:
    /// a hash of its format, host, time and event id with its own record id where the format
    /// has one, else with what the record says (process, parent, network, DNS, container; an
    /// HTTP request by its client and URL, which the network part holds). Two copies of one log
    /// give their records the same identity.
    pub fn identity(&self) -> u64 {
        let n = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
        let t = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut parts: Vec<String> = vec![
            self.format.as_str().to_owned(),
            t(&self.host),
            t(&self.time),
            t(&self.native_id),
        ];
        match &self.record_id {
            Some(id) => parts.push(format!("record {id}")),
            None => {
                let p = &self.process;
                let q = &self.parent;
                parts.extend([
                    n(p.pid),
                    t(&p.image),
                    t(&p.command_line),
                    t(&p.user),
                    t(&p.comm),
                    n(q.pid),
                    t(&q.image),
                    t(&q.command_line),
                    t(&self.dns_query),
                ]);
                if let Some(net) = &self.network {
                    parts.extend([
                        t(&net.protocol),
                        t(&net.src_ip),
                        n(net.src_port.map(u64::from)),
                        t(&net.dst_ip),
                        n(net.dst_port.map(u64::from)),
                        t(&net.dst_host),
                        t(&net.url),
                    ]);
                }
                if let Some(c) = &self.container {
                    parts.extend([t(&c.id), t(&c.name), t(&c.pod)]);
                }
            }
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        crate::stable_hash(&refs)
    }

    /// The value of a raw field.
    pub fn field(&self, name: crate::Sym) -> Option<&str> {
        self.fields
            .iter()
            .find(|(s, _)| *s == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Position;

    #[test]
    fn formats_serialize_as_their_names() {
        for f in [
            Format::SentinelSecurityEvent,
            Format::SentinelWindowsEvent,
            Format::EvtxJson,
            Format::DefenderStreaming,
        ] {
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
    }

    #[test]
    fn process_name_is_the_last_path_component() {
        let p = |image: &str| Process {
            image: Some(image.into()),
            ..Process::default()
        };
        assert_eq!(p(r"C:\Windows\System32\curl.exe").name(), Some("curl.exe"));
        assert_eq!(
            p(r"\device\harddiskvolume4\windowsazure\guestagent.exe").name(),
            Some("guestagent.exe")
        );
        assert_eq!(p("/usr/bin/curl").name(), Some("curl"));
        assert_eq!(p("curl").name(), Some("curl"));
        assert_eq!(p("C:\\dir\\").name(), None);
        assert_eq!(Process::default().name(), None);
    }

    #[test]
    fn empty_parts_are_left_out_of_json() {
        let e = Event {
            source: SourceRef {
                path: "a.json".into(),
                position: Position::Line(3),
            },
            format: Format::NxlogJson,
            kind: EventKind::NetworkConnect,
            channel: None,
            native_id: Some("5156".into()),
            record_id: None,
            time: None,
            clock: Default::default(),
            host: Some("web01".into()),
            process: Process {
                pid: Some(42),
                image: Some("curl.exe".into()),
                ..Process::default()
            },
            parent: Process::default(),
            network: Some(Network {
                dst_ip: Some("169.254.169.254".into()),
                dst_port: Some(80),
                ..Network::default()
            }),
            http: None,
            cloud: None,
            dns_query: None,
            container: None,
            fields: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"source":{"path":"a.json","line":3},"format":"nxlog-json","kind":"network-connect","native_id":"5156","host":"web01","process":{"pid":42,"image":"curl.exe"},"network":{"dst_ip":"169.254.169.254","dst_port":80}}"#
        );
    }
}
