//! Address notations, read the way real clients read them.
//!
//! IPv4 follows the union of inet_aton(3) (glibc, used by curl, wget, Python, Go's cgo resolver,
//! getaddrinfo) and the WHATWG URL Standard's IPv4 parser (browsers, Node's fetch): one to four
//! parts, each decimal, octal (leading `0`) or hexadecimal (`0x`), the last part filling the
//! remaining bytes. A host either of them would connect to as an address is read as that address.
//!
//! IPv6 follows RFC 4291 text forms (as `inet_pton` reads them), plus zone ids, and unwraps the
//! forms that carry an IPv4 address: mapped, compatible, SIIT-translated and RFC 6052 NAT64.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::{Encoding, Encodings};

/// The longest IPv4 text worth reading; anything longer is not an address a client would accept
/// without leading zeros, and leading zeros beyond this are refused by every parser we model.
const MAX_V4_TEXT: usize = 128;

/// Reads `s` as an IPv4 address in any inet_aton or WHATWG form. `s` must already be lowercase
/// ASCII with any trailing dot removed. Returns the address and the non-canonical forms used.
pub fn parse_ipv4(s: &str) -> Option<(Ipv4Addr, Encodings)> {
    if s.is_empty() || s.len() > MAX_V4_TEXT {
        return None;
    }
    let mut parts = [0u64; 4];
    let mut count = 0usize;
    let mut enc = Encodings::NONE;
    let mut canonical_parts = true;
    for part in s.split('.') {
        if count == 4 {
            return None;
        }
        let (value, form) = parse_part(part)?;
        match form {
            PartForm::Decimal => {}
            PartForm::Octal => {
                enc.insert(Encoding::Octal);
                canonical_parts = false;
            }
            PartForm::Hex => {
                enc.insert(Encoding::Hex);
                canonical_parts = false;
            }
        }
        parts[count] = value;
        count += 1;
    }
    let mut addr: u64 = 0;
    for &part in &parts[..count - 1] {
        if part > 255 {
            return None;
        }
        addr = (addr << 8) | part;
    }
    let last_bits = 8 * (5 - count) as u32;
    let last = parts[count - 1];
    if last >= 1u64 << last_bits {
        return None;
    }
    addr = (addr << last_bits) | last;
    match count {
        4 => {}
        1 => {
            if canonical_parts {
                enc.insert(Encoding::Decimal);
            }
        }
        _ => enc.insert(Encoding::ShortForm),
    }
    Some((Ipv4Addr::from(addr as u32), enc))
}

/// Reads `s` as parsers that truncate overflowing IPv4 parts do: each part but the last modulo
/// 256, the last modulo the bits it fills. Only for text [`parse_ipv4`] refuses; returns the
/// address with [`Encoding::Overflow`] and the part forms used.
pub fn parse_ipv4_wrapping(s: &str) -> Option<(Ipv4Addr, Encodings)> {
    if s.is_empty() || s.len() > MAX_V4_TEXT || parse_ipv4(s).is_some() {
        return None;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut enc = Encodings::of(Encoding::Overflow);
    let mut values = Vec::with_capacity(4);
    for part in &parts {
        let (digits, radix) = match part.as_bytes() {
            [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
            [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
            [] => return None,
            all => (all, 10),
        };
        match radix {
            16 => enc.insert(Encoding::Hex),
            8 => enc.insert(Encoding::Octal),
            _ => {}
        }
        let mut v: u128 = 0;
        for &c in digits {
            v = v
                .checked_mul(radix as u128)?
                .checked_add((c as char).to_digit(radix)? as u128)?;
        }
        values.push(v);
    }
    let n = values.len();
    let last_bits = 8 * (5 - n) as u32;
    let mut addr: u64 = 0;
    for v in &values[..n - 1] {
        addr = (addr << 8) | (*v % 256) as u64;
    }
    addr = (addr << last_bits) | (values[n - 1] % (1u128 << last_bits)) as u64;
    if n > 1 && n < 4 {
        enc.insert(Encoding::ShortForm);
    }
    Some((Ipv4Addr::from(addr as u32), enc))
}

#[derive(Clone, Copy)]
enum PartForm {
    Decimal,
    Octal,
    Hex,
}

fn parse_part(part: &str) -> Option<(u64, PartForm)> {
    let b = part.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (digits, radix, form) = if b.len() >= 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        (&b[2..], 16, PartForm::Hex)
    } else if b.len() >= 2 && b[0] == b'0' {
        (&b[1..], 8, PartForm::Octal)
    } else {
        (b, 10, PartForm::Decimal)
    };
    let mut value: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)? as u64;
        value = value.checked_mul(radix as u64)?.checked_add(d)?;
        if value > u32::MAX as u64 {
            // Still consume the rest so that invalid digits are refused, but the value no longer
            // fits any part: the whole host is not an address.
            return None;
        }
    }
    Some((value, form))
}

