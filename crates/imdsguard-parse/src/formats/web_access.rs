//! Web server access logs in the NCSA forms nginx and Apache write by default: `common`
//! (`%h %l %u %t "%r" %>s %b`), `combined` (with `"%{Referer}i" "%{User-Agent}i"`), and
//! Apache's `vhost_combined` (the virtual host and port first). nginx's `main` adds
//! `"$http_x_forwarded_for"` after the user agent: read, and kept as a field. Each line is one
//! request received by the server: an inbound HTTP event whose client is the first address and
//! whose URL is the request target, with the virtual host in front when the log names it.
//!
//! Request lines are written as the client sent them: nginx escapes `"` and bytes outside
//! printable ASCII as `\xHH`, Apache as `\"` and `\xHH`; both are read back.

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use crate::error::SkipReason;

/// One access-log line, split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    vhost: Option<&'a str>,
    client: &'a str,
    /// Addresses the request came through, written before the client.
    through: Option<&'a str>,
    user: Option<&'a str>,
    /// `10/Oct/2000:13:55:36 -0700`.
    time: &'a str,
    request: String,
    status: u16,
    bytes: Option<u64>,
    referer: Option<String>,
    user_agent: Option<String>,
    forwarded_for: Option<String>,
    /// Squid's `combined` form ends with `code:hierarchy` (`TCP_MISS:HIER_DIRECT`): the line is
    /// a forward proxy's.
    proxy_result: Option<&'a str>,
}

/// Whether a line is an access-log line of one of the forms read here.
pub(crate) fn sniff_line(line: &str) -> bool {
    split(line).is_some()
}

/// The fields of a line, or `None` when it is not one of the forms.
pub(crate) fn split(line: &str) -> Option<Line<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let open = line.find(" [")?;
    // `… ident user [`: the two fields before the time, then what comes first: the client, the
    // virtual host and the client, or the addresses a request came through and the client
    // (`10.0.0.2, 10.0.0.1, 127.0.0.1` or `"10.5.1.1, 199.96.1.1" 10.2.1.185`, as nginx's
    // `real_ip` and `$http_x_forwarded_for` formats write them).
    let head = &line[..open];
    let (head, user) = head.rsplit_once(' ')?;
    let (prefix, _ident) = head.rsplit_once(' ')?;
    let (vhost, client, through) = client_part(prefix)?;
    if client.is_empty() || client.contains(['"', '[', ' ', ',']) {
        return None;
    }
    let rest = &line[open + 2..];
    let close = rest.find("] ")?;
    let time = &rest[..close];
    // `dd/Mon/yyyy:hh:mm:ss +zzzz`
    let tb = time.as_bytes();
    if tb.len() != 26 || tb[2] != b'/' || tb[6] != b'/' || tb[11] != b':' || tb[20] != b' ' {
        return None;
    }
    let mut rest = &rest[close + 2..];
    let request = quoted(&mut rest)?;
    let mut words = rest.trim_start().splitn(3, ' ');
    let status: u16 = words
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..=999).contains(s))?;
    let bytes = match words.next()? {
        "-" => None,
        b => Some(b.parse().ok()?),
    };
    let mut tail = words.next().unwrap_or("");
    let mut extra = Vec::new();
    while !tail.trim().is_empty() {
        tail = tail.trim_start();
        if !tail.starts_with('"') {
            break;
        }
        extra.push(quoted(&mut tail)?);
    }
    let rest = tail.trim();
    let proxy_result = rest.split_once(':').and_then(|(code, hier)| {
        let word =
            |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        (code.starts_with("TCP_") || code.starts_with("UDP_") || code == "NONE")
            .then_some(())
            .filter(|_| word(code) && word(hier.split('/').next().unwrap_or("")))
            .map(|_| rest)
    });
    let mut extra = extra.into_iter().map(|v| Some(v).filter(|v| v != "-"));
    Some(Line {
        vhost,
        client,
        through,
        user: Some(user).filter(|u| *u != "-"),
        time,
        request,
        status,
        bytes,
        referer: extra.next().flatten(),
        user_agent: extra.next().flatten(),
        forwarded_for: extra.next().flatten(),
        proxy_result,
    })
}

/// The start of a line: `(virtual host, client, addresses it came through)`.
fn client_part(prefix: &str) -> Option<(Option<&str>, &str, Option<&str>)> {
    let prefix = prefix.trim();
    if let Some(quoted) = prefix.strip_prefix('"') {
        let (list, client) = quoted.split_once('"')?;
        return Some((None, client.trim(), Some(list.trim())));
    }
    if let Some(at) = prefix.rfind(", ") {
        // `a, b, c` (the client last) or `a, b c` (a list, then the client).
        let tail = &prefix[at + 2..];
        return Some(match tail.split_once(' ') {
            Some((_, client)) => (
                None,
                client,
                Some(&prefix[..prefix.len() - client.len() - 1]),
            ),
            None => (None, tail, Some(&prefix[..at])),
        });
    }
    Some(match prefix.split_once(' ') {
        Some((vhost, client)) => (Some(vhost), client, None),
        None => (None, prefix, None),
    })
}

