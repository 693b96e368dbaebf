//! The rule IR exported as Sigma, so the built-in pack runs in any SIEM that takes Sigma.
//!
//! A rule is specialized for each Sigma log source it can be written for (`process_creation`,
//! `network_connection`, `dns_query`): event-kind tests are decided, fields that log source lacks
//! are absent, and each enriched field is spelled out in the log source's own fields:
//!
//! - a metadata target: the catalog's addresses and host names (and, on command lines, their
//!   common non-canonical spellings and the metadata environment variables);
//! - a credential path: the catalog's credential path prefixes on the command line;
//! - an encoded target: the non-canonical spellings of the catalog addresses on the command line;
//! - the allowlist verdict: each plain entry's `Image` regexes (entries that also constrain the
//!   script, user, parent or host are left out of the agent filter, which keeps more events);
//! - the location class, the web-server class: path markers and the classifier's expressions.
//!
//! Where a check cannot be spelled exactly, the export keeps the side that matches more (never a
//! silently weaker query) and says so in the rule's description; where a rule's meaning depends on
//! data a log source lacks (containers), that log source is not exported and the reason is given.

use std::fmt::Write as _;
use std::net::IpAddr;

use imdsguard_enrich::{web_server_patterns, Allowlist, Location};
use imdsguard_event::Sym;
use imdsguard_rules::{Cmp, Expr, Field, Matcher, Rule, Text};
use imdsguard_target::{Catalog, Kind};
use regex::Regex;

/// A Sigma log source a rule can be exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `category: process_creation`
    ProcessCreation,
    /// `category: network_connection`
    NetworkConnection,
    /// `category: dns_query`
    DnsQuery,
}

impl Target {
    const ALL: [Target; 3] = [
        Target::ProcessCreation,
        Target::NetworkConnection,
        Target::DnsQuery,
    ];

    /// Its Sigma log-source category (`process_creation`, …).
    pub fn category(self) -> &'static str {
        match self {
            Target::ProcessCreation => "process_creation",
            Target::NetworkConnection => "network_connection",
            Target::DnsQuery => "dns_query",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Target::ProcessCreation => "process-start",
            Target::NetworkConnection => "network-connect",
            Target::DnsQuery => "dns-query",
        }
    }

    /// The Sigma field for a typed field, where this log source carries it.
    fn field(self, f: Field) -> Option<&'static str> {
        let common = match f {
            Field::ProcessImage => Some("Image"),
            Field::ProcessUser => Some("User"),
            Field::Host => Some("Computer"),
            _ => None,
        };
        if common.is_some() {
            return common;
        }
        match (self, f) {
            (Target::ProcessCreation, Field::ProcessCommandLine) => Some("CommandLine"),
            (Target::ProcessCreation, Field::ParentImage) => Some("ParentImage"),
            (Target::ProcessCreation, Field::ParentCommandLine) => Some("ParentCommandLine"),
            (Target::NetworkConnection, Field::DstIp) => Some("DestinationIp"),
            (Target::NetworkConnection, Field::DstPort) => Some("DestinationPort"),
            (Target::NetworkConnection, Field::DstHost) => Some("DestinationHostname"),
            (Target::NetworkConnection, Field::SrcIp) => Some("SourceIp"),
            (Target::NetworkConnection, Field::SrcPort) => Some("SourcePort"),
            (Target::DnsQuery, Field::DnsQuery) => Some("QueryName"),
            _ => None,
        }
    }
}

/// One exported Sigma rule.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The IR rule's id.
    pub rule_id: String,
    /// The log source it was written for.
    pub target: Target,
    /// The Sigma YAML.
    pub yaml: String,
}

/// Why a rule (or one log source of it) was not exported.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The IR rule's id.
    pub rule_id: String,
    /// The log source, when the reason is specific to one.
    pub target: Option<Target>,
    /// Why.
    pub reason: String,
}

enum Tri {
    True,
    False,
    E(Expr),
}

