//! AWS Elastic Load Balancing access logs, as delivered to S3: Application Load Balancer lines
//! (`type time elb client:port target:port … elb_status target_status received sent "request"
//! "user_agent" ssl_cipher ssl_protocol target_group "trace_id" "domain_name" …`) and Classic
//! Load Balancer lines (the same without `type`, ending after `ssl_protocol`). Fields after the
//! ones read are allowed, as AWS adds them at the end.
//!
//! The request is logged as `GET http://host:port/path HTTP/1.1`, the host taken from the
//! request's `Host` header: a request that named the metadata address as its host (the
//! reverse-proxy path of the Capital One breach) shows it in the URL.

use std::borrow::Cow;

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use super::squid::{authority, url_authority};
use crate::error::SkipReason;

/// The Application Load Balancer's request types.
const TYPES: &[&str] = &["http", "https", "h2", "grpcs", "ws", "wss"];

/// A line's fields: words, and `"…"` strings read back (`\"`, `\\`).
pub(crate) fn tokens(line: &str) -> Option<Vec<Cow<'_, str>>> {
    let mut out = Vec::with_capacity(32);
    let mut rest = line.trim_end_matches(['\r', '\n']).trim_start();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c);
                        }
                    }
                    (_, c) => value.push(c),
                }
            };
            out.push(Cow::Owned(value));
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(Cow::Borrowed(&rest[..end]));
            rest = rest[end..].trim_start();
        }
    }
    Some(out)
}

/// Field positions of a line's kind.
struct Layout {
    time: usize,
    client: usize,
    target: usize,
    elb_status: usize,
    sent: usize,
    request: usize,
    user_agent: usize,
    trace: Option<usize>,
    domain: Option<usize>,
}

const APPLICATION: Layout = Layout {
    time: 1,
    client: 3,
    target: 4,
    elb_status: 8,
    sent: 11,
    request: 12,
    user_agent: 13,
    trace: Some(17),
    domain: Some(18),
};

const CLASSIC: Layout = Layout {
    time: 0,
    client: 2,
    target: 3,
    elb_status: 7,
    sent: 10,
    request: 11,
    user_agent: 12,
    trace: None,
    domain: None,
};

fn is_time(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes()[4] == b'-' && t.ends_with('Z') && parse_time_ms(t).is_some()
}