/// A `"…"` field at the start of `rest` (moved past it), its escapes read back: `\"`, `\\`,
/// `\xHH` (bytes that are not UTF-8 become U+FFFD).
fn quoted(rest: &mut &str) -> Option<String> {
    let s = rest.strip_prefix('"')?;
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len().min(256));
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                *rest = &s[i + 1..];
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            b'\\' if i + 1 < b.len() => {
                match b[i + 1] {
                    b'x' if i + 3 < b.len() => {
                        let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok();
                        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            Some(v) => {
                                out.push(v);
                                i += 4;
                                continue;
                            }
                            None => out.push(b'\\'),
                        }
                    }
                    c @ (b'"' | b'\\') => {
                        out.push(c);
                        i += 2;
                        continue;
                    }
                    _ => out.push(b'\\'),
                }
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// `10/Oct/2000:13:55:36 -0700` in RFC 3339 (`2000-10-10T20:55:36.000Z`).
pub(crate) fn ncsa_time(t: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = t.get(3..6)?;
    let month = MONTHS.iter().position(|m| *m == name)? + 1;
    let (sign, oh, om) = (t.get(21..22)?, t.get(22..24)?, t.get(24..26)?);
    let text = format!(
        "{}-{month:02}-{}T{}{sign}{oh}:{om}",
        t.get(7..11)?,
        t.get(0..2)?,
        t.get(12..20)?
    );
    parse_time_ms(&text).map(format_time_ms)
}

/// The event of one line.
pub(crate) fn decode(line: &Line<'_>, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    let time = ncsa_time(line.time).ok_or_else(|| {
        (
            SkipReason::Malformed,
            format!("{:?} is not a time", line.time),
        )
    })?;
    // `GET /path HTTP/1.1`; a request that is no request (`-`, junk a scanner sent) is kept as
    // its text, with no method.
    let mut parts = line.request.splitn(3, ' ');
    let (method, uri, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), v) if !m.is_empty() && m.bytes().all(|c| c.is_ascii_uppercase()) => {
            (Some(m.to_owned()), Some(u.to_owned()), v.map(str::to_owned))
        }
        _ => (None, Some(line.request.clone()).filter(|r| r != "-"), None),
    };
    let proxy = line.proxy_result.is_some();
    let host = match line.vhost {
        Some(v) => Some(v.rsplit_once(':').map_or(v, |(h, _)| h).to_owned()),
        // A proxy is asked for absolute URLs, or for `host:port` to tunnel to.
        None if proxy => uri.as_deref().map(|u| {
            let a = super::squid::url_authority(u).unwrap_or(u);
            super::squid::authority(a).0.to_owned()
        }),
        None => None,
    };
    // The URL as the server saw it: the virtual host in front when the log names one, else the
    // request target alone (an absolute-form target, as a proxy is asked, is whole already).
    let url = uri.as_ref().map(|u| match &host {
        Some(h) if u.starts_with('/') => format!("http://{h}{u}"),
        _ => u.clone(),
    });
    let format = if proxy {
        Format::Squid
    } else {
        Format::WebAccess
    };
    Ok(Event {
        native_id: method.clone(),
        time: Some(time),
        network: Some(Network {
            src_ip: Some(line.client.to_owned()),
            url,
            outbound: Some(proxy),
            ..Network::default()
        }),
        http: Some(Box::new(Http {
            vantage: if proxy {
                Vantage::Outbound
            } else {
                Vantage::Inbound
            },
            method,
            uri,
            host,
            version,
            status: Some(line.status),
            bytes_out: line.bytes,
            user_agent: line.user_agent.clone(),
            referer: line.referer.clone(),
            forwarded_for: line
                .forwarded_for
                .clone()
                .or_else(|| line.through.map(str::to_owned)),
            header_names: None,
        })),
        ..Event::empty(source, format, EventKind::HttpRequest)
    })
}