struct Ctx<'a> {
    cat: &'a Catalog,
    allow: &'a Allowlist,
    target: Target,
    notes: Vec<String>,
}

fn sigma(name: &str) -> Field {
    Field::Raw(Sym::intern(name))
}

fn test(name: &str, ms: Vec<Matcher>) -> Expr {
    Expr::Test(sigma(name), ms)
}

fn contains_all(values: &[String]) -> Vec<Matcher> {
    values
        .iter()
        .map(|v| Matcher::Contains(Text::new(v)))
        .collect()
}

/// A value as it appears inside base64 text at any offset, in UTF-8 and UTF-16LE (PowerShell's
/// `-EncodedCommand`): what Sigma's `wide|base64offset|contains` spells.
fn base64_forms(v: &str) -> Vec<String> {
    let mut out = crate::lower::base64_offsets(v.as_bytes());
    let wide: Vec<u8> = v.encode_utf16().flat_map(u16::to_le_bytes).collect();
    out.extend(crate::lower::base64_offsets(&wide));
    out
}

/// The ways a catalog IPv4 address is written on command lines, canonical first.
fn ipv4_spellings(a: std::net::Ipv4Addr) -> (String, Vec<String>) {
    let o = a.octets();
    let n = u32::from(a);
    let canonical = a.to_string();
    let encoded = vec![
        n.to_string(),
        format!("0x{n:x}"),
        format!(
            "0x{:02x}.0x{:02x}.0x{:02x}.0x{:02x}",
            o[0], o[1], o[2], o[3]
        ),
        format!("0{:o}.0{:o}.0{:o}.0{:o}", o[0], o[1], o[2], o[3]),
        format!(
            "{}.{}.{}",
            o[0],
            o[1],
            u32::from(o[2]) << 8 | u32::from(o[3])
        ),
        format!("::ffff:{canonical}"),
        format!(
            "::ffff:{:x}:{:x}",
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([o[2], o[3]])
        ),
        format!("{canonical}.nip.io"),
        format!("{canonical}.sslip.io"),
    ];
    (canonical, encoded)
}

