//! Microsoft Defender XDR advanced hunting: what its three carriers (`defender_json.rs`,
//! `defender_streaming.rs`, `defender_csv.rs`) share — one row of `DeviceProcessEvents`,
//! `DeviceNetworkEvents` or `DeviceEvents` into the typed event. Column names are the ones the
//! KQL hunting queries for T1552.005 use.

use crate::json::{Map, Value};
use imdsguard_event::{Event, EventKind, Format, Network, Process, SourceRef};

use super::{missing, Skip};
use crate::fields::Fields;

/// `FolderPath` usually holds the whole path; older rows hold the folder only.
fn image(d: &dyn Fields, folder: &str, file: &str) -> Option<String> {
    let folder = d.text(&[folder]);
    let file = d.text(&[file]);
    match (folder, file) {
        (Some(dir), Some(name))
            if dir
                .to_ascii_lowercase()
                .ends_with(&name.to_ascii_lowercase()) =>
        {
            Some(dir)
        }
        (Some(dir), Some(name)) => Some(format!("{}\\{}", dir.trim_end_matches(['\\', '/']), name)),
        (Some(dir), None) => Some(dir),
        (None, name) => name,
    }
}

fn account(d: &dyn Fields, domain: &str, name: &str) -> Option<String> {
    let n = d.text(&[name])?;
    Some(match d.text(&[domain]) {
        Some(dom) => format!("{dom}\\{n}"),
        None => n,
    })
}

fn initiating(d: &dyn Fields) -> Process {
    Process {
        pid: d.number(&["InitiatingProcessId"]),
        image: image(
            d,
            "InitiatingProcessFolderPath",
            "InitiatingProcessFileName",
        ),
        command_line: d.text(&["InitiatingProcessCommandLine"]),
        user: account(
            d,
            "InitiatingProcessAccountDomain",
            "InitiatingProcessAccountName",
        ),
        hashes: d.text(&["InitiatingProcessSHA256", "InitiatingProcessSHA1"]),
        comm: None,
    }
}

pub(crate) fn row_event(
    d: &Map<'_>,
    source: SourceRef,
    format: Format,
    table: Option<&str>,
) -> Result<Event, Skip> {
    let action = d
        .text(&["ActionType"])
        .ok_or_else(|| missing("ActionType"))?;
    let mut e = Event {
        native_id: Some(action.clone()),
        record_id: d.text(&["ReportId"]),
        time: d.text(&["Timestamp"]),
        host: d.text(&["DeviceName"]),
        process: initiating(d),
        parent: Process {
            pid: d.number(&["InitiatingProcessParentId"]),
            image: d.text(&["InitiatingProcessParentFileName"]),
            ..Process::default()
        },
        ..Event::empty(source, format, EventKind::Other)
    };
    let is_process = action == "ProcessCreated"
        || table == Some("DeviceProcessEvents")
        || (d.text(&["ProcessCommandLine"]).is_some()
            && table.is_none()
            && d.text(&["RemoteIP"]).is_none());
    let is_network = table == Some("DeviceNetworkEvents")
        || d.text(&["RemoteIP", "RemoteUrl"]).is_some()
        || action.starts_with("Connection")
        || action == "InboundConnectionAccepted";
    if is_process {
        e.kind = EventKind::ProcessStart;
        e.parent = e.process;
        e.process = Process {
            pid: d.number(&["ProcessId"]),
            image: image(d, "FolderPath", "FileName"),
            command_line: d.text(&["ProcessCommandLine"]),
            user: account(d, "AccountDomain", "AccountName"),
            hashes: d.text(&["SHA256", "SHA1"]),
            comm: None,
        };
    } else if is_network {
        e.kind = EventKind::NetworkConnect;
        e.network = Some(Network {
            protocol: d.text(&["Protocol"]).map(|p| p.to_ascii_lowercase()),
            src_ip: d.text(&["LocalIP"]),
            src_port: d.port(&["LocalPort"]),
            dst_ip: d.text(&["RemoteIP"]),
            dst_port: d.port(&["RemotePort"]),
            dst_host: None,
            url: d.text(&["RemoteUrl"]),
            outbound: Some(
                action != "InboundConnectionAccepted" && action != "ListeningConnectionCreated",
            ),
        });
    } else if action == "DnsQueryResponse" {
        e.kind = EventKind::DnsQuery;
        let extra_text = d.text(&["AdditionalFields"]);
        let extra: Option<Value<'_>> = extra_text
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok());
        e.dns_query = extra
            .as_ref()
            .and_then(Value::as_object)
            .and_then(|m| m.text(&["DnsQueryString", "QueryName"]));
    }
    Ok(e)
}
