//! Access logs in a custom layout, given as the server's own format string: nginx's
//! `log_format` (`$remote_addr - $remote_user [$time_local] "$request" $status …`) or Apache's
//! `LogFormat` (`%h %l %u %t \"%r\" %>s %b …`). The string is compiled once into literals and
//! fields; each line is read against it, a field running to the next literal (a quoted field
//! to its closing unescaped quote). Variables this reader does not use are read and ignored, so
//! any layout whose literals separate its fields can be read. Each line is an inbound HTTP
//! request, as `web-access` reads the standard forms.

use std::io::BufRead;

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use crate::error::{InputError, SkipReason};
use crate::{ReadOptions, Summary};

/// What a field of the layout holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Client,
    ForwardedFor,
    User,
    /// `10/Oct/2000:13:55:36 -0700`, with or without the brackets.
    TimeLocal,
    /// RFC 3339.
    TimeIso,
    /// Seconds since the epoch, with milliseconds.
    TimeEpoch,
    Request,
    Method,
    /// Path and query.
    Uri,
    /// Path alone.
    Path,
    /// Query alone.
    Query,
    Protocol,
    Status,
    Bytes,
    Referer,
    UserAgent,
    Host,
    /// Read and not used.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Var),
}

/// A compiled access-log layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    parts: Vec<Part>,
    text: String,
}

fn nginx_var(name: &str) -> Var {
    match name {
        "remote_addr" | "realip_remote_addr" => Var::Client,
        "http_x_forwarded_for" | "proxy_add_x_forwarded_for" => Var::ForwardedFor,
        "remote_user" => Var::User,
        "time_local" => Var::TimeLocal,
        "time_iso8601" => Var::TimeIso,
        "msec" => Var::TimeEpoch,
        "request" => Var::Request,
        "request_method" => Var::Method,
        "request_uri" => Var::Uri,
        "uri" | "document_uri" => Var::Path,
        "args" | "query_string" => Var::Query,
        "server_protocol" => Var::Protocol,
        "status" => Var::Status,
        "body_bytes_sent" | "bytes_sent" => Var::Bytes,
        "http_referer" => Var::Referer,
        "http_user_agent" => Var::UserAgent,
        "host" | "http_host" | "server_name" => Var::Host,
        _ => Var::Other,
    }
}

fn apache_var(directive: char, arg: Option<&str>) -> Var {
    match (directive, arg.map(str::to_ascii_lowercase).as_deref()) {
        ('h' | 'a', _) => Var::Client,
        ('u', _) => Var::User,
        ('t', None) => Var::TimeLocal,
        ('t', Some(_)) => Var::Other,
        ('r', _) => Var::Request,
        ('m', _) => Var::Method,
        ('U', _) => Var::Path,
        ('q', _) => Var::Query,
        ('H', _) => Var::Protocol,
        ('s', _) => Var::Status,
        ('b' | 'B' | 'O', _) => Var::Bytes,
        ('i', Some("referer")) => Var::Referer,
        ('i', Some("user-agent")) => Var::UserAgent,
        ('i', Some("x-forwarded-for")) => Var::ForwardedFor,
        ('i', Some("host")) | ('v' | 'V', _) => Var::Host,
        _ => Var::Other,
    }
}

