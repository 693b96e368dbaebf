//! Windows events as XML: `wevtutil qe CHANNEL /f:xml` (a stream of `<Event>` elements, single-quoted
//! attributes) and Event Viewer's "Save as XML" (`<?xml?><Events><Event>...</Events>`, often UTF-16
//! and on one line). Each `<Event>` becomes a record: EventID, Channel (or the provider's name),
//! Computer, `TimeCreated/@SystemTime` and the `<Data Name=...>` pairs of EventData, mapped like
//! every other Windows carrier. A record's line is the line its `<Event` starts on.

use imdsguard_event::{Event, Format, Position, SourceRef};

use super::windows::{windows_event, WinRecord};
use super::{missing, Decoding, Skip};
use crate::error::SkipReason;
use crate::fields::{xml_event_data, xml_user_data, Layered};
use std::io::BufRead;

use crate::{read_document, DocumentKind, ReadOptions, Summary};

/// Whether a stream's first bytes are Windows event XML: after an optional byte-order mark and
/// white space, `<?xml`, `<Events` or `<Event`, in UTF-8 or UTF-16.
pub(crate) fn sniff_start(head: &[u8]) -> bool {
    let text: String = match head {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from_utf8_lossy(head).into_owned(),
    };
    let t = text.trim_start();
    t.starts_with("<?xml") || t.starts_with("<Events") || is_event_start(t)
}

fn is_event_start(t: &str) -> bool {
    t.strip_prefix("<Event")
        .is_some_and(|r| r.starts_with(['>', ' ', '\t', '\r', '\n']))
}

fn utf16(b: &[u8], f: fn([u8; 2]) -> u16) -> String {
    let units = b.chunks_exact(2).map(|c| f([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// The document as text: UTF-16 (by its byte-order mark) is converted, UTF-8 read with U+FFFD
/// for any byte that is not (the second value says whether one was).
pub(crate) fn document_text(doc: &[u8]) -> (String, bool) {
    let utf8 = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(t) => (t.to_owned(), false),
        Err(_) => (String::from_utf8_lossy(b).into_owned(), true),
    };
    match doc {
        [0xFF, 0xFE, rest @ ..] => (utf16(rest, u16::from_le_bytes), false),
        [0xFE, 0xFF, rest @ ..] => (utf16(rest, u16::from_be_bytes), false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => utf8(rest),
        _ => utf8(doc),
    }
}

/// The text of the first `<tag ...>text</tag>` (attributes allowed on the tag).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = xml[from..].find('<') {
        let at = from + i + 1;
        let rest = &xml[at..];
        if let Some(r) = rest.strip_prefix(tag) {
            if r.starts_with(['>', ' ', '\t', '\r', '\n']) {
                let open_end = at + tag.len() + r.find('>')?;
                if xml[..open_end].ends_with('/') {
                    return Some("");
                }
                let body = &xml[open_end + 1..];
                let close = body.find("</")?;
                return Some(body[..close].trim());
            }
        }
        from = at;
    }
    None
}

/// The value of an attribute on the first `<tag ...>`, quoted with `"` or `'`.
fn attribute<'a>(xml: &'a str, tag: &str, attr: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('>')? + start;
    let tag_text = &xml[start..end];
    let key = format!("{attr}=");
    let mut from = 0;
    while let Some(i) = tag_text[from..].find(&key) {
        let at = from + i;
        let preceded = tag_text[..at].ends_with([' ', '\t', '\r', '\n']);
        let v = &tag_text[at + key.len()..];
        if preceded {
            let q = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let close = v[1..].find(q)?;
            return Some(&v[1..1 + close]);
        }
        from = at + key.len();
    }
    None
}

/// The `System` element's children, read by name when a rule asks.
struct XmlSystem<'a>(&'a str);

impl<'a> XmlSystem<'a> {
    /// The `<System>` element of an event (empty when it has none).
    fn of(xml: &'a str) -> XmlSystem<'a> {
        XmlSystem(xml.find("</System>").map_or("", |end| &xml[..end]))
    }
}

impl crate::fields::Fields for XmlSystem<'_> {
    fn raw(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        element(self.0, name).map(std::borrow::Cow::Borrowed)
    }

