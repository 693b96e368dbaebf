//! Authority readings: where different URL parsers think the host is.
//!
//! Clients disagree on where an authority ends and which `@` ends the userinfo, and SSRF payloads
//! live in those gaps (`http://169.254.169.254\@allowed.example/`, `http://allowed.example#@169.254.169.254/`).
//! Each [`Reading`] is one parser family's answer; a target that any of them would connect to is a
//! target.
//!
//! | reading | authority ends at | parsers |
//! |---|---|---|
//! | WHATWG | `/ \ ? #` | browsers, Node `fetch`/`URL`, Deno, rust-url |
//! | RFC 3986 | `/ ? #` | Python `urllib.parse`, Go `net/url`, Java `URI`, PHP `parse_url` |
//! | no-fragment | `/ ?` | older or hand-written parsers that ignore `#` in the authority |
//!
//! All three take the last `@` as the end of the userinfo, as the specifications do.

use crate::model::{Encoding, Encodings};

/// One parser family's reading of an authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading<'a> {
    /// The host as written (brackets kept for IPv6).
    pub host: &'a str,
    /// The port, if one was given and is a number.
    pub port: Option<u16>,
    /// Everything after the authority: path, query, fragment.
    pub rest: &'a str,
    /// Tricks this reading depends on.
    pub enc: Encodings,
}

const WHATWG_END: &[u8] = b"/\\?#";
const RFC3986_END: &[u8] = b"/?#";
const NO_FRAGMENT_END: &[u8] = b"/?";

/// Shell expansion and template syntax end a host too: `169.254.170.2$AWS_CONTAINER_...`.
fn is_expansion(c: u8) -> bool {
    c == b'$' || c == b'`'
}

/// Readings of `s`, which starts at the authority (after `scheme://`, or a bare `host[:port][/...]`).
/// `slashes_had_backslash` marks a URL whose `//` was written with backslashes.
pub(crate) fn readings(s: &str, mut base: Encodings) -> Vec<Reading<'_>> {
    let mut out: Vec<Reading<'_>> = Vec::with_capacity(1);
    let whatwg = reading(s, WHATWG_END, base);
    let whatwg_end = s.len() - whatwg.rest.len();
    let ended_at_backslash = s.as_bytes().get(whatwg_end) == Some(&b'\\');
    if ended_at_backslash {
        base.insert(Encoding::Backslash);
    }
    out.push(Reading {
        enc: if ended_at_backslash {
            whatwg.enc.union(Encodings::of(Encoding::Backslash))
        } else {
            whatwg.enc
        },
        ..whatwg
    });
    for (ends, trick) in [
        (RFC3986_END, Encoding::Backslash),
        (NO_FRAGMENT_END, Encoding::Fragment),
    ] {
        let r = reading(s, ends, Encodings::NONE);
        if out.iter().all(|o| o.host != r.host) {
            let authority = &s[..s.len() - r.rest.len()];
            let mut enc = r.enc;
            if authority.contains(if trick == Encoding::Fragment {
                '#'
            } else {
                '\\'
            }) {
                enc.insert(trick);
            }
            out.push(Reading { enc, ..r });
        }
    }
    out
}

fn reading<'a>(s: &'a str, ends: &[u8], mut enc: Encodings) -> Reading<'a> {
    let b = s.as_bytes();
    let end = b
        .iter()
        .position(|c| ends.contains(c) || is_expansion(*c) || c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let authority = &s[..end];
    let host_port = match authority.rfind('@') {
        Some(at) => {
            enc.insert(Encoding::Userinfo);
            &authority[at + 1..]
        }
        None => authority,
    };
    let (host, port_text) = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(close) => (
                &host_port[..=close],
                host_port[close + 1..].strip_prefix(':'),
            ),
            None => (host_port, None),
        }
    } else {
        match host_port.find(':') {
            Some(colon) => (&host_port[..colon], Some(&host_port[colon + 1..])),
            None => (host_port, None),
        }
    };
    let port = port_text.and_then(|p| {
        if p.is_empty() {
            None
        } else {
            p.parse::<u16>().ok()
        }
    });
    Reading {
        host,
        port,
        rest: &s[end..],
        enc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(s: &str) -> Vec<(&str, Option<u16>, &str, Vec<&'static str>)> {
        readings(s, Encodings::NONE)
            .into_iter()
            .map(|r| {
                (
                    r.host,
                    r.port,
                    r.rest,
                    r.enc.iter().map(Encoding::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn parser_differentials() {
        assert_eq!(
            hosts("169.254.169.254/latest"),
            vec![("169.254.169.254", None, "/latest", vec![])]
        );
        assert_eq!(
            hosts("169.254.169.254:80/x"),
            vec![("169.254.169.254", Some(80), "/x", vec![])]
        );
        assert_eq!(
            hosts("allowed.example@169.254.169.254/"),
            vec![("169.254.169.254", None, "/", vec!["userinfo"])]
        );
        assert_eq!(
            hosts("169.254.169.254\\@allowed.example/"),
            vec![
                (
                    "169.254.169.254",
                    None,
                    "\\@allowed.example/",
                    vec!["backslash"]
                ),
                ("allowed.example", None, "/", vec!["userinfo", "backslash"]),
            ]
        );
        assert_eq!(
            hosts("allowed.example#@169.254.169.254/"),
            vec![
                ("allowed.example", None, "#@169.254.169.254/", vec![]),
                ("169.254.169.254", None, "/", vec!["userinfo", "fragment"]),
            ]
        );
        assert_eq!(
            hosts("[fd00:ec2::254]:80/latest"),
            vec![("[fd00:ec2::254]", Some(80), "/latest", vec![])]
        );
        assert_eq!(
            hosts("169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            vec![(
                "169.254.170.2",
                None,
                "$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                vec![]
            )]
        );
        assert_eq!(
            hosts("a.com:80:169.254.169.254"),
            vec![("a.com", None, "", vec![])]
        );
    }
}
