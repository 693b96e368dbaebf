//! The enrich stage: what an event means for metadata abuse, computed once per event.
//!
//! [`Enricher::enrich`] wraps an [`Event`] in an [`Enriched`] view whose fields are computed on
//! first use and kept: the metadata [`Found`] targets in its destination, URL, DNS query and command
//! line (through the normalizer of `imdsguard-target`); the [`Verdict`] on its process against the
//! agent [`Allowlist`]; the [`Location`] class of its executable; whether it is a web server or one's
//! child ([`Caller`]); and its container. Rules read these typed fields and never re-parse the
//! strings this stage has read.
//!
//! Destination addresses and resolved names are how the operating system logged the connection,
//! not how a person wrote it, so their notation says nothing: their encodings are dropped, except
//! the DNS tricks (wildcard DNS, rebinding, an address embedded in a name) that a resolver saw.

mod allowlist;
mod caller;
mod error;
mod path;

use std::cell::OnceCell;

use imdsguard_event::Event;
use imdsguard_target::{Encoding, Encodings, Normalizer, ReadAs, Target};

pub use allowlist::{script_argument, Agent, Allowlist, Verdict, VerdictKind};
pub use caller::{caller, serves_http, web_server_patterns, Caller};
pub use error::AllowlistError;
pub use path::{basename, normalize_path, strip_deleted, Location};

/// Where in an event a target was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetSource {
    /// The connection's destination address or resolved host name: a connection was made.
    Destination,
    /// A requested URL (Defender `RemoteUrl`, ECS `url.full`, web and proxy logs).
    Url,
    /// A DNS query.
    Dns,
    /// The acting process's command line: a reference, which may or may not have been followed.
    CommandLine,
}

impl TargetSource {
    /// Every value, in output order.
    pub const ALL: &'static [TargetSource] = &[
        TargetSource::Destination,
        TargetSource::Url,
        TargetSource::Dns,
        TargetSource::CommandLine,
    ];

    /// The name rules and outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSource::Destination => "destination",
            TargetSource::Url => "url",
            TargetSource::Dns => "dns",
            TargetSource::CommandLine => "command-line",
        }
    }
}

/// A metadata target found in one part of an event.
#[derive(Debug, Clone)]
pub struct Found<'c> {
    /// Which part of the event.
    pub source: TargetSource,
    /// What the normalizer found there.
    pub target: Target<'c>,
}

/// The encodings a DNS query name carries: the name is what the program asked for, so a number
/// in place of an address (`2852039166`) is the writer's choice, as are DNS tricks; letter case
/// and a trailing dot are the resolver's.
fn query_encodings(e: Encodings) -> Encodings {
    let mut out = e;
    for x in [Encoding::Case, Encoding::TrailingDot] {
        out = out.without(x);
    }
    out
}

/// The encodings a resolver-visible DNS name can meaningfully carry.
fn dns_encodings(e: Encodings) -> Encodings {
    let mut out = Encodings::NONE;
    for x in [
        Encoding::WildcardDns,
        Encoding::DnsRebinding,
        Encoding::EmbeddedAddress,
    ] {
        if e.contains(x) {
            out.insert(x);
        }
    }
    out
}

/// Whether a record's protocol is one that carries no HTTP request: UDP or ICMP, by name (`udp`,
/// Defender's `Udp`, `icmpv6`) or IANA number. Anything else (`tcp`, `http`, unknown) may.
fn not_http_transport(protocol: &str) -> bool {
    let p = protocol.trim().to_ascii_lowercase();
    p.starts_with("udp")
        || p.starts_with("icmp")
        || p.starts_with("ipv6-icmp")
        || matches!(p.as_str(), "1" | "17" | "58")
}

/// The enrich stage's shared, immutable configuration: the normalizer and the allowlist.
#[derive(Debug, Clone, Copy)]
pub struct Enricher<'c> {
    normalizer: &'c Normalizer<'c>,
    allowlist: &'c Allowlist,
}

