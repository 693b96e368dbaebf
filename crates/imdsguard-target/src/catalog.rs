//! The endpoint catalog: data in, lookup tables out.
//!
//! [`Catalog::from_toml`] reads the format documented at the top of `data/catalog.toml`, checks every
//! value (addresses parse, ids are unique and referenced ids exist, kinds are known) and reports the
//! first problem with its file and line. The result is immutable and cheap to share: every lookup the
//! normalizer makes per string is a scan of a handful of integers or a hash of a short name.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::sync::LazyLock;

use serde::Deserialize;
use toml::Spanned;

use crate::error::CatalogError;
use crate::model::Kind;

const BUILTIN_TOML: &str = include_str!("../data/catalog.toml");

static BUILTIN: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::from_toml(BUILTIN_TOML, "built-in catalog")
        .unwrap_or_else(|e| panic!("the bundled catalog is checked by the tests: {e}"))
});

/// A metadata service as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Stable lowercase id (`aws`, `gcp`, `azure-wireserver`, ...).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Where the provider documents the service.
    pub docs: Option<String>,
    /// Addresses the service answers on.
    pub addresses: Vec<IpAddr>,
    /// Host names of the service (a `*` label matches one label).
    pub hosts: Vec<String>,
    /// The TCP ports the service answers on (every catalog service is HTTP over TCP); empty when
    /// the catalog does not say. A connection or an explicit `host:port` on another port is not
    /// the service.
    pub ports: Vec<u16>,
    /// The address alone is not the service: only with one of [`Provider::ports`] (loopback
    /// services such as Azure Arc share their address with everything else on the host).
    pub port_required: bool,
    /// Request headers the service requires or reads.
    pub headers: Vec<HeaderSpec>,
    /// The session-token handshake, if any.
    pub token: Option<TokenSpec>,
    /// Whether the service refuses requests carrying `X-Forwarded-For`.
    pub rejects_forwarded: bool,
    /// Path patterns and what they hand out.
    pub paths: Vec<PathPattern>,
}

impl Provider {
    /// Whether the service answers on `port`. `explicit` says the port was written or logged
    /// (`host:8080`, a connection's destination port); a port only implied by a URL's scheme
    /// (`https://` → 443) is not held against a service, since a request the service cannot
    /// answer is still an attempt on it, except where the address alone is not the service.
    pub fn serves(&self, port: Option<u16>, explicit: bool) -> bool {
        match port {
            Some(p) if explicit || self.port_required => {
                self.ports.is_empty() || self.ports.contains(&p)
            }
            _ => !self.port_required,
        }
    }
}

/// A request header a provider's service requires or reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSpec {
    /// Header name, in the provider's spelling.
    pub name: String,
    /// The value it must have, if fixed (`Google`, `true`).
    pub value: Option<String>,
    /// What the header is for.
    pub role: HeaderRole,
}

/// What a header is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderRole {
    /// Every request must carry it (an SSRF defence: most SSRF cannot set headers).
    Required,
    /// Carries a session token.
    Token,
    /// Asks for a session token with this lifetime.
    TokenTtl,
}

/// A session-token handshake (IMDSv2 and its imitators).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Method of the token request (`PUT`).
    pub method: String,
    /// Path of the token request.
    pub path: String,
    /// Header asking for the token's lifetime.
    pub ttl_header: Option<String>,
    /// Header that carries the token on later requests.
    pub header: String,
    /// Default IP hop limit of the token response, where documented.
    pub hop_limit: Option<u8>,
}

/// A path pattern: segments compared case-insensitively, `*` matching one segment.
#[derive(Debug, Clone)]
pub struct PathPattern {
    /// The pattern as written.
    pub pattern: String,
    /// Lowercased segments.
    pub(crate) segments: Vec<String>,
    /// Only when the query string contains this (lowercased).
    pub query: Option<String>,
    /// What the path hands out.
    pub kind: Kind,
    /// A shape common to ordinary APIs (`/v1/token`): never evidence without a metadata host.
    pub generic: bool,
}

/// A catalog address or host name, with the providers that serve it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Canonical text: `169.254.169.254`, `fd00:ec2::254`, `metadata.google.internal`.
    pub text: String,
    /// Providers serving it, catalog order.
    pub(crate) providers: Vec<usize>,
}

