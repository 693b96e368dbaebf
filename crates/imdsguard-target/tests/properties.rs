//! Property tests: random encodings of catalog addresses are always found, random non-catalog
//! addresses in the same encodings never are, and two independent readers agree with ours:
//! glibc's `inet_aton(3)` and the `url` crate's WHATWG host parser.

// `unsafe` is confined to one call of glibc's inet_aton, used as an oracle for what C clients
// (curl, wget, Python's socket module) connect to.
#![allow(unsafe_code)]

use std::net::Ipv4Addr;

use imdsguard_target::{builtin, parse_ipv4, Catalog};
use proptest::prelude::*;

/// Catalog addresses of services on any port (not the loopback Azure Arc endpoint), each once.
fn catalog_addresses() -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    for p in Catalog::builtin()
        .providers()
        .iter()
        .filter(|p| !p.port_required)
    {
        for a in &p.addresses {
            if !out.contains(a) {
                out.push(*a);
            }
        }
    }
    out
}

fn catalog_v4() -> Vec<Ipv4Addr> {
    catalog_addresses()
        .into_iter()
        .filter_map(|a| match a {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
        .collect()
}

fn catalog_v6() -> Vec<std::net::Ipv6Addr> {
    catalog_addresses()
        .into_iter()
        .filter_map(|a| match a {
            std::net::IpAddr::V6(v6) => Some(v6),
            std::net::IpAddr::V4(_) => None,
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Radix {
    Dec,
    Oct(usize),
    Hex(usize, bool, bool),
}

fn fmt_part(v: u32, radix: Radix) -> String {
    match radix {
        Radix::Dec => v.to_string(),
        Radix::Oct(zeros) => format!("0{}{:o}", "0".repeat(zeros), v),
        Radix::Hex(zeros, upper_x, upper) => {
            let digits = if upper {
                format!("{v:X}")
            } else {
                format!("{v:x}")
            };
            format!(
                "0{}{}{}",
                if upper_x { 'X' } else { 'x' },
                "0".repeat(zeros),
                digits
            )
        }
    }
}

fn radix() -> impl Strategy<Value = Radix> {
    prop_oneof![
        Just(Radix::Dec),
        (0usize..3).prop_map(Radix::Oct),
        (0usize..3, any::<bool>(), any::<bool>()).prop_map(|(z, x, u)| Radix::Hex(z, x, u)),
    ]
}

/// Writes `addr` with `parts` parts (1..=4), each in its own radix.
fn inet_text(addr: Ipv4Addr, parts: usize, radixes: &[Radix]) -> String {
    let v = u32::from(addr);
    let o = addr.octets();
    let values: Vec<u32> = match parts {
        1 => vec![v],
        2 => vec![o[0].into(), v & 0x00ff_ffff],
        3 => vec![o[0].into(), o[1].into(), v & 0xffff],
        _ => o.iter().map(|&b| b.into()).collect(),
    };
    values
        .iter()
        .zip(radixes)
        .map(|(&x, &r)| fmt_part(x, r))
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Debug, Clone, Copy)]
enum Wrap {
    Plain,
    TrailingDot,
    Percent,
    FullWidth,
    Mapped,
    MappedHex,
}

fn wrap(host: &str, addr: Ipv4Addr, how: Wrap) -> String {
    match how {
        Wrap::Plain => host.to_owned(),
        Wrap::TrailingDot => format!("{host}."),
        Wrap::Percent => host.bytes().map(|b| format!("%{b:02x}")).collect(),
        Wrap::FullWidth => host
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(0xFF10 + (c as u32 - '0' as u32)).unwrap_or(c),
                '.' => '\u{3002}',
                _ => c,
            })
            .collect(),
        Wrap::Mapped => format!("[::ffff:{addr}]"),
        Wrap::MappedHex => {
            let v = u32::from(addr);
            format!("[::ffff:{:x}:{:x}]", v >> 16, v & 0xffff)
        }
    }
}

fn wrap_kind() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        Just(Wrap::Plain),
        Just(Wrap::TrailingDot),
        Just(Wrap::Percent),
        Just(Wrap::FullWidth),
        Just(Wrap::Mapped),
        Just(Wrap::MappedHex),
    ]
}

fn context(host: &str, which: u8) -> String {
    match which % 6 {
        0 => format!("http://{host}/latest/meta-data/"),
        1 => format!("curl -s {host}/latest/meta-data/iam/security-credentials/"),
        2 => format!("http://allowed.example@{host}/latest/user-data"),
        3 => format!("wget -qO- \"http://{host}:80/\""),
        4 => {
            let inner = format!("http://{host}/latest/user-data");
            let enc: String = inner
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("https://app.example/fetch?url={enc}")
        }
        _ => format!("Invoke-WebRequest -UseBasicParsing -Uri 'http://{host}/latest/user-data'"),
    }
}

fn encoded(addr: Ipv4Addr) -> impl Strategy<Value = String> {
    (
        1usize..=4,
        prop::collection::vec(radix(), 4),
        wrap_kind(),
        any::<u8>(),
    )
        .prop_map(move |(parts, radixes, how, ctx)| {
            let host = wrap(&inet_text(addr, parts, &radixes), addr, how);
            context(&host, ctx)
        })
}

fn catalog_addr() -> impl Strategy<Value = Ipv4Addr> {
    prop::sample::select(catalog_v4())
}

fn other_addr() -> impl Strategy<Value = Ipv4Addr> {
    let taken = catalog_v4();
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("not a catalog address", move |a| {
            !taken.contains(a) && !a.is_loopback()
        })
}