impl<'c> Enricher<'c> {
    /// An enricher over a normalizer (and so its catalog) and an allowlist.
    pub fn new(normalizer: &'c Normalizer<'c>, allowlist: &'c Allowlist) -> Self {
        Enricher {
            normalizer,
            allowlist,
        }
    }

    /// The enricher over the bundled catalog and allowlist.
    pub fn builtin() -> Enricher<'static> {
        Enricher::new(imdsguard_target::builtin(), Allowlist::builtin())
    }

    /// The allowlist in use.
    pub fn allowlist(&self) -> &'c Allowlist {
        self.allowlist
    }

    /// A lazily enriched view of `event`.
    pub fn enrich<'e>(&'e self, event: &'e Event) -> Enriched<'e>
    where
        'c: 'e,
    {
        Enriched {
            event,
            enricher: self,
            targets: OnceCell::new(),
            verdict: OnceCell::new(),
            location: OnceCell::new(),
            caller: OnceCell::new(),
        }
    }
}

/// An event with its enriched fields, each computed on first use.
#[derive(Debug)]
pub struct Enriched<'e> {
    /// The event.
    pub event: &'e Event,
    enricher: &'e Enricher<'e>,
    targets: OnceCell<Vec<Found<'e>>>,
    verdict: OnceCell<Verdict<'e>>,
    location: OnceCell<Option<Location>>,
    caller: OnceCell<Option<Caller>>,
}

impl<'e> Enriched<'e> {
    /// Every metadata target in the event, in the order destination, URL, DNS, command line.
    pub fn targets(&self) -> &[Found<'e>] {
        self.targets.get_or_init(|| self.scan())
    }

    /// The target that matters most: what it hands out, then whether it was obfuscated, then
    /// whether a path is known, then the order of [`Enriched::targets`].
    pub fn best(&self) -> Option<&Found<'e>> {
        let mut best: Option<&Found<'e>> = None;
        for f in self.targets() {
            let key = |f: &Found<'_>| {
                (
                    f.target.kind,
                    !f.target.encoding.is_empty(),
                    f.target.path.is_some(),
                )
            };
            if best.is_none_or(|b| key(f) > key(b)) {
                best = Some(f);
            }
        }
        best
    }

    /// The encodings of every target, united.
    pub fn encodings(&self) -> Encodings {
        self.targets()
            .iter()
            .fold(Encodings::NONE, |a, f| a.union(f.target.encoding))
    }

    /// The verdict on the acting process.
    pub fn verdict(&self) -> &Verdict<'e> {
        self.verdict
            .get_or_init(|| self.enricher.allowlist.verdict(self.event))
    }

    /// Where the acting process's executable lives; `None` when the record does not say.
    pub fn location(&self) -> Option<Location> {
        *self.location.get_or_init(|| {
            self.event
                .process
                .image
                .as_deref()
                .filter(|i| !i.trim().is_empty())
                .map(Location::of)
        })
    }

    /// Whether the acting process is a web server or one's child.
    pub fn caller(&self) -> Option<Caller> {
        *self.caller.get_or_init(|| caller(self.event))
    }

    fn scan(&self) -> Vec<Found<'e>> {
        let n = self.enricher.normalizer;
        let e = self.event;
        let mut out = Vec::new();
        let mut push = |source, text: &str, how: ReadAs, keep: fn(Encodings) -> Encodings| {
            for mut t in n.find_as(text, how) {
                t.encoding = keep(t.encoding);
                out.push(Found { source, target: t });
            }
        };
        // An accepted connection's destination is this host; an HTTP request it accepted still
        // carries what the client asked for in its URL (an SSRF payload).
        let http = e.kind == imdsguard_event::EventKind::HttpRequest;
        if let Some(net) = e
            .network
            .as_ref()
            .filter(|n| n.outbound != Some(false) || http)
        {
            let inbound = net.outbound == Some(false);
            // A destination that parses as an address and is no catalog endpoint (the common case)
            // skips the normalizer; anything else (zone ids, odd notations) goes through it.
            let plain_non_target = |ip: &str| {
                ip.parse::<std::net::IpAddr>()
                    .is_ok_and(|a| !n.catalog().is_endpoint_address(a))
            };
            // Every metadata service is HTTP over TCP: a UDP datagram to a catalog address is
            // something else that shares it (Azure's 168.63.129.16 is also the VM's DNS resolver).
            let tcp = !inbound && !net.protocol.as_deref().is_some_and(not_http_transport);
            if let Some(ip) = net
                .dst_ip
                .as_deref()
                .map(str::trim)
                .filter(|s| tcp && !s.is_empty() && !plain_non_target(s))
            {
                let text = match net.dst_port {
                    Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
                    Some(p) => format!("{ip}:{p}"),
                    None => ip.to_owned(),
                };
                push(TargetSource::Destination, &text, ReadAs::Host, |_| {
                    Encodings::NONE
                });
            }
            if let Some(h) = net
                .dst_host
                .as_deref()
                .filter(|s| tcp && !s.trim().is_empty())
            {
                push(TargetSource::Destination, h, ReadAs::Host, dns_encodings);
            }
            if let Some(u) = net.url.as_deref().filter(|s| !s.trim().is_empty()) {
                push(TargetSource::Url, u, ReadAs::Url, |e| e);
            }
            // A request a web server received for a path only a metadata service serves (asked
            // of a reverse proxy that forwards by Host, as in the Capital One breach): its
            // request line, read as one, reports the path as `path-only`.
            if let Some(line) = e.http.as_ref().filter(|_| inbound).and_then(|h| {
                let path = h.uri.as_deref()?.split(['?', '#']).next()?;
                path.starts_with('/')
                    .then(|| format!("{} {path} HTTP/1.1", h.method.as_deref().unwrap_or("GET")))
            }) {
                push(TargetSource::Url, &line, ReadAs::Text, |e| e);
            }
        }
        if let Some(q) = e.dns_query.as_deref().filter(|s| !s.trim().is_empty()) {
            push(TargetSource::Dns, q, ReadAs::Host, query_encodings);
        }
        if let Some(cl) = e
            .process
            .command_line
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            push(TargetSource::CommandLine, cl, ReadAs::Text, |e| e);
        }
        out
    }
}

