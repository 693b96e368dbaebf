//! The correlation layer as a user meets it through `imdsguard hunt`: a replayed timeline — a
//! day of benign agent traffic that the baseline learns, then an attack — gives exactly the
//! expected correlation alerts and one incident; the output does not depend on the thread count;
//! Sigma correlation rules run over the hits of the rules they name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        // Never the user's own store, nor another run's.
        .env("IMDSGUARD_DB", fresh_db())
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(args)
        .output()
        .expect("run imdsguard")
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn temp_dir(case: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("imdsguard-correlate-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `2026-11-20 00:00:00` plus `secs`, as NXLog writes `EventTime`.
fn at(secs: u32) -> String {
    let (day, s) = (20 + secs / 86_400, secs % 86_400);
    format!(
        "2026-11-{day} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn connect(secs: u32, pid: u32, image: &str, user: &str) -> Value {
    json!({
        "EventTime": at(secs), "Hostname": "web01.corp.example", "SourceModuleType": "im_msvistalog",
        "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "ProcessId": pid.to_string(), "Image": image, "User": user, "Protocol": "tcp",
        "Initiated": "true", "SourceIp": "10.0.1.15", "SourcePort": "49811",
        "DestinationIp": "169.254.169.254", "DestinationPort": "80",
    })
}

fn curl(secs: u32, pid: u32, args: &str) -> Value {
    json!({
        "EventTime": at(secs), "Hostname": "web01.corp.example", "SourceModuleType": "im_msvistalog",
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "ProcessId": pid.to_string(), "Image": "C:\\Windows\\System32\\curl.exe",
        "CommandLine": format!("curl.exe {args}"), "User": "CORP\\svc-web",
        "ParentProcessId": "6900", "ParentImage": "C:\\Windows\\System32\\cmd.exe",
    })
}

const SSM: &str = r"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe";
const SHOP: &str = r"C:\Apps\shop\shop.exe";
const DAY: u32 = 86_400;
/// Day two, 10:00.
const ATTACK: u32 = DAY + 10 * 3600;

const WALK: [&str; 12] = [
    "ami-id",
    "hostname",
    "instance-id",
    "instance-type",
    "local-ipv4",
    "mac",
    "network/interfaces/macs/",
    "placement/availability-zone",
    "public-keys/",
    "security-groups",
    "iam/info",
    "iam/security-credentials/",
];

/// The timeline: the SSM agent every 5 minutes and the shop application (allowlisted by the
/// user) every 10 minutes, with a busy minute of 5 requests at noon, from day one 00:00 to day
/// two 10:00; then from a shell (cmd.exe, pid 6900) the IMDSv2 handshake with curl and a walk of
/// 12 paths, and a binary in Temp making 40 requests in 40 seconds.
fn timeline() -> Vec<Value> {
    let mut ev = Vec::new();
    for t in (0..ATTACK).step_by(300) {
        ev.push(connect(t, 2120, SSM, r"NT AUTHORITY\SYSTEM"));
        if t % 600 == 0 {
            ev.push(connect(t + 1, 3300, SHOP, r"CORP\svc-shop"));
        }
    }
    for i in 0..5 {
        ev.push(connect(12 * 3600 + 10 + i, 3300, SHOP, r"CORP\svc-shop"));
    }
    ev.push(curl(
        ATTACK + 5,
        7001,
        "-s -X PUT http://169.254.169.254/latest/api/token -H \"X-aws-ec2-metadata-token-ttl-seconds: 21600\"",
    ));
    ev.push(curl(
        ATTACK + 8,
        7002,
        "-s -H \"X-aws-ec2-metadata-token: AQAEA\" http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role",
    ));
    for (i, p) in WALK.iter().enumerate() {
        let i = i as u32;
        ev.push(curl(
            ATTACK + 20 + 2 * i,
            7010 + i,
            &format!("-s -H \"X-aws-ec2-metadata-token: AQAEA\" http://169.254.169.254/latest/meta-data/{p}"),
        ));
    }
    for i in 0..40 {
        ev.push(connect(
            ATTACK + 60 + i,
            8800,
            r"C:\Users\svc-web\AppData\Local\Temp\x.exe",
            r"CORP\svc-web",
        ));
    }
    ev.sort_by(|a, b| a["EventTime"].as_str().cmp(&b["EventTime"].as_str()));
    ev
}

fn write_scenario(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("web01.jsonl");
    let text: String = timeline().iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&log, text).expect("write timeline");
    let allow = dir.join("allow.toml");
    std::fs::write(
        &allow,
        "[[agent]]\nid = \"shop\"\nname = \"The shop application\"\npaths = ['C:\\Apps\\shop\\shop.exe']\n",
    )
    .expect("write allowlist");
    (log, allow)
}

fn hunt(log: &Path, allow: &Path, incidents: &Path, threads: &str) -> (Vec<Value>, String) {
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--allowlist",
        allow.to_str().unwrap(),
        "--incidents",
        incidents.to_str().unwrap(),
        "-j",
        threads,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines = jsonl(&String::from_utf8_lossy(&out.stdout));
    // Alert lines first, then incident lines (the same as `--incidents` writes).
    let split = lines
        .iter()
        .position(|v| v.get("incident_id").is_some())
        .unwrap_or(lines.len());
    assert!(lines[split..]
        .iter()
        .all(|v| v.get("incident_id").is_some()));
    assert_eq!(
        lines[split..].to_vec(),
        jsonl(&std::fs::read_to_string(incidents).unwrap())
    );
    (lines[..split].to_vec(), stderr)
}

#[test]
fn a_day_of_agents_then_an_attack_gives_the_expected_alerts_and_one_incident() {
    let dir = temp_dir("scenario");
    let (log, allow) = write_scenario(&dir);
    let inc_path = dir.join("incidents.jsonl");
    let (alerts, stderr) = hunt(&log, &allow, &inc_path, "2");

    // The benign day and morning raise nothing: every alert is from the attack.
    let attack_start = "2026-11-21T10:00:05.000Z";
    for a in &alerts {
        assert!(
            a["time"].as_str().unwrap() >= attack_start,
            "alert before the attack: {a}"
        );
    }
    // The correlations, exactly.
    let correlations: Vec<(String, String, String)> = alerts
        .iter()
        .filter(|a| a["rule_id"].as_str().unwrap().starts_with("IMDS-1"))
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_owned(),
                a["time"].as_str().unwrap().to_owned(),
                a["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want =
        |r: &str, t: &str, s: &str| (r.to_owned(), format!("2026-11-21T{t}.000Z"), s.to_owned());
    assert_eq!(
        correlations,
        [
            // curl has never reached the service on web01.
            want("IMDS-102", "10:00:05", "medium"),
            // Token at :05, credentials at :08, from one shell.
            want("IMDS-101", "10:00:08", "high"),
            // Token, credentials and 8 walked paths: the 10th distinct path at :34, and the
            // window held a credential path.
            want("IMDS-104", "10:00:34", "high"),
            want("IMDS-102", "10:01:00", "medium"),
            // The 31st request in the minute from 10:01:00, with no baseline (floor 30).
            want("IMDS-103", "10:01:30", "medium"),
        ]
    );
    let token = alerts.iter().find(|a| a["rule_id"] == "IMDS-101").unwrap();
    assert_eq!(token["related"].as_array().unwrap().len(), 2, "{token}");
    assert!(token["reasons"][0]
        .as_str()
        .unwrap()
        .contains("parent /windows/system32/cmd.exe pid 6900"));
    // The single-event detections that fire, by rule.
    let mut rules: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap())
        .filter(|r| !r.starts_with("IMDS-1"))
        .collect();
    rules.sort();
    rules.dedup();
    assert_eq!(rules, ["IMDS-002", "IMDS-003", "IMDS-004"]);

    // One incident: the whole attack on web01, every alert in it, the full chain, critical.
    let incidents = jsonl(&std::fs::read_to_string(&inc_path).unwrap());
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let inc = &incidents[0];
    assert_eq!(inc["host"], "web01.corp.example");
    assert_eq!(inc["severity"], "critical");
    assert_eq!(
        inc["stages"],
        json!(["execution", "discovery", "credential-access"])
    );
    assert_eq!(inc["timeline"].as_array().unwrap().len(), alerts.len());
    assert_eq!(inc["first"], "2026-11-21T10:00:05.000Z");
    assert_eq!(inc["last"], "2026-11-21T10:01:39.000Z");
    assert!(stderr.contains("incidents 1, 1 critical"), "{stderr}");
}

#[test]
fn one_thread_or_four_give_the_same_alerts_and_incidents() {
    let dir = temp_dir("threads");
    let (log, allow) = write_scenario(&dir);
    let (one, _) = hunt(&log, &allow, &dir.join("one.jsonl"), "1");
    let (four, _) = hunt(&log, &allow, &dir.join("four.jsonl"), "4");
    assert!(!one.is_empty());
    assert_eq!(one, four);
    assert_eq!(
        std::fs::read_to_string(dir.join("one.jsonl")).unwrap(),
        std::fs::read_to_string(dir.join("four.jsonl")).unwrap()
    );
}

#[test]
fn a_sigma_correlation_counts_the_hits_of_the_rule_it_names() {
    let dir = temp_dir("sigma");
    let (log, _) = write_scenario(&dir);
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        r#"title: Curl Reaching The Metadata Service
id: 5d2c8a61-0000-4000-8000-000000000001
name: curl_metadata
status: experimental
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\curl.exe'
        CommandLine|contains: '169.254.169.254'
    condition: selection
level: low
---
title: Many Curl Metadata Requests From One Host
id: 5d2c8a61-0000-4000-8000-000000000002
status: experimental
correlation:
    type: event_count
    rules:
        - curl_metadata
    group-by:
        - Computer
    timespan: 1m
    condition:
        gte: 10
level: high
"#,
    )
    .unwrap();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rules.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 correlation rules"), "{stderr}");
    let alerts: Vec<Value> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|v| v.get("rule_id").is_some())
        .collect();
    let fired: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule_id"] == "5d2c8a61-0000-4000-8000-000000000002")
        .collect();
    // 14 curl runs from 10:00:05 to 10:00:42: the 10th (at 10:00:34) completes the count; the
    // window restarts and the 4 left do not reach 10 again.
    assert_eq!(fired.len(), 1, "{alerts:#?}");
    assert_eq!(fired[0]["severity"], "high");
    assert_eq!(fired[0]["time"], "2026-11-21T10:00:34.000Z");
    assert_eq!(fired[0]["related"].as_array().unwrap().len(), 10);
    assert!(fired[0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("Computer=web01.corp.example"));
    // The base rule only feeds the correlation (no `generate: true`): its hits do not alert.
    let base = alerts
        .iter()
        .filter(|a| a["rule_id"] == "5d2c8a61-0000-4000-8000-000000000001")
        .count();
    assert_eq!(base, 0);
    // With `generate: true` they alert on their own too.
    let generating = dir.join("generating.yml");
    std::fs::write(
        &generating,
        std::fs::read_to_string(&rules)
            .unwrap()
            .replace("level: high\n", "level: high\ngenerate: true\n"),
    )
    .unwrap();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        generating.to_str().unwrap(),
    ]);
    let both: Vec<Value> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|v| v.get("rule_id").is_some())
        .collect();
    let count = |id: &str| both.iter().filter(|a| a["rule_id"] == id).count();
    assert_eq!(
        count("5d2c8a61-0000-4000-8000-000000000001"),
        14,
        "{both:#?}"
    );
    assert_eq!(count("5d2c8a61-0000-4000-8000-000000000002"), 1);

    // Reported from high up, the low base rule's hits still count; only the correlation shows.
    let high = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--min-severity",
        "high",
        "--sigma",
        rules.to_str().unwrap(),
    ]);
    assert!(
        high.status.success(),
        "{}",
        String::from_utf8_lossy(&high.stderr)
    );
    let shown: Vec<Value> = jsonl(&String::from_utf8_lossy(&high.stdout))
        .into_iter()
        .filter(|v| v.get("rule_id").is_some())
        .collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert_eq!(shown[0]["rule_id"], "5d2c8a61-0000-4000-8000-000000000002");
    assert_eq!(shown[0]["time"], "2026-11-21T10:00:34.000Z");
}

