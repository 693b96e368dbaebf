//! Microsoft Sentinel `Syslog` rows from Linux machines: the message of Sysmon for Linux is the
//! Windows event XML (`<Event><System>...<EventData>`), mapped like Windows Sysmon since the field
//! names are the same; the message of auoms (the Azure Monitor audit agent) is audit-style
//! `key=value` pairs, `AUOMS_EXECVE` becoming a process start. Other rows are kept as `other`.

use crate::json::{Map, Value};
use imdsguard_event::{Event, EventKind, Format, Process, SourceRef};

use super::auditd::pairs;
use super::windows::{windows_event, WinRecord};
use super::{missing, Decoding, JsonDecoder, Skip};
use crate::fields::{xml_event_data, Fields, Layered};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::SentinelSyslog,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("Type").and_then(Value::as_str) == Some("Syslog")
        || (v.contains_key("SyslogMessage") && v.contains_key("Facility"))
}

/// The text of `<Tag>text</Tag>` in an XML string.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find("</")? + start;
    Some(&xml[start..end])
}

/// The value of `attr="..."` in an XML string.
fn attribute<'a>(xml: &'a str, attr: &str) -> Option<&'a str> {
    let key = format!("{attr}=\"");
    let start = xml.find(&key)? + key.len();
    let end = xml[start..].find('"')? + start;
    Some(&xml[start..end])
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let message = v
        .text(&["SyslogMessage"])
        .ok_or_else(|| missing("SyslogMessage"))?;
    let host = v.text(&["Computer", "HostName"]);
    let time = v.text(&["TimeGenerated", "EventTime"]);
    if message.starts_with("<Event") {
        let id = element(&message, "EventID")
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| missing("EventID in the Sysmon XML"))?;
        let data = Layered {
            pairs: xml_event_data(&message),
            fallback: None,
        };
        let rec = WinRecord {
            event_id: id,
            origin: attribute(&message, "Provider Name")
                .unwrap_or("Linux-Sysmon")
                .to_owned(),
            data: &data,
            time: attribute(&message, "SystemTime")
                .map(str::to_owned)
                .or(time),
            clock: imdsguard_event::Clock::Utc,
            host: element(&message, "Computer").map(str::to_owned).or(host),
            provider: attribute(&message, "Provider Name").map(std::borrow::Cow::Borrowed),
            system: None,
            record_id: element(&message, "EventRecordID").map(str::to_owned),
        };
        return Ok(windows_event(source, Format::SentinelSyslog, &rec, how));
    }
    let auoms_type = v.text(&["EventType"]).or_else(|| {
        message
            .strip_prefix("type=")
            .and_then(|m| m.split(' ').next())
            .map(str::to_owned)
    });
    let mut e = Event {
        native_id: auoms_type.clone().or_else(|| v.text(&["ProcessName"])),
        time,
        host,
        ..Event::empty(source, Format::SentinelSyslog, EventKind::Other)
    };
    if auoms_type.as_deref() == Some("AUOMS_EXECVE") {
        let body = v.text(&["EventData"]).unwrap_or_else(|| {
            message
                .split_once("): ")
                .map_or(message.clone(), |(_, b)| b.to_owned())
        });
        let fields = pairs(&body);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, val)| val.text.clone())
                .filter(|t| !t.is_empty())
        };
        // proctitle is written unquoted with its spaces, up to the next known key.
        let proctitle = body.split_once("proctitle=").map(|(_, rest)| {
            let end = [" redactors=", " containerid=", " file="]
                .iter()
                .filter_map(|k| rest.find(k))
                .min()
                .unwrap_or(rest.len());
            rest[..end].trim().to_owned()
        });
        e.process = Process {
            pid: get("pid").and_then(|p| p.parse().ok()),
            image: get("exe"),
            command_line: proctitle.filter(|p| !p.is_empty()),
            user: get("user"),
            hashes: None,
            comm: None,
        };
        e.parent = Process {
            pid: get("ppid").and_then(|p| p.parse().ok()),
            ..Process::default()
        };
        // A failed execve started nothing; it stays an attempt (`other`), with what it tried.
        if get("success").as_deref() == Some("yes") {
            e.kind = EventKind::ProcessStart;
        } else if let Some(target) = get("name") {
            e.native_id = Some(format!("AUOMS_EXECVE failed: {target}"));
        }
    }
    Ok(e)
}
