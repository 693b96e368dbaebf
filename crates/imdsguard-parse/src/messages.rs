//! Records that come one message at a time from a log bus (a NATS stream), each cited by the
//! message's sequence number.
//!
//! One stream carries every log of a host, and several hosts: a Sysmon JSON line may be followed
//! by an audit record and an access-log line. A file is read in the reading its first record
//! chooses; here consecutive messages are read together only while they are of one reading
//! (JSON records; or the lines of one line format, such as the several lines of one audit event,
//! or the data lines after a Zeek or W3C header), and a message of another reading starts the
//! next run. A message holding an array of records (CloudTrail's `Records`, a JSON array) is a
//! document of its own.
//!
//! A Fluent Bit batch — its NATS output publishes `[[time, {record}], …]`, one message per flush
//! — is opened: each element is a record, read from its `log` key (the line as Fluent Bit's
//! `tail` input read it) or, without one, as the map itself; the records are cited as elements
//! of the message (`Position::Element { line: sequence, index }`), so each has a place of its own
//! and a batch delivered again gives the same positions.

use imdsguard_event::{Event, Format, Position, SourceRef};

use crate::formats;
use crate::{read_stream, ReadOptions, Summary};

/// A message from the bus: its sequence number in the stream and its payload (one record, or a
/// Fluent Bit batch; a trailing line break is ignored).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The stream's sequence number.
    pub seq: u64,
    /// What was published.
    pub payload: &'a [u8],
}

/// How a message is read with the ones beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A JSON record: read with the JSON records beside it.
    Json,
    /// The first line of a line format (named by the first of the formats its reading reads).
    Line(Format),
    /// A line of the user's access-log layout (`--log-format`).
    Layout,
    /// A line no reading starts with: read in the run it follows (a Zeek data line after its
    /// header), or on its own.
    Continues,
    /// A document of its own (an array of records, Windows event XML).
    Alone,
    /// A JSON array: a Fluent Bit batch, or else a document of its own.
    Array,
}

fn kind(payload: &[u8], opts: &ReadOptions) -> Kind {
    let start = payload.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Kind::Continues;
    };
    match payload[start] {
        b'{' if crate::json_reader::records_array(payload, start).is_some() => Kind::Alone,
        b'{' => Kind::Json,
        b'[' => Kind::Array,
        // Windows event XML (forwarded events): a document of its own.
        b'<' if formats::windows_xml::sniff_start(&payload[start..]) => Kind::Alone,
        _ if formats::follows_layout(payload, opts) => Kind::Layout,
        _ => match formats::line_reader(payload, opts.format) {
            Some(r) => Kind::Line(r.formats[0]),
            None => Kind::Continues,
        },
    }
}

/// A Fluent Bit batch's records: for each element `[time, {map}]`, its `log` string, or the map
/// without the `tag` Fluent Bit adds, as JSON. `None` when the payload is not such a batch.
fn batch(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let elements = v.as_array()?;
    if elements.is_empty() {
        return None;
    }
    let mut records = Vec::with_capacity(elements.len());
    for e in elements {
        let [time, map] = e.as_array()?.as_slice() else {
            return None;
        };
        if !time.is_number() {
            return None;
        }
        let map = map.as_object()?;
        match map.get("log").and_then(|l| l.as_str()) {
            Some(line) => records.push(line.as_bytes().to_vec()),
            None => {
                let mut m = map.clone();
                m.remove("tag");
                records.push(serde_json::to_vec(&m).ok()?);
            }
        }
    }
    Some(records)
}