/// A store of its own for each run, so that no run learns from another's baseline (tests run
/// in parallel) and none touches the user's own store.
fn fresh_db() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("imdsguard-test-correlate-{}", std::process::id()))
        .join(format!("{n}.db"))
}

#[test]
fn a_correlation_of_a_correlation_fires_and_the_inner_one_only_feeds_it() {
    let dir = temp_dir("chain");
    let (log, _) = write_scenario(&dir);
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        r#"title: Curl Reaching The Metadata Service
id: 5d2c8a61-0000-4000-8000-000000000011
name: curl_metadata
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\curl.exe'
        CommandLine|contains: '169.254.169.254'
    condition: selection
level: low
---
title: Many Curl Metadata Requests From One Host
id: 5d2c8a61-0000-4000-8000-000000000012
name: many_curl
correlation:
    type: event_count
    rules: [curl_metadata]
    group-by: [Computer]
    timespan: 1m
    condition:
        gte: 10
level: medium
---
title: Curl Goes On After The Burst
id: 5d2c8a61-0000-4000-8000-000000000013
correlation:
    type: temporal_ordered
    rules: [many_curl, curl_metadata]
    group-by: [Computer]
    timespan: 1m
level: high
"#,
    )
    .unwrap();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rules.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts: Vec<Value> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|v| v.get("rule_id").is_some())
        .collect();
    let ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap())
        .collect();
    // The burst completes at the 10th curl (10:00:34); the outer correlation needs a curl after
    // it. Neither the base rule nor the inner correlation alerts on its own.
    assert_eq!(ids, ["5d2c8a61-0000-4000-8000-000000000013"], "{alerts:#?}");
    assert!(
        alerts[0]["time"].as_str().unwrap() > "2026-11-21T10:00:34.000Z",
        "{alerts:#?}"
    );
    assert!(alerts[0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("Computer=web01.corp.example"));
}

