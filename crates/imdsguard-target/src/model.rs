//! The values a finding is made of: what a path hands out ([`Kind`]) and how the target was written
//! ([`Encoding`], collected in an [`Encodings`] set).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a metadata path hands out. Ordered by how much an attacker gains, so the most severe target
/// of an input is the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Anything else the service answers: instance id, network layout, the path listing.
    Other,
    /// A session token for the service itself (IMDSv2 `PUT /latest/api/token` and its imitators).
    Token,
    /// A signed identity document, replayable against services that trust it.
    Identity,
    /// User-data and user-supplied attributes, which often carry secrets.
    Userdata,
    /// Role credentials or access tokens for a cloud principal.
    Credentials,
}

impl Kind {
    /// Every value, in output order.
    pub const ALL: &'static [Kind] = &[
        Kind::Other,
        Kind::Token,
        Kind::Identity,
        Kind::Userdata,
        Kind::Credentials,
    ];

    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Other => "other",
            Kind::Token => "token",
            Kind::Identity => "identity",
            Kind::Userdata => "userdata",
            Kind::Credentials => "credentials",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! encodings {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// One non-canonical way of writing a target. Any of them is a signal on its own: benign
        /// software writes `http://169.254.169.254/...` or the provider's documented host name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Encoding {
            $( $(#[$doc])* $variant, )*
        }

        impl Encoding {
            /// Every encoding, in output order.
            pub const ALL: &'static [Encoding] = &[$(Encoding::$variant,)*];

            /// The kebab-case name used in every output.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Encoding::$variant => $name, )*
                }
            }

            /// The encoding with this name.
            pub fn from_name(name: &str) -> Option<Encoding> {
                match name {
                    $( $name => Some(Encoding::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

encodings! {
    /// The whole IPv4 address as one decimal number (`2852039166`).
    Decimal = "decimal",
    /// An IPv4 part in octal (`0251.0376.0251.0376`).
    Octal = "octal",
    /// An IPv4 part, or the whole address, in hexadecimal (`0xa9fea9fe`).
    Hex = "hex",
    /// Fewer than four IPv4 parts (`169.254.43518`, `169.16689662`).
    ShortForm = "short-form",
    /// IPv4 parts that overflow and wrap, as some parsers truncate them (`425.510.425.510`,
    /// `7147006462`, `0x41414141A9FEA9FE`); inet_aton and WHATWG refuse these.
    Overflow = "overflow",
    /// A trailing dot on the host (`169.254.169.254.`, `metadata.google.internal.`).
    TrailingDot = "trailing-dot",
    /// IPv4-mapped IPv6 (`::ffff:169.254.169.254`, `::ffff:a9fe:a9fe`).
    Ipv4MappedIpv6 = "ipv4-mapped-ipv6",
    /// IPv4-compatible IPv6, deprecated by RFC 4291 (`::169.254.169.254`).
    Ipv4CompatibleIpv6 = "ipv4-compatible-ipv6",
    /// IPv4-translated IPv6 of SIIT (`::ffff:0:169.254.169.254`).
    Ipv4TranslatedIpv6 = "ipv4-translated-ipv6",
    /// An RFC 6052 NAT64 address (`64:ff9b::a9fe:a9fe`).
    Nat64 = "nat64",
    /// IPv6 text that is not RFC 5952 canonical: leading zeros, no `::` compression, a lone zero group compressed.
    Ipv6Noncanonical = "ipv6-noncanonical",
    /// An IPv6 zone id (`fe80::a9fe:a9fe%eth0`, `[fd00:ec2::254%25eth0]`).
    ZoneId = "zone-id",
    /// Percent-encoding in the host, path, or the whole string.
    Percent = "percent",
    /// Percent-encoding applied twice (`%2531%2536%2539`).
    DoublePercent = "double-percent",
    /// Userinfo before the host (`http://allowed.example@169.254.169.254/`).
    Userinfo = "userinfo",
    /// A backslash that WHATWG parsers read as a slash and RFC 3986 parsers do not.
    Backslash = "backslash",
    /// A `#` that some parsers end the authority at and others do not.
    Fragment = "fragment",
    /// Non-ASCII characters that IDNA maps to ASCII (full-width digits, ideographic full stops).
    Idna = "idna",
    /// Upper-case letters in a host name.
    Case = "case",
    /// A wildcard-DNS name that resolves to the address it embeds (`169.254.169.254.nip.io`).
    WildcardDns = "wildcard-dns",
    /// A DNS-rebinding name that alternates between embedded addresses (`7f000001.a9fea9fe.rbndr.us`).
    DnsRebinding = "dns-rebinding",
    /// A metadata address embedded in an unknown domain's labels (`169.254.169.254.attacker.example`).
    EmbeddedAddress = "embedded-address",
    /// A URL inside another URL or parameter (`?url=http://169.254.169.254/`).
    NestedUrl = "nested-url",
    /// `.` or `..` path segments, or repeated slashes, that change the path once resolved.
    DotSegments = "dot-segments",
    /// A metadata environment variable (`$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    EnvVar = "env-var",
    /// A host that is a variable, with a path only a metadata service serves (`http://$IMDS/latest/user-data`).
    VariableHost = "variable-host",
    /// A request line with a metadata path and no host (`GET /latest/meta-data/iam/... HTTP/1.1`).
    PathOnly = "path-only",
    /// Base64, such as PowerShell `-EncodedCommand` or `echo ... | base64 -d`.
    Base64 = "base64",
    /// Backslash escapes (`$'\x31\x36\x39...'`, `\x2e`) or `${IFS}` in place of spaces.
    Escape = "escape",
    /// A string split and joined again (`'http://169.254.' + '169.254'`).
    Concatenation = "concatenation",
    /// A scheme that smuggles a raw request (`gopher://169.254.169.254:80/_GET%20/latest/...`).
    Gopher = "gopher",
    /// A client option that sends the request to another address than the URL's host
    /// (`curl --resolve x:80:169.254.169.254`, `--connect-to`, `-x 169.254.169.254:80`).
    ConnectOverride = "connect-override",
    /// A `Host` header naming the metadata service on a request sent to another address, which
    /// a reverse proxy or virtual host then forwards (`curl http://PUBLIC_IP/latest/... -H
    /// "Host: 169.254.169.254"`: how the Capital One breach reached the service).
    HostHeader = "host-header",
}

/// A set of [`Encoding`]s, one bit each: cheap to copy and merge on the hot path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Encodings(u64);

impl Encodings {
    /// The empty set: the target was written canonically.
    pub const NONE: Encodings = Encodings(0);

    /// A set holding one encoding.
    pub fn of(e: Encoding) -> Self {
        Encodings(1 << e as u8)
    }

    /// Adds one encoding.
    pub fn insert(&mut self, e: Encoding) {
        self.0 |= 1 << e as u8;
    }

    /// The set without `e`.
    #[must_use]
    pub fn without(self, e: Encoding) -> Encodings {
        Encodings(self.0 & !(1 << e as u8))
    }

    /// Whether the set holds `e`.
    pub fn contains(self, e: Encoding) -> bool {
        self.0 & (1 << e as u8) != 0
    }

    /// The union of two sets.
    #[must_use]
    pub fn union(self, other: Encodings) -> Encodings {
        Encodings(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many encodings the set holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The encodings, in [`Encoding::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Encoding> {
        Encoding::ALL
            .iter()
            .copied()
            .filter(move |e| self.contains(*e))
    }
}

impl FromIterator<Encoding> for Encodings {
    fn from_iter<I: IntoIterator<Item = Encoding>>(iter: I) -> Self {
        let mut set = Encodings::NONE;
        for e in iter {
            set.insert(e);
        }
        set
    }
}

impl Serialize for Encoding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Encodings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Encoding::as_str))
    }
}

impl fmt::Display for Encodings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(e.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_fits_the_set_and_round_trips_its_name() {
        assert!(Encoding::ALL.len() <= 64);
        for &e in Encoding::ALL {
            assert_eq!(Encoding::from_name(e.as_str()), Some(e));
            let set = Encodings::of(e);
            assert!(set.contains(e));
            assert_eq!(set.len(), 1);
        }
        assert_eq!(Encoding::from_name("rot13"), None);
    }

    #[test]
    fn set_serializes_in_declaration_order() {
        let set: Encodings = [Encoding::Percent, Encoding::Decimal, Encoding::Userinfo]
            .into_iter()
            .collect();
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["decimal","percent","userinfo"]"#
        );
        assert_eq!(set.to_string(), "decimal,percent,userinfo");
    }

    #[test]
    fn kinds_rank_credentials_highest() {
        let mut kinds = [
            Kind::Credentials,
            Kind::Other,
            Kind::Userdata,
            Kind::Token,
            Kind::Identity,
        ];
        kinds.sort();
        assert_eq!(
            kinds,
            [
                Kind::Other,
                Kind::Token,
                Kind::Identity,
                Kind::Userdata,
                Kind::Credentials
            ]
        );
    }
}