/// An access-log line: a request; a line that is not one is skipped, named and counted.
pub(crate) fn decode_line(text: &str, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    match split(text) {
        Some(line) => decode(&line, source),
        None => Err((
            SkipReason::Malformed,
            "not an access-log line (common, combined or vhost_combined)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    fn at() -> SourceRef {
        SourceRef {
            path: "access.log".into(),
            position: Position::Line(1),
        }
    }

    #[test]
    fn combined_common_and_vhost_lines_split_and_decode() {
        let combined = r#"203.0.113.7 - - [20/Nov/2026:09:14:05 +0100] "GET /fetch?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F HTTP/1.1" 200 1432 "-" "curl/8.4.0""#;
        let l = split(combined).unwrap();
        assert_eq!(l.client, "203.0.113.7");
        assert_eq!(l.status, 200);
        assert_eq!(l.user_agent.as_deref(), Some("curl/8.4.0"));
        let e = decode(&l, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-20T08:14:05.000Z"));
        assert_eq!(e.kind, EventKind::HttpRequest);
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.method.as_deref(), Some("GET"));
        assert_eq!(h.version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(
            e.network.as_ref().unwrap().url.as_deref(),
            Some("/fetch?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F")
        );

        let common =
            r#"::1 - alice [01/Jan/2026:00:00:00 +0000] "PUT /latest/api/token HTTP/1.1" 403 -"#;
        let l = split(common).unwrap();
        assert_eq!(l.user, Some("alice"));
        assert_eq!(l.bytes, None);
        assert_eq!(l.referer, None);

        let vhost = r#"169.254.169.254:80 198.51.100.9 - - [20/Nov/2026:09:14:05 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 200 212 "-" "python-requests/2.31""#;
        let e = decode(&split(vhost).unwrap(), at()).unwrap();
        assert_eq!(
            e.network.as_ref().unwrap().url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        );
        assert_eq!(
            e.http.as_ref().unwrap().host.as_deref(),
            Some("169.254.169.254")
        );
    }

    #[test]
    fn escapes_are_read_back_and_junk_requests_kept() {
        let line = r#"192.0.2.1 - - [20/Nov/2026:09:14:05 +0000] "GET /a\"b\x41 HTTP/1.1" 404 0 "-" "x\"y""#;
        let l = split(line).unwrap();
        assert_eq!(l.request, "GET /a\"bA HTTP/1.1");
        assert_eq!(l.user_agent.as_deref(), Some("x\"y"));
        let junk = r#"192.0.2.1 - - [20/Nov/2026:09:14:05 +0000] "\x16\x03\x01" 400 150 "-" "-""#;
        let e = decode(&split(junk).unwrap(), at()).unwrap();
        assert_eq!(e.http.as_ref().unwrap().method, None);
        assert_eq!(e.http.as_ref().unwrap().status, Some(400));
    }

    #[test]
    fn address_lists_before_the_client_are_read_as_the_way_it_came() {
        let cases = [
            (
                r#"10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "Firefox/49.0""#,
                "127.0.0.1",
                Some("10.0.0.2, 10.0.0.1"),
            ),
            (
                r#""10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /assets/xxxx?q=100 HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#,
                "10.2.1.185",
                Some("10.5.102.222, 199.96.1.1, 204.246.1.1"),
            ),
            (
                r#"2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET /test.html HTTP/1.1" 404 8571 "-" "Facebot""#,
                "10.2.2.121",
                Some("2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17"),
            ),
        ];
        for (line, client, through) in cases {
            let l = split(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((l.client, l.through), (client, through), "{line}");
            assert_eq!(l.vhost, None);
        }
    }

    #[test]
    fn squid_combined_lines_are_a_forward_proxys() {
        let line = r#"10.0.3.7 - - [20/Nov/2026:09:14:05 +0000] "GET http://169.254.169.254/latest/meta-data/iam/security-credentials/ HTTP/1.1" 200 1580 "-" "python-requests/2.31" TCP_MISS:HIER_DIRECT"#;
        let l = split(line).unwrap();
        assert_eq!(l.proxy_result, Some("TCP_MISS:HIER_DIRECT"));
        let e = decode(&l, at()).unwrap();
        assert_eq!(e.format, Format::Squid);
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.vantage, Vantage::Outbound);
        assert_eq!(h.host.as_deref(), Some("169.254.169.254"));
        // A combined line of a web server ends with its quoted fields.
        let plain = r#"10.0.3.7 - - [20/Nov/2026:09:14:05 +0000] "GET / HTTP/1.1" 200 15 "-" "x""#;
        assert_eq!(split(plain).unwrap().proxy_result, None);
        let e = decode(&split(plain).unwrap(), at()).unwrap();
        assert_eq!(e.http.as_ref().unwrap().vantage, Vantage::Inbound);
    }

    #[test]
    fn lines_of_other_logs_are_not_access_lines() {
        for other in [
            "",
            "type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e",
            r#"{"a": "[x] y"}"#,
            "Nov 20 09:14:05 host sshd[1]: Accepted [x] ",
            r#"1.2.3.4 - - [20/Nov/2026:09:14:05 +0000] "GET / HTTP/1.1" abc 12"#,
            r#"1.2.3.4 - - [20/Nov/2026:09:14:05 +0000] "GET / HTTP/1.1 200 12"#,
        ] {
            assert!(!sniff_line(other), "{other}");
        }
    }
}