fn layout(t: &[Cow<'_, str>]) -> Option<&'static Layout> {
    if t.len() > 13 && TYPES.contains(&&*t[0]) && is_time(&t[1]) && t[3].contains(':') {
        return Some(&APPLICATION);
    }
    if t.len() > 12 && is_time(&t[0]) && t[2].contains(':') && t[11].contains(' ') {
        return Some(&CLASSIC);
    }
    None
}

/// Whether a line is a load balancer's access-log line.
pub(crate) fn sniff_line(line: &str) -> bool {
    // Cheap first: a type word or a time, then the rest.
    let first = line.split(' ').next().unwrap_or("");
    (TYPES.contains(&first) || first.ends_with('Z'))
        && tokens(line).is_some_and(|t| layout(&t).is_some())
}

/// The event of one line.
pub(crate) fn decode_line(line: &str, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    let bad = |what: &str| (SkipReason::Malformed, what.to_owned());
    let t = tokens(line).ok_or_else(|| bad("a quoted field is not closed"))?;
    let l = layout(&t).ok_or_else(|| {
        bad("not a load balancer access-log line (type time elb client:port target:port …)")
    })?;
    let time = parse_time_ms(&t[l.time])
        .map(format_time_ms)
        .ok_or_else(|| bad("no time"))?;
    let field = |i: usize| {
        t.get(i)
            .map(|v| v.as_ref())
            .filter(|v| *v != "-" && !v.is_empty())
    };
    let (client, client_port) = field(l.client).map_or((None, None), |a| {
        let (h, p) = authority(a);
        (Some(h), p)
    });
    let (target, target_port) = field(l.target).map_or((None, None), |a| {
        let (h, p) = authority(a);
        (Some(h), p)
    });
    // `GET http://www.example.com:80/ HTTP/1.1`; a request the balancer could not read is
    // `- http://host:80- "-"`, kept as its text.
    let request = field(l.request).unwrap_or("");
    let mut parts = request.splitn(3, ' ');
    let (method, url, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), v) if m.bytes().all(|c| c.is_ascii_uppercase()) && !m.is_empty() => {
            (Some(m.to_owned()), Some(u.to_owned()), v.map(str::to_owned))
        }
        // `- http://host:80- -`: the balancer could not read the request.
        (Some("-"), _, _) => (None, None, None),
        _ => (
            None,
            Some(request.to_owned()).filter(|r| !r.is_empty()),
            None,
        ),
    };
    let host = url
        .as_deref()
        .and_then(url_authority)
        .map(|a| authority(a).0.to_owned());
    // The target as the client wrote it: the path and query after the authority.
    let uri = url.as_deref().map(|u| match u.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
        None => u.to_owned(),
    });
    Ok(Event {
        native_id: method.clone(),
        record_id: l.trace.and_then(field).map(str::to_owned),
        time: Some(time),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: client.map(str::to_owned),
            src_port: client_port,
            dst_ip: target.map(str::to_owned),
            dst_port: target_port,
            dst_host: l.domain.and_then(field).map(str::to_owned),
            url,
            outbound: Some(false),
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version,
            status: field(l.elb_status).and_then(|s| s.parse().ok()),
            bytes_out: field(l.sent).and_then(|s| s.parse().ok()),
            user_agent: field(l.user_agent).map(str::to_owned),
            referer: None,
            forwarded_for: None,
            header_names: None,
        })),
        ..Event::empty(source, Format::AwsAlb, EventKind::HttpRequest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    fn at() -> SourceRef {
        SourceRef {
            path: "alb.log".into(),
            position: Position::Line(1),
        }
    }

    #[test]
    fn application_and_classic_lines_decode() {
        let alb = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://169.254.169.254:80/latest/meta-data/iam/security-credentials/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
        assert!(sniff_line(alb));
        let e = decode_line(alb, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2018-07-02T22:23:00.186Z"));
        assert_eq!(
            e.record_id.as_deref(),
            Some("Root=1-58337262-36d228ad5d99923122bbe354")
        );
        let n = e.network.as_ref().unwrap();
        assert_eq!(
            (n.src_ip.as_deref(), n.src_port),
            (Some("192.168.131.39"), Some(2817))
        );
        assert_eq!(n.dst_ip.as_deref(), Some("10.0.0.1"));
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.host.as_deref(), Some("169.254.169.254"));
        assert_eq!(
            h.uri.as_deref(),
            Some("/latest/meta-data/iam/security-credentials/")
        );
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(366)));
        assert_eq!(h.user_agent.as_deref(), Some("curl/7.46.0"));

        let classic = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
        assert!(sniff_line(classic));
        let e = decode_line(classic, at()).unwrap();
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.method.as_deref(), Some("GET"));
        assert_eq!(h.uri.as_deref(), Some("/"));
        assert_eq!(h.status, Some(200));

        let unread = r#"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - -1 -1 -1 400 - 0 0 "- http://www.example.com:80- -" "-" - - - "-" "-" "-" 0 2018-11-30T22:22:48.364000Z "-" "-" "-""#;
        let e = decode_line(unread, at()).unwrap();
        assert_eq!(e.network.as_ref().unwrap().url, None);
        assert_eq!(e.http.as_ref().unwrap().status, Some(400));
    }

    #[test]
    fn quoted_fields_keep_escaped_quotes_and_other_lines_are_not_read() {
        let t = tokens(r#"a "b \"c\" d" e"#).unwrap();
        assert_eq!(t, vec!["a", "b \"c\" d", "e"]);
        assert_eq!(tokens(r#"a "open"#), None);
        for other in [
            "",
            r#"1.2.3.4 - - [20/Nov/2026:09:14:05 +0000] "GET / HTTP/1.1" 200 12"#,
            "http 2018-07-02T22:23:00.186641Z app/x",
            "1157689320.327 2864 10.105.21.199 TCP_MISS/200 10182 GET http://x/ - DIRECT/1.2.3.4 -",
        ] {
            assert!(!sniff_line(other), "{other}");
        }
    }
}