impl LogFormat {
    /// Compiles an nginx `log_format` string (it names `$variables`) or an Apache `LogFormat`
    /// string (`%directives`); `\"` reads as `"` in both.
    pub fn parse(text: &str) -> Result<LogFormat, InputError> {
        let bad = |at: usize, message: String| InputError::LogFormat { at, message };
        let nginx = text.contains('$');
        let chars: Vec<char> = text.chars().collect();
        let mut parts: Vec<Part> = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        let push_field = |parts: &mut Vec<Part>, literal: &mut String, v: Var, at: usize| {
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(literal)));
            }
            if matches!(parts.last(), Some(Part::Field(_))) {
                return Err(bad(
                    at,
                    "two fields with nothing between them cannot be told apart".into(),
                ));
            }
            parts.push(Part::Field(v));
            Ok(())
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && chars.get(i + 1) == Some(&'"') {
                literal.push('"');
                i += 2;
                continue;
            }
            if nginx && c == '$' {
                let braced = chars.get(i + 1) == Some(&'{');
                let start = if braced { i + 2 } else { i + 1 };
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                if end == start {
                    return Err(bad(i, "a `$` names no variable".into()));
                }
                let name: String = chars[start..end].iter().collect();
                if braced {
                    if chars.get(end) != Some(&'}') {
                        return Err(bad(i, format!("`${{{name}` is not closed")));
                    }
                    end += 1;
                }
                push_field(&mut parts, &mut literal, nginx_var(&name), i)?;
                i = end;
                continue;
            }
            if !nginx && c == '%' {
                let mut j = i + 1;
                if chars.get(j) == Some(&'%') {
                    literal.push('%');
                    i += 2;
                    continue;
                }
                // Modifiers: `>`, `<`, status lists (`%400,501{User-agent}i`), `!`.
                while j < chars.len() && matches!(chars[j], '>' | '<' | '!' | ',' | '0'..='9') {
                    j += 1;
                }
                let mut arg = None;
                if chars.get(j) == Some(&'{') {
                    let close = chars[j..]
                        .iter()
                        .position(|&c| c == '}')
                        .ok_or_else(|| bad(i, "a `%{` is not closed".into()))?;
                    arg = Some(chars[j + 1..j + close].iter().collect::<String>());
                    j += close + 1;
                }
                let Some(&d) = chars.get(j) else {
                    return Err(bad(i, "a `%` ends the format".into()));
                };
                push_field(&mut parts, &mut literal, apache_var(d, arg.as_deref()), i)?;
                i = j + 1;
                continue;
            }
            literal.push(c);
            i += 1;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let has = |v: Var| parts.contains(&Part::Field(v));
        if !(has(Var::TimeLocal) || has(Var::TimeIso) || has(Var::TimeEpoch)) {
            return Err(bad(
                0,
                "the format has no time field ($time_local, $time_iso8601, $msec, %t)".into(),
            ));
        }
        if !(has(Var::Request) || has(Var::Uri) || has(Var::Path)) {
            return Err(bad(
                0,
                "the format has no request field ($request, $request_uri, $uri, %r, %U)".into(),
            ));
        }
        Ok(LogFormat {
            parts,
            text: text.to_owned(),
        })
    }

    /// Whether a line follows the layout.
    pub(crate) fn follows(&self, line: &str) -> bool {
        self.split(line).is_some()
    }

    /// The fields of a line, in the layout's order, or `None` when it does not follow it.
    fn split<'l>(&self, line: &'l str) -> Option<Vec<(Var, &'l str)>> {
        let mut rest = line;
        let mut out = Vec::new();
        let mut parts = self.parts.iter().peekable();
        let mut quoted = false;
        while let Some(p) = parts.next() {
            match p {
                Part::Literal(l) => {
                    rest = rest.strip_prefix(l.as_str())?;
                    quoted = l.ends_with('"');
                }
                Part::Field(v) => {
                    let end = match parts.peek() {
                        None => rest.len(),
                        Some(Part::Literal(next)) if quoted && next.starts_with('"') => {
                            closing_quote(rest)?
                        }
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        Some(Part::Field(_)) => return None,
                    };
                    // `[10/Oct/2000:13:55:36 -0700]` as Apache's `%t` writes it.
                    let value = &rest[..end];
                    let value = match v {
                        Var::TimeLocal => value.trim_start_matches('[').trim_end_matches(']'),
                        _ => value,
                    };
                    out.push((*v, value));
                    rest = &rest[end..];
                    quoted = false;
                }
            }
        }
        rest.trim().is_empty().then_some(out)
    }
}

/// The byte offset of the first `"` not escaped by a backslash.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `\"`, `\\` and `\xHH` read back, as nginx and Apache escape them.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'"' | b'\\' => {
                    out.push(b[i + 1]);
                    i += 2;
                    continue;
                }
                b'x' if i + 3 < b.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    if let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) {
                        out.push((h * 16 + l) as u8);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode(fmt: &LogFormat, line: &str, source: SourceRef) -> Result<Event, (SkipReason, String)> {
    let fields = fmt.split(line).ok_or_else(|| {
        (
            SkipReason::Malformed,
            format!("does not follow the --log-format {:?}", fmt.text),
        )
    })?;
    let get = |v: Var| {
        fields
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, x)| *x)
            .filter(|x| !x.is_empty() && *x != "-")
    };
    let time = if let Some(t) = get(Var::TimeLocal) {
        super::web_access::ncsa_time(t)
    } else {
        get(Var::TimeIso)
            .or_else(|| get(Var::TimeEpoch))
            .and_then(parse_time_ms)
            .map(format_time_ms)
    }
    .ok_or_else(|| (SkipReason::Malformed, "no readable time".to_owned()))?;
    let request = get(Var::Request).map(unescape);
    let mut words = request.as_deref().unwrap_or("").splitn(3, ' ');
    let (r_method, r_uri, r_version) = match (words.next(), words.next(), words.next()) {
        (Some(m), Some(u), v) if !m.is_empty() && m.bytes().all(|c| c.is_ascii_uppercase()) => {
            (Some(m.to_owned()), Some(u.to_owned()), v.map(str::to_owned))
        }
        _ => (None, request.clone().filter(|r| r != "-"), None),
    };
    let uri = r_uri.or_else(|| get(Var::Uri).map(unescape)).or_else(|| {
        get(Var::Path).map(|p| match get(Var::Query) {
            Some(q) => format!("{}?{}", unescape(p), unescape(q)),
            None => unescape(p),
        })
    });
    let host = get(Var::Host).map(|h| super::squid::authority(h).0.to_owned());
    let url = uri.as_ref().map(|u| match &host {
        Some(h) if u.starts_with('/') => format!("http://{h}{u}"),
        _ => u.clone(),
    });
    let method = r_method.or_else(|| get(Var::Method).map(str::to_owned));
    Ok(Event {
        native_id: method.clone(),
        time: Some(time),
        network: Some(Network {
            src_ip: get(Var::Client).map(str::to_owned),
            url,
            outbound: Some(false),
            ..Network::default()
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version: r_version.or_else(|| get(Var::Protocol).map(str::to_owned)),
            status: get(Var::Status).and_then(|s| s.parse().ok()),
            bytes_out: get(Var::Bytes).and_then(|b| b.parse().ok()),
            user_agent: get(Var::UserAgent).map(unescape),
            referer: get(Var::Referer).map(unescape),
            forwarded_for: get(Var::ForwardedFor).map(unescape),
            header_names: None,
        })),
        ..Event::empty(source, Format::WebAccess, EventKind::HttpRequest)
    })
}

