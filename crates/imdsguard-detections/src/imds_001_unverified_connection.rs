//! **IMDS-001 — Metadata service reached by a process that is not a verified cloud agent.**
//!
//! *What.* A network connection or DNS query whose destination is a metadata endpoint (any
//! provider, any address the catalog knows: `169.254.169.254`, `fd00:ec2::254`,
//! `metadata.google.internal`, `100.100.100.200`, `169.254.170.2`, Azure Arc's local port ...),
//! made by a process the allowlist does not verify. Pattern 1 of the KQL hunting query for T1552.005; the "common tools" of the
//! Suspicious IMDS API Request detection.
//!
//! *Why.* Outside the cloud agents, few programs need the metadata service; a shell, a scripting
//! engine or an unknown binary reaching it is how credential theft starts (discovery, then
//! credential access). A record with a credential path (Defender `RemoteUrl`) ranks higher.
//!
//! *Not here.* More specific detections take the cases they describe: a masquerading agent
//! (IMDS-007), a web server (IMDS-006), a container (IMDS-008), a binary in an unusual location
//! (IMDS-003). Web-server access logs (`http-request` events) are left to the web-log detections.
//!
//! *False positives.* Applications built on the cloud SDKs (they read credentials through the
//! service by design), configuration-management tools, and agents installed in places the
//! built-in allowlist does not know: allow them by path with `--allowlist`.
//!
//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API), T1580 (Cloud Infrastructure Discovery).

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        has_target(),
        on(Field::EventKind).any_of(&["network-connect", "dns-query"]),
        on(Field::TargetSource).any_of(&["destination", "url", "dns"]),
        not_agent(),
        !masquerade(),
        !web_caller(),
        !in_container(),
        !unusual_location(),
    ]);
    let b = Rule::documented(include_str!("imds_001_unverified_connection.rs"), Severity::Medium, when)
    .attack("T1552.005")
    .attack("T1580")
    .reason_if(
        Expr::All(vec![on(Field::EventKind).is("network-connect"), on(Field::ProcessName).exists()]),
        "{process.name} connected to the metadata service at {target.endpoint}.",
    )
    .reason_if(
        Expr::All(vec![on(Field::EventKind).is("dns-query"), on(Field::ProcessName).exists()]),
        "{process.name} looked up the metadata service's name ({dns.query}).",
    )
    .reason_if(
        Expr::All(vec![on(Field::EventKind).is("network-connect"), !on(Field::ProcessName).exists()]),
        "A connection to the metadata service at {target.endpoint} was made by a process the record does not name.",
    )
    .reason_if(
        Expr::All(vec![on(Field::EventKind).is("dns-query"), !on(Field::ProcessName).exists()]),
        "The metadata service's name ({dns.query}) was looked up.",
    )
    .reason_if(
        Expr::All(vec![!on(Field::ProcessName).exists(), on(Field::SrcIp).exists()]),
        "The request came from {network.src_ip}: host telemetry there names the program.",
    )
    .reason("{process.verdict_reason}.");
    let b = standard_reasons(b).escalate(
        credentials(),
        Severity::High,
        "The requested path hands out credentials, which ranks above a plain metadata read.",
    );
    finish(b)
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"pid":10,"executable":"/usr/bin/curl","command_line":"curl -s http://169.254.169.254/latest/meta-data/"},"destination":{"ip":"169.254.169.254","port":80},"network":{"direction":"egress"}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["dns"]},"host":{"name":"gce1"},"process":{"executable":"/usr/bin/python3","command_line":"python3 /home/u/x.py"},"dns":{"question":{"name":"metadata.google.internal"}}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"w1"},"process":{"executable":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"},"destination":{"ip":"fd00:ec2::254","port":80}}"#,
    // Sysmon 22 as NXLog writes it: a query for GCE's short name, which the VM's search domain
    // resolves to the metadata server. A DNS query name is a host: one label is enough.
    r#"{"EventID":22,"Hostname":"gce-web-1","Channel":"Microsoft-Windows-Sysmon/Operational","SourceName":"Microsoft-Windows-Sysmon","UtcTime":"2026-11-20 10:00:00.120","ProcessGuid":"{39e4a257-0000-0000-0000-000000000900}","ProcessId":"4400","QueryName":"metadata","QueryStatus":"0","QueryResults":"::ffff:169.254.169.254;","Image":"C:\\Python311\\python.exe","EventTime":"2026-11-20 10:00:00"}"#,
    // Security 5156 as NXLog writes it: PowerShell reaching the service (as in the OTRF data).
    r#"{"EventID":5156,"Hostname":"WORKSTATION5","Channel":"Security","Application":"\\device\\harddiskvolume2\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe","ProcessID":"4321","Direction":"%%14593","SourceAddress":"10.0.0.4","SourcePort":"50000","DestAddress":"169.254.169.254","DestPort":"80","Protocol":"6","EventTime":"2020-10-22 10:00:00"}"#,
    // A lookup a network monitor saw (Zeek dns.log): no process, the asking address instead.
    r#"{"ts":1795165932.0,"uid":"D3","id.orig_h":"10.0.1.16","id.orig_p":5355,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp","query":"metadata.google.internal","qtype_name":"A"}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    // The verified agent.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/amazon-ssm-agent"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    // A neighbour that is not the metadata service (Amazon Time Sync).
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/sbin/chronyd"},"destination":{"ip":"169.254.169.123","port":123}}"#,
    // An ordinary connection.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl"},"destination":{"ip":"93.184.216.34","port":443}}"#,
    // Inbound: the metadata address is not where this host connected to.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/curl"},"destination":{"ip":"169.254.169.254","port":80},"network":{"direction":"ingress"}}"#,
    // A temp-dir binary: IMDS-003's case, not this one's.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/tmp/.x/kdevtmpfsi"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    // Azure's 168.63.129.16 is also the VM's DNS resolver: svchost.exe's DNS traffic to it, as
    // Security 5156 (NXLog) and Sysmon 3 record it in the OTRF data, is no metadata request.
    r#"{"RemoteMachineID":"S-1-0-0","@timestamp":"2020-10-22T02:21:38.478Z","TimeCreated":"2020-10-22T02:21:38.478Z","Direction":"%%14593","DestPort":"53","ProviderGuid":"{54849625-5478-4994-a5ba-3e3b0328c30d}","RemoteUserID":"S-1-0-0","SourcePort":"62992","LayerName":"%%14611","SourceAddress":"192.168.2.5","Level":"0","Channel":"Security","Task":"12810","Protocol":"17","DestAddress":"168.63.129.16","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"WORKSTATION5","ProcessID":"1928","LayerRTID":"48","FilterRTID":"70676","EventID":5156,"Keywords":"0x8020000000000000","Application":"\\device\\harddiskvolume2\\windows\\system32\\svchost.exe"}"#,
    r#"{"Keywords":"0x8000000000000000","Task":"3","RuleName":"-","SourceIsIpv6":"false","Protocol":"udp","DestinationIp":"168.63.129.16","SourceHostname":"-","Initiated":"true","SourcePort":"53080","User":"NT AUTHORITY\\NETWORK SERVICE","SourceName":"Microsoft-Windows-Sysmon","ProcessGuid":"{39e4a257-f133-5f8b-3300-000000000700}","UtcTime":"2020-10-22 05:31:07.989","SourcePortName":"-","SourceIp":"192.168.2.5","DestinationPort":"53","ProcessId":"1928","TimeCreated":"2020-10-22T01:31:10.271Z","@timestamp":"2020-10-22T01:31:10.271Z","DestinationHostname":"-","Level":"4","Image":"C:\\Windows\\System32\\svchost.exe","Hostname":"WORKSTATION5","DestinationPortName":"-","Channel":"Microsoft-Windows-Sysmon/Operational","DestinationIsIpv6":"false","EventID":3,"ProviderGuid":"{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"}"#,
    // A catalog address on a port its service does not answer on.
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/bin/dig"},"destination":{"ip":"168.63.129.16","port":53},"network":{"transport":"tcp"}}"#,
    // Security 5156 from the Azure guest agent, as the OTRF data has it.
    r#"{"EventID":5156,"Hostname":"WORKSTATION5","Channel":"Security","Application":"\\device\\harddiskvolume2\\windowsazure\\guestagent_2.7.41491.993_2020-09-17_150914\\guestagent\\windowsazureguestagent.exe","ProcessID":"2000","Direction":"%%14593","SourceAddress":"10.0.0.4","SourcePort":"50001","DestAddress":"169.254.169.254","DestPort":"80","Protocol":"6","EventTime":"2020-10-22 10:00:00"}"#,
];
