//! Squid's access log in its native form (`logformat squid`):
//! `time elapsed client code/status bytes method URL user hierarchy/peer type`, the time in
//! seconds since the epoch with milliseconds. Each line is a request a forward proxy received
//! from a client and sent on (or refused: `TCP_DENIED/403`): an outbound HTTP event whose client
//! is the address that asked and whose server is the peer the proxy reached (`DIRECT/10.0.0.5`).
//! `CONNECT` lines name a host and port, not a URL. Squid's `combined` form is the NCSA combined
//! line with `code:hierarchy` at its end; the access-log reader reads it as Squid's.
//!
//! A metadata request through a forward proxy fetches the proxy host's own credentials: the
//! proxy, not the client, is the instance whose role is exposed.

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use crate::error::SkipReason;

/// One native line, split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    time: &'a str,
    client: &'a str,
    /// `TCP_MISS`, `TCP_DENIED` …
    code: &'a str,
    status: Option<u16>,
    bytes: Option<u64>,
    method: &'a str,
    url: &'a str,
    user: Option<&'a str>,
    /// `DIRECT`, `FIRSTUP_PARENT`, `NONE` …
    hierarchy: &'a str,
    /// The address or name of the server or parent reached.
    peer: Option<&'a str>,
}

/// Whether a line is a native Squid access-log line.
pub(crate) fn sniff_line(line: &str) -> bool {
    split(line).is_some()
}

/// The fields of a native line, or `None` when it is not one.
pub(crate) fn split(line: &str) -> Option<Line<'_>> {
    let mut w = line.split_ascii_whitespace();
    let time = w.next()?;
    let (secs, millis) = time.split_once('.')?;
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || millis.len() != 3
        || !millis.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let elapsed = w.next()?;
    if !elapsed.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let client = w.next()?;
    let (code, status) = w.next()?.split_once('/')?;
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return None;
    }
    let status = match status.parse::<u16>().ok()? {
        0 => None,
        s => Some(s),
    };
    let bytes = w.next()?.parse().ok();
    let method = w.next()?;
    let url = w.next()?;
    let user = w.next()?;
    let (hierarchy, peer) = w.next()?.split_once('/')?;
    Some(Line {
        time,
        client,
        code,
        status,
        bytes,
        method,
        url,
        user: Some(user).filter(|u| *u != "-"),
        hierarchy,
        peer: Some(peer).filter(|p| *p != "-" && !p.is_empty()),
    })
}

/// `host` and port of an authority (`[fd00:ec2::254]:80`, `login.yahoo.com:443`, `a.b`).
pub(crate) fn authority(a: &str) -> (&str, Option<u16>) {
    if let Some(rest) = a.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            return (h, p.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (a, None),
        },
        _ => (a, None),
    }
}

/// The authority of an absolute URL (`http://host:port/path` → `host:port`).
pub(crate) fn url_authority(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    Some(auth.rsplit_once('@').map_or(auth, |(_, h)| h))
}

/// The event of one native line.
pub(crate) fn decode(line: &Line<'_>, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    let time = parse_time_ms(line.time)
        .map(format_time_ms)
        .ok_or_else(|| {
            (
                SkipReason::Malformed,
                format!("{:?} is not a time", line.time),
            )
        })?;
    let connect = line.method.eq_ignore_ascii_case("CONNECT");
    let (host, port) = if connect {
        let (h, p) = authority(line.url);
        (Some(h.to_owned()), p)
    } else {
        match url_authority(line.url) {
            Some(a) => {
                let (h, p) = authority(a);
                (Some(h.to_owned()), p)
            }
            None => (None, None),
        }
    };
    // The peer is the server itself when the proxy went direct; a parent proxy otherwise.
    let direct = line.hierarchy.contains("DIRECT");
    Ok(Event {
        native_id: Some(line.method.to_owned()),
        time: Some(time),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: Some(line.client.to_owned()),
            src_port: None,
            dst_ip: line.peer.filter(|_| direct).map(str::to_owned),
            dst_port: port,
            dst_host: host.clone().filter(|_| connect),
            url: (!connect).then(|| line.url.to_owned()),
            outbound: Some(true),
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Outbound,
            method: Some(line.method.to_owned()),
            uri: Some(line.url.to_owned()),
            host,
            version: None,
            status: line.status,
            bytes_out: line.bytes,
            user_agent: None,
            referer: None,
            forwarded_for: None,
            header_names: None,
        })),
        ..Event::empty(source, Format::Squid, EventKind::HttpRequest)
    })
}

/// A native Squid log line: a request; a line that is not one is skipped, named and counted.
pub(crate) fn decode_line(text: &str, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    match split(text) {
        Some(line) => decode(&line, source),
        None => Err((
            SkipReason::Malformed,
            "not a Squid access-log line (time elapsed client code/status bytes method URL user hierarchy/peer type)".into(),
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
    fn native_lines_split_and_decode() {
        let l = split("1157689320.327   2864 10.105.21.199 TCP_MISS/200 10182 GET http://169.254.169.254/latest/meta-data/iam/security-credentials/ badeyek DIRECT/169.254.169.254 text/plain").unwrap();
        assert_eq!(l.client, "10.105.21.199");
        assert_eq!(
            (l.code, l.status, l.bytes),
            ("TCP_MISS", Some(200), Some(10182))
        );
        assert_eq!(l.user, Some("badeyek"));
        let e = decode(&l, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2006-09-08T04:22:00.327Z"));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.dst_ip.as_deref(), Some("169.254.169.254"));
        assert_eq!(
            n.url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        );
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.vantage, Vantage::Outbound);
        assert_eq!(h.host.as_deref(), Some("169.254.169.254"));

        let connect = split("1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/209.73.177.115 -").unwrap();
        let e = decode(&connect, at()).unwrap();
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.url, None);
        assert_eq!(n.dst_host.as_deref(), Some("login.yahoo.com"));
        assert_eq!(n.dst_port, Some(443));

        // A hit served from the cache reached no server; a refusal has no peer.
        let hit = split("1157689321.315      1 10.105.21.199 TCP_HIT/200 1464 GET http://www.goonernews.com/styles.css badeyek NONE/- text/css").unwrap();
        assert_eq!(hit.peer, None);
        let denied = split("1700000000.000      0 10.0.0.9 TCP_DENIED/403 3900 GET http://169.254.169.254/latest/api/token - HIER_NONE/- text/html").unwrap();
        assert_eq!(denied.status, Some(403));
        assert_eq!(denied.user, None);
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(authority("a.b:443"), ("a.b", Some(443)));
        assert_eq!(authority("[fd00:ec2::254]:80"), ("fd00:ec2::254", Some(80)));
        assert_eq!(authority("fd00:ec2::254"), ("fd00:ec2::254", None));
        assert_eq!(authority("a.b"), ("a.b", None));
        assert_eq!(url_authority("http://u:p@h:8/x?y"), Some("h:8"));
        assert_eq!(url_authority("/x"), None);
    }

    #[test]
    fn other_lines_are_not_squid_lines() {
        for other in [
            "",
            r#"1.2.3.4 - - [20/Nov/2026:09:14:05 +0000] "GET / HTTP/1.1" 200 12"#,
            "2 123456789010 eni-1235b8ca123456789 1.2.3.4 5.6.7.8 1 2 6 1 1 1 2 ACCEPT OK",
            "1157689320.327 2864 10.105.21.199 miss/200 10182 GET http://x/ - DIRECT/1.2.3.4 -",
        ] {
            assert!(!sniff_line(other), "{other}");
        }
    }
}
