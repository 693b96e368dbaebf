//! HAProxy's HTTP log (`option httplog`), with or without the syslog header it is sent with:
//! `client:port [accept_date] frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes
//! req_cookie res_cookie termination conns queues {captured request headers} {captured
//! response headers} "request"`. The accept date is the proxy's local time without a zone
//! (`06/Feb/2009:12:14:14.655`): read in `--timezone`, else as UTC and counted. Each line is a
//! request the reverse proxy received: an inbound HTTP event. Captured headers are kept as the
//! request's text (their names are in the configuration, not the log). HAProxy's TCP log lines
//! (`option tcplog`, no request) are named as such.

use imdsguard_event::{Clock, Event, EventKind, Format, Http, Network, SourceRef, Vantage};

use crate::error::SkipReason;

/// The start of the HAProxy part of a line: after a syslog header ending in `haproxy[pid]: `
/// (or any `name[pid]: `), or the line itself.
fn body(line: &str) -> &str {
    match line.find("]: ") {
        Some(i)
            if line[..i]
                .rsplit(' ')
                .next()
                .is_some_and(|w| w.contains('[')) =>
        {
            &line[i + 3..]
        }
        _ => line,
    }
}

/// `06/Feb/2009:12:14:14.655` as `2009-02-06 12:14:14.655` (no zone).
fn accept_date(t: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = t.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &t[3..6])? + 1;
    let clock = &t[12..];
    if !clock
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b':' || c == b'.')
    {
        return None;
    }
    Some(format!("{}-{month:02}-{} {clock}", &t[7..11], &t[0..2]))
}

/// One HTTP log line's parts.
struct Line<'a> {
    client: &'a str,
    time: String,
    backend: &'a str,
    status: Option<u16>,
    bytes: Option<u64>,
    captured: Option<&'a str>,
    request: Option<&'a str>,
}

fn split(line: &str) -> Option<Line<'_>> {
    let b = body(line.trim_end_matches(['\r', '\n']));
    let (client, rest) = b.split_once(" [")?;
    if !client.contains(':') || client.contains(' ') {
        return None;
    }
    let (date, rest) = rest.split_once("] ")?;
    let time = accept_date(date)?;
    let mut words = rest.splitn(4, ' ');
    let _frontend = words.next()?;
    let backend = words.next()?;
    let timers = words.next()?;
    if !backend.contains('/') || timers.split('/').count() < 3 {
        return None;
    }
    let rest = words.next()?;
    // An HTTP line ends with the quoted request; a TCP line has none.
    let (head, request) = match (rest.find('"'), rest.ends_with('"')) {
        (Some(q), true) if q + 1 < rest.len() => (&rest[..q], Some(&rest[q + 1..rest.len() - 1])),
        _ => (rest, None),
    };
    let mut w = head.split(' ');
    let status = w
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..=999).contains(s));
    let bytes = w
        .next()
        .and_then(|s| s.trim_start_matches('+').parse().ok());
    let captured = head.find('{').map(|i| head[i..].trim());
    Some(Line {
        client,
        time,
        backend,
        status,
        bytes,
        captured,
        request,
    })
}

/// Whether a line is an HAProxy HTTP or TCP log line.
pub(crate) fn sniff_line(line: &str) -> bool {
    split(line).is_some()
}

pub(crate) fn decode_line(text: &str, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    let l = split(text).ok_or_else(|| {
        (
            SkipReason::Malformed,
            "not an HAProxy log line (client:port [date] frontend backend/server timers …)".into(),
        )
    })?;
    let Some(request) = l.request else {
        return Err((
            SkipReason::UnknownShape,
            "an HAProxy TCP log line (option tcplog): it records no HTTP request".into(),
        ));
    };
    let mut words = request.splitn(3, ' ');
    let (method, uri, version) = match (words.next(), words.next(), words.next()) {
        (Some(m), Some(u), v) if !m.is_empty() && m.bytes().all(|c| c.is_ascii_uppercase()) => {
            (Some(m.to_owned()), Some(u.to_owned()), v.map(str::to_owned))
        }
        // `<BADREQ>` and other requests HAProxy could not read.
        _ => (
            None,
            Some(request.to_owned()).filter(|r| !r.is_empty()),
            None,
        ),
    };
    let (client, client_port) = super::squid::authority(l.client);
    let host = uri
        .as_deref()
        .and_then(super::squid::url_authority)
        .map(|a| super::squid::authority(a).0.to_owned());
    Ok(Event {
        native_id: method.clone(),
        time: Some(l.time),
        clock: Clock::Local,
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: Some(client.to_owned()),
            src_port: client_port,
            url: uri.clone(),
            outbound: Some(false),
            ..Network::default()
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version,
            status: l.status,
            bytes_out: l.bytes,
            user_agent: None,
            referer: None,
            forwarded_for: None,
            header_names: None,
        })),
        // The backend server that answered, and the captured headers, as the record's text.
        fields: std::iter::once(("backend", l.backend))
            .chain(l.captured.map(|c| ("captured_headers", c)))
            .map(|(k, v)| (imdsguard_event::Sym::intern(k), v.to_owned()))
            .collect(),
        ..Event::empty(source, Format::Haproxy, EventKind::HttpRequest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    fn at() -> SourceRef {
        SourceRef {
            path: "haproxy.log".into(),
            position: Position::Line(1),
        }
    }

    #[test]
    fn http_lines_with_and_without_syslog_decode() {
        // HAProxy's documented example, then the same without the syslog header.
        let doc = r#"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#;
        assert!(sniff_line(doc));
        let e = decode_line(doc, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2009-02-06 12:14:14.655"));
        assert_eq!(e.clock, Clock::Local);
        let n = e.network.as_ref().unwrap();
        assert_eq!(
            (n.src_ip.as_deref(), n.src_port),
            (Some("10.0.1.2"), Some(33317))
        );
        let h = e.http.as_ref().unwrap();
        assert_eq!(
            (h.method.as_deref(), h.uri.as_deref()),
            (Some("GET"), Some("/index.html"))
        );
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(2750)));
        let kept: Vec<&str> = e.fields.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(kept, ["static/srv1", "{1wt.eu} {}"]);

        let bare = r#"203.0.113.9:40112 [20/Nov/2026:09:20:41.008] fe-web be-web/web1 0/0/1/2/3 200 1321 - - ---- 3/3/0/0/0 0/0 "GET /fetch?u=http://169.254.169.254/latest/meta-data/iam/security-credentials/web HTTP/1.1""#;
        let e = decode_line(bare, at()).unwrap();
        assert_eq!(
            e.http.as_ref().unwrap().uri.as_deref(),
            Some("/fetch?u=http://169.254.169.254/latest/meta-data/iam/security-credentials/web")
        );
    }

    #[test]
    fn tcp_lines_and_other_logs_are_told_apart() {
        let tcp = "Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0";
        assert!(sniff_line(tcp));
        let (reason, detail) = decode_line(tcp, at()).unwrap_err();
        assert_eq!(reason, SkipReason::UnknownShape);
        assert!(detail.contains("TCP log line"));
        for other in [
            r#"1.2.3.4 - - [20/Nov/2026:09:14:05 +0000] "GET / HTTP/1.1" 200 12"#,
            "Nov 20 09:14:05 host sshd[1]: Accepted publickey for x from 10.0.0.1 port 22",
            "",
        ] {
            assert!(!sniff_line(other), "{other}");
        }
    }
}
