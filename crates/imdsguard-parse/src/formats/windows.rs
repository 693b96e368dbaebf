//! Windows events, whatever carried them: Sysmon 1, 3 and 22 and Security 4688 and 5156 become
//! typed events; every other id is kept as `Other` with what process detail it has.
//!
//! Every Windows JSON shape (evtx JSON, NXLog, Sentinel, Winlogbeat) reduces to: an event id, a
//! channel or provider, the EventData fields, and system fields; [`windows_event`] maps those.

use std::borrow::Cow;
use std::cell::Cell;

use imdsguard_event::{Event, EventKind, Format, Network, Process, SourceRef, Sym};

use crate::fields::Fields;

/// The parts of a Windows event every carrier provides.
pub(crate) struct WinRecord<'a> {
    pub event_id: u32,
    /// Channel or provider name (`Microsoft-Windows-Sysmon/Operational`, `Security`, ...).
    pub origin: String,
    pub data: &'a dyn Fields,
    pub time: Option<String>,
    pub host: Option<String>,
    /// The provider (`Microsoft-Windows-Sysmon`, `Service Control Manager`), which Sigma reads as
    /// `Provider_Name`.
    /// Read only when fields are kept, so it borrows.
    pub provider: Option<Cow<'a, str>>,
    /// The record's `System` element, where the format has one: Sigma reads a few of its fields
    /// ([`SYSTEM_FIELDS`]) by name.
    pub system: Option<&'a dyn Fields>,
}

/// `System` fields Sigma rules test besides `EventID`, `Channel`, `Computer` and `Provider_Name`
/// (SigmaHQ: `Level: 2`, `Keywords: '0x8010000000000000'`).
pub(crate) const SYSTEM_FIELDS: [&str; 6] = [
    "Level",
    "Keywords",
    "Task",
    "Opcode",
    "Version",
    "EventRecordID",
];

#[derive(PartialEq, Eq)]
enum Family {
    Sysmon,
    Security,
    Other,
}

fn family(rec: &WinRecord<'_>) -> Family {
    let o = rec.origin.to_ascii_lowercase();
    if o.contains("sysmon") {
        return Family::Sysmon;
    }
    if o.contains("security") {
        return Family::Security;
    }
    // Carriers that drop the channel: tell by the fields each family writes.
    match rec.event_id {
        1 | 3 | 22 if rec.data.text(&["Image"]).is_some() => Family::Sysmon,
        4688 if rec.data.text(&["NewProcessName"]).is_some() => Family::Security,
        5156 if rec.data.text(&["Application"]).is_some() => Family::Security,
        _ => Family::Other,
    }
}

fn user(d: &dyn Fields, domain: &str, name: &str) -> Option<String> {
    let n = d.text(&[name])?;
    Some(match d.text(&[domain]) {
        Some(dom) => format!("{dom}\\{n}"),
        None => n,
    })
}

fn protocol_name(p: String) -> String {
    match p.as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        _ => p.to_ascii_lowercase(),
    }
}

thread_local! {
    /// Whether decoders on this thread keep records' own fields ([`crate::ReadOptions::keep_fields`]);
    /// set by the reader before it hands records to the decoders.
    static KEEP_FIELDS: Cell<bool> = const { Cell::new(false) };
}

/// Sets whether Windows records decoded on this thread keep their own fields.
pub(crate) fn set_keep_fields(keep: bool) {
    KEEP_FIELDS.with(|k| k.set(keep));
}

/// Copies a record's fields into the event under the names rules interned; values of other
/// names go under [`Event::ANY_FIELD`] when a keyword rule interned it.
fn keep_fields(e: &mut Event, rec: &WinRecord<'_>) {
    let any = Sym::lookup(Event::ANY_FIELD);
    let mut push = |name: &str, value: Cow<'_, str>| {
        // Some providers name EventData fields with spaces (Defender's `Threat Name`); Sigma
        // writes them without (`ThreatName`).
        let spaced = || {
            name.contains(' ')
                .then(|| Sym::lookup(&name.replace(' ', "")))
                .flatten()
        };
        if let Some(s) = Sym::lookup(name).or_else(spaced).or(any) {
            e.fields.push((s, value.into_owned()));
        }
    };
    push("EventID", Cow::Owned(rec.event_id.to_string()));
    if !rec.origin.is_empty() {
        push("Channel", Cow::Borrowed(&rec.origin));
    }
    if let Some(h) = &rec.host {
        push("Computer", Cow::Borrowed(h));
    }
    if let Some(p) = &rec.provider {
        push("Provider_Name", Cow::Borrowed(p));
    }
    rec.data.each(&mut push);
    // Only under names a rule reads: not searched by keywords (a record number or a level is no
    // text of the event), and not read at all when no rule asks.
    if let Some(system) = rec.system {
        for name in SYSTEM_FIELDS {
            if let Some(s) = Sym::lookup(name) {
                if let Some(v) = system.raw(name) {
                    e.fields.push((s, v.into_owned()));
                }
            }
        }
    }
}

