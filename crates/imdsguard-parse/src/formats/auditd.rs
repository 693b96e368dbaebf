//! Linux audit logs, raw (`log_format = RAW`) and enriched (`ENRICHED`: interpreted fields after a
//! `\x1d`). Records are `[node=N ]type=T msg=audit(SECONDS.MS:SERIAL): key=value ...`; the records
//! of one event share a serial and end with `EOE`. An event becomes:
//! - `execve`/`execveat` → a process start: the SYSCALL's pid, ppid, uid and exe, the EXECVE
//!   arguments (or PROCTITLE) as the command line;
//! - `connect` with an IPv4 or IPv6 SOCKADDR → a network connection to the decoded address;
//! - anything else → `other`, with its process.
//!
//! Values audit encodes as hex (any string with a space, quote or control character, and always
//! `proctitle`) are decoded; `exe` keeps a ` (deleted)` suffix, which says the binary is gone.

use std::net::{Ipv4Addr, Ipv6Addr};

use imdsguard_event::{Event, EventKind, Format, Network, Process, SourceRef};
use std::io::BufRead;

use crate::error::SkipReason;
use crate::{each_line, ReadOptions, Skipped, Summary};
use imdsguard_event::Position;

/// One parsed record line.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub rtype: String,
    pub node: Option<String>,
    pub time: String,
    pub serial: u64,
    /// Raw fields, values as written (quotes removed).
    pub fields: Vec<(String, Value)>,
    /// Enriched fields (after `\x1d`), e.g. `SYSCALL=execve`, `UID="root"`.
    pub interpreted: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub text: String,
    pub quoted: bool,
}

impl Record {
    fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A field that audit may have hex-encoded, decoded.
    fn string(&self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        if v.text == "(null)" || v.text == "(none)" {
            return None;
        }
        Some(if v.quoted {
            v.text.clone()
        } else {
            decode_hex_text(&v.text).unwrap_or_else(|| v.text.clone())
        })
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.text.parse().ok()
    }

    fn interpreted(&self, key: &str) -> Option<&str> {
        self.interpreted
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a line looks like an audit record.
pub(crate) fn sniff_line(line: &str) -> bool {
    let rest = strip_node(line).1;
    rest.starts_with("type=") && rest.contains(" msg=audit(")
}

fn strip_node(line: &str) -> (Option<&str>, &str) {
    match line.strip_prefix("node=") {
        Some(r) => {
            let end = r.find(' ').unwrap_or(r.len());
            (Some(&r[..end]), r[end..].trim_start())
        }
        None => (None, line),
    }
}

/// Parses one record line, or says what is wrong with it.
pub(crate) fn parse_line(line: &str) -> Result<Record, String> {
    let (node, rest) = strip_node(line.trim_end());
    let rest = rest.strip_prefix("type=").ok_or("no type=")?;
    let sp = rest.find(' ').ok_or("no msg= after type=")?;
    let rtype = rest[..sp].to_owned();
    let rest = rest[sp..]
        .trim_start()
        .strip_prefix("msg=audit(")
        .ok_or("no msg=audit(")?;
    // Kernel records close the stamp with `):`, auditd's own (DAEMON_*) with `) `.
    let close = rest.find(')').ok_or("msg=audit( is not closed")?;
    let stamp = &rest[..close];
    let (time, serial) = stamp.split_once(':').ok_or("no serial in msg=audit(...)")?;
    let serial: u64 = serial
        .parse()
        .map_err(|_| format!("serial {serial:?} is not a number"))?;
    let after = &rest[close + 1..];
    let body = after.strip_prefix(':').unwrap_or(after);
    let (raw, enriched) = match body.find('\u{1d}') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    // USER_* records wrap their fields in msg='...'; read inside it too.
    let raw = raw.trim();
    let raw = raw
        .strip_prefix("msg='")
        .map(|r| r.trim_end_matches('\''))
        .unwrap_or(raw);
    Ok(Record {
        rtype,
        node: node.map(str::to_owned),
        time: time.to_owned(),
        serial,
        fields: pairs(raw),
        interpreted: enriched
            .map(|e| pairs(e).into_iter().map(|(k, v)| (k, v.text)).collect())
            .unwrap_or_default(),
    })
}

/// `key=value` pairs; values may be double-quoted (never escaped: audit hex-encodes instead).
pub(crate) fn pairs(s: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        let key = s[key_start..i].to_owned();
        i += 1;
        let (text, quoted) = if i < b.len() && b[i] == b'"' {
            let end = s[i + 1..].find('"').map_or(b.len(), |e| i + 1 + e);
            let t = s[i + 1..end].to_owned();
            i = (end + 1).min(b.len());
            (t, true)
        } else {
            let start = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            (s[start..i].to_owned(), false)
        };
        out.push((key, Value { text, quoted }));
    }
    out
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Hex text as audit writes untrusted strings; NUL separators (proctitle's argv) become spaces.
fn decode_hex_text(s: &str) -> Option<String> {
    let bytes = decode_hex(s)?;
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c == '\0' { ' ' } else { c })
        .collect();
    Some(text.trim_end().to_owned())
}

/// A decoded `saddr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SockAddr {
    Inet(String, u16),
    Unix(String),
    Other(u16),
}

pub(crate) fn decode_saddr(hex: &str) -> Option<SockAddr> {
    let b = decode_hex(hex)?;
    if b.len() < 2 {
        return None;
    }
    let family = u16::from_le_bytes([b[0], b[1]]);
    Some(match family {
        2 if b.len() >= 8 => SockAddr::Inet(
            Ipv4Addr::new(b[4], b[5], b[6], b[7]).to_string(),
            u16::from_be_bytes([b[2], b[3]]),
        ),
        10 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            SockAddr::Inet(
                Ipv6Addr::from(a).to_string(),
                u16::from_be_bytes([b[2], b[3]]),
            )
        }
        1 => SockAddr::Unix(
            String::from_utf8_lossy(&b[2..])
                .trim_end_matches('\0')
                .to_owned(),
        ),
        f => SockAddr::Other(f),
    })
}

