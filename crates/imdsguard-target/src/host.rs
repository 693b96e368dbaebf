//! Host classification: does this host, however written, name a catalog endpoint?
//!
//! The reading follows WHATWG host parsing (percent-decode, IDNA mapping to ASCII, lowercase, the
//! "ends in a number" rule that sends a host to the IPv4 parser) widened to what inet_aton-based
//! clients accept, then looks the result up in the catalog: addresses, host names, wildcard-DNS
//! services that resolve an embedded address, and addresses embedded in unknown domains.

use std::net::Ipv4Addr;

use crate::catalog::Catalog;
use crate::ip::{ends_in_number, parse_ipv4, parse_ipv4_wrapping, parse_ipv6};
use crate::model::{Encoding, Encodings};
use crate::text::{has_percent_escape, percent_decode};

/// A host that names a catalog endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostHit {
    /// Catalog endpoint index.
    pub endpoint: usize,
    /// How the host was written.
    pub enc: Encodings,
    /// Written in a form that no benign text uses by accident: a canonical address, a dotted
    /// catalog host name, a wildcard-DNS name. Weak hits (a lone decimal number, a single-label
    /// name) count only where a host is expected.
    pub strong: bool,
    /// A single-label name (`metadata`, `instance-data`): an ordinary word too, so it counts only
    /// with a scheme, a port or a path.
    pub label: bool,
}

/// Longest host worth reading (DNS names stop at 253; leave room for encodings).
const MAX_HOST: usize = 1024;

pub(crate) fn classify(cat: &Catalog, raw: &str) -> Option<HostHit> {
    if raw.is_empty() || raw.len() > MAX_HOST {
        return None;
    }
    let b = raw.as_bytes();
    if b.is_ascii() && !has_percent_escape(b) {
        // Hot path: no allocation for hosts up to 255 bytes.
        let mut buf = [0u8; 255];
        if b.len() <= buf.len() {
            let lower = &mut buf[..b.len()];
            lower.copy_from_slice(b);
            lower.make_ascii_lowercase();
            let case = lower != b;
            let s = std::str::from_utf8(lower).ok()?;
            return classify_ascii(cat, s, case, Encodings::NONE);
        }
    }
    classify_slow(cat, raw)
}

fn classify_slow(cat: &Catalog, raw: &str) -> Option<HostHit> {
    let mut enc = Encodings::NONE;
    let mut s = raw.to_owned();
    if let Some(inner) = s.strip_prefix('[') {
        // Brackets hold an IPv6 literal; its zone id may be percent-encoded and must not be decoded
        // into the address.
        let inner = inner.strip_suffix(']')?.to_owned();
        return classify_v6(cat, &inner, enc);
    }
    for round in 0..2 {
        match percent_decode(&s) {
            Some(d) => {
                enc.insert(if round == 0 {
                    Encoding::Percent
                } else {
                    Encoding::DoublePercent
                });
                s = d;
            }
            None => break,
        }
    }
    if !s.is_ascii() {
        let mapped = idna::domain_to_ascii(&s).ok()?;
        enc.insert(Encoding::Idna);
        s = mapped;
        if s.is_empty() {
            return None;
        }
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?.to_owned();
        return classify_v6(cat, &inner, enc);
    }
    let lower = s.to_ascii_lowercase();
    let case = lower != s;
    let mut hit = classify_ascii(cat, &lower, case, enc)?;
    // Percent-encoded or IDNA-mapped text is never written by accident.
    hit.strong = true;
    hit.label = false;
    Some(hit)
}

