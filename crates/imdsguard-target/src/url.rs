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

/// The readings of one authority, at most three, without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readings<'a> {
    items: [Option<Reading<'a>>; 3],
}

impl<'a> IntoIterator for Readings<'a> {
    type Item = Reading<'a>;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Reading<'a>>, 3>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().flatten()
    }
}

/// Readings of `s`, which starts at the authority (after `scheme://`, or a bare `host[:port][/...]`).
/// The RFC 3986 reading can differ from the WHATWG one only when WHATWG stopped at `\`, and the
/// no-fragment reading only when the others stopped at `#`; otherwise there is one reading.
pub(crate) fn readings(s: &str) -> Readings<'_> {
    let stop = |r: &Reading<'_>| s.as_bytes().get(s.len() - r.rest.len()).copied();
    let mut items = [None, None, None];
    let mut whatwg = reading(s, WHATWG_END, Encodings::NONE);
    let mut last_stop = stop(&whatwg);
    if last_stop == Some(b'\\') {
        whatwg.enc.insert(Encoding::Backslash);
    }
    items[0] = Some(whatwg);
    let mut n = 1;
    if last_stop == Some(b'\\') {
        let mut r = reading(s, RFC3986_END, Encodings::NONE);
        last_stop = stop(&r);
        if r.host != whatwg.host {
            r.enc.insert(Encoding::Backslash);
            items[n] = Some(r);
            n += 1;
        }
    }
    if last_stop == Some(b'#') {
        let mut r = reading(s, NO_FRAGMENT_END, Encodings::NONE);
        if items.iter().flatten().all(|o| o.host != r.host) {
            r.enc.insert(Encoding::Fragment);
            items[n] = Some(r);
        }
    }
    Readings { items }
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
        readings(s)
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