/// An environment variable that holds a metadata endpoint or path.
#[derive(Debug, Clone)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    pub(crate) provider: usize,
    pub(crate) endpoint: Option<usize>,
    /// What reading it leads to.
    pub kind: Kind,
    /// The variable holds a path to join to the endpoint.
    pub relative: bool,
}

/// A public wildcard-DNS service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WildcardDns {
    /// Domain suffix (`nip.io`).
    pub suffix: String,
    /// The name alternates between two embedded addresses.
    #[serde(default)]
    pub rebinding: bool,
}

/// A link-local service next to the metadata service that is not one.
#[derive(Debug, Clone)]
pub struct Neighbour {
    /// Its address.
    pub address: IpAddr,
    /// What it is.
    pub name: String,
}

/// The compiled catalog. Immutable; share it by reference.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: Vec<Provider>,
    endpoints: Vec<Endpoint>,
    v4: Vec<(Ipv4Addr, usize)>,
    v6: Vec<(Ipv6Addr, usize)>,
    names: HashMap<String, usize>,
    name_patterns: Vec<(Vec<String>, usize)>,
    env: Vec<EnvVar>,
    wildcard_dns: Vec<WildcardDns>,
    neighbours: Vec<Neighbour>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    provider: Vec<RawProvider>,
    #[serde(default)]
    env: Vec<RawEnv>,
    #[serde(default)]
    wildcard_dns: Vec<WildcardDns>,
    #[serde(default)]
    neighbour: Vec<RawNeighbour>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: Spanned<String>,
    name: String,
    docs: Option<String>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    ports: Vec<u16>,
    #[serde(default)]
    port_required: bool,
    #[serde(default)]
    headers: Vec<HeaderSpec>,
    token: Option<TokenSpec>,
    #[serde(default)]
    rejects_forwarded: bool,
    #[serde(default)]
    paths: Vec<RawPath>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    path: Spanned<String>,
    kind: Kind,
    query: Option<String>,
    #[serde(default)]
    generic: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    name: Spanned<String>,
    provider: Spanned<String>,
    endpoint: Option<Spanned<String>>,
    kind: Kind,
    #[serde(default)]
    relative: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbour {
    address: Spanned<String>,
    name: String,
}

struct Loader<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Loader<'_> {
    fn err(&self, span: Option<Range<usize>>, message: impl Into<String>) -> CatalogError {
        CatalogError {
            origin: self.origin.to_owned(),
            line: span.map(|s| {
                self.text[..s.start.min(self.text.len())]
                    .matches('\n')
                    .count()
                    + 1
            }),
            message: message.into(),
        }
    }
}

/// Host names are kept lowercase, without a trailing dot.
fn normalize_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Path patterns that ordinary APIs also serve: they say nothing without a metadata host.
fn looks_generic(segments: &[String]) -> bool {
    const SHAPES: &[&str] = &[
        "v1",
        "v2",
        "v3",
        "v4",
        "conf",
        "user_data",
        "userdata",
        "metadata",
        "machine",
        "vmsettings",
        "extensionartifact",
    ];
    segments.len() <= 2
        && segments
            .first()
            .is_some_and(|s| SHAPES.contains(&s.as_str()))
}

/// A provider entry's own checks: its id's spelling and uniqueness, something to reach it by,
/// and ports when it says it needs them.
fn check_provider(
    rp: &RawProvider,
    id: &str,
    ids: &HashMap<String, usize>,
    l: &Loader<'_>,
) -> Result<(), CatalogError> {
    let fail = |message: String| Err(l.err(Some(rp.id.span()), message));
    if id.is_empty()
        || !id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return fail(format!(
            "provider id {id:?} must be lowercase letters, digits and dashes"
        ));
    }
    if ids.contains_key(id) {
        return fail(format!("provider id {id:?} appears twice"));
    }
    if rp.addresses.is_empty() && rp.hosts.is_empty() {
        return fail(format!("provider {id:?} has neither addresses nor hosts"));
    }
    if rp.port_required && rp.ports.is_empty() {
        return fail(format!(
            "provider {id:?}: port_required needs the ports it is served on"
        ));
    }
    Ok(())
}

