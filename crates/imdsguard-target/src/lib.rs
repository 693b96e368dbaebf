//! The cloud metadata endpoint catalog and the normalizer.
//!
//! - [`Catalog`]: every provider's metadata service (addresses, host names, paths and what they hand
//!   out, required headers, token handshakes), read from `data/catalog.toml` or a user file.
//! - [`Normalizer`]: given any string (URL, host, address in any notation, HTTP request, command
//!   line), finds every metadata [`Target`] in it and says how each was written ([`Encoding`]).
//! - [`report`]: the `imdsguard target` output, one [`report::TargetReport`] per input.
//!
//! Data flow: `Normalizer::find` tokenizes and decodes the text (`scan`), reads each candidate's
//! authority the way different URL parsers do (`url`), classifies the host (`host`, over the `ip`
//! parsers), normalizes and matches the path (`path`), and merges what it found into [`Target`]s.
//!
//! The normalizer never allocates for a token that cannot be a host, and never looks anything up by
//! string per call beyond a short hash of a candidate host name.

mod catalog;
mod error;
mod host;
mod ip;
mod model;
mod path;
pub mod report;
mod scan;
mod text;
mod url;

use std::sync::LazyLock;

pub use catalog::{
    Catalog, Endpoint, EnvVar, HeaderRole, HeaderSpec, Neighbour, PathPattern, Provider, TokenSpec,
    WildcardDns,
};
pub use error::CatalogError;
pub use ip::{embedded_ipv4, parse_ipv4, parse_ipv6, V6};
pub use model::{Encoding, Encodings, Kind};
pub use scan::{Normalizer, ReadAs, MAX_INPUT};

static BUILTIN: LazyLock<Normalizer<'static>> =
    LazyLock::new(|| Normalizer::new(Catalog::builtin()));

/// The normalizer over the bundled catalog.
pub fn builtin() -> &'static Normalizer<'static> {
    &BUILTIN
}

/// One metadata target found in a string.
#[derive(Debug, Clone)]
pub struct Target<'c> {
    /// The provider whose service this is, when the path, a header or the endpoint tells.
    /// `None` for a shared address (169.254.169.254) with nothing that tells the providers apart.
    pub provider: Option<&'c Provider>,
    /// The catalog endpoint the host resolves to; `None` when only a variable or path was seen.
    pub endpoint: Option<&'c Endpoint>,
    /// The port, when given or implied by the scheme.
    pub port: Option<u16>,
    /// The request path, normalized (percent-decoded, dot segments resolved).
    pub path: Option<String>,
    /// The query string, decoded.
    pub query: Option<String>,
    /// What the path hands out.
    pub kind: Kind,
    /// Every non-canonical form seen on the way to this target.
    pub encoding: Encodings,
    /// Metadata request headers present in the same input (`Metadata-Flavor`, `X-aws-ec2-metadata-token`, ...).
    pub headers: Vec<&'c str>,
    /// `PUT` when the input makes a PUT request (the IMDSv2 token handshake).
    pub method: Option<&'static str>,
}

impl Target<'_> {
    /// The provider id, if known.
    pub fn provider_id(&self) -> Option<&str> {
        self.provider.map(|p| p.id.as_str())
    }

    /// The canonical endpoint text, if known.
    pub fn endpoint_text(&self) -> Option<&str> {
        self.endpoint.map(|e| e.text.as_str())
    }
}