/// The syscall's name: the enriched `SYSCALL=` field, else the number by architecture.
fn syscall_name(sys: &Record) -> Option<String> {
    if let Some(name) = sys.interpreted("SYSCALL") {
        return Some(name.to_owned());
    }
    let n = sys.number("syscall")?;
    let name = match (sys.get("arch").map(|a| a.text.as_str()), n) {
        (Some("c000003e"), 59) | (Some("c00000b7"), 221) | (Some("40000003"), 11) => "execve",
        (Some("c000003e"), 322) | (Some("c00000b7"), 281) | (Some("40000003"), 358) => "execveat",
        (Some("c000003e"), 42) | (Some("c00000b7"), 203) | (Some("40000003"), 362) => "connect",
        _ => return Some(n.to_string()),
    };
    Some(name.to_owned())
}

/// Seconds since the epoch (`1492037289.295`) as RFC 3339 UTC, the fraction as written.
pub(crate) fn rfc3339(stamp: &str) -> Option<String> {
    let (secs, frac) = stamp.split_once('.').unwrap_or((stamp, "000"));
    let secs: i64 = secs.parse().ok()?;
    let whole = imdsguard_event::format_time_ms(secs.checked_mul(1000)?);
    // `…T09:14:07.000Z`: the seconds' fraction replaced by the record's own.
    Some(format!("{}.{frac}Z", whole.strip_suffix(".000Z")?))
}

