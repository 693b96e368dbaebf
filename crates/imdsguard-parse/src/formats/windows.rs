//! Windows events, whatever carried them: Sysmon 1, 3 and 22 and Security 4688 and 5156 become
//! typed events; every other id is kept as `Other` with what process detail it has.
//!
//! Every Windows JSON shape (evtx JSON, NXLog, Sentinel, Winlogbeat) reduces to: an event id, a
//! channel or provider, the EventData fields, and system fields; [`windows_event`] maps those.

use super::Decoding;
use std::borrow::Cow;

use imdsguard_event::{
    Clock, Event, EventKind, FieldSet, Format, Network, Process, SourceRef, Sym,
};

use crate::fields::{Fields, Scalar};

/// The parts of a Windows event every carrier provides.
pub(crate) struct WinRecord<'a> {
    pub event_id: u32,
    /// Channel or provider name (`Microsoft-Windows-Sysmon/Operational`, `Security`, ...).
    pub origin: String,
    pub data: &'a dyn Fields,
    /// The carrier's time field (`SystemTime`, `@timestamp`, `TimeGenerated`, NXLog's
    /// `EventTime`) as written; Sysmon's own `UtcTime` is preferred when the record has it.
    pub time: Option<String>,
    /// The clock of [`WinRecord::time`] when it writes no zone.
    pub clock: Clock,
    pub host: Option<String>,
    /// The provider (`Microsoft-Windows-Sysmon`, `Service Control Manager`), which Sigma reads as
    /// `Provider_Name`.
    /// Read only when fields are kept, so it borrows.
    pub provider: Option<Cow<'a, str>>,
    /// The record's `System` element, where the format has one: Sigma reads a few of its fields
    /// ([`SYSTEM_FIELDS`]) by name.
    pub system: Option<&'a dyn Fields>,
    /// The record's number where the carrier keeps it outside a `System` element (NXLog's
    /// `RecordNumber`, Winlogbeat's `winlog.record_id`, Sentinel's `EventRecordId`).
    pub record_id: Option<String>,
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

/// The Sysmon fields a Security record carries under other names or in another form, so that
/// Sigma's `network_connection` and `process_creation` rules, written for Sysmon 3 and 1, read
/// Security 5156 and 4688 as they read Sysmon (as Hayabusa's field mapping does). Only names a
/// rule interned are kept, and none the record has under the same name already. What has no
/// Security equivalent (5156: `User`, `CommandLine`, `ParentImage`, `DestinationHostname`,
/// `SourceHostname`; 4688: `OriginalFileName`, `Hashes`, `CurrentDirectory`, `ParentCommandLine`)
/// stays absent, and `docs/sigma-windows-security.md` lists it. `ParentImage`, `CommandLine`,
/// `User`, `DestinationIp`, `DestinationPort` come through the typed fields.
fn sysmon_equivalents(
    rec: &WinRecord<'_>,
    e: &Event,
    fields: &FieldSet,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if family(rec) != Family::Security {
        return out;
    }
    let wanted = |name: &str| fields.get(name).is_some() && rec.data.raw(name).is_none();
    let mut add = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|_| wanted(name)) {
            out.push((name, v));
        }
    };
    let ipv6 = |a: &Option<String>| a.as_ref().map(|a| a.contains(':').to_string());
    match rec.event_id {
        5156 => {
            let net = e.network.as_ref();
            add(
                "Initiated",
                net.and_then(|n| n.outbound).map(|o| o.to_string()),
            );
            add("SourceIp", net.and_then(|n| n.src_ip.clone()));
            add("SourceIsIpv6", net.and_then(|n| ipv6(&n.src_ip)));
            add("DestinationIsIpv6", net.and_then(|n| ipv6(&n.dst_ip)));
            add("ProcessId", e.process.pid.map(|p| p.to_string()));
            // 5156 names the volume (`\device\harddiskvolume2\windows\...`), Sysmon the drive:
            // rules compare `C:\Windows\...`, so the volume is read as the system drive, C:,
            // which it is on nearly every host (`Application` keeps it as written).
            add("Image", e.process.image.as_deref().map(drive_form));
        }
        4688 => {
            add("ParentProcessId", e.parent.pid.map(|p| p.to_string()));
            add(
                "IntegrityLevel",
                rec.data
                    .text(&["MandatoryLabel"])
                    .and_then(|l| integrity_level(&l).map(str::to_owned)),
            );
        }
        _ => {}
    }
    out
}