/// Whether the last dot-separated label of `s` is a number in the WHATWG sense (all decimal
/// digits, or `0x` followed by hex digits). Such a host is an IPv4 address or nothing at all.
pub fn ends_in_number(s: &str) -> bool {
    let last = s.rsplit('.').next().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let b = last.as_bytes();
    b.len() >= 2
        && b[0] == b'0'
        && (b[1] | 0x20) == b'x'
        && b[2..].iter().all(u8::is_ascii_hexdigit)
}

/// An IPv6 address read from text, with the IPv4 address it carries, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V6 {
    /// The address itself.
    pub addr: Ipv6Addr,
    /// The IPv4 address a mapped, compatible, translated or NAT64 form carries.
    pub embedded: Option<(Ipv4Addr, Encoding)>,
    /// Non-canonical forms used in the text (zone id, leading zeros, case).
    pub encodings: Encodings,
}

/// Reads `s` (no brackets) as an IPv6 address, with an optional zone id after `%` or `%25`.
pub fn parse_ipv6(s: &str) -> Option<V6> {
    if !s.contains(':') || s.len() > 128 {
        return None;
    }
    let mut enc = Encodings::NONE;
    let text = match s.find('%') {
        Some(i) => {
            enc.insert(Encoding::ZoneId);
            &s[..i]
        }
        None => s,
    };
    let addr: Ipv6Addr = text.parse().ok()?;
    let lower = text.to_ascii_lowercase();
    if lower != text {
        enc.insert(Encoding::Case);
    }
    let embedded = embedded_ipv4(addr);
    if embedded.is_none() && lower != addr.to_string() {
        enc.insert(Encoding::Ipv6Noncanonical);
    }
    Some(V6 {
        addr,
        embedded,
        encodings: enc,
    })
}