fn classify_ascii(cat: &Catalog, lower: &str, case: bool, mut enc: Encodings) -> Option<HostHit> {
    if lower.contains(':') {
        let v6_enc = if case {
            enc.union(Encodings::of(Encoding::Case))
        } else {
            enc
        };
        let text = match lower.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']')?,
            None => lower,
        };
        return classify_v6(cat, text, v6_enc);
    }
    let s = match lower.strip_suffix('.') {
        Some(t) => {
            enc.insert(Encoding::TrailingDot);
            t
        }
        None => lower,
    };
    if s.is_empty() {
        return None;
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() && ends_in_number(s) {
        let (addr, form) = parse_ipv4(s).or_else(|| parse_ipv4_wrapping(s))?;
        let endpoint = cat.endpoint_of_v4(addr)?;
        let enc = enc.union(form);
        return Some(HostHit {
            endpoint,
            enc,
            strong: enc.is_empty() || s.contains('.'),
            label: false,
        });
    }
    if ends_in_number(s) {
        // WHATWG: a host ending in a number that is not an IPv4 address is not a host at all.
        return None;
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
    {
        return None;
    }
    if case {
        enc.insert(Encoding::Case);
    }
    if let Some(endpoint) = cat.endpoint_of_name(s) {
        return Some(HostHit {
            endpoint,
            enc,
            strong: s.contains('.'),
            label: !s.contains('.'),
        });
    }
    for w in cat.wildcard_dns() {
        let Some(prefix) = s
            .strip_suffix(w.suffix.as_str())
            .and_then(|p| p.strip_suffix('.'))
        else {
            continue;
        };
        let endpoint = embedded_endpoint(cat, prefix, true)?;
        enc.insert(Encoding::WildcardDns);
        if w.rebinding {
            enc.insert(Encoding::DnsRebinding);
        }
        return Some(HostHit {
            endpoint,
            enc,
            strong: true,
            label: false,
        });
    }
    // An unknown domain carrying a metadata address in its labels resolves wherever its owner
    // wants; the embedded address says where that is meant to be.
    if s.bytes().any(|c| c.is_ascii_digit()) {
        let registrable = s.rsplitn(3, '.').nth(2)?;
        let endpoint = embedded_endpoint(cat, registrable, false)?;
        enc.insert(Encoding::EmbeddedAddress);
        return Some(HostHit {
            endpoint,
            enc,
            strong: true,
            label: false,
        });
    }
    None
}

fn classify_v6(cat: &Catalog, text: &str, enc: Encodings) -> Option<HostHit> {
    let v6 = parse_ipv6(text)?;
    let mut enc = enc.union(v6.encodings);
    if let Some(endpoint) = cat.endpoint_of_v6(v6.addr) {
        return Some(HostHit {
            endpoint,
            enc,
            strong: true,
            label: false,
        });
    }
    let (v4, form) = v6.embedded?;
    let endpoint = cat.endpoint_of_v4(v4)?;
    enc.insert(form);
    Some(HostHit {
        endpoint,
        enc,
        strong: true,
        label: false,
    })
}

/// Finds a catalog address embedded in domain labels: four decimal octets in a row (split by dots
/// or dashes), or, for wildcard services, eight hex digits (`a9fea9fe`) or a dashed IPv6 address.
fn embedded_endpoint(cat: &Catalog, labels: &str, wildcard: bool) -> Option<usize> {
    // A rebinding name carries two addresses; prefer one that is a service on any port over a
    // loopback endpoint that is one only on a given port.
    let mut found: Vec<usize> = Vec::new();
    let octet = |t: &str| -> Option<u8> {
        if t.is_empty() || t.len() > 3 || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let tokens: Vec<&str> = labels.split(['.', '-']).collect();
    for w in tokens.windows(4) {
        if let (Some(a), Some(b), Some(c), Some(d)) =
            (octet(w[0]), octet(w[1]), octet(w[2]), octet(w[3]))
        {
            found.extend(cat.endpoint_of_v4(Ipv4Addr::new(a, b, c, d)));
        }
    }
    if wildcard {
        for t in &tokens {
            if t.len() == 8 && t.bytes().all(|c| c.is_ascii_hexdigit()) {
                if let Ok(v) = u32::from_str_radix(t, 16) {
                    found.extend(cat.endpoint_of_v4(Ipv4Addr::from(v)));
                }
            }
        }
        for label in labels.split('.') {
            if label.matches('-').count() >= 2 {
                let text = label.replace('-', ":");
                found.extend(classify_v6(cat, &text, Encodings::NONE).map(|h| h.endpoint));
            }
        }
    }
    found
        .iter()
        .copied()
        .find(|&e| !cat.port_gated(e))
        .or_else(|| found.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(host: &str) -> Option<(String, Vec<&'static str>, bool)> {
        let cat = Catalog::builtin();
        classify(cat, host).map(|h| {
            assert!(
                !(h.strong && h.label),
                "{host}: a bare label is never strong"
            );
            (
                cat.endpoint_at(h.endpoint).text.clone(),
                h.enc.iter().map(Encoding::as_str).collect(),
                h.strong,
            )
        })
    }

    #[test]
    fn hosts_that_name_an_endpoint() {
        let table: &[(&str, &str, &[&str], bool)] = &[
            ("169.254.169.254", "169.254.169.254", &[], true),
            (
                "169.254.169.254.",
                "169.254.169.254",
                &["trailing-dot"],
                true,
            ),
            ("2852039166", "169.254.169.254", &["decimal"], false),
            ("0xA9FEA9FE", "169.254.169.254", &["hex"], false),
            ("0251.0376.0251.0376", "169.254.169.254", &["octal"], true),
            (
                "%31%36%39%2e%32%35%34%2e%31%36%39%2e%32%35%34",
                "169.254.169.254",
                &["percent"],
                true,
            ),
            (
                "%2531%2536%2539.254.169.254",
                "169.254.169.254",
                &["percent", "double-percent"],
                true,
            ),
            (
                "１６９．２５４．１６９．２５４",
                "169.254.169.254",
                &["idna"],
                true,
            ),
            ("169。254。169。254", "169.254.169.254", &["idna"], true),
            ("①⑥⑨.②⑤④.①⑥⑨.②⑤④", "169.254.169.254", &["idna"], true),
            (
                "[::ffff:a9fe:a9fe]",
                "169.254.169.254",
                &["ipv4-mapped-ipv6"],
                true,
            ),
            ("[fd00:ec2::254]", "fd00:ec2::254", &[], true),
            ("[FD00:EC2::254]", "fd00:ec2::254", &["case"], true),
            (
                "[fd00:ec2:0:0:0:0:0:254%25eth0]",
                "fd00:ec2::254",
                &["ipv6-noncanonical", "zone-id"],
                true,
            ),
            ("fd00:ec2::254", "fd00:ec2::254", &[], true),
            (
                "metadata.google.internal",
                "metadata.google.internal",
                &[],
                true,
            ),
            (
                "METADATA.Google.Internal.",
                "metadata.google.internal",
                &["trailing-dot", "case"],
                true,
            ),
            ("metadata", "metadata", &[], false),
            (
                "instance-data.ec2.internal",
                "instance-data.ec2.internal",
                &[],
                true,
            ),
            (
                "instance-data.eu-west-1.compute.internal",
                "instance-data.*.compute.internal",
                &[],
                true,
            ),
            (
                "169.254.169.254.nip.io",
                "169.254.169.254",
                &["wildcard-dns"],
                true,
            ),
            (
                "app-169-254-169-254.nip.io",
                "169.254.169.254",
                &["wildcard-dns"],
                true,
            ),
            (
                "a9fea9fe.nip.io",
                "169.254.169.254",
                &["wildcard-dns"],
                true,
            ),
            (
                "169-254-169-254.sslip.io",
                "169.254.169.254",
                &["wildcard-dns"],
                true,
            ),
            (
                "fd00-ec2--254.sslip.io",
                "fd00:ec2::254",
                &["wildcard-dns"],
                true,
            ),
            (
                "7f000001.a9fea9fe.rbndr.us",
                "169.254.169.254",
                &["wildcard-dns", "dns-rebinding"],
                true,
            ),
            (
                "make-1.2.3.4-rebind-169.254.169.254-rr.1u.ms",
                "169.254.169.254",
                &["wildcard-dns", "dns-rebinding"],
                true,
            ),
            (
                "169.254.169.254.attacker.example",
                "169.254.169.254",
                &["embedded-address"],
                true,
            ),
            ("100.100.100.200", "100.100.100.200", &[], true),
            (
                "metadata.tencentyun.com",
                "metadata.tencentyun.com",
                &[],
                true,
            ),
            ("169.254.170.2", "169.254.170.2", &[], true),
        ];
        for (host, endpoint, enc, strong) in table {
            let got = check(host).unwrap_or_else(|| panic!("{host} not recognized"));
            assert_eq!(got, (endpoint.to_string(), enc.to_vec(), *strong), "{host}");
        }
    }

    #[test]
    fn hosts_that_do_not() {
        for host in [
            "169.254.169.123",
            "169.254.169.253",
            "169.254.169.25",
            "169.254.169.2540",
            "169.254.169.254.1",
            "10.0.0.1",
            "example.com",
            "metadata.example.com",
            "google.internal",
            "my-metadata",
            "nip.io",
            "1.2.3.4.nip.io",
            "a9fea9ff.nip.io",
            "a9fea9fe.example.com",
            "v169.254.169.254",
            "fd00:ec2::255",
            "[fd00:ec2::254",
            "::ffff:a9fe:a9ff",
            "2002:a9fe:a9fe::",
            "254.169.254.169.example",
            "",
        ] {
            assert_eq!(check(host), None, "{host}");
        }
    }
}