/// `\device\harddiskvolumeN\rest` as `C:\rest`; any other path as it is.
fn drive_form(path: &str) -> String {
    const DEVICE: &str = "\\device\\harddiskvolume";
    match path.get(..DEVICE.len()) {
        Some(p) if p.eq_ignore_ascii_case(DEVICE) => {
            let rest = &path[DEVICE.len()..];
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("C:{rest}")
        }
        _ => path.to_owned(),
    }
}

/// Sysmon's `IntegrityLevel` for a 4688 `MandatoryLabel` SID.
fn integrity_level(label: &str) -> Option<&'static str> {
    Some(match label.trim().to_ascii_uppercase().as_str() {
        "S-1-16-0" => "Untrusted",
        "S-1-16-4096" => "Low",
        "S-1-16-8192" => "Medium",
        "S-1-16-8448" => "MediumPlus",
        "S-1-16-12288" => "High",
        "S-1-16-16384" => "System",
        "S-1-16-20480" => "Protected",
        _ => return None,
    })
}

/// Copies a record's fields into the event under the names rules read; values of other names go
/// under [`Sym::ANY`] when keyword rules are loaded.
fn keep_fields(e: &mut Event, rec: &WinRecord<'_>, fields: &FieldSet) {
    let equivalents = sysmon_equivalents(rec, e, fields);
    // Room for a Sysmon record's fields at once, rather than growing by doubling (four
    // reallocations a record with keyword rules loaded).
    if fields.keywords() {
        e.fields.reserve(32);
    }
    let mut push = |name: &str, value: Scalar<'_>| {
        // Some providers name EventData fields with spaces (Defender's `Threat Name`); Sigma
        // writes them without (`ThreatName`).
        let spaced = || {
            name.contains(' ')
                .then(|| fields.get(&name.replace(' ', "")))
                .flatten()
        };
        let any = || fields.keywords().then_some(Sym::ANY);
        if let Some(s) = fields.get(name).or_else(spaced).or_else(any) {
            e.fields.push((s, value.text().into_owned()));
        }
    };
    push("EventID", Scalar::Text(&rec.event_id.to_string()));
    if !rec.origin.is_empty() {
        push("Channel", Scalar::Text(&rec.origin));
    }
    if let Some(h) = &rec.host {
        push("Computer", Scalar::Text(h));
    }
    if let Some(p) = &rec.provider {
        push("Provider_Name", Scalar::Text(p));
    }
    let sec5156 = rec.event_id == 5156 && family(rec) == Family::Security;
    rec.data.each(&mut |name, value| {
        // Security 5156 writes the protocol's number where Sysmon writes its name: both are kept,
        // side by side, so a rule of either kind reads its own.
        let named = (sec5156 && name == "Protocol")
            .then(|| {
                let number = value.text();
                let n = protocol_name(number.trim().to_owned());
                (n.as_str() != number.trim()).then_some(n)
            })
            .flatten();
        push(name, value);
        if let Some(n) = named {
            push("Protocol", Scalar::Text(&n));
        }
    });
    for (name, value) in equivalents {
        push(name, Scalar::Text(&value));
    }
    // Only under names a rule reads: not searched by keywords (a record number or a level is no
    // text of the event), and not read at all when no rule asks.
    if let Some(system) = rec.system {
        for name in SYSTEM_FIELDS {
            if let Some(s) = fields.get(name) {
                if let Some(v) = system.raw(name) {
                    e.fields.push((s, v.into_owned()));
                }
            }
        }
    }
}

/// Maps one Windows event to the typed model.
pub(crate) fn windows_event(
    source: SourceRef,
    format: Format,
    rec: &WinRecord<'_>,
    how: Decoding<'_>,
) -> Event {
    let d = rec.data;
    // Sysmon writes when the event happened in UTC (`UtcTime`): the most reliable time there is.
    let (time, clock) = match family(rec) {
        Family::Sysmon => d.text(&["UtcTime"]).map(|t| (Some(t), Clock::Utc)),
        _ => None,
    }
    .unwrap_or_else(|| (rec.time.clone(), rec.clock));
    let mut e = Event {
        channel: (!rec.origin.is_empty()).then(|| rec.origin.clone()),
        native_id: Some(rec.event_id.to_string()),
        record_id: rec
            .record_id
            .clone()
            .or_else(|| rec.system.and_then(|s| s.text(&["EventRecordID"]))),
        time,
        clock,
        host: rec.host.clone(),
        ..Event::empty(source, format, EventKind::Other)
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
    if !how.fields.is_empty() {
        keep_fields(&mut e, rec, how.fields);
    }
    e
}