/// The IPv4 address carried by an IPv6 address, and the form that carries it.
pub fn embedded_ipv4(addr: Ipv6Addr) -> Option<(Ipv4Addr, Encoding)> {
    let bits = u128::from(addr);
    let low32 = Ipv4Addr::from(bits as u32);
    let high96 = bits >> 32;
    if high96 == 0xffff {
        return Some((low32, Encoding::Ipv4MappedIpv6));
    }
    if high96 == 0xffff_0000 {
        return Some((low32, Encoding::Ipv4TranslatedIpv6));
    }
    if high96 == 0 && (bits as u32) > 1 {
        return Some((low32, Encoding::Ipv4CompatibleIpv6));
    }
    // RFC 6052 well-known prefix 64:ff9b::/96.
    if high96 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some((low32, Encoding::Nat64));
    }
    // RFC 8215 local-use prefix 64:ff9b:1::/48, with the RFC 6052 /48 layout (IPv4 split around
    // the reserved u octet, bits 64..71) or the /96 layout.
    if bits >> 80 == 0x0064_ff9b_0001 {
        let b = addr.octets();
        if b[8] == 0 {
            let v4 = Ipv4Addr::new(b[6], b[7], b[9], b[10]);
            if b[11..].iter().all(|&x| x == 0) {
                return Some((v4, Encoding::Nat64));
            }
        }
        return Some((low32, Encoding::Nat64));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<(String, Vec<&'static str>)> {
        parse_ipv4(s).map(|(a, e)| (a.to_string(), e.iter().map(Encoding::as_str).collect()))
    }

    #[test]
    fn ipv4_notations() {
        let table: &[(&str, &str, &[&str])] = &[
            ("169.254.169.254", "169.254.169.254", &[]),
            ("2852039166", "169.254.169.254", &["decimal"]),
            ("0xa9fea9fe", "169.254.169.254", &["hex"]),
            ("0xA9FEA9FE", "169.254.169.254", &["hex"]),
            ("0x00000a9fea9fe", "169.254.169.254", &["hex"]),
            ("025177524776", "169.254.169.254", &["octal"]),
            ("0251.0376.0251.0376", "169.254.169.254", &["octal"]),
            ("0251.00376.000251.0000376", "169.254.169.254", &["octal"]),
            ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254", &["hex"]),
            ("169.254.43518", "169.254.169.254", &["short-form"]),
            ("169.16689662", "169.254.169.254", &["short-form"]),
            ("0xa9.254.0251.0xfe", "169.254.169.254", &["octal", "hex"]),
            (
                "0xa9.0376.43518",
                "169.254.169.254",
                &["octal", "hex", "short-form"],
            ),
            ("0", "0.0.0.0", &["decimal"]),
            ("025177524776", "169.254.169.254", &["octal"]),
            ("0x", "0.0.0.0", &["hex"]),
            ("1.2.3", "1.2.0.3", &["short-form"]),
            ("4294967295", "255.255.255.255", &["decimal"]),
        ];
        for (input, addr, enc) in table {
            let (got, got_enc) = v4(input).unwrap_or_else(|| panic!("{input} refused"));
            assert_eq!(&got, addr, "{input}");
            assert_eq!(&got_enc, enc, "{input}");
        }
    }

    #[test]
    fn ipv4_refusals() {
        for input in [
            "",
            "169.254.169.254.1",
            "256.1.1.1",
            "169.254.169.256",
            "4294967296",
            "0x1ffffffff",
            "0169.254.169.254",
            "08.1.1.1",
            "169..254.169",
            "169.254.169.254.",
            "1.2.3.0x",
            "a9fea9fe",
            "169.254.65536",
            "1.2.3.4 ",
            "-1.2.3.4",
            "+1.2.3.4",
        ] {
            // "1.2.3.0x" is accepted by WHATWG (0x alone is zero): check the value, not refusal.
            if input == "1.2.3.0x" {
                assert_eq!(v4(input).unwrap().0, "1.2.3.0");
                continue;
            }
            assert!(v4(input).is_none(), "{input} accepted as {:?}", v4(input));
        }
    }

    #[test]
    fn overflow_reading_wraps_only_what_strict_readers_refuse() {
        for (input, addr) in [
            ("425.510.425.510", "169.254.169.254"),
            ("7147006462", "169.254.169.254"),
            ("0x41414141a9fea9fe", "169.254.169.254"),
            ("169.254.169.510", "169.254.169.254"),
        ] {
            let (a, e) = parse_ipv4_wrapping(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(a.to_string(), addr, "{input}");
            assert!(e.contains(Encoding::Overflow), "{input}");
        }
        assert_eq!(
            parse_ipv4_wrapping("169.254.169.254"),
            None,
            "valid text is not an overflow"
        );
        assert_eq!(parse_ipv4_wrapping("1.2.3.4.5"), None);
        assert_eq!(parse_ipv4_wrapping("08.1.1.1"), None);
    }

    #[test]
    fn ends_in_number_follows_whatwg() {
        assert!(ends_in_number("169.254.169.254"));
        assert!(ends_in_number("foo.0x1f"));
        assert!(ends_in_number("v1.2"));
        assert!(!ends_in_number("metadata.google.internal"));
        assert!(!ends_in_number("foo.0xg"));
        assert!(!ends_in_number(""));
    }

    #[test]
    fn ipv6_embedded_forms() {
        let table: &[(&str, &str, Encoding)] = &[
            (
                "::ffff:169.254.169.254",
                "169.254.169.254",
                Encoding::Ipv4MappedIpv6,
            ),
            (
                "::ffff:a9fe:a9fe",
                "169.254.169.254",
                Encoding::Ipv4MappedIpv6,
            ),
            (
                "0:0:0:0:0:ffff:a9fe:a9fe",
                "169.254.169.254",
                Encoding::Ipv4MappedIpv6,
            ),
            (
                "::169.254.169.254",
                "169.254.169.254",
                Encoding::Ipv4CompatibleIpv6,
            ),
            (
                "::a9fe:a9fe",
                "169.254.169.254",
                Encoding::Ipv4CompatibleIpv6,
            ),
            (
                "::ffff:0:a9fe:a9fe",
                "169.254.169.254",
                Encoding::Ipv4TranslatedIpv6,
            ),
            ("64:ff9b::a9fe:a9fe", "169.254.169.254", Encoding::Nat64),
            (
                "64:ff9b::169.254.169.254",
                "169.254.169.254",
                Encoding::Nat64,
            ),
            (
                "64:ff9b:1:a9fe:a9:fe00::",
                "169.254.169.254",
                Encoding::Nat64,
            ),
            ("64:ff9b:1::a9fe:a9fe", "169.254.169.254", Encoding::Nat64),
        ];
        for (input, addr, form) in table {
            let got = parse_ipv6(input).unwrap_or_else(|| panic!("{input} refused"));
            let (v4, f) = got
                .embedded
                .unwrap_or_else(|| panic!("{input}: nothing embedded"));
            assert_eq!(v4.to_string(), *addr, "{input}");
            assert_eq!(f, *form, "{input}");
        }
        assert_eq!(parse_ipv6("::1").unwrap().embedded, None);
        assert_eq!(parse_ipv6("::").unwrap().embedded, None);
        assert_eq!(parse_ipv6("fd00:ec2::254").unwrap().embedded, None);
    }

    #[test]
    fn ipv6_noncanonical_text_and_zones() {
        let canonical = parse_ipv6("fd00:ec2::254").unwrap();
        assert!(canonical.encodings.is_empty());
        let expanded = parse_ipv6("fd00:0ec2:0000:0000:0000:0000:0000:0254").unwrap();
        assert_eq!(expanded.addr, canonical.addr);
        assert!(expanded.encodings.contains(Encoding::Ipv6Noncanonical));
        let upper = parse_ipv6("FD00:EC2::254").unwrap();
        assert!(upper.encodings.contains(Encoding::Case));
        assert!(!upper.encodings.contains(Encoding::Ipv6Noncanonical));
        let zoned = parse_ipv6("fe80::a9fe:a9fe%eth0").unwrap();
        assert!(zoned.encodings.contains(Encoding::ZoneId));
        assert_eq!(zoned.addr, "fe80::a9fe:a9fe".parse::<Ipv6Addr>().unwrap());
        for bad in [
            "fd00:ec2:::254",
            "fd00:ec2::254::1",
            "12345::1",
            "1:2:3:4:5:6:7:8:9",
            "169.254.169.254",
            "g::1",
        ] {
            assert!(parse_ipv6(bad).is_none(), "{bad} accepted");
        }
    }
}
