//! The line an event cites opens to its record, in every line-based format: JSON lines, JSON
//! documents (arrays and concatenated pretty-printed objects), Defender CSV exports, audit logs
//! and Windows event XML. Each generated file mixes LF and CRLF line ends, blank lines, quoted
//! and escaped text, values spread over several lines where the format allows it; every record
//! carries its own host name, and the test knows the line each record starts on.

use imdsguard_event::{Event, Position};
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use proptest::prelude::*;

/// Text a field may hold: quotes, commas, backslashes, non-ASCII, and (where the format can
/// carry them) line breaks.
fn value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a".to_owned()),
            Just("\"".to_owned()),
            Just("\"\"".to_owned()),
            Just(",".to_owned()),
            Just("\\".to_owned()),
            Just("é".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("'".to_owned()),
            Just("<&>".to_owned()),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

/// One record's shape: its free text, its line end, and blank lines after it.
#[derive(Debug, Clone)]
struct Shape {
    text: String,
    crlf: bool,
    blanks: usize,
}

fn shapes() -> impl Strategy<Value = Vec<Shape>> {
    proptest::collection::vec(
        (value(), any::<bool>(), 0usize..3).prop_map(|(text, crlf, blanks)| Shape {
            text,
            crlf,
            blanks,
        }),
        1..12,
    )
}

/// A file being built, counting its lines.
#[derive(Default)]
struct Doc {
    text: String,
}

impl Doc {
    /// The 1-based line the next byte goes on.
    fn line(&self) -> u64 {
        self.text.matches('\n').count() as u64 + 1
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn end_line(&mut self, crlf: bool, blanks: usize) {
        let eol = if crlf { "\r\n" } else { "\n" };
        self.push(eol);
        for _ in 0..blanks {
            self.push(eol);
        }
    }
}

/// Every event's host with the line it cites; fails on a skipped record.
fn cited(doc: &str) -> Result<Vec<(String, u64)>, String> {
    let mut events: Vec<Event> = Vec::new();
    let mut summary = Summary::default();
    read_reader(
        "t",
        &mut doc.as_bytes(),
        &ReadOptions::default(),
        &mut summary,
        &mut |e| events.push(e),
    );
    if summary.total_skipped() > 0 {
        return Err(format!("skipped: {:?}", summary.first_skips));
    }
    Ok(events
        .iter()
        .map(|e| {
            let line = match e.source.position {
                Position::Line(n) | Position::Element { line: n, .. } => n,
                Position::Record { .. } => 0,
            };
            (e.host.clone().unwrap_or_default(), line)
        })
        .collect())
}

fn json_text(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn check(doc: &Doc, want: Vec<(String, u64)>) -> Result<(), TestCaseError> {
    let got = cited(&doc.text).map_err(TestCaseError::fail)?;
    prop_assert_eq!(got, want, "document:\n{}", doc.text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn json_lines(shapes in shapes()) {
        let mut doc = Doc::default();
        let mut want = Vec::new();
        for (i, s) in shapes.iter().enumerate() {
            want.push((format!("h{i}"), doc.line()));
            doc.push(&format!(
                "{{\"@timestamp\":\"2026-11-20T10:00:00Z\",\"event\":{{\"category\":[\"process\"]}},\"host\":{{\"name\":\"h{i}\"}},\"process\":{{\"executable\":\"/usr/bin/x\",\"command_line\":{}}}}}",
                json_text(&s.text)
            ));
            doc.end_line(s.crlf, s.blanks);
        }
        check(&doc, want)?;
    }

    #[test]
    fn json_documents(shapes in shapes(), array in any::<bool>()) {
        let mut doc = Doc::default();
        let mut want = Vec::new();
        if array {
            doc.push("[");
            doc.end_line(false, 0);
        }
        for (i, s) in shapes.iter().enumerate() {
            let record = serde_json::json!({
                "@timestamp": "2026-11-20T10:00:00Z",
                "event": {"category": ["process"]},
                "host": {"name": format!("h{i}")},
                "process": {"executable": "/usr/bin/x", "command_line": s.text},
            });
            let mut text = serde_json::to_string_pretty(&record).unwrap();
            if s.crlf {
                text = text.replace('\n', "\r\n");
            }
            want.push((format!("h{i}"), doc.line()));
            doc.push(&text);
            if array && i + 1 < shapes.len() {
                doc.push(",");
            }
            doc.end_line(s.crlf, s.blanks);
        }
        if array {
            doc.push("]");
            doc.end_line(false, 0);
        }
        check(&doc, want)?;
    }

    #[test]
    fn defender_csv(shapes in shapes()) {
        let mut doc = Doc::default();
        doc.push("Timestamp,DeviceName,ActionType,InitiatingProcessFileName,InitiatingProcessFolderPath,RemoteIP,RemotePort,InitiatingProcessCommandLine");
        doc.end_line(shapes[0].crlf, 0);
        let mut want = Vec::new();
        for (i, s) in shapes.iter().enumerate() {
            want.push((format!("h{i}"), doc.line()));
            // Quoted as Defender's export quotes: the field in quotes, quotes inside doubled.
            let quoted = format!("\"{}\"", s.text.replace('"', "\"\""));
            doc.push(&format!(
                "2026-11-20T10:00:00Z,h{i},ConnectionSuccess,x.exe,C:\\x\\x.exe,10.0.0.1,443,{quoted}"
            ));
            // A blank line in CSV is skipped by readers; the export writes none.
            doc.end_line(s.crlf, 0);
        }
        check(&doc, want)?;
    }

    #[test]
    fn audit_logs(shapes in shapes()) {
        let mut doc = Doc::default();
        let mut want = Vec::new();
        for (i, s) in shapes.iter().enumerate() {
            let serial = 1000 + i;
            let stamp = format!("msg=audit(1763630000.{:03}:{serial})", i % 1000);
            // Audit logs hex-encode a value holding spaces, quotes or bytes outside ASCII.
            let arg: String = s.text.bytes().map(|b| format!("{b:02X}")).collect();
            let arg = if arg.is_empty() { "\"x\"".to_owned() } else { arg };
            want.push((format!("h{i}"), doc.line()));
            doc.push(&format!("node=h{i} type=SYSCALL {stamp}: arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={serial} uid=0 comm=\"x\" exe=\"/usr/bin/x\" key=(null)"));
            doc.end_line(s.crlf, 0);
            doc.push(&format!("node=h{i} type=EXECVE {stamp}: argc=2 a0=\"x\" a1={arg}"));
            doc.end_line(s.crlf, 0);
            doc.push(&format!("node=h{i} type=EOE {stamp}:"));
            doc.end_line(s.crlf, s.blanks);
        }
        check(&doc, want)?;
    }

    #[test]
    fn windows_xml(shapes in shapes(), wrapped in any::<bool>()) {
        let mut doc = Doc::default();
        let mut want = Vec::new();
        if wrapped {
            doc.push("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            doc.end_line(false, 0);
            doc.push("<Events>");
        }
        for (i, s) in shapes.iter().enumerate() {
            let text = s
                .text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            want.push((format!("h{i}"), doc.line()));
            let eol = if s.crlf { "\r\n" } else { "\n" };
            doc.push(&format!(
                "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>{eol}  <System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>1</EventID><TimeCreated SystemTime='2026-11-20T10:00:00.0000000Z'/><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>h{i}</Computer></System>{eol}  <EventData><Data Name='Image'>C:\\x\\x.exe</Data><Data Name='CommandLine'>{text}</Data></EventData>{eol}</Event>"
            ));
            doc.end_line(s.crlf, s.blanks);
        }
        if wrapped {
            doc.push("</Events>");
            doc.end_line(false, 0);
        }
        check(&doc, want)?;
    }
}