/// A path pattern: it starts with `/`; its segments are kept lowercase; a pattern ordinary APIs
/// also serve is marked generic unless the entry says otherwise.
fn path_pattern(p: RawPath, id: &str, l: &Loader<'_>) -> Result<PathPattern, CatalogError> {
    let pat = p.path.get_ref();
    if !pat.starts_with('/') {
        return Err(l.err(
            Some(p.path.span()),
            format!("provider {id:?}: path pattern {pat:?} must start with /"),
        ));
    }
    let segments: Vec<String> = pat
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let generic = p.generic.unwrap_or_else(|| looks_generic(&segments));
    Ok(PathPattern {
        pattern: pat.clone(),
        segments,
        query: p.query.map(|q| q.to_ascii_lowercase()),
        kind: p.kind,
        generic,
    })
}

impl Catalog {
    /// The catalog bundled with imdsguard.
    pub fn builtin() -> &'static Catalog {
        &BUILTIN
    }

    /// The bundled catalog's TOML text, for `--print-catalog` and for extending it.
    pub fn builtin_toml() -> &'static str {
        BUILTIN_TOML
    }

    /// Reads a catalog from TOML. `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let loader = Loader { text, origin };
        let raw: RawCatalog = toml::from_str(text)
            .map_err(|e| loader.err(e.span(), e.message().trim().to_owned()))?;
        Self::compile(raw, &loader)
    }

    /// The bundled catalog extended by a user file: the file's providers come first (so they win a
    /// tie on a shared address), and may not reuse a built-in id.
    pub fn builtin_extended(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let loader = Loader { text, origin };
        let mut raw: RawCatalog = toml::from_str(text)
            .map_err(|e| loader.err(e.span(), e.message().trim().to_owned()))?;
        let base: RawCatalog = toml::from_str(BUILTIN_TOML).map_err(|e| CatalogError {
            origin: "built-in catalog".into(),
            line: None,
            message: e.to_string(),
        })?;
        for p in &raw.provider {
            if base
                .provider
                .iter()
                .any(|b| b.id.get_ref() == p.id.get_ref())
            {
                return Err(loader.err(
                    Some(p.id.span()),
                    format!(
                        "provider id {:?} is already in the built-in catalog",
                        p.id.get_ref()
                    ),
                ));
            }
        }
        // The built-in entries were checked when the bundled catalog loaded; errors past this point
        // concern the user's entries, whose spans are the only ones reported.
        raw.provider.extend(base.provider);
        raw.env.extend(base.env);
        raw.wildcard_dns.extend(base.wildcard_dns);
        raw.neighbour.extend(base.neighbour);
        Self::compile(raw, &loader)
    }

    fn compile(raw: RawCatalog, l: &Loader<'_>) -> Result<Catalog, CatalogError> {
        let mut cat = Catalog {
            providers: Vec::new(),
            endpoints: Vec::new(),
            v4: Vec::new(),
            v6: Vec::new(),
            names: HashMap::new(),
            name_patterns: Vec::new(),
            env: Vec::new(),
            wildcard_dns: Vec::new(),
            neighbours: Vec::new(),
        };
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (pi, rp) in raw.provider.into_iter().enumerate() {
            let id = rp.id.get_ref().clone();
            check_provider(&rp, &id, &ids, l)?;
            ids.insert(id.clone(), pi);
            let addresses = cat.add_addresses(&rp, &id, pi, l)?;
            let hosts = cat.add_hosts(&rp, &id, pi, l)?;
            let paths = rp
                .paths
                .into_iter()
                .map(|p| path_pattern(p, &id, l))
                .collect::<Result<_, _>>()?;
            cat.providers.push(Provider {
                id,
                name: rp.name,
                docs: rp.docs,
                addresses,
                hosts,
                ports: rp.ports,
                port_required: rp.port_required,
                headers: rp.headers,
                token: rp.token,
                rejects_forwarded: rp.rejects_forwarded,
                paths,
            });
        }
        for re in raw.env {
            let var = cat.env_var(re, &ids, l)?;
            cat.env.push(var);
        }
        for w in raw.wildcard_dns {
            let suffix = normalize_host(&w.suffix);
            if suffix.is_empty() || !suffix.contains('.') {
                return Err(l.err(
                    None,
                    format!(
                        "wildcard_dns suffix {:?} must be a domain such as nip.io",
                        w.suffix
                    ),
                ));
            }
            cat.wildcard_dns.push(WildcardDns {
                suffix,
                rebinding: w.rebinding,
            });
        }
        for n in raw.neighbour {
            let address: IpAddr = n.address.get_ref().parse().map_err(|_| {
                l.err(
                    Some(n.address.span()),
                    format!("{:?} is not an address", n.address.get_ref()),
                )
            })?;
            if cat.endpoint_of_ip(address).is_some() {
                return Err(l.err(
                    Some(n.address.span()),
                    format!("{address} is listed both as a metadata address and as a neighbour"),
                ));
            }
            cat.neighbours.push(Neighbour {
                address,
                name: n.name,
            });
        }
        Ok(cat)
    }

    /// A provider's addresses, each joined to its endpoint (shared by the providers that serve
    /// the same address) and to the address tables.
    fn add_addresses(
        &mut self,
        rp: &RawProvider,
        id: &str,
        pi: usize,
        l: &Loader<'_>,
    ) -> Result<Vec<IpAddr>, CatalogError> {
        let mut addresses = Vec::new();
        for a in &rp.addresses {
            let addr: IpAddr = a.get_ref().parse().map_err(|_| {
                l.err(
                    Some(a.span()),
                    format!(
                        "provider {id:?}: {:?} is not an IPv4 or IPv6 address in standard notation",
                        a.get_ref()
                    ),
                )
            })?;
            addresses.push(addr);
            let ei = self.endpoint_index(&addr.to_string());
            self.endpoints[ei].providers.push(pi);
            match addr {
                IpAddr::V4(v4) if !self.v4.iter().any(|(x, _)| *x == v4) => self.v4.push((v4, ei)),
                IpAddr::V6(v6) if !self.v6.iter().any(|(x, _)| *x == v6) => self.v6.push((v6, ei)),
                _ => {}
            }
        }
        Ok(addresses)
    }

    /// A provider's host names (lowercase, no trailing dot), each joined to its endpoint and to
    /// the exact names or, with a `*` label, the name patterns.
    fn add_hosts(
        &mut self,
        rp: &RawProvider,
        id: &str,
        pi: usize,
        l: &Loader<'_>,
    ) -> Result<Vec<String>, CatalogError> {
        let mut hosts = Vec::new();
        for h in &rp.hosts {
            let host = normalize_host(h.get_ref());
            let labels: Vec<String> = host.split('.').map(str::to_owned).collect();
            let bad_label = |x: &String| {
                x.is_empty()
                    || !x
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'*')
            };
            if host.is_empty() || labels.iter().any(bad_label) {
                return Err(l.err(
                    Some(h.span()),
                    format!("provider {id:?}: {:?} is not a host name", h.get_ref()),
                ));
            }
            let ei = self.endpoint_index(&host);
            self.endpoints[ei].providers.push(pi);
            if labels.iter().any(|x| x == "*") {
                self.name_patterns.push((labels, ei));
            } else {
                self.names.insert(host.clone(), ei);
            }
            hosts.push(host);
        }
        Ok(hosts)
    }

    /// An environment variable naming a provider (by id) and, optionally, one of its endpoints.
    fn env_var(
        &self,
        re: RawEnv,
        ids: &HashMap<String, usize>,
        l: &Loader<'_>,
    ) -> Result<EnvVar, CatalogError> {
        let name = re.name.get_ref().clone();
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(l.err(
                Some(re.name.span()),
                format!("{name:?} is not an environment variable name"),
            ));
        }
        let provider = *ids.get(re.provider.get_ref()).ok_or_else(|| {
            l.err(
                Some(re.provider.span()),
                format!(
                    "variable {name}: no provider with id {:?}",
                    re.provider.get_ref()
                ),
            )
        })?;
        let endpoint = match &re.endpoint {
            Some(e) => {
                let text = e
                    .get_ref()
                    .parse::<IpAddr>()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| normalize_host(e.get_ref()));
                let ei = self
                    .endpoints
                    .iter()
                    .position(|x| x.text == text)
                    .ok_or_else(|| {
                        l.err(
                            Some(e.span()),
                            format!(
                                "variable {name}: endpoint {:?} is not an address or host of any \
                             provider",
                                e.get_ref()
                            ),
                        )
                    })?;
                Some(ei)
            }
            None => None,
        };
        if re.relative && endpoint.is_none() {
            return Err(l.err(
                Some(re.name.span()),
                format!("variable {name}: relative = true needs an endpoint to join the path to"),
            ));
        }
        Ok(EnvVar {
            name,
            provider,
            endpoint,
            kind: re.kind,
            relative: re.relative,
        })
    }

    fn endpoint_index(&mut self, text: &str) -> usize {
        if let Some(i) = self.endpoints.iter().position(|e| e.text == text) {
            return i;
        }
        self.endpoints.push(Endpoint {
            text: text.to_owned(),
            providers: Vec::new(),
        });
        self.endpoints.len() - 1
    }

    /// Every provider, catalog order.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider with this id.
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }

    pub(crate) fn provider_at(&self, i: usize) -> &Provider {
        &self.providers[i]
    }

    /// Every endpoint (address or host name).
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub(crate) fn endpoint_at(&self, i: usize) -> &Endpoint {
        &self.endpoints[i]
    }

    /// Whether every provider of an endpoint needs a port to be named (loopback services).
    pub(crate) fn port_gated(&self, endpoint: usize) -> bool {
        self.endpoints[endpoint]
            .providers
            .iter()
            .all(|&p| self.providers[p].port_required)
    }

    /// Providers serving an endpoint, catalog order.
    pub fn providers_of<'a>(
        &'a self,
        endpoint: &'a Endpoint,
    ) -> impl Iterator<Item = &'a Provider> + 'a {
        endpoint.providers.iter().map(|&i| &self.providers[i])
    }

    pub(crate) fn endpoint_of_v4(&self, a: Ipv4Addr) -> Option<usize> {
        self.v4.iter().find(|(x, _)| *x == a).map(|(_, i)| *i)
    }

    /// Canonical text of every catalog IPv4 address that is a service on any port, with its endpoint.
    pub(crate) fn v4_texts(&self) -> impl Iterator<Item = (&str, usize)> {
        self.v4
            .iter()
            .filter(|(_, e)| !self.port_gated(*e))
            .map(|(_, e)| (self.endpoints[*e].text.as_str(), *e))
    }

    pub(crate) fn endpoint_of_v6(&self, a: Ipv6Addr) -> Option<usize> {
        self.v6.iter().find(|(x, _)| *x == a).map(|(_, i)| *i)
    }

    /// Whether an address, as a connection log writes it, is a catalog endpoint: directly, or as
    /// an IPv6 address embedding one (IPv4-mapped, NAT64 ...). A cheap test before the normalizer.
    pub fn is_endpoint_address(&self, a: IpAddr) -> bool {
        self.endpoint_of_ip(a).is_some()
            || match a {
                IpAddr::V6(v6) => crate::ip::embedded_ipv4(v6)
                    .is_some_and(|(v4, _)| self.endpoint_of_v4(v4).is_some()),
                IpAddr::V4(_) => false,
            }
    }

    pub(crate) fn endpoint_of_ip(&self, a: IpAddr) -> Option<usize> {
        match a {
            IpAddr::V4(v4) => self.endpoint_of_v4(v4),
            IpAddr::V6(v6) => self.endpoint_of_v6(v6),
        }
    }

    /// The endpoint a lowercase host name (no trailing dot) names, if the catalog lists it.
    pub(crate) fn endpoint_of_name(&self, host: &str) -> Option<usize> {
        if let Some(&i) = self.names.get(host) {
            return Some(i);
        }
        'patterns: for (labels, i) in &self.name_patterns {
            let mut got = host.split('.');
            for want in labels {
                match got.next() {
                    Some(g) if want == "*" || want == g => {}
                    _ => continue 'patterns,
                }
            }
            if got.next().is_none() {
                return Some(*i);
            }
        }
        None
    }

    /// Environment variables that lead to a metadata endpoint.
    pub fn env_vars(&self) -> &[EnvVar] {
        &self.env
    }

    /// The wildcard-DNS services.
    pub fn wildcard_dns(&self) -> &[WildcardDns] {
        &self.wildcard_dns
    }

    /// The named non-metadata neighbours.
    pub fn neighbours(&self) -> &[Neighbour] {
        &self.neighbours
    }

    /// The neighbour at this address, if any.
    pub fn neighbour(&self, a: IpAddr) -> Option<&Neighbour> {
        self.neighbours.iter().find(|n| n.address == a)
    }
}