/// Builds the event of one serial's records; `source` is its first record's line.
pub(crate) fn event(records: &[Record], source: SourceRef) -> Event {
    let first = &records[0];
    let find = |t: &str| records.iter().find(|r| r.rtype == t);
    let mut e = Event {
        native_id: Some(first.rtype.clone()),
        // The serial, with the time it was stamped at (serials restart at boot).
        record_id: Some(format!("{}:{}", first.time, first.serial)),
        time: rfc3339(&first.time),
        host: first.node.clone(),
        ..Event::empty(source, Format::Auditd, EventKind::Other)
    };
    let Some(sys) = find("SYSCALL") else {
        // Not a syscall event (USER_*, CONFIG_CHANGE, ...): keep what process detail it has.
        e.process = Process {
            pid: first.number("pid"),
            image: first.string("exe"),
            user: first
                .interpreted("UID")
                .map(str::to_owned)
                .or_else(|| first.get("uid").map(|v| v.text.clone())),
            ..Process::default()
        };
        return e;
    };
    let name = syscall_name(sys);
    e.native_id = name.clone();
    e.process = Process {
        pid: sys.number("pid"),
        image: sys.string("exe"),
        command_line: None,
        user: sys
            .interpreted("UID")
            .map(str::to_owned)
            .or_else(|| sys.get("uid").map(|v| v.text.clone())),
        hashes: None,
        comm: sys.string("comm"),
    };
    e.parent = Process {
        pid: sys.number("ppid"),
        ..Process::default()
    };
    let proctitle = find("PROCTITLE").and_then(|r| r.string("proctitle"));
    match name.as_deref() {
        Some("execve" | "execveat") => {
            e.kind = EventKind::ProcessStart;
            // Long argument lists span several EXECVE records of the same event.
            let mut execve: Option<Record> = None;
            for r in records.iter().filter(|r| r.rtype == "EXECVE") {
                match execve.as_mut() {
                    Some(m) => m.fields.extend(r.fields.iter().cloned()),
                    None => execve = Some(r.clone()),
                }
            }
            e.process.command_line = execve.as_ref().and_then(execve_args).or(proctitle);
        }
        Some("connect") => {
            e.process.command_line = proctitle;
            if let Some(SockAddr::Inet(ip, port)) = find("SOCKADDR")
                .and_then(|r| r.get("saddr"))
                .and_then(|v| decode_saddr(&v.text))
            {
                e.kind = EventKind::NetworkConnect;
                e.network = Some(Network {
                    dst_ip: Some(ip),
                    dst_port: Some(port),
                    outbound: Some(true),
                    ..Network::default()
                });
            }
        }
        _ => e.process.command_line = proctitle,
    }
    e
}

/// EXECVE's `a0..aN` (and `aN[i]` pieces of long arguments) joined with spaces.
fn execve_args(r: &Record) -> Option<String> {
    let argc = r.number("argc")? as usize;
    let mut args = Vec::with_capacity(argc);
    for i in 0..argc.min(4096) {
        let key = format!("a{i}");
        let arg = match r.string(&key) {
            Some(a) => a,
            None => {
                // Long arguments: a1_len=N a1[0]=... a1[1]=...
                let prefix = format!("a{i}[");
                let pieces: Vec<&Value> = r
                    .fields
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, v)| v)
                    .collect();
                if pieces.is_empty() {
                    continue;
                }
                let joined: String = pieces.iter().map(|v| v.text.as_str()).collect();
                if pieces.iter().all(|v| !v.quoted) {
                    decode_hex_text(&joined).unwrap_or(joined)
                } else {
                    joined
                }
            }
        };
        args.push(arg);
    }
    (!args.is_empty()).then(|| args.join(" "))
}

/// How many lines an audit event stays open after its last record when no `EOE` closes it.
const AUDIT_WINDOW: u64 = 16;