/// Reads the messages (in stream order) as records of the stream `name`, each cited by its
/// sequence number (its line), a Fluent Bit batch's records by the sequence and their index.
pub fn read_messages(
    name: &str,
    messages: &[Message<'_>],
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let mut run: Vec<u8> = Vec::new();
    // The run's reading, the sequence before its first message and its last.
    let mut current: Option<(Kind, u64, u64)> = None;
    let flush = |run: &mut Vec<u8>,
                 current: &mut Option<(Kind, u64, u64)>,
                 summary: &mut Summary,
                 on_event: &mut dyn FnMut(Event)| {
        if let Some((_, before, _)) = current.take() {
            read_stream(
                name,
                Box::new(&run[..]),
                before,
                opts,
                summary,
                on_event,
                None,
            );
            run.clear();
        }
    };
    for m in messages {
        let k = kind(m.payload, opts);
        let joins = current.is_some_and(|(ck, _, last)| {
            last + 1 == m.seq
                && match (ck, k) {
                    (Kind::Alone | Kind::Array, _) => false,
                    (_, Kind::Continues) => true,
                    (a, b) => a == b,
                }
        });
        if !joins {
            flush(&mut run, &mut current, summary, on_event);
        }
        // A batch is opened; any other array is a document of its own.
        let k = match k {
            Kind::Array => match batch(m.payload) {
                Some(records) => {
                    read_batch(name, m, &records, opts, summary, on_event);
                    continue;
                }
                None => Kind::Alone,
            },
            k => k,
        };
        one_line(m.payload, &mut run);
        match &mut current {
            Some((_, _, last)) => *last = m.seq,
            None => current = Some((k, m.seq.saturating_sub(1), m.seq)),
        }
    }
    flush(&mut run, &mut current, summary, on_event);
}

/// A Fluent Bit batch's records, read as messages of their own and cited as elements of it.
fn read_batch(
    name: &str,
    m: &Message<'_>,
    records: &[Vec<u8>],
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let inner: Vec<Message<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Message {
            seq: i as u64 + 1,
            payload: r,
        })
        .collect();
    let element = |p: &mut Position| {
        if let Position::Line(n) = *p {
            *p = Position::Element {
                line: m.seq,
                index: n.saturating_sub(1),
            };
        }
    };
    let mut found = Summary::default();
    read_messages(name, &inner, opts, &mut found, &mut |mut e| {
        element(&mut e.source.position);
        on_event(e)
    });
    let mut at = |s: &mut SourceRef| element(&mut s.position);
    found.first_skips.iter_mut().for_each(|s| at(&mut s.source));
    found.first_lossy.iter_mut().for_each(&mut at);
    found
        .first_unreadable_times
        .iter_mut()
        .for_each(|(s, _)| at(s));
    summary.merge(found, opts.keep_skips);
}