/// Every line of an input read against the user's layout (`ReadOptions::log_format`).
pub(crate) fn read(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let Some(fmt) = opts.log_format.clone() else {
        return;
    };
    let decode = |line: &str, source: SourceRef| decode(&fmt, line, source);
    crate::each_record_line(name, first, first_line, r, opts, summary, on_event, &decode);
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
    fn an_nginx_layout_with_the_host_and_timing_reads_its_lines() {
        let f = LogFormat::parse(r#"$host $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time uct="$upstream_connect_time" xff="$http_x_forwarded_for""#).unwrap();
        let line = r#"169.254.169.254 203.0.113.9 - - [20/Nov/2026:09:20:41 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 200 28 "-" "curl/8.4.0 \"x\"" rt=0.002 uct="0.001" xff="198.51.100.1, 10.0.0.2""#;
        let e = decode(&f, line, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-20T09:20:41.000Z"));
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.host.as_deref(), Some("169.254.169.254"));
        assert_eq!(
            h.uri.as_deref(),
            Some("/latest/meta-data/iam/security-credentials/")
        );
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(28)));
        assert_eq!(h.user_agent.as_deref(), Some("curl/8.4.0 \"x\""));
        assert_eq!(h.forwarded_for.as_deref(), Some("198.51.100.1, 10.0.0.2"));
        assert_eq!(
            e.network.as_ref().unwrap().url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        );
        let (reason, detail) = decode(&f, "junk", at()).unwrap_err();
        assert_eq!(reason, SkipReason::Malformed);
        assert!(detail.starts_with("does not follow the --log-format"));
    }

    #[test]
    fn an_apache_layout_and_iso_times_read() {
        let f = LogFormat::parse(
            r#"%v:%p %a %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D"#,
        )
        .unwrap();
        let line = r#"shop.example:443 198.51.100.7 - alice [20/Nov/2026:10:00:00 +0100] "GET /preview?u=http://169.254.169.254/ HTTP/1.1" 500 0 "-" "python-requests/2.31" 1520"#;
        let e = decode(&f, line, at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-20T09:00:00.000Z"));
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.host.as_deref(), Some("shop.example"));
        assert_eq!(h.status, Some(500));
        assert_eq!(
            e.network.as_ref().unwrap().src_ip.as_deref(),
            Some("198.51.100.7")
        );

        let iso =
            LogFormat::parse("$time_iso8601|$remote_addr|$request_method|$request_uri|$status")
                .unwrap();
        let e = decode(
            &iso,
            "2026-11-20T10:00:00+00:00|10.0.0.5|PUT|/latest/api/token|200",
            at(),
        )
        .unwrap();
        let h = e.http.as_ref().unwrap();
        assert_eq!(
            (h.method.as_deref(), h.uri.as_deref()),
            (Some("PUT"), Some("/latest/api/token"))
        );
    }

    #[test]
    fn layouts_that_cannot_be_read_are_refused_with_where() {
        for (text, at, what) in [
            (
                "$remote_addr$remote_user [$time_local] \"$request\"",
                12,
                "nothing between",
            ),
            ("$remote_addr \"$request\"", 0, "no time field"),
            ("[$time_local] $status", 0, "no request field"),
            ("%h %{User-Agent i %t %r", 3, "not closed"),
            ("[$time_local] $ \"$request\"", 14, "names no variable"),
        ] {
            match LogFormat::parse(text) {
                Err(InputError::LogFormat { at: got, message }) => {
                    assert_eq!(got, at, "{text}: {message}");
                    assert!(message.contains(what), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