/// Audit records grouped into events by (node, serial).
pub(crate) fn read(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    struct Open {
        node: Option<String>,
        serial: u64,
        first_line: u64,
        last_line: u64,
        records: Vec<Record>,
    }
    const AUXILIARY: &[&str] = &[
        "SYSCALL",
        "EXECVE",
        "CWD",
        "PATH",
        "PROCTITLE",
        "SOCKADDR",
        "SOCKETCALL",
        "FD_PAIR",
        "MMAP",
        "BPRM_FCAPS",
        "CAPSET",
        "OBJ_PID",
        "NETFILTER_CFG",
    ];
    let at = |line: u64| SourceRef {
        path: name.to_owned(),
        position: Position::Line(line),
    };
    let mut open: Vec<Open> = Vec::new();
    let emit_open = |o: Open, summary: &mut Summary, on_event: &mut dyn FnMut(Event)| {
        summary.event(event(&o.records, at(o.first_line)), opts, on_event);
    };
    let handle = |text: &[u8],
                  line: u64,
                  open: &mut Vec<Open>,
                  summary: &mut Summary,
                  on_event: &mut dyn FnMut(Event)| {
        // Close events whose records stopped arriving (logs without EOE).
        while let Some(i) = open.iter().position(|o| line - o.last_line > AUDIT_WINDOW) {
            let o = open.remove(i);
            emit_open(o, summary, on_event);
        }
        // A byte that is not UTF-8 (in a value an attacker chose) costs that byte, not the
        // record: read as U+FFFD, counted and named.
        let text = match std::str::from_utf8(text) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => {
                summary.lossy(at(line), opts.keep_skips);
                String::from_utf8_lossy(text)
            }
        };
        let rec = match parse_line(&text) {
            Ok(r) => r,
            Err(why) => {
                summary.skip(
                    Skipped {
                        source: at(line),
                        reason: SkipReason::Malformed,
                        detail: format!("not an audit record: {why}"),
                    },
                    opts.keep_skips,
                );
                return;
            }
        };
        let pos = open
            .iter()
            .position(|o| o.serial == rec.serial && o.node == rec.node);
        if rec.rtype == "EOE" {
            if let Some(i) = pos {
                let o = open.remove(i);
                emit_open(o, summary, on_event);
            }
            return;
        }
        match pos {
            Some(i) => {
                open[i].last_line = line;
                open[i].records.push(rec);
            }
            None if AUXILIARY.contains(&rec.rtype.as_str()) => open.push(Open {
                node: rec.node.clone(),
                serial: rec.serial,
                first_line: line,
                last_line: line,
                records: vec![rec],
            }),
            None => {
                summary.event(event(std::slice::from_ref(&rec), at(line)), opts, on_event);
            }
        }
    };
    handle(&first, first_line, &mut open, summary, on_event);
    each_line(
        name,
        r,
        first_line,
        opts,
        summary,
        &mut |t, line, summary| {
            handle(&t, line, &mut open, summary, on_event);
            true
        },
    );
    open.sort_by_key(|o| o.first_line);
    for o in open {
        summary.event(event(&o.records, at(o.first_line)), opts, on_event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saddr_decoding() {
        assert_eq!(
            decode_saddr("02000050A9FEA9FE0000000000000000"),
            Some(SockAddr::Inet("169.254.169.254".into(), 80))
        );
        assert_eq!(
            decode_saddr("0A002BCB000000000000000000000000000000000000000100000000"),
            Some(SockAddr::Inet("::1".into(), 11211))
        );
        assert_eq!(
            decode_saddr("0A00005000000000FD000EC200000000000000000000025400000000"),
            Some(SockAddr::Inet("fd00:ec2::254".into(), 80))
        );
        assert_eq!(
            decode_saddr("01002F746D702F736F636B00"),
            Some(SockAddr::Unix("/tmp/sock".into()))
        );
        assert_eq!(decode_saddr("1000"), Some(SockAddr::Other(16)));
        assert_eq!(decode_saddr("zz"), None);
    }

    #[test]
    fn record_lines() {
        let r = parse_line("node=work type=SYSCALL msg=audit(1615114232.375:15558): arch=c000003e syscall=59 success=yes pid=10884 exe=\"/usr/bin/whoami\" key=(null)\u{1d}ARCH=x86_64 SYSCALL=execve UID=\"root\"").unwrap();
        assert_eq!(r.rtype, "SYSCALL");
        assert_eq!(r.node.as_deref(), Some("work"));
        assert_eq!(r.serial, 15558);
        assert_eq!(r.string("exe").as_deref(), Some("/usr/bin/whoami"));
        assert_eq!(r.interpreted("SYSCALL"), Some("execve"));
        assert_eq!(r.interpreted("UID"), Some("root"));
        assert_eq!(syscall_name(&r).as_deref(), Some("execve"));
        let hex = parse_line("type=SYSCALL msg=audit(1492037289.295:58): syscall=42 exe=2F7573722F62696E2F707974686F6E322E373B3538643163636662202864656C6574656429").unwrap();
        assert_eq!(
            hex.string("exe").as_deref(),
            Some("/usr/bin/python2.7;58d1ccfb (deleted)")
        );
        assert!(parse_line("type=SYSCALL msg=audit(1.2): x=1").is_err());
        let daemon = parse_line("type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0 pid=1512 res=success").unwrap();
        assert_eq!(daemon.serial, 34);
        assert_eq!(daemon.get("pid").map(|v| v.text.as_str()), Some("1512"));
        assert!(parse_line("type=UNKNOWN[1329] msg=?").is_err());
        assert!(parse_line("hello").is_err());
    }

    #[test]
    fn epoch_to_rfc3339() {
        assert_eq!(
            rfc3339("1492037289.295").as_deref(),
            Some("2017-04-12T22:48:09.295Z")
        );
        assert_eq!(
            rfc3339("0.000").as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            rfc3339("951782400.5").as_deref(),
            Some("2000-02-29T00:00:00.5Z")
        );
    }
}