/// Maps one Windows event to the typed model.
pub(crate) fn windows_event(source: SourceRef, format: Format, rec: &WinRecord<'_>) -> Event {
    let d = rec.data;
    let mut e = Event {
        source,
        format,
        kind: EventKind::Other,
        native_id: Some(rec.event_id.to_string()),
        time: rec.time.clone(),
        host: rec.host.clone(),
        process: Process::default(),
        parent: Process::default(),
        network: None,
        dns_query: None,
        container: None,
        fields: Vec::new(),
    };
    match (family(rec), rec.event_id) {
        (Family::Sysmon, 1) => {
            e.kind = EventKind::ProcessStart;
            e.process = Process {
                pid: d.number(&["ProcessId"]),
                image: d.text(&["Image"]),
                command_line: d.text(&["CommandLine"]),
                user: d.text(&["User"]),
                hashes: d.text(&["Hashes"]),
                comm: None,
            };
            e.parent = Process {
                pid: d.number(&["ParentProcessId"]),
                image: d.text(&["ParentImage"]),
                command_line: d.text(&["ParentCommandLine"]),
                user: d.text(&["ParentUser"]),
                hashes: None,
                comm: None,
            };
        }
        (Family::Sysmon, 3) => {
            e.kind = EventKind::NetworkConnect;
            e.process = Process {
                pid: d.number(&["ProcessId", "ProcessID"]),
                image: d.text(&["Image"]),
                user: d.text(&["User"]),
                ..Process::default()
            };
            e.network = Some(Network {
                protocol: d.text(&["Protocol"]).map(protocol_name),
                src_ip: d.text(&["SourceIp"]),
                src_port: d.port(&["SourcePort"]),
                dst_ip: d.text(&["DestinationIp"]),
                dst_port: d.port(&["DestinationPort"]),
                dst_host: d.text(&["DestinationHostname"]),
                url: None,
                outbound: d
                    .text(&["Initiated"])
                    .map(|v| v.eq_ignore_ascii_case("true")),
            });
        }
        (Family::Sysmon, 22) => {
            e.kind = EventKind::DnsQuery;
            e.process = Process {
                pid: d.number(&["ProcessId"]),
                image: d.text(&["Image"]),
                user: d.text(&["User"]),
                ..Process::default()
            };
            e.dns_query = d.text(&["QueryName"]);
        }
        (Family::Security, 4688) => {
            e.kind = EventKind::ProcessStart;
            e.process = Process {
                pid: d.number(&["NewProcessId"]),
                image: d.text(&["NewProcessName"]),
                command_line: d.text(&["CommandLine"]),
                user: user(d, "TargetDomainName", "TargetUserName")
                    .or_else(|| user(d, "SubjectDomainName", "SubjectUserName")),
                hashes: None,
                comm: None,
            };
            e.parent = Process {
                pid: d.number(&["ProcessId"]),
                image: d.text(&["ParentProcessName"]),
                ..Process::default()
            };
        }
        (Family::Security, 5156) => {
            e.kind = EventKind::NetworkConnect;
            e.process = Process {
                pid: d.number(&["ProcessID", "ProcessId"]),
                image: d.text(&["Application"]),
                ..Process::default()
            };
            e.network = Some(Network {
                protocol: d.text(&["Protocol"]).map(protocol_name),
                src_ip: d.text(&["SourceAddress"]),
                src_port: d.port(&["SourcePort"]),
                dst_ip: d.text(&["DestAddress"]),
                dst_port: d.port(&["DestPort"]),
                dst_host: None,
                url: None,
                outbound: d.text(&["Direction"]).and_then(|v| match v.as_str() {
                    "%%14593" | "Outbound" => Some(true),
                    "%%14592" | "Inbound" => Some(false),
                    _ => None,
                }),
            });
        }
        _ => {
            e.process = Process {
                pid: d.number(&["ProcessId", "ProcessID", "NewProcessId"]),
                image: d.text(&["Image", "NewProcessName", "Application", "ProcessName"]),
                command_line: d.text(&["CommandLine"]),
                user: d.text(&["User"]),
                hashes: None,
                comm: None,
            };
        }
    }
    if KEEP_FIELDS.with(Cell::get) {
        keep_fields(&mut e, rec);
    }
    e
}