/// A message as one line: its line break dropped, any inside it made a space.
fn one_line(payload: &[u8], out: &mut Vec<u8>) {
    let body = payload.strip_suffix(b"\n").unwrap_or(payload);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    out.extend(
        body.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        let p = format!("{}/../../samples/logs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// What a file read alone gives: each event's format, position and time.
    fn alone(name: &str) -> Vec<(Format, Position, Option<String>)> {
        let mut out = Vec::new();
        crate::read_reader_at(
            name,
            &mut sample(name).as_bytes(),
            0,
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| out.push((e.format, e.source.position, e.time)),
        );
        out
    }

    fn read(messages: &[(u64, &[u8])]) -> (Vec<Event>, Summary) {
        let messages: Vec<Message<'_>> = messages
            .iter()
            .map(|&(seq, payload)| Message { seq, payload })
            .collect();
        let mut events = Vec::new();
        let mut summary = Summary::default();
        read_messages(
            "nats:S",
            &messages,
            &ReadOptions::default(),
            &mut summary,
            &mut |e| events.push(e),
        );
        (events, summary)
    }

    /// One host's Sysmon JSON, audit log, access log and IIS log (with its `#Fields` header) on
    /// one stream, one line a message: every record read as its file alone reads it, cited by its
    /// message's sequence number (the stream's numbers may skip).
    #[test]
    fn a_streams_formats_are_each_read_in_their_own_reading() {
        let files = [
            "winlogbeat.ndjson",
            "linux-audit.log",
            "nginx-access.log",
            "iis-w3c.log",
        ];
        let texts: Vec<String> = files.iter().map(|f| sample(f)).collect();
        let mut messages = Vec::new();
        let mut want = Vec::new();
        let mut seq = 100;
        for (f, text) in files.iter().zip(&texts) {
            // A gap between files: other hosts' messages in between.
            seq += 7;
            let first = seq;
            for line in text.lines() {
                messages.push((seq, line.as_bytes()));
                seq += 1;
            }
            want.extend(alone(f).into_iter().map(|(format, p, t)| {
                let Position::Line(n) = p else {
                    panic!("{p:?}")
                };
                (format, Position::Line(first + n - 1), t)
            }));
        }
        let (events, summary) = read(&messages);
        assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
        let got: Vec<_> = events
            .into_iter()
            .map(|e| (e.format, e.source.position, e.time))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            summary.events.keys().copied().collect::<Vec<_>>().len(),
            4,
            "{:?}",
            summary.events
        );
    }

    /// Fluent Bit's NATS output: `[[time, {"tag": …, "log": line}], …]` from its `tail` input,
    /// or the parsed record itself as the map. Each record is cited as an element of its message,
    /// the same on every delivery; a record that is no log is skipped with its place.
    #[test]
    fn a_fluent_bit_batch_is_read_record_by_record() {
        let audit = sample("linux-audit.log");
        let nginx = sample("nginx-access.log");
        let tail = |lines: &[&str]| {
            let elements: Vec<serde_json::Value> = lines
                .iter()
                .map(|l| serde_json::json!([1_763_630_000.25, {"tag": "imdsguard.logs.web01", "log": l}]))
                .collect();
            serde_json::to_vec(&elements).unwrap()
        };
        let mixed: Vec<&str> = audit
            .lines()
            .chain(nginx.lines())
            .chain(["not a log record"])
            .collect();
        let one = tail(&mixed);
        // A record parsed by Fluent Bit (its JSON parser): the map is the record.
        let sysmon: serde_json::Value =
            serde_json::from_str(sample("winlogbeat.ndjson").lines().next().unwrap()).unwrap();
        let mut map = sysmon.as_object().unwrap().clone();
        map.insert("tag".into(), "imdsguard.logs.web01".into());
        let two = serde_json::to_vec(&serde_json::json!([[1_763_630_001, map]])).unwrap();

        let (events, summary) = read(&[(41, &one), (42, &two)]);
        let mut want: Vec<(Format, Position, Option<String>)> = Vec::new();
        let offset = audit.lines().count() as u64;
        for (f, skip) in [("linux-audit.log", 0), ("nginx-access.log", offset)] {
            want.extend(alone(f).into_iter().map(|(format, p, t)| {
                (
                    format,
                    Position::Element {
                        line: 41,
                        index: p.number() - 1 + skip,
                    },
                    t,
                )
            }));
        }
        let (format, _, t) = alone("winlogbeat.ndjson").remove(0);
        want.push((format, Position::Element { line: 42, index: 0 }, t));
        let got: Vec<_> = events
            .into_iter()
            .map(|e| (e.format, e.source.position, e.time))
            .collect();
        assert_eq!(got, want);
        assert_eq!(summary.total_skipped(), 1);
        assert_eq!(
            summary.first_skips[0].source.to_string(),
            format!("nats:S:41 [{}]", mixed.len() - 1)
        );
    }

    /// Windows event XML forwarded one event a message, between JSON records: each event read
    /// as a document of its own and cited by its message's number.
    #[test]
    fn a_windows_event_in_xml_is_a_message_of_its_own() {
        let xml = sample("sysmon-wevtutil.xml");
        let events: Vec<&str> = xml.lines().filter(|l| l.starts_with("<Event ")).collect();
        assert!(events.len() >= 2);
        let json = sample("winlogbeat.ndjson");
        let json = json.lines().next().unwrap();
        let (got, summary) = read(&[
            (3, json.as_bytes()),
            (4, events[0].as_bytes()),
            (5, events[1].as_bytes()),
            (6, json.as_bytes()),
        ]);
        assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
        let at: Vec<(Format, u64)> = got
            .iter()
            .map(|e| (e.format, e.source.position.number()))
            .collect();
        let j = got[0].format;
        assert_eq!(
            at,
            [
                (j, 3),
                (Format::WindowsXml, 4),
                (Format::WindowsXml, 5),
                (j, 6)
            ]
        );
    }

    /// Arrays that are not Fluent Bit batches are documents of their own, read as such (an array
    /// of records that are none is skipped with its sequence number).
    #[test]
    fn other_arrays_are_documents() {
        assert!(batch(br#"[[1, {"log": "x"}]]"#).is_some());
        for not in [
            &br#"[]"#[..],
            br#"[[1, 2]]"#,
            br#"[["t", {}]]"#,
            br#"[{"a": 1}]"#,
        ] {
            assert!(batch(not).is_none(), "{not:?}");
        }
        let (events, summary) = read(&[(5, br#"[{"a": 1}]"#)]);
        assert!(events.is_empty());
        assert_eq!(summary.total_skipped(), 1);
        assert_eq!(summary.first_skips[0].source.position, Position::Line(5));
    }
}
