//! W3C extended log files: directives (`#Software:`, `#Version:`, `#Date:`, `#Fields:`) and one
//! request a line, its values in the `#Fields:` order. IIS writes them space-separated, spaces
//! inside values as `+`; Amazon CloudFront's standard logs are tab-separated, values
//! percent-encoded. Times are UTC. The fields read: `date`, `time`, `c-ip`, `c-port`, `s-ip`,
//! `s-port`, `cs-method`, `cs-uri-stem`, `cs-uri-query`, `cs-host`/`cs(Host)`/`x-host-header`
//! (the Host header the client sent), `cs-version`/`cs-protocol-version`, `cs-protocol`,
//! `sc-status`, `sc-bytes`, `cs(User-Agent)`, `cs(Referer)`, `x-forwarded-for` or
//! `cs(X-Forwarded-For)`, and `s-computername` (the server, as the event's host). A file can
//! hold several logs one after the other (a new `#Fields:` starts the next).

use std::borrow::Cow;
use std::io::BufRead;

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, Position, SourceRef,
    Vantage,
};

use crate::error::SkipReason;
use crate::{ReadOptions, Skipped, Summary};

/// Whether a first line is a W3C directive.
pub(crate) fn sniff_line(line: &str) -> bool {
    [
        "#Software:",
        "#Version:",
        "#Date:",
        "#Fields:",
        "#Start-Date:",
    ]
    .iter()
    .any(|d| line.starts_with(d))
}

/// The field names a `#Fields:` directive lists, and whether the log is CloudFront's.
#[derive(Default)]
struct Header {
    fields: Vec<String>,
    cloudfront: bool,
}

impl Header {
    fn index(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.fields.iter().position(|f| f.eq_ignore_ascii_case(n)))
    }
}

/// `%XX` read back (CloudFront's values); bytes that are not UTF-8 become U+FFFD.
fn percent_decoded(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn decode(values: &[&str], h: &Header, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    if values.len() != h.fields.len() {
        return Err((
            SkipReason::Malformed,
            format!(
                "{} values for the {} fields of the #Fields directive",
                values.len(),
                h.fields.len()
            ),
        ));
    }
    let get = |names: &[&str]| {
        h.index(names)
            .map(|i| values[i])
            .filter(|v| *v != "-" && !v.is_empty())
    };
    // Free text: IIS writes spaces as `+`, CloudFront percent-encodes.
    let text = |names: &[&str]| {
        get(names).map(|v| {
            if h.cloudfront {
                percent_decoded(v).into_owned()
            } else {
                v.replace('+', " ")
            }
        })
    };
    let (date, clock) = match (get(&["date"]), get(&["time"])) {
        (Some(d), Some(t)) => (d, t),
        _ => return Err((SkipReason::MissingField, "no date and time".to_owned())),
    };
    let time = parse_time_ms(&format!("{date}T{clock}Z"))
        .map(format_time_ms)
        .ok_or_else(|| {
            (
                SkipReason::Malformed,
                format!("{date:?} {clock:?} is not a time"),
            )
        })?;
    let stem = get(&["cs-uri-stem"]);
    let uri = stem.map(|s| match get(&["cs-uri-query"]) {
        Some(q) => format!("{s}?{q}"),
        None => s.to_owned(),
    });
    let host = get(&["x-host-header", "cs-host", "cs(Host)"]).map(|v| {
        let v = super::squid::authority(v).0;
        v.to_owned()
    });
    let scheme = get(&["cs-protocol"]).filter(|p| matches!(*p, "http" | "https" | "ws" | "wss"));
    let url = uri.as_ref().map(|u| match (&host, u.starts_with('/')) {
        (Some(hst), true) => format!("{}://{hst}{u}", scheme.unwrap_or("http")),
        _ => u.clone(),
    });
    let method = get(&["cs-method"]).map(str::to_owned);
    Ok(Event {
        native_id: method.clone(),
        record_id: get(&["x-edge-request-id"]).map(str::to_owned),
        time: Some(time),
        host: get(&["s-computername"]).map(str::to_owned),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: get(&["c-ip"]).map(str::to_owned),
            src_port: get(&["c-port"]).and_then(|p| p.parse().ok()),
            dst_ip: get(&["s-ip"]).map(str::to_owned),
            dst_port: get(&["s-port"]).and_then(|p| p.parse().ok()),
            dst_host: None,
            url,
            outbound: Some(false),
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version: get(&["cs-version", "cs-protocol-version"]).map(str::to_owned),
            status: get(&["sc-status"]).and_then(|s| s.parse().ok()),
            bytes_out: get(&["sc-bytes"]).and_then(|s| s.parse().ok()),
            user_agent: text(&["cs(User-Agent)"]),
            referer: text(&["cs(Referer)"]),
            forwarded_for: text(&["x-forwarded-for", "cs(X-Forwarded-For)"]),
            header_names: None,
        })),
        ..Event::empty(source, Format::W3c, EventKind::HttpRequest)
    })
}

