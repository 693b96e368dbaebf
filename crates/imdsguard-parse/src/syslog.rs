//! Syslog frames (RFC 5424 and RFC 3164), as `imdsguard watch --syslog` receives them: the
//! message is the log record (a JSON line from NXLog or rsyslog, an audit record from
//! audisp-syslog), and the header names the sending host.
//!
//! TCP streams are split into frames by octet counting (`LEN SP FRAME`, RFC 6587) when a frame
//! starts with a digit, else by newline ([`split_tcp`]).

/// One syslog frame's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage<'a> {
    /// Facility × 8 + severity.
    pub pri: u8,
    /// The sending host, when the header names one (`-` is none).
    pub host: Option<&'a str>,
    /// The application (`APP-NAME`, or the 3164 tag without its `[pid]`).
    pub app: Option<&'a str>,
    /// The message: what the decoders read.
    pub msg: &'a [u8],
}

fn field(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Reads one frame; `None` when it does not start with `<PRI>`.
pub fn parse(frame: &[u8]) -> Option<SyslogMessage<'_>> {
    let frame = frame.strip_suffix(b"\n").unwrap_or(frame);
    let frame = frame.strip_suffix(b"\r").unwrap_or(frame);
    let rest = frame.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let pri: u8 = std::str::from_utf8(&rest[..close]).ok()?.parse().ok()?;
    if pri > 191 {
        return None;
    }
    let rest = &rest[close + 1..];
    if let Some(after) = rest.strip_prefix(b"1 ") {
        return Some(rfc5424(pri, after));
    }
    Some(rfc3164(pri, rest))
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.
fn rfc5424(pri: u8, s: &[u8]) -> SyslogMessage<'_> {
    let mut parts = Vec::with_capacity(5);
    let mut at = 0;
    for _ in 0..5 {
        let end = memchr::memchr(b' ', &s[at..]).map_or(s.len(), |i| at + i);
        parts.push(&s[at..end]);
        at = (end + 1).min(s.len());
    }
    // Structured data: `-` or one or more `[...]` elements (with `\]` escaped inside).
    let sd = &s[at..];
    let mut i = 0;
    if sd.first() == Some(&b'-') {
        i = 1;
    } else {
        while sd.get(i) == Some(&b'[') {
            i += 1;
            while i < sd.len() && sd[i] != b']' {
                i += if sd[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(sd.len());
        }
    }
    let mut msg = &sd[i.min(sd.len())..];
    msg = msg.strip_prefix(b" ").unwrap_or(msg);
    msg = msg.strip_prefix("\u{feff}".as_bytes()).unwrap_or(msg);
    SyslogMessage {
        pri,
        host: parts
            .get(1)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(field),
        app: parts
            .get(2)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(field),
        msg,
    }
}

/// `Mmm dd hh:mm:ss HOSTNAME TAG: MSG` (the header is optional in practice: without a
/// timestamp the whole rest is the message).
fn rfc3164(pri: u8, s: &[u8]) -> SyslogMessage<'_> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let has_ts = s.len() > 16
        && MONTHS.iter().any(|m| s.starts_with(m))
        && s[3] == b' '
        && s[6] == b' '
        && s[9] == b':'
        && s[12] == b':'
        && s[15] == b' ';
    if !has_ts {
        return SyslogMessage {
            pri,
            host: None,
            app: None,
            msg: s,
        };
    }
    let rest = &s[16..];
    let host_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let host = std::str::from_utf8(&rest[..host_end]).ok().and_then(field);
    let after_host = &rest[(host_end + 1).min(rest.len())..];
    // TAG: up to 32 alphanumerics, ended by `:` or `[pid]:`; a message may have none.
    let tag_end = after_host
        .iter()
        .take(48)
        .position(|&b| b == b':' || b == b'[' || b == b' ');
    let (app, msg) = match tag_end {
        Some(e) if e > 0 && (after_host[e] == b':' || after_host[e] == b'[') => {
            let app = std::str::from_utf8(&after_host[..e]).ok();
            let colon = memchr::memchr(b':', &after_host[e..]).map(|i| e + i);
            let m = colon.map_or(after_host, |c| &after_host[c + 1..]);
            (app, m.strip_prefix(b" ").unwrap_or(m))
        }
        _ => (None, after_host),
    };
    SyslogMessage {
        pri,
        host,
        app,
        msg,
    }
}

/// Splits the frames at the front of a TCP stream buffer; returns them and how many bytes they
/// took (the rest is an incomplete frame, kept for the next read). Octet counting when a frame
/// starts with a digit, newline-delimited otherwise.
pub fn split_tcp(buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        // An octet count: digits, a space, that many bytes.
        let count = rest[0]
            .is_ascii_digit()
            .then(|| rest.iter().take(10).position(|&b| b == b' '))
            .flatten()
            .and_then(|sp| {
                Some((
                    sp,
                    std::str::from_utf8(&rest[..sp])
                        .ok()?
                        .parse::<usize>()
                        .ok()?,
                ))
            });
        match count {
            Some((sp, len)) => {
                if rest.len() < sp + 1 + len {
                    break;
                }
                frames.push(&rest[sp + 1..sp + 1 + len]);
                at += sp + 1 + len;
            }
            // Digits with no space yet: the count may still be arriving.
            None if rest[0].is_ascii_digit() && rest.len() < 10 && !rest.contains(&b'\n') => break,
            // A line (also what starts with digits but is no count).
            None => match memchr::memchr(b'\n', rest) {
                Some(nl) => {
                    if nl > 0 {
                        frames.push(&rest[..nl]);
                    }
                    at += nl + 1;
                }
                None => break,
            },
        }
    }
    (frames, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_with_and_without_structured_data() {
        let m = parse(b"<134>1 2026-11-20T09:14:07.000Z web01 nxlog 4242 - - {\"EventID\":1}\n")
            .unwrap();
        assert_eq!(m.pri, 134);
        assert_eq!(m.host, Some("web01"));
        assert_eq!(m.app, Some("nxlog"));
        assert_eq!(m.msg, b"{\"EventID\":1}");
        let m = parse(
            b"<165>1 2026-11-20T09:14:07Z web01 app - ID47 [ex@32473 iut=\"3\" x=\"a\\]b\"][b@1 y=\"z\"] \xef\xbb\xbfhello",
        )
        .unwrap();
        assert_eq!(
            (m.host, m.app, m.msg),
            (Some("web01"), Some("app"), &b"hello"[..])
        );
        let m = parse(b"<13>1 - - - - - -").unwrap();
        assert_eq!((m.host, m.app, m.msg), (None, None, &b""[..]));
    }

    #[test]
    fn rfc3164_with_a_tag_a_pid_or_neither() {
        let m =
            parse(b"<14>Nov 20 09:14:07 web01 audispd: type=SYSCALL msg=audit(1.0:1): x").unwrap();
        assert_eq!(m.host, Some("web01"));
        assert_eq!(m.app, Some("audispd"));
        assert_eq!(m.msg, b"type=SYSCALL msg=audit(1.0:1): x");
        let m = parse(b"<14>Nov  3 09:14:07 web01 nxlog[321]: {\"a\":1}").unwrap();
        assert_eq!((m.app, m.msg), (Some("nxlog"), &b"{\"a\":1}"[..]));
        let m = parse(b"<14>{\"a\":1}").unwrap();
        assert_eq!((m.host, m.msg), (None, &b"{\"a\":1}"[..]));
        assert_eq!(parse(b"no pri"), None);
        assert_eq!(parse(b"<999>1 x"), None);
    }

    #[test]
    fn tcp_frames_by_octet_count_or_newline() {
        let buf = b"11 <14>1 a b c5 <14>x\n<14>line one\n<14>par";
        let (frames, used) = split_tcp(buf);
        assert_eq!(frames, [&b"<14>1 a b c"[..], b"<14>x", b"<14>line one"]);
        assert_eq!(&buf[used..], b"<14>par");
        // A count whose frame has not all arrived waits, as do digits that may be one.
        let (frames, used) = split_tcp(b"20 <14>1 short");
        assert!(frames.is_empty());
        assert_eq!(used, 0);
        assert_eq!(split_tcp(b"12"), (Vec::<&[u8]>::new(), 0));
        // Digits that are no count: a line.
        let (frames, used) = split_tcp(b"2026-11-20 line\n");
        assert_eq!(frames, [&b"2026-11-20 line"[..]]);
        assert_eq!(used, 16);
    }
}