    fn each(&self, _: &mut dyn FnMut(&str, crate::fields::Scalar<'_>)) {}
}

/// Decodes one `<Event>...</Event>` element.
pub(crate) fn decode_event(xml: &str, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let id: u32 = element(xml, "EventID")
        .ok_or_else(|| missing("EventID"))?
        .parse()
        .map_err(|_| {
            (
                SkipReason::MissingField,
                "EventID is not a number".to_owned(),
            )
        })?;
    let mut pairs = xml_event_data(xml);
    if pairs.is_empty() {
        pairs = xml_user_data(xml);
    }
    let data = Layered {
        pairs,
        fallback: None,
    };
    let origin = element(xml, "Channel")
        .filter(|c| !c.is_empty())
        .or_else(|| attribute(xml, "Provider", "Name"))
        .unwrap_or_default()
        .to_owned();
    let rec = WinRecord {
        event_id: id,
        origin,
        data: &data,
        time: attribute(xml, "TimeCreated", "SystemTime").map(str::to_owned),
        clock: imdsguard_event::Clock::Utc,
        host: element(xml, "Computer").map(str::to_owned),
        provider: attribute(xml, "Provider", "Name").map(std::borrow::Cow::Borrowed),
        system: Some(&XmlSystem::of(xml)),
        record_id: None,
    };
    Ok(windows_event(source, Format::WindowsXml, &rec, how))
}

/// Every `<Event>` element of a document with the 1-based line it starts on (counted from
/// `first_line`), or the unterminated rest.
pub(crate) fn events(text: &str, first_line: u64) -> Vec<(u64, Result<&str, &str>)> {
    let mut out = Vec::new();
    let mut line = first_line;
    let mut counted = 0;
    let mut from = 0;
    while let Some(i) = text[from..].find("<Event") {
        let start = from + i;
        if !is_event_start(&text[start..]) {
            from = start + "<Event".len();
            continue;
        }
        line += text[counted..start].bytes().filter(|&b| b == b'\n').count() as u64;
        counted = start;
        match text[start..].find("</Event>") {
            Some(end) => {
                let end = start + end + "</Event>".len();
                out.push((line, Ok(&text[start..end])));
                from = end;
            }
            None => {
                out.push((line, Err(&text[start..])));
                break;
            }
        }
    }
    out
}

/// Decodes a whole XML document, calling `f` with each record's result.
pub(crate) fn decode_document(
    text: &str,
    first_line: u64,
    name: &str,
    how: Decoding<'_>,
    f: &mut dyn FnMut(SourceRef, Result<Event, Skip>),
) {
    for (line, ev) in events(text, first_line) {
        let source = SourceRef {
            path: name.to_owned(),
            position: Position::Line(line),
        };
        let result = match ev {
            Ok(xml) => decode_event(xml, source.clone(), how),
            Err(_) => Err((
                SkipReason::Malformed,
                "an <Event> element without its </Event>: the document is cut".to_owned(),
            )),
        };
        f(source, result);
    }
}

/// A Windows event XML document, read whole up to `max_document`, its lines numbered on from
/// `lines_before`.
pub(crate) fn read(
    name: &str,
    r: &mut dyn BufRead,
    lines_before: u64,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let Some(doc) = read_document(name, DocumentKind::Xml, Vec::new(), r, opts, summary) else {
        return;
    };
    let (text, lossy) = document_text(&doc);
    if lossy {
        // One bad byte costs that byte, not the document's every event.
        summary.lossy(
            SourceRef {
                path: name.to_owned(),
                position: Position::Line(lines_before + 1),
            },
            opts.keep_skips,
        );
    }
    decode_document(
        &text,
        lines_before + 1,
        name,
        Decoding::of(opts),
        &mut |source, result| summary.decoded(result, source, opts, on_event),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::{EventKind, FieldSet};

    const WEVTUTIL: &str = "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Sysmon' Guid='{5770385f-c22a-43e0-bf4c-06f5698ffbd9}'/><EventID>3</EventID><Version>5</Version><TimeCreated SystemTime='2026-11-20T09:14:08.1234567Z'/><EventRecordID>4242</EventRecordID><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>web01.corp.example</Computer></System><EventData><Data Name='Image'>C:\\Windows\\System32\\curl.exe</Data><Data Name='User'>CORP\\svc</Data><Data Name='Protocol'>tcp</Data><Data Name='Initiated'>true</Data><Data Name='DestinationIp'>169.254.169.254</Data><Data Name='DestinationPort'>80</Data></EventData></Event>\n";

    #[test]
    fn wevtutil_events_decode_with_their_lines() {
        let text = format!("{WEVTUTIL}{WEVTUTIL}");
        let mut got = Vec::new();
        decode_document(
            &text,
            1,
            "s.xml",
            Decoding {
                fields: &FieldSet::default(),
            },
            &mut |src, r| got.push((src, r)),
        );
        assert_eq!(got.len(), 2);
        let (src, r) = &got[1];
        assert_eq!(src.position, Position::Line(2));
        let e = r.as_ref().unwrap();
        assert_eq!(e.kind, EventKind::NetworkConnect);
        assert_eq!(e.host.as_deref(), Some("web01.corp.example"));
        assert_eq!(e.time.as_deref(), Some("2026-11-20T09:14:08.1234567Z"));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.dst_ip.as_deref(), Some("169.254.169.254"));
        assert_eq!(
            e.process.image.as_deref(),
            Some(r"C:\Windows\System32\curl.exe")
        );
    }

    #[test]
    fn event_viewer_utf16_documents_are_read() {
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Events>{}</Events>",
            WEVTUTIL.trim().replace('\'', "\"")
        );
        let mut bytes = vec![0xFF, 0xFE];
        for u in doc.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert!(sniff_start(&bytes[..16]));
        let (text, _) = document_text(&bytes);
        let mut got = Vec::new();
        decode_document(
            &text,
            1,
            "s.xml",
            Decoding {
                fields: &FieldSet::default(),
            },
            &mut |src, r| got.push((src, r)),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.position, Position::Line(2));
        assert!(got[0].1.is_ok());
    }

    #[test]
    fn a_cut_document_reports_the_unfinished_event() {
        let text = format!("{WEVTUTIL}{}", &WEVTUTIL[..200]);
        let mut got = Vec::new();
        decode_document(
            &text,
            1,
            "s.xml",
            Decoding {
                fields: &FieldSet::default(),
            },
            &mut |src, r| got.push((src, r)),
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].1.is_ok());
        let err = got[1].1.as_ref().unwrap_err();
        assert!(err.1.contains("cut"), "{err:?}");
        assert!(!sniff_start(b"{\"EventID\":1}"));
        assert!(!sniff_start(b"<EventData>"));
    }
}