impl EnvVar {
    pub(crate) fn provider_index(&self) -> usize {
        self.provider
    }

    /// The provider the variable belongs to.
    pub fn provider<'c>(&self, cat: &'c Catalog) -> &'c Provider {
        cat.provider_at(self.provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads_and_indexes_every_address() {
        let cat = Catalog::builtin();
        assert!(cat.providers().len() >= 15, "{}", cat.providers().len());
        for p in cat.providers() {
            for a in &p.addresses {
                let e = cat
                    .endpoint_of_ip(*a)
                    .unwrap_or_else(|| panic!("{a} not indexed"));
                assert!(cat.providers_of(cat.endpoint_at(e)).any(|q| q.id == p.id));
            }
            for h in p.hosts.iter().filter(|h| !h.contains('*')) {
                assert!(cat.endpoint_of_name(h).is_some(), "{h} not indexed");
            }
        }
        let shared = cat.endpoint_at(
            cat.endpoint_of_v4(Ipv4Addr::new(169, 254, 169, 254))
                .unwrap(),
        );
        let ids: Vec<&str> = cat.providers_of(shared).map(|p| p.id.as_str()).collect();
        assert_eq!(ids.first(), Some(&"aws"));
        for id in [
            "azure",
            "gcp",
            "oracle",
            "ibm",
            "digitalocean",
            "openstack",
            "hetzner",
            "linode",
        ] {
            assert!(
                ids.contains(&id),
                "{id} missing from 169.254.169.254: {ids:?}"
            );
        }
        assert_eq!(
            cat.endpoint_of_name("instance-data.us-east-2.compute.internal")
                .map(|i| cat.endpoint_at(i).text.as_str()),
            Some("instance-data.*.compute.internal")
        );
        assert!(cat
            .endpoint_of_name("instance-data.a.b.compute.internal")
            .is_none());
        assert!(cat.neighbour("169.254.169.123".parse().unwrap()).is_some());
        assert!(cat
            .endpoint_of_v4(Ipv4Addr::new(169, 254, 169, 123))
            .is_none());
    }

    #[test]
    fn bad_catalogs_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("[[provider]]\nid = \"x\"\nname = \"X\"\naddresses = [\"169.254.169.300\"]\n", 4, "not an IPv4 or IPv6 address"),
            ("[[provider]]\nid = \"x\"\nname = \"X\"\naddresses = [\"1.2.3.4\"]\n\n[[provider]]\nid = \"x\"\nname = \"Y\"\naddresses = [\"1.2.3.5\"]\n", 7, "appears twice"),
            ("[[provider]]\nid = \"x\"\nname = \"X\"\naddresses = [\"1.2.3.4\"]\npaths = [{ path = \"/a\", kind = \"secret\" }]\n", 5, "secret"),
            ("[[provider]]\nid = \"x\"\nname = \"X\"\naddresses = [\"1.2.3.4\"]\npaths = [{ path = \"a\", kind = \"other\" }]\n", 5, "must start with /"),
            ("[[provider]]\nid = \"x\"\nname = \"X\"\naddresses = [\"1.2.3.4\"]\ncolour = \"red\"\n", 5, "colour"),
            ("[[env]]\nname = \"V\"\nprovider = \"nope\"\nkind = \"other\"\n", 3, "no provider with id"),
            ("[[provider]]\nid = \"x\"\nname = \"X\"\n", 2, "neither addresses nor hosts"),
        ];
        for (text, line, needle) in cases {
            let err = Catalog::from_toml(text, "my.toml").expect_err(text);
            let shown = err.to_string();
            assert!(shown.contains(needle), "{shown}");
            assert!(shown.starts_with("my.toml:"), "{shown}");
            assert_eq!(err.line, Some(*line), "{shown}");
        }
    }

    #[test]
    fn user_catalog_extends_the_builtin_one() {
        let text = "[[provider]]\nid = \"corp\"\nname = \"Corp metadata\"\nhosts = [\"meta.corp.example\"]\npaths = [{ path = \"/creds\", kind = \"credentials\" }]\n";
        let cat = Catalog::builtin_extended(text, "corp.toml").unwrap();
        assert_eq!(cat.providers()[0].id, "corp");
        assert!(cat.provider("aws").is_some());
        assert!(cat.endpoint_of_name("meta.corp.example").is_some());
        let clash = "[[provider]]\nid = \"aws\"\nname = \"again\"\naddresses = [\"10.0.0.1\"]\n";
        let err = Catalog::builtin_extended(clash, "c.toml").unwrap_err();
        assert!(
            err.to_string().contains("already in the built-in catalog"),
            "{err}"
        );
        assert_eq!(err.line, Some(2));
    }
}