impl serde::Serialize for TargetSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::{EventKind, Format, Network, Position, Process, SourceRef};

    fn connect(ip: &str, port: u16) -> Event {
        Event {
            source: SourceRef {
                path: "t".into(),
                position: Position::Line(1),
            },
            format: Format::Ecs,
            kind: EventKind::NetworkConnect,
            channel: None,
            native_id: None,
            record_id: None,
            time: None,
            clock: Default::default(),
            host: None,
            process: Process::default(),
            parent: Process::default(),
            network: Some(Network {
                dst_ip: Some(ip.into()),
                dst_port: Some(port),
                ..Network::default()
            }),
            http: None,
            cloud: None,
            dns_query: None,
            container: None,
            fields: Vec::new(),
        }
    }

    #[test]
    fn destinations_are_targets_whatever_the_logged_notation_and_carry_no_encoding() {
        let e = Enricher::builtin();
        for (ip, port, target) in [
            ("169.254.169.254", 80, true),
            ("::ffff:169.254.169.254", 80, true),
            ("64:ff9b::a9fe:a9fe", 80, true),
            ("fd00:ec2::254", 80, true),
            ("169.254.170.2", 80, true),
            ("100.100.100.200", 80, true),
            ("169.254.169.123", 123, false),
            ("10.0.0.1", 80, false),
            ("fe80::1%eth0", 80, false),
        ] {
            let ev = connect(ip, port);
            let en = e.enrich(&ev);
            assert_eq!(!en.targets().is_empty(), target, "{ip}");
            if target {
                assert!(
                    en.encodings().is_empty(),
                    "{ip}: a logged address is not obfuscation"
                );
                assert_eq!(en.targets()[0].source, TargetSource::Destination);
            }
        }
    }
}