/// Writes an IPv6 address with per-group leading zeros and case, optionally compressing the
/// longest zero run, optionally with a zone id.
fn v6_text(
    addr: std::net::Ipv6Addr,
    zeros: &[usize],
    upper: &[bool],
    compress: bool,
    zone: bool,
) -> String {
    let groups: Vec<String> = addr
        .segments()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let hex = if upper[i] {
                format!("{g:X}")
            } else {
                format!("{g:x}")
            };
            let pad = zeros[i].min(4usize.saturating_sub(hex.len()));
            format!("{}{hex}", "0".repeat(pad))
        })
        .collect();
    let mut text = groups.join(":");
    if compress {
        // Collapse the first run of two or more all-zero groups.
        let segs = addr.segments();
        if let Some(start) = (0..7).find(|&i| segs[i] == 0 && segs[i + 1] == 0) {
            let end = (start..8).find(|&i| segs[i] != 0).unwrap_or(8);
            text = format!("{}::{}", groups[..start].join(":"), groups[end..].join(":"));
        }
    }
    if zone {
        text.push_str("%25eth0");
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn catalog_ipv6_addresses_are_found_however_written(
        addr in prop::sample::select(catalog_v6()),
        zeros in prop::collection::vec(0usize..4, 8),
        upper in prop::collection::vec(any::<bool>(), 8),
        compress in any::<bool>(),
        zone in any::<bool>(),
        ctx in any::<u8>(),
    ) {
        let host = format!("[{}]", v6_text(addr, &zeros, &upper, compress, zone));
        let text = context(&host, ctx);
        let found = builtin().find(&text);
        let want = addr.to_string();
        prop_assert_eq!(found.first().and_then(|t| t.endpoint_text()), Some(want.as_str()), "{:?}", text);
    }

    #[test]
    fn catalog_addresses_are_found_however_written((addr, text) in catalog_addr().prop_flat_map(|a| (Just(a), encoded(a)))) {
        let found = builtin().find(&text);
        let best = found.first();
        prop_assert!(best.is_some(), "{text:?} ({addr}) not found");
        let want = addr.to_string();
        prop_assert_eq!(best.and_then(|t| t.endpoint_text()), Some(want.as_str()), "{:?}", text);
    }

    #[test]
    fn other_addresses_are_never_targets((addr, text) in other_addr().prop_flat_map(|a| (Just(a), encoded(a)))) {
        let found = builtin().find(&text);
        prop_assert!(found.is_empty(), "{text:?} ({addr}) called a target: {:?}", found.first().map(|t| t.endpoint_text()));
    }

    /// Whatever the WHATWG parser reads as an IPv4 host, we read as the same address.
    #[test]
    fn whatwg_reader_agrees(addr in prop_oneof![catalog_addr(), other_addr()], parts in 1usize..=4, radixes in prop::collection::vec(radix(), 4), how in wrap_kind()) {
        let host = wrap(&inet_text(addr, parts, &radixes), addr, how);
        let url = format!("http://{host}/latest/meta-data/");
        if let Ok(parsed) = url::Url::parse(&url) {
            let whatwg_addr = match parsed.host() {
                Some(url::Host::Ipv4(a)) => Some(a),
                Some(url::Host::Ipv6(a)) => a.to_ipv4_mapped(),
                _ => None,
            };
            if let Some(a) = whatwg_addr {
                prop_assert_eq!(a, addr, "{}", url);
                let ours = builtin().find(&url);
                let want = catalog_v4().contains(&a);
                prop_assert_eq!(!ours.is_empty(), want, "{} (WHATWG reads {})", url, a);
            }
        }
    }

    /// Whatever glibc's inet_aton accepts, our IPv4 reader accepts as the same address.
    #[test]
    fn inet_aton_agrees(text in "[0-9a-fA-FxX.]{1,24}") {
        let theirs = inet_aton(&text);
        if let Some(a) = theirs {
            let ours = parse_ipv4(&text.to_ascii_lowercase()).map(|(x, _)| x);
            prop_assert_eq!(ours, Some(a), "inet_aton({:?}) = {}", text, a);
        }
    }

    /// Noise around a target does not hide it, and nothing panics on arbitrary text.
    #[test]
    fn targets_survive_noise(prefix in "[ -~]{0,40}", suffix in "[ -~]{0,40}") {
        let text = format!("{prefix} curl http://169.254.169.254/latest/meta-data/iam/security-credentials/ {suffix}");
        let found = builtin().find(&text);
        prop_assert!(found.iter().any(|t| t.endpoint_text() == Some("169.254.169.254")), "{:?}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = builtin().find(&text);
    }
}

extern "C" {
    /// glibc's inet_aton(3); the libc crate does not bind it.
    #[link_name = "inet_aton"]
    fn c_inet_aton(cp: *const libc::c_char, inp: *mut libc::in_addr) -> libc::c_int;
}

fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let c = std::ffi::CString::new(s).ok()?;
    let mut out = libc::in_addr { s_addr: 0 };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; `out` is a valid,
    // writable `in_addr`.
    let ok = unsafe { c_inet_aton(c.as_ptr(), &mut out) };
    (ok != 0).then(|| Ipv4Addr::from(u32::from_be(out.s_addr)))
}

#[test]
fn inet_aton_oracle_works() {
    assert_eq!(
        inet_aton("0xa9fea9fe"),
        Some(Ipv4Addr::new(169, 254, 169, 254))
    );
    assert_eq!(
        inet_aton("169.254.43518"),
        Some(Ipv4Addr::new(169, 254, 169, 254))
    );
    assert_eq!(inet_aton("1.2.3.4.5"), None);
}