#[test]
fn a_rule_that_only_feeds_still_alerts_on_an_event_whose_time_cannot_be_read() {
    let dir = temp_dir("untimed");
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        "title: Curl Reaching The Metadata Service\nid: 5d2c8a61-0000-4000-8000-000000000021\nname: curl_metadata\nlogsource: {category: process_creation, product: windows}\ndetection:\n    selection:\n        Image|endswith: '\\curl.exe'\n    condition: selection\nlevel: low\n---\ntitle: Many curls\nid: 5d2c8a61-0000-4000-8000-000000000022\ncorrelation:\n    type: event_count\n    rules: [curl_metadata]\n    group-by: [Computer]\n    timespan: 1m\n    condition: {gte: 10}\nlevel: high\n",
    )
    .unwrap();
    // A Sysmon process start with no TimeCreated: it cannot be correlated, so it alerts alone.
    let log = dir.join("untimed.jsonl");
    std::fs::write(
        &log,
        r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws01"},"EventData":{"Image":"C:\\Windows\\System32\\curl.exe","CommandLine":"curl http://169.254.169.254/"}}}
"##,

    )
    .unwrap();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rules.to_str().unwrap(),
    ]);
    let ids: Vec<String> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter_map(|v| v.get("rule_id").and_then(|r| r.as_str()).map(str::to_owned))
        .collect();
    assert_eq!(
        ids,
        ["5d2c8a61-0000-4000-8000-000000000021"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One host under two names, as OTRF's NXLog data names WORKSTATION5 (the Sysmon records'
/// `Hostname`) and WORKSTATION5.theshire.local (the Security records'): one baseline, one
/// incident under the FQDN, and a process first seen under one name is not new under the other.
/// A third name with the same first label in another domain is another host.
#[test]
fn a_hosts_short_name_and_fqdn_are_one_host() {
    let dir = temp_dir("hosts");
    let log = dir.join("otrf.jsonl");
    let ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";
    let sysmon = |secs: u32, host: &str, image: &str| {
        json!({"Keywords":"0x8000000000000000","Protocol":"tcp","DestinationIp":"169.254.169.254",
               "Initiated":"true","SourcePort":"53080","User":"THESHIRE\\pgustavo",
               "SourceName":"Microsoft-Windows-Sysmon","UtcTime":format!("{}.000", at(secs)),
               "SourceIp":"172.18.39.5","DestinationPort":"80","ProcessId":"7000",
               "Image":image,"Hostname":host,"Channel":"Microsoft-Windows-Sysmon/Operational",
               "EventID":3})
    };
    let security = |secs: u32, host: &str| {
        json!({"EventID":5156,"Hostname":host,"Channel":"Security","Direction":"%%14593",
               "Application":"\\device\\harddiskvolume2\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe",
               "ProcessID":"7000","SourceAddress":"172.18.39.5","SourcePort":"53081",
               "DestAddress":"169.254.169.254","DestPort":"80","Protocol":"6",
               "@timestamp":format!("{}Z", at(secs).replace(' ', "T"))})
    };
    let agent = "C:\\Program Files\\Amazon\\SSM\\amazon-ssm-agent.exe";
    let lines = [
        // The baseline begins on the short name (an agent), and learns for an hour.
        sysmon(0, "WORKSTATION5", agent),
        // PowerShell after learning: new under the short name ...
        sysmon(7200, "WORKSTATION5", ps),
        // ... and not new again under the FQDN, whose records join the same host.
        security(7202, "WORKSTATION5.theshire.local"),
        // Another domain's WORKSTATION5 is another host: its PowerShell is its own.
        security(7203, "WORKSTATION5.mordor.local"),
    ];
    std::fs::write(
        &log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--learn",
        "1h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = jsonl(&String::from_utf8_lossy(&out.stdout));
    let first_seen: Vec<&str> = all
        .iter()
        .filter(|a| a["rule_id"] == "IMDS-102")
        .map(|a| a["host"].as_str().unwrap())
        .collect();
    assert_eq!(first_seen, ["workstation5"], "{all:#?}");
    let mut incidents: Vec<(String, u64)> = all
        .iter()
        .filter(|v| v.get("incident_id").is_some())
        .map(|i| {
            (
                i["host"].as_str().unwrap().to_owned(),
                i["alerts"].as_u64().unwrap(),
            )
        })
        .collect();
    incidents.sort();
    // The short name's IMDS-001 and IMDS-102 and the FQDN's IMDS-001: one incident, named
    // by the FQDN; mordor's own.
    assert_eq!(
        incidents,
        [
            ("workstation5.mordor.local".to_owned(), 1),
            ("workstation5.theshire.local".to_owned(), 3)
        ]
    );
}

/// A correlation judged at the end of the input (an upper bound: few events of a kind) fires
/// once per group, each with its own group's context: grouped by Computer, host-a's alert names
/// host-a and host-b's names host-b.
#[test]
fn windows_judged_at_the_end_keep_their_own_context() {
    let dir = temp_dir("finish-context");
    let log = dir.join("curl.jsonl");
    let curl_on = |secs: u32, host: &str, pid: u32| {
        let mut v = curl(secs, pid, "-s http://169.254.169.254/latest/meta-data/");
        v["Hostname"] = json!(host);
        v
    };
    let lines = [
        curl_on(0, "host-a.corp.example", 101),
        curl_on(5, "host-a.corp.example", 102),
        curl_on(10, "host-b.corp.example", 201),
    ];
    std::fs::write(
        &log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        r#"title: Curl Metadata Request
id: 5d2c8a61-0000-4000-8000-000000000021
name: curl_metadata_few
status: experimental
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\curl.exe'
        CommandLine|contains: '169.254.169.254'
    condition: selection
level: low
---
title: Few Curl Metadata Requests From One Host
id: 5d2c8a61-0000-4000-8000-000000000022
status: experimental
correlation:
    type: event_count
    rules:
        - curl_metadata_few
    group-by:
        - Computer
    timespan: 1h
    condition:
        lte: 5
level: medium
"#,
    )
    .unwrap();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rules.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<(String, String, usize)> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|a| a["rule_id"] == "5d2c8a61-0000-4000-8000-000000000022")
        .map(|a| {
            (
                a["host"].as_str().unwrap().to_owned(),
                a["process"]["pid"].to_string(),
                a["related"].as_array().unwrap().len(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("host-a.corp.example".to_owned(), "102".to_owned(), 2),
            ("host-b.corp.example".to_owned(), "201".to_owned(), 1)
        ]
    );
}

/// A fleet's worth of incidents: each is shown once, in order of its first alert, the store
/// holds every one, and a hunt that cannot make its temporary file keeps them in memory and
/// says so (the figures of memory are in bench/run-incidents.sh).
#[test]
fn many_incidents_on_many_hosts_are_all_shown_in_order_and_stored() {
    let dir = temp_dir("many-incidents");
    let log = dir.join("fleet.jsonl");
    let (hosts, bursts) = (40u32, 30u32);
    let mut text = String::new();
    // A burst every two hours per host (the incident gap is one hour), hosts interleaved.
    for b in 0..bursts {
        for h in 0..hosts {
            let mut v = connect(b * 7200 + h * 60, 4000 + h, "C:\\Users\\Public\\x.exe", "U");
            v["Hostname"] = json!(format!("host{h:02}.corp.example"));
            text.push_str(&v.to_string());
            text.push('\n');
        }
    }
    std::fs::write(&log, text).unwrap();
    let db = dir.join("fleet.db");
    let hunt = |tmp: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
            .env("TMPDIR", tmp)
            .args(["hunt", "--output", "jsonl", "--db"])
            .arg(&db)
            .arg(&log)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let incidents: Vec<Value> = jsonl(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .filter(|v| v.get("incident_id").is_some())
            .collect();
        (incidents, stderr)
    };
    let (incidents, stderr) = hunt(&std::env::temp_dir());
    assert_eq!(incidents.len(), (hosts * bursts) as usize, "{stderr}");
    assert!(stderr.contains("incidents 1200, 1200 high"), "{stderr}");
    assert!(stderr.contains("1200 incidents"), "{stderr}");
    let key = |v: &Value| {
        (
            v["timeline"][0]["time_ms"].as_i64().unwrap(),
            v["host"].as_str().unwrap().to_owned(),
        )
    };
    let keys: Vec<_> = incidents.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len());
    assert!(incidents.iter().all(|i| i["alerts"] == 1));
    let stored = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .args(["incident", "--json", "--limit", "5000", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        jsonl(&String::from_utf8_lossy(&stored.stdout)).len(),
        incidents.len()
    );
    // No temporary directory: the same incidents, from memory, and a line saying why.
    let (again, stderr) = hunt(&dir.join("no-such-dir"));
    assert_eq!(again, incidents);
    assert!(
        stderr.contains("incidents kept in memory: no temporary file in"),
        "{stderr}"
    );
}

/// From theft to use across sources: credentials read on an EC2 instance (host telemetry, or a
/// web server's access log showing the SSRF) and the instance's role then used from the
/// attacker's address (CloudTrail) are one incident, the stage `use` after
/// `credential-access`; the inventory ties the instance id to its host name.
#[test]
fn credential_access_and_use_from_elsewhere_are_one_incident_across_sources() {
    let dir = temp_dir("cross-source");
    let inventory = dir.join("instances.json");
    std::fs::write(
        &inventory,
        r#"{"Reservations":[{"Instances":[{"InstanceId":"i-0a1b2c3d4e5f60718","PrivateDnsName":"ip-10-0-0-12.ec2.internal","PrivateIpAddress":"10.0.0.12","PublicIpAddress":"3.80.1.2","MetadataOptions":{"HttpTokens":"optional","HttpPutResponseHopLimit":1,"HttpEndpoint":"enabled"}}]}]}"#,
    )
    .unwrap();
    // Elastic Agent on the instance: curl reads the role's credentials.
    let host = dir.join("host.ndjson");
    std::fs::write(
        &host,
        json!({
            "@timestamp": "2026-11-20T09:00:05.000Z", "ecs": {"version": "8.11.0"},
            "event": {"category": ["process"], "type": ["start"]},
            "host": {"name": "ip-10-0-0-12"},
            "process": {"pid": 4242, "executable": "/usr/bin/curl",
                "command_line": "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role",
                "parent": {"pid": 4100, "executable": "/bin/bash"}},
            "user": {"name": "www-data"},
        })
        .to_string()
            + "\n",
    )
    .unwrap();
    // nginx on the instance: the same read through a server-side request forgery.
    let web = dir.join("access.log");
    std::fs::write(
        &web,
        "203.0.113.50 - - [20/Nov/2026:09:00:07 +0000] \"GET /fetch?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role HTTP/1.1\" 200 1320 \"-\" \"python-requests/2.31.0\"\n",
    )
    .unwrap();
    // CloudTrail: the role's session of that instance, from the attacker's address.
    let trail = dir.join("cloudtrail.json");
    let call = |secs: u32, action: &str| {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/web-role/i-0a1b2c3d4e5f60718",
                "accessKeyId": "ASIAEXAMPLEKEY000001",
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/web-role"}, "ec2RoleDelivery": "1.0"}},
            "eventTime": format!("2026-11-20T09:{:02}:{:02}Z", secs / 60, secs % 60),
            "eventSource": "s3.amazonaws.com", "eventName": action, "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.50", "userAgent": "aws-cli/2.15.0",
            "eventID": format!("e{secs}"),
        })
    };
    std::fs::write(
        &trail,
        json!({"Records": [call(60, "ListBuckets"), call(90, "GetObject")]}).to_string(),
    )
    .unwrap();
    let hunt = |files: &[&Path]| {
        let mut args = vec![
            "hunt",
            "--output",
            "jsonl",
            "--inventory",
            inventory.to_str().unwrap(),
        ];
        args.extend(files.iter().map(|p| p.to_str().unwrap()));
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = jsonl(&String::from_utf8_lossy(&out.stdout));
        let (incidents, alerts): (Vec<Value>, Vec<Value>) = all
            .into_iter()
            .partition(|v| v.get("incident_id").is_some());
        (incidents, alerts)
    };
    let with = |incidents: &[Value], rule: &str| -> Vec<Value> {
        incidents
            .iter()
            .filter(|i| {
                i["timeline"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["rule_id"] == rule)
            })
            .cloned()
            .collect()
    };
    // Host telemetry and CloudTrail: the instance's incident.
    let (incidents, _) = hunt(&[&host, &trail]);
    let inc = with(&incidents, "IMDS-105");
    assert_eq!(inc.len(), 1, "{incidents:#?}");
    assert_eq!(inc[0]["stages"], json!(["credential-access", "use"]));
    assert!(inc[0]["host"].as_str().unwrap().starts_with("ip-10-0-0-12"));
    assert!(with(&incidents, "IMDS-004")
        .iter()
        .any(|i| i["incident_id"] == inc[0]["incident_id"]));
    assert_eq!(inc[0]["severity"], "critical");
    // The web server's log and CloudTrail: the attacker's address is the thread.
    let (incidents, _) = hunt(&[&web, &trail]);
    let inc = with(&incidents, "IMDS-105");
    assert_eq!(inc.len(), 1, "{incidents:#?}");
    assert_eq!(inc[0]["host"], "client 203.0.113.50");
    assert_eq!(inc[0]["stages"], json!(["credential-access", "use"]));
    assert!(with(&incidents, "IMDS-011")
        .iter()
        .any(|i| i["incident_id"] == inc[0]["incident_id"]));
}