/// A W3C extended log.
pub(crate) fn read(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let mut header: Option<Header> = None;
    let mut one = |t: Vec<u8>, n: u64, summary: &mut Summary| {
        let source = SourceRef {
            path: name.to_owned(),
            position: Position::Line(n),
        };
        let text = String::from_utf8_lossy(&t);
        if matches!(text, Cow::Owned(_)) {
            summary.lossy(source.clone(), opts.keep_skips);
        }
        if let Some(directive) = text.strip_prefix('#') {
            if let Some(list) = directive.strip_prefix("Fields:") {
                let fields: Vec<String> =
                    list.split_ascii_whitespace().map(str::to_owned).collect();
                let cloudfront = fields.iter().any(|f| f.starts_with("x-edge-"));
                header = Some(Header { fields, cloudfront });
            }
            return;
        }
        let Some(h) = &header else {
            summary.skip(
                Skipped {
                    source,
                    reason: SkipReason::Malformed,
                    detail: "a record before any #Fields directive".into(),
                },
                opts.keep_skips,
            );
            return;
        };
        let line = text.trim_end_matches(['\r', '\n']);
        let values: Vec<&str> = if line.contains('\t') {
            line.split('\t').collect()
        } else {
            line.split(' ').collect()
        };
        summary.decoded(decode(&values, h, source.clone()), source, opts, on_event);
    };
    crate::each_line_from(name, first, first_line, r, opts, summary, &mut one);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> SourceRef {
        SourceRef {
            path: "u_ex.log".into(),
            position: Position::Line(5),
        }
    }

    fn header(fields: &str) -> Header {
        let fields: Vec<String> = fields.split(' ').map(str::to_owned).collect();
        let cloudfront = fields.iter().any(|f| f.starts_with("x-edge-"));
        Header { fields, cloudfront }
    }

    #[test]
    fn iis_lines_decode_with_the_host_header() {
        let h = header("date time s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes time-taken");
        let line = "2026-11-20 09:14:05 WEB01 10.0.0.4 GET /latest/meta-data/iam/security-credentials/ - 80 - 198.51.100.9 Mozilla/5.0+(X11;+Linux) - 169.254.169.254 200 0 0 1580 15";
        let v: Vec<&str> = line.split(' ').collect();
        let e = decode(&v, &h, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-20T09:14:05.000Z"));
        assert_eq!(e.host.as_deref(), Some("WEB01"));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.src_ip.as_deref(), Some("198.51.100.9"));
        assert_eq!(
            n.url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        );
        let http = e.http.as_ref().unwrap();
        assert_eq!(http.user_agent.as_deref(), Some("Mozilla/5.0 (X11; Linux)"));
        assert_eq!((http.status, http.bytes_out), (Some(200), Some(1580)));

        let query = "2026-11-20 09:14:06 WEB01 10.0.0.4 GET /fetch url=http://169.254.169.254/ 80 - 198.51.100.9 curl/8 - www.example.com 200 0 0 10 1";
        let v: Vec<&str> = query.split(' ').collect();
        let e = decode(&v, &h, at()).unwrap();
        assert_eq!(
            e.http.as_ref().unwrap().uri.as_deref(),
            Some("/fetch?url=http://169.254.169.254/")
        );
        let short: Vec<&str> = "2026-11-20 09:14:06 WEB01".split(' ').collect();
        let (reason, detail) = decode(&short, &h, at()).unwrap_err();
        assert_eq!(reason, SkipReason::Malformed);
        assert!(detail.starts_with("3 values for the 18 fields"), "{detail}");
    }

    #[test]
    fn cloudfront_lines_decode_percent_encoded() {
        let h = header("date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for");
        let line = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\twww.example.com\thttps\t23\t0.001\t-";
        let v: Vec<&str> = line.split('\t').collect();
        let e = decode(&v, &h, at()).unwrap();
        let http = e.http.as_ref().unwrap();
        assert_eq!(
            http.user_agent.as_deref(),
            Some("Mozilla/5.0 (Windows NT 10.0)")
        );
        assert_eq!(http.host.as_deref(), Some("www.example.com"));
        assert_eq!(
            e.network.as_ref().unwrap().url.as_deref(),
            Some("https://www.example.com/index.html")
        );
        assert_eq!(
            e.record_id.as_deref(),
            Some("SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        );
    }

    #[test]
    fn directives_are_sniffed_and_percent_escapes_read() {
        assert!(sniff_line(
            "#Software: Microsoft Internet Information Services 10.0"
        ));
        assert!(sniff_line("#Version: 1.0"));
        assert!(!sniff_line("#separator \\x09"));
        assert_eq!(percent_decoded("a%20b%2"), "a b%2");
        assert_eq!(percent_decoded("%zz"), "%zz");
    }
}
