//! Typed field ids: every field a rule can test, resolved from its name once when a rule is built,
//! read per event by a `match`, never by a string lookup.

use std::borrow::Cow;
use std::fmt;

use imdsguard_enrich::Enriched;
use imdsguard_event::Sym;

macro_rules! fields {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// A field of an enriched event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $( $(#[$doc])* $variant, )*
            /// A record's own field, by its interned name (Sigma fields the typed model does not
            /// name: `TargetFilename`, `ImageLoaded`, `EventID`, ...).
            Raw(Sym),
            /// A record's own field when the record has it, else a typed field that means the same
            /// (the index into [`Field::ALL`]): Sigma's `Image` is EventData `Image` in Sysmon and
            /// `process.image` in Security 4688, Defender, auditd or ECS records.
            RawOr(Sym, u8),
            /// Every value of the record's own fields, for keyword searches.
            Keywords,
        }

        impl Field {
            /// Every field, in documentation order.
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The dotted name rules and reason templates use; a record's own field by its name.
            pub fn name(self) -> Cow<'static, str> {
                match self {
                    $( Field::$variant => Cow::Borrowed($name), )*
                    Field::Raw(s) | Field::RawOr(s, _) => Cow::Owned(s.name().to_string()),
                    Field::Keywords => Cow::Borrowed("keywords"),
                }
            }

            /// The field with this name.
            pub fn from_name(name: &str) -> Option<Field> {
                match name {
                    $( $name => Some(Field::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    /// `process-start`, `network-connect`, `dns-query`, `http-request` or `other`.
    EventKind = "event.kind",
    /// The decoder's name (`evtx-json`, `ecs`, ...).
    EventFormat = "event.format",
    /// The format's own event id (`1`, `3`, `4688`, `connect`).
    EventId = "event.id",
    /// The host the record comes from.
    Host = "host",
    /// The acting process's executable path as written.
    ProcessImage = "process.image",
    /// The executable's file name.
    ProcessName = "process.name",
    /// The acting process's command line.
    ProcessCommandLine = "process.command_line",
    /// The account it runs as.
    ProcessUser = "process.user",
    /// The parent's executable path.
    ParentImage = "parent.image",
    /// The parent's file name.
    ParentName = "parent.name",
    /// The parent's command line.
    ParentCommandLine = "parent.command_line",
    /// Destination address as logged.
    DstIp = "network.dst_ip",
    /// Source address.
    SrcIp = "network.src_ip",
    /// Source port.
    SrcPort = "network.src_port",
    /// Destination port.
    DstPort = "network.dst_port",
    /// Destination host name.
    DstHost = "network.dst_host",
    /// Requested URL.
    Url = "network.url",
    /// Queried DNS name.
    DnsQuery = "dns.query",
    /// Container id.
    ContainerId = "container.id",
    /// Container image.
    ContainerImage = "container.image",
    /// Kubernetes pod.
    ContainerPod = "container.pod",
    /// The HTTP method of a web, proxy or network log's request (`GET`).
    HttpMethod = "http.method",
    /// The answer's status code.
    HttpStatus = "http.status",
    /// Where the request was recorded: `inbound` (a web server's access log), `outbound` (a
    /// forward proxy), `wire` (a network monitor), `unknown`.
    HttpVantage = "http.vantage",
    /// The client's address.
    HttpClient = "http.client",
    /// The `User-Agent` header.
    HttpUserAgent = "http.user_agent",
    /// The `Host` header, or the virtual host that served the request.
    HttpHost = "http.host",
    /// The `X-Forwarded-For` header (or the addresses an access log writes before the client):
    /// the request was relayed for another client.
    HttpForwardedFor = "http.forwarded_for",
    /// The request target as logged: path and query (`/fetch?u=…`), or a proxy's absolute URL.
    HttpUri = "http.uri",
    /// The target's path, without scheme, authority or query (`/fetch`).
    HttpPath = "http.path",
    /// The target's query, without `?` (`u=…`).
    HttpQuery = "http.query",
    /// The extension of the path's last segment (`php`, `exe`).
    HttpExtension = "http.extension",
    /// The `Referer` header.
    HttpReferer = "http.referer",
    /// Bytes of the answer, as the log counts them.
    HttpBytesOut = "http.bytes_out",
    /// The names of the headers the request sent, when the log records them.
    HttpHeaderNames = "http.header_names",
    /// A cloud audit log's provider (`aws`).
    CloudProvider = "cloud.provider",
    /// The service called (`s3.amazonaws.com`).
    CloudService = "cloud.service",
    /// The API operation (`GetObject`).
    CloudAction = "cloud.action",
    /// The caller's address, or the service name the provider writes in its place.
    CloudCallerIp = "cloud.caller_ip",
    /// The caller's user agent.
    CloudUserAgent = "cloud.user_agent",
    /// The kind of identity: `assumed-role`, `user`, `service`, `workload`, `other`.
    CloudPrincipalType = "cloud.principal_type",
    /// The identity's ARN or name.
    CloudPrincipal = "cloud.principal",
    /// The role a session was issued for.
    CloudRole = "cloud.role",
    /// The session's name.
    CloudSession = "cloud.session",
    /// The instance whose credentials made the call.
    CloudInstance = "cloud.instance",
    /// The access key used.
    CloudAccessKey = "cloud.access_key",
    /// How the instance got the credentials: `1.0` (IMDSv1) or `2.0` (IMDSv2).
    CloudDelivery = "cloud.delivery",
    /// The error the call failed with.
    CloudError = "cloud.error",
    /// The VPC endpoint the call came through.
    CloudVpcEndpoint = "cloud.vpc_endpoint",
    /// How the metadata settings a call sets weaken protection (a list of `imdsv1-allowed`,
    /// `hop-limit-raised`, `endpoint-enabled`).
    CloudImdsWeakened = "cloud.imds_weakened",
    /// What the metadata settings apply to (an instance, a launch template, `account default`).
    CloudImdsTarget = "cloud.imds_target",
    /// The `HttpTokens` a call sets.
    CloudImdsTokens = "cloud.imds_tokens",
    /// The `HttpPutResponseHopLimit` a call sets.
    CloudImdsHopLimit = "cloud.imds_hop_limit",
    /// Enriched: what the most severe metadata target hands out (`credentials`, `token`,
    /// `identity`, `userdata`, `other`); absent when the event has no target.
    TargetKind = "target.kind",
    /// Enriched: the provider of the most severe target, when known (its catalog id, `aws`).
    TargetProvider = "target.provider",
    /// Enriched: the service's name in the catalog (`Amazon EC2 Instance Metadata Service (IMDS)`).
    TargetService = "target.service",
    /// Enriched: the endpoint of the most severe target (`169.254.169.254`).
    TargetEndpoint = "target.endpoint",
    /// Enriched: the normalized path of the most severe target.
    TargetPath = "target.path",
    /// Enriched: every non-canonical encoding of every target (a list).
    TargetEncoding = "target.encoding",
    /// Enriched: where targets were found: `destination`, `url`, `dns`, `command-line` (a list).
    TargetSource = "target.source",
    /// Enriched: `PUT` when a target is the token request.
    TargetMethod = "target.method",
    /// Enriched: the allowlist verdict: `agent`, `masquerade`, `unverified`, `unlisted`, `unknown`.
    ProcessVerdict = "process.verdict",
    /// Enriched: the allowlist entry the verdict names.
    ProcessAgent = "process.agent",
    /// Enriched: the verdict in a sentence.
    ProcessVerdictReason = "process.verdict_reason",
    /// Enriched: where the executable lives: `deleted`, `shared-memory`, `temp`, `downloads`,
    /// `user-writable`, `system`, `other`.
    ProcessLocation = "process.location",
    /// Enriched: the location in words.
    ProcessLocationText = "process.location_text",
    /// Enriched: `web-server` or `web-server-child`.
    ProcessCaller = "process.caller",
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A field's value in one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// Text.
    Str(Cow<'a, str>),
    /// A number (ports).
    Int(u64),
    /// Several names (encodings, target sources); a matcher holds when it holds for any.
    List(Vec<&'static str>),
    /// Several texts (keyword searches over every field); a matcher holds when it holds for any.
    Strs(Vec<&'a str>),
}

impl Value<'_> {
    /// Calls `f` with each text the value holds (a number as its digits).
    pub(crate) fn each_text(&self, mut f: impl FnMut(&str)) {
        match self {
            Value::Str(s) => f(s),
            Value::Int(n) => f(&n.to_string()),
            Value::List(l) => l.iter().for_each(|s| f(s)),
            Value::Strs(l) => l.iter().for_each(|s| f(s)),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
            Value::List(l) => f.write_str(&l.join(", ")),
            Value::Strs(l) => f.write_str(&l.join(", ")),
        }
    }
}

fn s<'a>(v: Option<&'a str>) -> Option<Value<'a>> {
    v.filter(|s| !s.is_empty())
        .map(|s| Value::Str(Cow::Borrowed(s)))
}

fn st(v: &'static str) -> Option<Value<'static>> {
    Some(Value::Str(Cow::Borrowed(v)))
}

/// A record's own field: one value, or several (unnamed EventData `Data` items).
fn raw_value(e: &imdsguard_event::Event, sym: Sym) -> Option<Value<'_>> {
    // Decoders keep the values of one name next to each other.
    let at = e.fields.iter().position(|(s, _)| *s == sym)?;
    let run = e.fields[at..].iter().take_while(|(s, _)| *s == sym).count();
    if run == 1 {
        Some(Value::Str(Cow::Borrowed(e.fields[at].1.as_str())))
    } else {
        Some(Value::Strs(
            e.fields[at..at + run]
                .iter()
                .map(|(_, v)| v.as_str())
                .collect(),
        ))
    }
}

impl Field {
    /// The typed field's index in [`Field::ALL`], for [`Field::RawOr`].
    pub fn typed_index(self) -> Option<u8> {
        Field::ALL
            .iter()
            .position(|f| *f == self)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// Every value the field can take, when they are a closed set: the names of an enum the
    /// product defines (an event kind, a format, a verdict...). A rule testing such a field for
    /// a value outside it would never match, so building it fails.
    pub fn domain(self) -> Option<Vec<&'static str>> {
        use imdsguard_enrich::{Caller, Location, TargetSource, VerdictKind};
        use imdsguard_target::{Encoding, Kind};
        Some(match self {
            Field::EventKind => imdsguard_event::EventKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect(),
            Field::EventFormat => imdsguard_event::Format::ALL
                .iter()
                .map(|i| i.name)
                .collect(),
            Field::TargetKind => Kind::ALL.iter().map(|k| k.as_str()).collect(),
            Field::TargetEncoding => Encoding::ALL.iter().map(|e| e.as_str()).collect(),
            Field::TargetSource => TargetSource::ALL.iter().map(|t| t.as_str()).collect(),
            Field::TargetMethod => vec!["PUT"],
            Field::ProcessVerdict => VerdictKind::ALL.iter().map(|v| v.as_str()).collect(),
            Field::ProcessLocation => Location::ALL.iter().map(|l| l.as_str()).collect(),
            Field::ProcessCaller => Caller::ALL.iter().map(|c| c.as_str()).collect(),
            Field::CloudPrincipalType => {
                vec!["assumed-role", "user", "service", "workload", "other"]
            }
            Field::CloudImdsWeakened => {
                vec!["imdsv1-allowed", "hop-limit-raised", "endpoint-enabled"]
            }
            Field::HttpVantage => imdsguard_event::Vantage::ALL
                .iter()
                .map(|v| v.as_str())
                .collect(),
            _ => return None,
        })
    }

    /// Whether the enrich stage computes this field (as opposed to the decoder).
    pub fn is_enriched(self) -> bool {
        !matches!(self, Field::Raw(_) | Field::RawOr(..) | Field::Keywords)
            && self >= Field::TargetKind
    }

    /// The field's value in `ev`, `None` when the event has none.
    pub fn get<'a>(self, ev: &'a Enriched<'_>) -> Option<Value<'a>> {
        let e = ev.event;
        let net = e.network.as_ref();
        let c = e.container.as_ref();
        match self {
            Field::EventKind => st(e.kind.as_str()),
            Field::EventFormat => st(e.format.as_str()),
            Field::EventId => s(e.native_id.as_deref()),
            Field::Host => s(e.host.as_deref()),
            Field::ProcessImage => s(e.process.image.as_deref()),
            Field::ProcessName => s(e.process.name()),
            Field::ProcessCommandLine => s(e.process.command_line.as_deref()),
            Field::ProcessUser => s(e.process.user.as_deref()),
            Field::ParentImage => s(e.parent.image.as_deref()),
            Field::ParentName => s(e.parent.name()),
            Field::ParentCommandLine => s(e.parent.command_line.as_deref()),
            Field::DstIp => s(net.and_then(|n| n.dst_ip.as_deref())),
            Field::SrcIp => s(net.and_then(|n| n.src_ip.as_deref())),
            Field::SrcPort => net.and_then(|n| n.src_port).map(|p| Value::Int(p.into())),
            Field::DstPort => net.and_then(|n| n.dst_port).map(|p| Value::Int(p.into())),
            Field::DstHost => s(net.and_then(|n| n.dst_host.as_deref())),
            Field::Url => s(net.and_then(|n| n.url.as_deref())),
            Field::DnsQuery => s(e.dns_query.as_deref()),
            Field::ContainerId => s(c.and_then(|c| c.id.as_deref())),
            Field::ContainerImage => s(c.and_then(|c| c.image.as_deref())),
            Field::ContainerPod => s(c.and_then(|c| c.pod.as_deref())),
            Field::HttpMethod => s(e.http.as_ref().and_then(|h| h.method.as_deref())),
            Field::HttpStatus => e
                .http
                .as_ref()
                .and_then(|h| h.status)
                .map(|s| Value::Int(s.into())),
            Field::HttpVantage => e.http.as_ref().and_then(|h| st(h.vantage.as_str())),
            Field::HttpClient => s(e.http.as_ref().and(net).and_then(|n| n.src_ip.as_deref())),
            Field::HttpUserAgent => s(e.http.as_ref().and_then(|h| h.user_agent.as_deref())),
            Field::HttpHost => s(e.http.as_ref().and_then(|h| h.host.as_deref())),
            Field::HttpForwardedFor => s(e.http.as_ref().and_then(|h| h.forwarded_for.as_deref())),
            Field::HttpUri => s(e.http.as_ref().and_then(|h| h.uri.as_deref())),
            Field::HttpPath => s(uri_parts(e).map(|(p, _)| p)),
            Field::HttpQuery => s(uri_parts(e).and_then(|(_, q)| q)),
            Field::HttpExtension => s(uri_parts(e).and_then(|(p, _)| {
                let last = p.rsplit('/').next()?;
                last.rsplit_once('.')
                    .map(|(_, ext)| ext)
                    .filter(|x| !x.is_empty())
            })),
            Field::HttpReferer => s(e.http.as_ref().and_then(|h| h.referer.as_deref())),
            Field::HttpHeaderNames => e
                .http
                .as_ref()
                .and_then(|h| h.header_names.as_ref())
                .map(|n| Value::Strs(n.iter().map(String::as_str).collect())),
            Field::HttpBytesOut => e.http.as_ref().and_then(|h| h.bytes_out).map(Value::Int),
            Field::CloudProvider => e.cloud.as_ref().and_then(|c| st(c.provider)),
            Field::CloudService => s(cloud(e).and_then(|c| c.service.as_deref())),
            Field::CloudAction => s(cloud(e).and_then(|c| c.action.as_deref())),
            Field::CloudCallerIp => s(cloud(e).and_then(|c| c.caller_ip.as_deref())),
            Field::CloudUserAgent => s(cloud(e).and_then(|c| c.user_agent.as_deref())),
            Field::CloudPrincipalType => cloud(e)
                .and_then(|c| c.principal_type)
                .and_then(|p| st(p.as_str())),
            Field::CloudPrincipal => s(cloud(e).and_then(|c| c.principal.as_deref())),
            Field::CloudRole => s(cloud(e).and_then(|c| c.role.as_deref())),
            Field::CloudSession => s(cloud(e).and_then(|c| c.session.as_deref())),
            Field::CloudInstance => s(cloud(e).and_then(|c| c.instance.as_deref())),
            Field::CloudAccessKey => s(cloud(e).and_then(|c| c.access_key.as_deref())),
            Field::CloudDelivery => s(cloud(e).and_then(|c| c.delivery.as_deref())),
            Field::CloudError => s(cloud(e).and_then(|c| c.error.as_deref())),
            Field::CloudVpcEndpoint => s(cloud(e).and_then(|c| c.vpc_endpoint.as_deref())),
            Field::CloudImdsWeakened => cloud(e)
                .and_then(|c| c.metadata_options.as_ref())
                .map(|o| o.weakens())
                .filter(|w| !w.is_empty())
                .map(Value::List),
            Field::CloudImdsTarget => s(imds_options(e).and_then(|o| o.target.as_deref())),
            Field::CloudImdsTokens => s(imds_options(e).and_then(|o| o.http_tokens.as_deref())),
            Field::CloudImdsHopLimit => imds_options(e)
                .and_then(|o| o.hop_limit)
                .map(|h| Value::Int(h.into())),
            Field::TargetKind => ev
                .best()
                .map(|f| Value::Str(Cow::Borrowed(f.target.kind.as_str()))),
            Field::TargetProvider => s(ev.best().and_then(|f| f.target.provider_id())),
            Field::TargetService => s(ev
                .best()
                .and_then(|f| f.target.provider.map(|p| p.name.as_str()))),
            Field::TargetEndpoint => s(ev.best().and_then(|f| f.target.endpoint_text())),
            Field::TargetPath => s(ev.best().and_then(|f| f.target.path.as_deref())),
            Field::TargetEncoding => {
                let enc = ev.encodings();
                (!enc.is_empty()).then(|| Value::List(enc.iter().map(|e| e.as_str()).collect()))
            }
            Field::TargetSource => {
                let mut l: Vec<&'static str> = Vec::new();
                for f in ev.targets() {
                    let n = f.source.as_str();
                    if !l.contains(&n) {
                        l.push(n);
                    }
                }
                (!l.is_empty()).then_some(Value::List(l))
            }
            Field::TargetMethod => ev
                .targets()
                .iter()
                .find_map(|f| f.target.method)
                .and_then(st),
            Field::ProcessVerdict => st(ev.verdict().as_str()),
            Field::ProcessAgent => s(ev.verdict().agent().map(|a| a.id.as_str())),
            Field::ProcessVerdictReason => Some(Value::Str(Cow::Owned(ev.verdict().explain(e)))),
            Field::ProcessLocation => ev.location().and_then(|l| st(l.as_str())),
            Field::ProcessLocationText => ev.location().and_then(|l| st(l.describe())),
            Field::ProcessCaller => ev.caller().and_then(|c| st(c.as_str())),
            Field::Raw(sym) => raw_value(e, sym),
            Field::RawOr(sym, typed) => match raw_value(e, sym) {
                Some(v) => Some(v),
                None => Field::ALL.get(usize::from(typed)).and_then(|f| f.get(ev)),
            },
            Field::Keywords => match &e.http {
                // A web, proxy or wire record's text: what its log line says of the request,
                // and the fields kept beside it (captured headers).
                Some(h) => {
                    let v: Vec<&str> = [
                        h.method.as_deref(),
                        h.uri.as_deref(),
                        h.host.as_deref(),
                        h.user_agent.as_deref(),
                        h.referer.as_deref(),
                        h.forwarded_for.as_deref(),
                    ]
                    .into_iter()
                    .flatten()
                    .chain(e.fields.iter().map(|(_, v)| v.as_str()))
                    .collect();
                    (!v.is_empty()).then_some(Value::Strs(v))
                }
                _ => (!e.fields.is_empty())
                    .then(|| Value::Strs(e.fields.iter().map(|(_, v)| v.as_str()).collect())),
            },
        }
    }
}

fn cloud(e: &imdsguard_event::Event) -> Option<&imdsguard_event::Cloud> {
    e.cloud.as_deref()
}

fn imds_options(e: &imdsguard_event::Event) -> Option<&imdsguard_event::MetadataOptions> {
    cloud(e)?.metadata_options.as_ref()
}

/// An HTTP request target's path and query: `http://h:80/a/b.php?x=1` and `/a/b.php?x=1` are
/// (`/a/b.php`, `x=1`).
fn uri_parts(e: &imdsguard_event::Event) -> Option<(&str, Option<&str>)> {
    let uri = e.http.as_ref()?.uri.as_deref()?;
    let target = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => uri,
    };
    let target = target.split('#').next().unwrap_or(target);
    Some(match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in Field::ALL {
            assert_eq!(Field::from_name(&f.name()), Some(*f));
            assert!(seen.insert(f.name()));
        }
        assert_eq!(Field::from_name("process.nope"), None);
        assert!(Field::TargetKind.is_enriched());
        assert!(!Field::ContainerPod.is_enriched());
    }
}