impl Ctx<'_> {
    fn note(&mut self, n: &str) {
        if !self.notes.iter().any(|x| x == n) {
            self.notes.push(n.to_owned());
        }
    }

    /// Positive-side approximation: keep the side that matches more.
    fn approx(&mut self, pos: bool, what: &str) -> Tri {
        self.note(&format!("{what} cannot be written in Sigma; the export leaves it out, which matches more events."));
        if pos {
            Tri::True
        } else {
            Tri::False
        }
    }

    fn addresses(&self) -> (Vec<String>, Vec<String>) {
        let mut canonical = Vec::new();
        let mut encoded = Vec::new();
        for e in self.cat.endpoints() {
            match e.text.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) if !a.is_loopback() => {
                    let (c, enc) = ipv4_spellings(a);
                    canonical.push(c);
                    encoded.extend(enc);
                }
                Ok(IpAddr::V6(a)) if !a.is_loopback() => {
                    canonical.push(a.to_string());
                }
                _ => {}
            }
        }
        canonical.sort();
        canonical.dedup();
        encoded.sort();
        encoded.dedup();
        (canonical, encoded)
    }

    fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cat
            .providers()
            .iter()
            .flat_map(|p| p.hosts.iter())
            .filter(|h| !h.contains('*') && h.contains('.'))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The event holds a metadata target, in this log source's fields.
    fn any_target(&mut self) -> Tri {
        let (addrs, encoded) = self.addresses();
        let names = self.host_names();
        match self.target {
            Target::ProcessCreation => {
                let mut values = addrs;
                values.extend(encoded);
                values.extend(names);
                values.extend(self.cat.env_vars().iter().map(|v| v.name.clone()));
                // Paths only metadata services serve, whatever host a command names.
                values.extend(self.path_markers(|p| !p.generic));
                // The addresses inside base64 (PowerShell -EncodedCommand, `base64 -d`).
                let b64: Vec<String> = self
                    .addresses()
                    .0
                    .iter()
                    .flat_map(|a| base64_forms(a))
                    .collect();
                values.extend(b64);
                self.note("On command lines the export spells out the catalog's addresses, host names and metadata environment variables, and common encodings (decimal, hex, octal, short form, IPv4-mapped IPv6, nip.io/sslip.io); the normalizer reads more forms than any list.");
                Tri::E(test("CommandLine", contains_all(&values)))
            }
            Target::NetworkConnection => {
                let mut ips: Vec<Matcher> =
                    addrs.iter().map(|a| Matcher::Eq(Text::new(a))).collect();
                ips.extend(
                    addrs
                        .iter()
                        .filter(|a| !a.contains(':'))
                        .map(|a| Matcher::Eq(Text::new(&format!("::ffff:{a}")))),
                );
                Tri::E(Expr::Any(vec![
                    test("DestinationIp", ips),
                    test(
                        "DestinationHostname",
                        names.iter().map(|n| Matcher::Eq(Text::new(n))).collect(),
                    ),
                ]))
            }
            Target::DnsQuery => Tri::E(Expr::Any(vec![
                test(
                    "QueryName",
                    names.iter().map(|n| Matcher::Eq(Text::new(n))).collect(),
                ),
                test("QueryName", contains_all(&self.embedded_forms())),
            ])),
        }
    }

    /// A catalog IPv4 address written inside a DNS name (wildcard DNS, rebinding services):
    /// dotted, dashed and hex.
    fn embedded_forms(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.addresses().0.iter().filter(|a| !a.contains(':')) {
            if let Ok(ip) = a.parse::<std::net::Ipv4Addr>() {
                out.push(format!("{a}."));
                out.push(format!("{}.", a.replace('.', "-")));
                out.push(format!("{:08x}", u32::from(ip)));
            }
        }
        out
    }

    /// The longest run of literal segments of the catalog's path patterns that pass `keep`, as
    /// `/a/b` text: `/*/meta-data/iam/security-credentials/*` gives
    /// `/meta-data/iam/security-credentials`.
    fn path_markers(&self, keep: impl Fn(&imdsguard_target::PathPattern) -> bool) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in self.cat.providers() {
            for path in p.paths.iter().filter(|x| keep(x)) {
                let mut best: Vec<&str> = Vec::new();
                let mut run: Vec<&str> = Vec::new();
                for seg in path.pattern.split('/').filter(|s| !s.is_empty()) {
                    if seg.contains('*') {
                        run.clear();
                    } else {
                        run.push(seg);
                        if run.len() > best.len() {
                            best = run.clone();
                        }
                    }
                }
                if best.len() >= 2 {
                    out.push(format!("/{}", best.join("/")));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn credential_paths(&mut self) -> Tri {
        if self.target != Target::ProcessCreation {
            return Tri::False;
        }
        let mut prefixes = self.path_markers(|p| p.kind == Kind::Credentials);
        let b64: Vec<String> = prefixes.iter().flat_map(|p| base64_forms(p)).collect();
        prefixes.extend(b64);
        self.note("A credential path is spelled as the catalog's credential path prefixes on the command line.");
        Tri::E(test("CommandLine", contains_all(&prefixes)))
    }

    fn encoded_target(&mut self) -> Tri {
        match self.target {
            Target::ProcessCreation => {}
            // A name that carries the address is the wildcard-DNS or rebinding trick.
            Target::DnsQuery => {
                return Tri::E(test("QueryName", contains_all(&self.embedded_forms())))
            }
            // Connection logs write addresses as the system resolved them: no encoding to see.
            Target::NetworkConnection => return Tri::False,
        }
        let (canonical, mut encoded) = self.addresses();
        encoded.extend(canonical.iter().flat_map(|a| base64_forms(a)));
        self.note("An obfuscated target is spelled as common non-canonical forms of the catalog addresses; the normalizer reads more (percent-encoding, IDNA, URL-parser tricks, base64, concatenation).");
        Tri::E(test("CommandLine", contains_all(&encoded)))
    }

    fn agents(&mut self) -> Tri {
        let mut ms = Vec::new();
        let mut left_out = Vec::new();
        for a in self.allow.agents() {
            match a.image_regexes() {
                Some(rs) => ms.extend(
                    rs.iter()
                        .filter_map(|r| Regex::new(r).ok())
                        .map(Matcher::Regex),
                ),
                None => left_out.push(a.id.as_str()),
            }
        }
        if !left_out.is_empty() {
            self.note(&format!(
                "The agent filter leaves out the allowlist entries verified by script, user, parent or host ({}): their processes are kept.",
                left_out.join(", ")
            ));
        }
        Tri::E(Expr::Test(sigma("Image"), ms))
    }

    fn masquerade(&mut self) -> Tri {
        let mut parts = Vec::new();
        for a in self.allow.agents() {
            let names = a.name_texts();
            if names.is_empty() {
                continue;
            }
            let Some(rs) = a.image_regexes() else {
                continue;
            };
            let named: Vec<Matcher> = names
                .iter()
                .filter(|n| !n.contains('*'))
                .flat_map(|n| {
                    [
                        Matcher::Suffix(Text::new(&format!("\\{n}"))),
                        Matcher::Suffix(Text::new(&format!("/{n}"))),
                    ]
                })
                .collect();
            if named.is_empty() {
                continue;
            }
            parts.push(Expr::All(vec![
                Expr::Test(sigma("Image"), named),
                !Expr::Test(
                    sigma("Image"),
                    rs.iter()
                        .filter_map(|r| Regex::new(r).ok())
                        .map(Matcher::Regex)
                        .collect(),
                ),
            ]));
        }
        self.note("A masquerade is spelled as an agent's file name outside the agent's paths (user and parent checks left out).");
        Tri::E(Expr::Any(parts))
    }

    fn unusual_location(&mut self) -> Tri {
        self.note("Unusual locations are spelled as path markers (temp, downloads, /dev/shm, user-writable, deleted).");
        Tri::E(Expr::Test(
            sigma("Image"),
            Location::unusual_path_markers()
                .iter()
                .map(|m| Matcher::Contains(Text::new(m)))
                .collect(),
        ))
    }

    fn web_caller(&mut self) -> Tri {
        let (servers, runtimes, serving) = web_server_patterns();
        let re = |s: &str| Regex::new(s).map(Matcher::Regex).ok();
        // Connection records may carry the command line too (Defender, ECS); Sysmon's do not,
        // and there the clause is simply false.
        let any = vec![
            Expr::Test(sigma("Image"), re(&servers).into_iter().collect()),
            Expr::All(vec![
                Expr::Test(sigma("Image"), re(&runtimes).into_iter().collect()),
                Expr::Test(sigma("CommandLine"), re(&serving).into_iter().collect()),
            ]),
            Expr::Test(sigma("ParentImage"), re(&servers).into_iter().collect()),
        ];
        self.note("Web servers are spelled by file name (and, on process creation, runtimes serving HTTP by their command line, and children of web servers); accounts such as www-data are left out.");
        Tri::E(Expr::Any(any))
    }

    fn eq_values(ms: &[Matcher]) -> Option<Vec<&str>> {
        ms.iter()
            .map(|m| match m {
                Matcher::Eq(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn leaf(&mut self, f: Field, ms: &[Matcher], pos: bool) -> Result<Tri, String> {
        let exists = ms.iter().all(|m| matches!(m, Matcher::Exists));
        Ok(match f {
            Field::EventKind => {
                let kind = self.target.kind();
                let holds = ms.iter().any(|m| match m {
                    Matcher::Eq(t) => t.as_str() == kind,
                    Matcher::Exists => true,
                    _ => false,
                });
                if holds {
                    Tri::True
                } else {
                    Tri::False
                }
            }
            Field::TargetKind if exists => self.any_target(),
            Field::TargetKind => match Self::eq_values(ms).as_deref() {
                Some(["credentials"]) => match (self.any_target(), self.credential_paths()) {
                    (Tri::E(a), Tri::E(b)) => Tri::E(Expr::All(vec![a, b])),
                    _ => Tri::False,
                },
                _ => self.approx(pos, "A target kind other than credentials"),
            },
            Field::TargetSource => {
                let vals = Self::eq_values(ms).unwrap_or_default();
                let here = match self.target {
                    Target::ProcessCreation => "command-line",
                    Target::NetworkConnection => "destination",
                    Target::DnsQuery => "dns",
                };
                if vals.contains(&here) {
                    self.any_target()
                } else {
                    Tri::False
                }
            }
            // Any non-canonical form (every encoding but `path-only`, which is no obfuscation):
            // the forms the catalog spells.
            Field::TargetEncoding
                if exists
                    || Self::eq_values(ms)
                        .is_some_and(|v| !v.is_empty() && !v.contains(&"path-only")) =>
            {
                self.encoded_target()
            }
            Field::ProcessVerdict => match Self::eq_values(ms).as_deref() {
                Some(["agent"]) => self.agents(),
                Some(["masquerade"]) => self.masquerade(),
                _ => self.approx(pos, "This allowlist verdict"),
            },
            Field::ProcessLocation => self.unusual_location(),
            Field::ProcessCaller if exists => self.web_caller(),
            Field::HttpMethod
            | Field::HttpStatus
            | Field::HttpVantage
            | Field::HttpClient
            | Field::HttpUserAgent
            | Field::HttpHost
            | Field::HttpForwardedFor
            | Field::HttpUri
            | Field::HttpPath
            | Field::HttpQuery
            | Field::HttpExtension
            | Field::HttpReferer
            | Field::HttpBytesOut
            | Field::HttpHeaderNames => {
                if pos {
                    return Err("needs an HTTP request as a web server logs it, which Sigma's process, network and DNS log sources do not carry".into());
                }
                Tri::False
            }
            Field::ContainerId | Field::ContainerImage | Field::ContainerPod => {
                if pos {
                    return Err("needs container context, which Sigma's process, network and DNS log sources do not carry".into());
                }
                Tri::False
            }
            Field::Raw(_) | Field::RawOr(..) | Field::Keywords => {
                Tri::E(Expr::Test(f, ms.to_vec()))
            }
            typed => match self.target.field(typed) {
                Some(name) => Tri::E(Expr::Test(sigma(name), ms.to_vec())),
                None if typed.is_enriched() => {
                    self.approx(pos, &format!("The enriched field {typed}"))
                }
                None => Tri::False,
            },
        })
    }

    fn spec(&mut self, e: &Expr, pos: bool) -> Result<Tri, String> {
        Ok(match e {
            Expr::True => Tri::True,
            Expr::Test(f, ms) => self.leaf(*f, ms, pos)?,
            Expr::SameValue(..) => self.approx(pos, "A comparison of two fields"),
            Expr::Not(x) => match self.spec(x, !pos)? {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::E(x) => Tri::E(!x),
            },
            Expr::All(xs) => {
                let mut out = Vec::new();
                for x in xs {
                    match self.spec(x, pos)? {
                        Tri::False => return Ok(Tri::False),
                        Tri::True => {}
                        Tri::E(x) => out.push(x),
                    }
                }
                match out.len() {
                    0 => Tri::True,
                    1 => Tri::E(out.remove(0)),
                    _ => Tri::E(Expr::All(out)),
                }
            }
            Expr::Any(xs) => {
                let mut out = Vec::new();
                for x in xs {
                    match self.spec(x, pos)? {
                        Tri::True => return Ok(Tri::True),
                        Tri::False => {}
                        Tri::E(x) => out.push(x),
                    }
                }
                match out.len() {
                    0 => Tri::False,
                    1 => Tri::E(out.remove(0)),
                    _ => Tri::E(Expr::Any(out)),
                }
            }
        })
    }
}

/// Escapes a value for Sigma: `*`, `?` and a `\` before them or before another `\`.
fn escape(v: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = v.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '*' | '?' => {
                out.push('\\');
                out.push(c);
            }
            '\\' if matches!(chars.get(i + 1), Some('*' | '?' | '\\')) => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct Writer {
    searches: Vec<(String, String, Vec<String>)>,
}

impl Writer {
    fn search(&mut self, key: String, values: Vec<String>) -> String {
        let name = format!("sel{}", self.searches.len() + 1);
        self.searches.push((name.clone(), key, values));
        name
    }

    fn condition(&mut self, e: &Expr) -> Result<String, String> {
        Ok(match e {
            Expr::All(xs) => {
                let parts: Result<Vec<_>, _> = xs.iter().map(|x| self.condition(x)).collect();
                format!("({})", parts?.join(" and "))
            }
            Expr::Any(xs) => {
                let parts: Result<Vec<_>, _> = xs.iter().map(|x| self.condition(x)).collect();
                format!("({})", parts?.join(" or "))
            }
            Expr::Not(x) => format!("not {}", self.condition(x)?),
            Expr::Test(f, ms) => {
                let field = f.name();
                // One search per kind of matcher, joined with `or`.
                let mut groups: Vec<(String, Vec<String>)> = Vec::new();
                for m in ms {
                    let (mods, value) = match m {
                        Matcher::Eq(t) => ("", escape(t.as_str())),
                        Matcher::Prefix(t) => ("|startswith", escape(t.as_str())),
                        Matcher::Suffix(t) => ("|endswith", escape(t.as_str())),
                        Matcher::Contains(t) => ("|contains", escape(t.as_str())),
                        Matcher::Glob(g) => ("", g.sigma()),
                        Matcher::Regex(r) => ("|re", r.as_str().to_owned()),
                        Matcher::Exists => ("|exists", "true".to_owned()),
                        Matcher::Cidr(n, l) => ("|cidr", format!("{n}/{l}")),
                        Matcher::Compare(op, b) => (
                            match op {
                                Cmp::Gt => "|gt",
                                Cmp::Gte => "|gte",
                                Cmp::Lt => "|lt",
                                Cmp::Lte => "|lte",
                            },
                            b.to_string(),
                        ),
                        Matcher::Range(..) => return Err("a numeric range".into()),
                        Matcher::TimePart(..) => return Err("a time-part test".into()),
                    };
                    let key = format!("{field}{mods}");
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, vs)) => vs.push(value),
                        None => groups.push((key, vec![value])),
                    }
                }
                let names: Vec<String> = groups
                    .into_iter()
                    .map(|(k, vs)| self.search(k, vs))
                    .collect();
                if names.len() == 1 {
                    names[0].clone()
                } else {
                    format!("({})", names.join(" or "))
                }
            }
            Expr::True | Expr::SameValue(..) => return Err("an unspecialized condition".into()),
        })
    }
}

/// A stable UUID-shaped id for an exported rule, from the IR rule id and the log source.
fn stable_id(rule: &str, target: Target) -> String {
    // FNV-1a over the names, spread to 128 bits; version 5-like nibbles for the shape.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in rule.bytes().chain([b'/']).chain(target.category().bytes()) {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let x = format!("{h:032x}");
    format!(
        "{}-{}-5{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

/// Exports one IR rule: a Sigma rule per log source it can be written for, and the reasons for
/// the log sources it cannot.
pub fn export_rule(rule: &Rule, cat: &Catalog, allow: &Allowlist) -> (Vec<Exported>, Vec<Skipped>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut never = 0;
    for target in Target::ALL {
        let mut ctx = Ctx {
            cat,
            allow,
            target,
            notes: Vec::new(),
        };
        let expr = match ctx.spec(&rule.when, true) {
            Ok(Tri::E(e)) => e,
            Ok(Tri::False) => {
                never += 1;
                continue;
            }
            Ok(Tri::True) => {
                skipped.push(Skipped {
                    rule_id: rule.id.clone(),
                    target: Some(target),
                    reason: "would match every event of this log source".into(),
                });
                continue;
            }
            Err(reason) => {
                skipped.push(Skipped {
                    rule_id: rule.id.clone(),
                    target: Some(target),
                    reason,
                });
                continue;
            }
        };
        let mut w = Writer {
            searches: Vec::new(),
        };
        let condition = match w.condition(&expr) {
            Ok(c) => c,
            Err(reason) => {
                skipped.push(Skipped {
                    rule_id: rule.id.clone(),
                    target: Some(target),
                    reason: format!("{reason} cannot be written in Sigma"),
                });
                continue;
            }
        };
        let mut y = String::new();
        let _ = writeln!(
            y,
            "title: {}",
            yaml_str(&format!("{} ({})", rule.title, target.category()))
        );
        let _ = writeln!(y, "id: {}", stable_id(&rule.id, target));
        let _ = writeln!(y, "status: experimental");
        let mut description = format!(
            "{} Exported from imdsguard detection {}.",
            rule.description, rule.id
        );
        for n in &ctx.notes {
            description.push(' ');
            description.push_str(n);
        }
        let _ = writeln!(y, "description: {}", yaml_str(&description));
        let _ = writeln!(y, "author: imdsguard");
        if !rule.attack.is_empty() {
            let _ = writeln!(y, "tags:");
            for t in &rule.attack {
                let _ = writeln!(y, "    - attack.{}", t.as_str().to_ascii_lowercase());
            }
        }
        let _ = writeln!(y, "logsource:\n    category: {}", target.category());
        let _ = writeln!(y, "detection:");
        for (name, key, values) in &w.searches {
            let _ = writeln!(y, "    {name}:");
            let _ = writeln!(y, "        {}:", yaml_str(key));
            for v in values {
                let v = if key.ends_with("|exists") {
                    v.clone()
                } else {
                    yaml_str(v)
                };
                let _ = writeln!(y, "            - {v}");
            }
        }
        let _ = writeln!(y, "    condition: {condition}");
        if !rule.false_positives.is_empty() {
            let _ = writeln!(y, "falsepositives:");
            for fp in &rule.false_positives {
                let _ = writeln!(y, "    - {}", yaml_str(fp));
            }
        }
        let level = match rule.severity {
            imdsguard_event::Severity::Info => "informational",
            imdsguard_event::Severity::Low => "low",
            imdsguard_event::Severity::Medium => "medium",
            imdsguard_event::Severity::High => "high",
            imdsguard_event::Severity::Critical => "critical",
        };
        let _ = writeln!(y, "level: {level}");
        out.push(Exported {
            rule_id: rule.id.clone(),
            target,
            yaml: y,
        });
    }
    // A rule no log source can hold (it reads web, proxy or wire requests) is said once, not
    // left out silently.
    if never == Target::ALL.len() {
        let cloud = rule.fields().iter().any(|f| f.name().starts_with("cloud."));
        let what = if cloud {
            "it reads cloud API calls as cloud audit logs record them"
        } else {
            "it reads HTTP requests as web, proxy and network logs record them"
        };
        skipped.push(Skipped {
            rule_id: rule.id.clone(),
            target: None,
            reason: format!(
                "its condition holds on no event of Sigma's process, network and DNS log \
                 sources ({what})"
            ),
        });
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_escapes() {
        let (c, enc) = ipv4_spellings("169.254.169.254".parse().unwrap());
        assert_eq!(c, "169.254.169.254");
        for want in [
            "2852039166",
            "0xa9fea9fe",
            "0251.0376.0251.0376",
            "169.254.43518",
            "::ffff:a9fe:a9fe",
        ] {
            assert!(enc.iter().any(|e| e == want), "{want} in {enc:?}");
        }
        assert_eq!(escape(r"C:\Windows\*x?"), r"C:\Windows\\\*x\?");
        assert_eq!(escape(r"\temp\"), r"\temp\");
        assert_eq!(yaml_str("it's"), "'it''s'");
        assert_ne!(
            stable_id("IMDS-001", Target::ProcessCreation),
            stable_id("IMDS-001", Target::NetworkConnection)
        );
    }
}
