//! `imdsguard hunt`, `rules` and `allowlist` as a user runs them: alert output over the bundled
//! samples (insta snapshots), filters and exit codes, a user allowlist, and the public logs of
//! `../shared/data` (genuine cloud-agent traffic must raise nothing).

use std::path::PathBuf;
use std::process::{Command, Output};

use imdsguard_testdata::shared_data;
use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imdsguard"));
    // Never the user's own store, nor another run's.
    c.env("IMDSGUARD_DB", fresh_db());
    c
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    bin()
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run imdsguard")
}

/// [`run`], which must succeed (its standard error shown when it does not).
fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The alert lines of a JSON-lines output (incident lines, with `incident_id`, follow them).
fn alerts(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v.get("incident_id").is_none())
        .collect()
}

fn temp_file(case: &str, name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imdsguard-hunt-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(name);
    std::fs::write(&file, contents).expect("write temp file");
    file
}

#[test]
fn hunt_over_the_bundled_samples_matches_the_snapshot() {
    let out = run_ok(&["hunt", "samples/logs", "--output", "jsonl"]);
    let all = alerts(&out);
    // Every alert is traceable and explained.
    for a in &all {
        let src = &a["source"];
        assert!(
            src["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("samples/logs/")),
            "{a}"
        );
        assert!(src["line"].as_u64().is_some_and(|l| l >= 1), "{a}");
        assert!(!a["reasons"].as_array().unwrap().is_empty(), "{a}");
        assert!(
            a["attack"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "T1552.005"),
            "{a}"
        );
    }
    // The benign agents in the samples raise nothing.
    for a in &all {
        let image = a["process"]["image"].as_str().unwrap_or("");
        assert!(
            !image.ends_with("google_guest_agent")
                && !image.to_lowercase().contains("windowsazure"),
            "{a}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("71 events, 0 records skipped"), "{stderr}");
    assert!(
        stderr.contains(&format!("alerts   {}", all.len())),
        "{stderr}"
    );
    assert!(
        stderr.contains("Cloud agent masquerade reaching the metadata service (IMDS-007)"),
        "{stderr}"
    );
    insta::assert_snapshot!("hunt_samples_jsonl", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn one_thread_or_several_give_the_same_alerts() {
    let big = imdsguard_testdata::shared_data("evtx/otrf_json");
    let mut inputs = vec!["samples/logs".to_owned()];
    inputs.extend(big.map(|p| p.display().to_string()));
    for input in inputs.iter().map(String::as_str) {
        let one = run(&["hunt", input, "--output", "jsonl", "-j", "1"]);
        let two = run(&["hunt", input, "--output", "jsonl", "-j", "2"]);
        let four = run(&["hunt", input, "--output", "jsonl", "-j", "4"]);
        assert!(!one.stdout.is_empty());
        assert_eq!(one.stdout, two.stdout, "{input}");
        assert_eq!(one.stdout, four.stdout, "{input}");
    }
}

#[test]
fn table_groups_by_host_and_csv_has_one_row_per_alert() {
    let out = run(&["hunt", "samples/logs", "--output", "table", "--no-color"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(!table.contains('\x1b'), "no color when asked");
    insta::assert_snapshot!("hunt_samples_table", table);

    let jsonl = alerts(&run(&["hunt", "samples/logs", "--output", "jsonl"]));
    let out = run(&["hunt", "samples/logs", "--output", "csv"]);
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column: {header:?}"))
    };
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), jsonl.len());
    for (row, a) in rows.iter().zip(&jsonl) {
        // The id reaches `imdsguard triage ID`; the rest is what an analyst sorts by.
        assert_eq!(&row[col("id")], a["id"].as_str().unwrap());
        assert_eq!(&row[col("rule_id")], a["rule_id"].as_str().unwrap());
        assert_eq!(&row[col("severity")], a["severity"].as_str().unwrap());
        assert_eq!(&row[col("format")], a["event"]["format"].as_str().unwrap());
        assert_eq!(
            &row[col("event_id")],
            a["event"]["id"].as_str().unwrap_or("")
        );
        assert_eq!(
            &row[col("target_provider")],
            a["target"]["provider"].as_str().unwrap_or("")
        );
        let attack: Vec<&str> = a["attack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(&row[col("attack")], attack.join(";"));
        let escalate = a["triage"]["escalate"]
            .as_bool()
            .map(|b| b.to_string())
            .unwrap_or_default();
        assert_eq!(&row[col("escalate")], escalate);
        let encodings: Vec<&str> = a["target"]["encoding"]
            .as_array()
            .map(|e| e.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(&row[col("target_encoding")], encodings.join(";"));
    }
    assert!(rows.iter().any(|r| !r[col("target_encoding")].is_empty()));
    assert!(rows.iter().any(|r| &r[col("escalate")] == "true"));
}

#[test]
fn min_severity_filters_and_fail_on_sets_the_exit_code() {
    let all = alerts(&run(&["hunt", "samples/logs", "--output", "jsonl"]));
    let high = run(&[
        "hunt",
        "samples/logs",
        "--output",
        "jsonl",
        "--min-severity",
        "high",
    ]);
    let high = alerts(&high);
    let want = all
        .iter()
        .filter(|a| matches!(a["severity"].as_str(), Some("high" | "critical")))
        .count();
    assert_eq!(high.len(), want);
    assert!(high.len() < all.len(), "the samples hold medium alerts too");

    let out = run(&[
        "hunt",
        "samples/logs",
        "--output",
        "jsonl",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the samples hold critical alerts"
    );
    // A benign file: nothing found, exit 0 even with --fail-on.
    let benign = temp_file(
        "benign",
        "agents.ndjson",
        r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"h"},"process":{"executable":"/usr/bin/amazon-ssm-agent"},"destination":{"ip":"169.254.169.254","port":80}}
"#,
    );
    let out = run(&["hunt", benign.to_str().unwrap(), "--fail-on", "info"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = run(&["hunt", "no/such/file.log"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_user_allowlist_allows_by_path_and_a_bad_one_names_its_line() {
    let before = alerts(&run(&["hunt", "samples/logs", "--output", "jsonl"]));
    let from_downloads = |a: &&Value| {
        a["process"]["image"]
            .as_str()
            .is_some_and(|i| i.ends_with(r"Downloads\python.exe"))
    };
    assert!(before.iter().any(|a| from_downloads(&a)));
    let allow = temp_file(
        "allow",
        "allow.toml",
        "[[agent]]\nid = \"dev-tool\"\nname = \"A developer's tool\"\npaths = ['C:\\Users\\*\\Downloads\\python.exe']\n",
    );
    let after = alerts(&run(&[
        "hunt",
        "samples/logs",
        "--output",
        "jsonl",
        "--allowlist",
        allow.to_str().unwrap(),
    ]));
    assert!(!after.iter().any(|a| from_downloads(&a)));
    assert_eq!(
        after.len(),
        before.len() - before.iter().filter(from_downloads).count()
    );

    let bad = temp_file(
        "bad",
        "bad.toml",
        "[[agent]]\nid = \"x\"\nname = \"X\"\n\nnames = [\"/bin/x\"]\n",
    );
    let out = run(&["hunt", "samples/logs", "--allowlist", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:5:"), "{stderr}");
    assert!(stderr.contains("without a directory"), "{stderr}");
}

#[test]
fn rules_list_and_show_print_the_pack() {
    let out = run(&["rules", "list"]);
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).unwrap();
    // Thirteen single-event detections and six correlations.
    assert_eq!(list.lines().count(), 19);
    assert_eq!(
        list.lines()
            .filter(|l| l.ends_with("(correlation)"))
            .count(),
        6
    );
    insta::assert_snapshot!("rules_list", list);
    let out = run(&["rules", "show", "IMDS-101"]);
    let show = String::from_utf8(out.stdout).unwrap();
    // The documentation is the correlation's own module comment, every section of it.
    for section in ["What:", "Why:", "False positives:", "ATT&CK:"] {
        assert!(show.contains(section), "{section} in {show}");
    }
    assert!(show.contains("asks for a session token"), "{show}");
    let out = run(&["rules", "show", "imds-004"]);
    assert!(out.status.success());
    let show = String::from_utf8(out.stdout).unwrap();
    assert!(show.starts_with("IMDS-004  "), "{show}");
    assert!(show.contains(r#"target.kind = "credentials""#), "{show}");
    assert!(show.contains("False positives:"), "{show}");
    assert!(show.contains("Why:"), "{show}");
    let out = run(&["rules", "show", "IMDS-999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IMDS-001, IMDS-002"));
}

#[test]
fn allowlist_prints_the_entries_and_its_toml_loads_back() {
    let out = run(&["allowlist"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("aws-ssm-agent") && text.contains("azure-guest-agent"));
    let toml = String::from_utf8(run(&["allowlist", "--toml"]).stdout).unwrap();
    // Given back as it is, every entry reuses a built-in id: refused, naming the first one's line.
    let file = temp_file("roundtrip", "allow.toml", &toml);
    let out = run(&[
        "hunt",
        "samples/logs",
        "--allowlist",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let first = toml.lines().position(|l| l.starts_with("id = ")).unwrap() + 1;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("allow.toml:{first}: agent id")) && stderr.contains("built-in"),
        "{stderr}"
    );
    // Each entry saying it replaces its built-in one: the same list, the same alerts.
    let replacing: String = toml
        .lines()
        .map(|l| {
            if l.starts_with("id = ") {
                format!("{l}\nreplaces = true\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let file = temp_file("roundtrip2", "allow.toml", &replacing);
    let out = run_ok(&[
        "hunt",
        "samples/logs",
        "--output",
        "jsonl",
        "--allowlist",
        file.to_str().unwrap(),
    ]);
    let default = run(&["hunt", "samples/logs", "--output", "jsonl"]);
    assert_eq!(out.stdout, default.stdout);
}

/// Genuine agent traffic in the public data raises nothing: 1,069 Azure and AWS agent
/// connections to 169.254.169.254. What is raised: PowerShell, run as SYSTEM, reaching the service.
#[test]
fn otrf_agent_traffic_raises_nothing_and_powershell_is_alerted() {
    let dir = shared_data!("evtx/otrf_json");
    let out = run(&["hunt", dir.to_str().unwrap(), "--output", "jsonl"]);
    assert!(out.status.success());
    let all = alerts(&out);
    // The agents' connections since 2021-06-11 are the host's baseline: PowerShell reaching the
    // service on 2022-05-13 is also new there (IMDS-102), once — `C:\…` and
    // `\device\harddiskvolume2\…` are one binary.
    let (first_seen, all): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|a| a["rule_id"] == "IMDS-102");
    assert_eq!(first_seen.len(), 1, "{first_seen:#?}");
    // Sysmon's own UtcTime of the first connection, earlier than any Security record's.
    assert_eq!(first_seen[0]["time"], "2022-05-13T08:54:05.135Z");
    assert_eq!(first_seen[0]["host"], "workstation5");
    assert_eq!(all.len(), 8, "{all:#?}");
    for a in &all {
        assert_eq!(a["rule_id"], "IMDS-001");
        let image = a["process"]["image"].as_str().unwrap().to_lowercase();
        assert!(
            image.ends_with(r"\windowspowershell\v1.0\powershell.exe"),
            "{image}"
        );
        assert_eq!(a["process"]["verdict"], "unlisted");
        assert_eq!(a["target"]["endpoint"], "169.254.169.254");
    }
}

/// Across every public log: only PowerShell is alerted, never a verified agent, and the GCE
/// guest daemon's audited connect() (a deleted, prelinked python2.7 named google_accounts) is
/// recognized as the agent.
#[test]
fn every_public_log_raises_only_what_is_not_an_agent() {
    let dir = shared_data!("");
    let out = run(&["hunt", dir.to_str().unwrap(), "--output", "jsonl"]);
    let all = alerts(&out);
    assert!(!all.is_empty());
    // From the cloud audit logs, without an inventory: the IMDSv1 finding of OTRF's breached
    // instance, once, and nothing else (one address only: nothing to call elsewhere).
    let (cloud, all): (Vec<&Value>, Vec<&Value>) = all
        .iter()
        .partition(|a| a["event"]["format"] == "aws-cloudtrail");
    let rules: Vec<&str> = cloud
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["IMDS-106"], "{cloud:#?}");
    for a in &all {
        assert_ne!(a["process"]["verdict"], "agent");
        let image = a["process"]["image"].as_str().unwrap_or("").to_lowercase();
        assert!(image.ends_with("powershell.exe"), "unexpected alert: {a}");
    }
    assert!(!all.iter().any(|a| a["source"]["path"]
        .as_str()
        .unwrap()
        .contains("gce_google_accounts")));
}

/// OTRF's `ec2_proxy_s3_exfiltration`: the breached proxy's role credentials, fetched over
/// IMDSv1 through the proxy, then used from the attacker's machine (aws-cli on macOS) to list
/// and copy the bucket. With an inventory giving the instance's public address (35.174.154.220,
/// the address the dataset's own description curls), the use is found as one incident: the
/// first call critical, each further operation joining it, and the IMDSv1 finding.
#[test]
fn otrf_stolen_instance_credentials_used_elsewhere_are_one_critical_incident() {
    let file = shared_data!("cloud/otrf_aws_ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    let inv = temp_file(
        "otrf-inventory",
        "instances.json",
        r#"{"Reservations":[{"Instances":[{"InstanceId":"i-0317f6c6b66ae9c40","PrivateDnsName":"ip-10-0-0-12.ec2.internal","PrivateIpAddress":"10.0.0.12","PublicIpAddress":"35.174.154.220","MetadataOptions":{"HttpTokens":"optional","HttpPutResponseHopLimit":1,"HttpEndpoint":"enabled"}}]}]}"#,
    );
    let out = run_ok(&[
        "hunt",
        file.to_str().unwrap(),
        "--inventory",
        inv.to_str().unwrap(),
        "--output",
        "jsonl",
    ]);
    let all = alerts(&out);
    let of = |id: &str| -> Vec<&Value> { all.iter().filter(|a| a["rule_id"] == id).collect() };
    let used = of("IMDS-105");
    let first = used[0];
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["time"], "2020-09-14T01:00:04.000Z");
    assert_eq!(first["cloud"]["action"], "ListBuckets");
    assert_eq!(first["cloud"]["caller_ip"], "1.2.3.4");
    assert_eq!(first["host"], "ip-10-0-0-12.ec2.internal");
    assert_eq!(first["triage"]["escalate"], true);
    // The operations that follow, once each: ListObjects, GetObject.
    let later: Vec<&str> = used[1..]
        .iter()
        .map(|a| a["cloud"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(later, ["ListObjects", "GetObject"]);
    assert!(used[1..]
        .iter()
        .all(|a| a["severity"] == "low" && a["related"][0] == first["id"]));
    assert_eq!(of("IMDS-106").len(), 1);
    // The owner's own console calls (an IAM user) and EC2's AssumeRole raise nothing.
    assert_eq!(all.len(), 4, "{all:#?}");
    let incidents: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("incident_id").is_some())
        .collect();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["severity"], "critical");
    assert_eq!(incidents[0]["stages"], serde_json::json!(["use"]));
    // The inventory named among the inputs is used as one, and said so.
    let again = run(&[
        "hunt",
        inv.to_str().unwrap(),
        file.to_str().unwrap(),
        "--output",
        "jsonl",
    ]);
    let ids = |a: &[Value]| a.iter().map(|a| a["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&alerts(&again)), ids(&all));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("inventory 1 instances"), "{err}");
    assert!(err.contains("1 files"), "{err}");
}

#[test]
fn sigma_check_names_bad_files_and_counts_reasons() {
    let good = temp_file(
        "sigma",
        "good.yml",
        "title: IMDS via curl\nlogsource: {category: process_creation, product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\curl.exe'\n    CommandLine|contains: '169.254.169.254'\n  condition: sel\n",
    );
    let dir = good.parent().unwrap().to_path_buf();
    std::fs::write(
        dir.join("bad.yml"),
        "title: broken\nlogsource: {product: windows}\ndetection: {sel: {A: b}, condition: sel and missing}\n",
    )
    .unwrap();
    let out = run(&["sigma", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("bad.yml: rule \"broken\": the condition names \"missing\""),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "1 Sigma rules load and compile (1 detection, 0 correlation, 0 filters), 1 failed"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("condition names an undefined identifier"),
        "{stderr}"
    );
    std::fs::remove_file(dir.join("bad.yml")).unwrap();
    let out = run(&["sigma", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    // A regex the specification allows but the engine's size limit does not: `sigma check`
    // says so as `hunt` does (it said 0 failed and hunt dropped the rule).
    std::fs::write(
        dir.join("big.yml"),
        "title: big regex\nid: 00000000-0000-4000-8000-0000000000aa\nlogsource: {category: process_creation, product: windows}\ndetection:\n  sel:\n    CommandLine|re: '(\\w{1000}){1000}'\n  condition: sel\n",
    )
    .unwrap();
    let check = run(&["sigma", "check", dir.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains("big.yml: rule \"big regex\": regex"),
        "{said}"
    );
    let hunt = run(&[
        "hunt",
        "samples/logs",
        "--no-db",
        "--no-builtin",
        "--sigma",
        dir.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&hunt.stderr).contains("big.yml: rule \"big regex\": regex"),
        "{}",
        String::from_utf8_lossy(&hunt.stderr)
    );
}

#[test]
fn sigma_rules_run_beside_or_instead_of_the_pack() {
    let rule = temp_file(
        "sigma-hunt",
        "imds_powershell.yml",
        r#"title: PowerShell Reaching The Instance Metadata Service
id: 3c1b0f0e-5d0a-4b8e-9f5e-000000000005
status: test
level: high
tags: [attack.credential_access, attack.t1552.005]
logsource: {category: process_creation, product: windows}
detection:
    selection:
        Image|endswith: '\powershell.exe'
        CommandLine|contains: '169.254.169.254'
    filter_agent:
        ParentImage|endswith: '\amazon-ssm-agent.exe'
    condition: selection and not filter_agent
"#,
    );
    let out = run_ok(&[
        "hunt",
        "samples/logs/sysmon-wevtutil.xml",
        "--output",
        "jsonl",
        "--sigma",
        rule.to_str().unwrap(),
        "--no-builtin",
    ]);
    let all = alerts(&out);
    // Lines 2 and 3 are PowerShell requesting 169.254.169.254 (Sysmon 1); lines 1 and 4 are not.
    let lines: Vec<u64> = all
        .iter()
        .map(|a| a["source"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3]);
    for a in &all {
        assert_eq!(a["rule_id"], "3c1b0f0e-5d0a-4b8e-9f5e-000000000005");
        assert_eq!(a["severity"], "high");
        assert_eq!(a["attack"][0], "T1552.005");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sigma    1 rules run, 0 correlation rules, 0 files not loaded"),
        "{stderr}"
    );
    // Beside the pack: the pack's alerts are there too.
    let both = alerts(&run(&[
        "hunt",
        "samples/logs/sysmon-wevtutil.xml",
        "--output",
        "jsonl",
        "--sigma",
        rule.to_str().unwrap(),
    ]));
    assert!(both.len() > all.len());
    assert!(both.iter().any(|a| a["rule_id"] == "IMDS-004"));
    let out = run(&["hunt", "samples/logs", "--sigma", "no/such/rules"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigma_keyword_searches_read_every_field() {
    let rule = temp_file(
        "sigma-kw",
        "kw.yml",
        "title: Metadata address anywhere in a Sysmon record\nid: 00000000-0000-4000-8000-00000000000b\nlogsource: {product: windows, service: sysmon}\ndetection:\n  keywords:\n    - '169.254.169.254.nip.io'\n  condition: keywords\n",
    );
    let out = run(&[
        "hunt",
        "samples/logs/sysmon-wevtutil.xml",
        "--output",
        "jsonl",
        "--sigma",
        rule.to_str().unwrap(),
        "--no-builtin",
    ]);
    let lines: Vec<u64> = alerts(&out)
        .iter()
        .map(|a| a["source"]["line"].as_u64().unwrap())
        .collect();
    // Only the DNS query (line 4) holds the name, in QueryName, which the rule never names.
    assert_eq!(lines, [4], "{}", String::from_utf8_lossy(&out.stderr));
}

/// A rule file whose aliases would expand to a billion nodes (under a key no rule reads) is
/// refused by name, and the rules beside it run. Before, memory grew without limit.
#[test]
fn an_alias_bomb_in_a_rule_file_is_refused_and_the_rest_run() {
    let good = temp_file(
        "sigma-bomb",
        "kw.yml",
        "title: Metadata address anywhere in a Sysmon record\nid: 00000000-0000-4000-8000-00000000000e\nlogsource: {product: windows, service: sysmon}\ndetection:\n  keywords:\n    - '169.254.169.254.nip.io'\n  condition: keywords\n",
    );
    let mut bomb = String::from(
        "title: Laughs\nid: 00000000-0000-4000-8000-00000000000f\nlogsource: {product: windows, service: sysmon}\ndetection:\n  sel:\n    Image: x\n  condition: sel\nunused:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    std::fs::write(good.with_file_name("bomb.yml"), bomb).unwrap();
    let out = run(&[
        "hunt",
        "samples/logs/sysmon-wevtutil.xml",
        "--no-db",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        good.parent().unwrap().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bomb.yml"), "{stderr}");
    assert!(stderr.contains("alias bomb"), "{stderr}");
    assert_eq!(alerts(&out).len(), 1, "{stderr}");
}

#[test]
fn one_sigma_rule_runs_over_every_format_through_the_field_map() {
    let win = temp_file(
        "sigma-map",
        "win.yml",
        "title: Process creation naming the metadata address\nid: 00000000-0000-4000-8000-0000000000c1\nlogsource: {category: process_creation, product: windows}\ndetection:\n  sel:\n    CommandLine|contains: '169.254.169.254'\n  condition: sel\n",
    );
    let lin = win.with_file_name("lin.yml");
    std::fs::write(
        &lin,
        "title: Execution from shared memory\nid: 00000000-0000-4000-8000-0000000000c2\nlogsource: {category: process_creation, product: linux}\ndetection:\n  sel:\n    Image|startswith: '/dev/shm/'\n  condition: sel\n",
    )
    .unwrap();
    let out = run(&[
        "hunt",
        "samples/logs",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        win.to_str().unwrap(),
        "--sigma",
        lin.to_str().unwrap(),
    ]);
    let mut got: Vec<(String, String)> = alerts(&out)
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap()[34..].to_owned(),
                a["event"]["format"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    got.dedup();
    // Sysmon (XML, NXLog, Winlogbeat: EventData `CommandLine`), Security 4688 (Sentinel), Defender
    // CSV (`ProcessCommandLine`) through the typed field; auditd's execve for the Linux rule.
    for want in [
        ("c1", "windows-xml"),
        ("c1", "nxlog-json"),
        ("c1", "sentinel-securityevent"),
        ("c1", "defender-csv"),
        ("c2", "auditd"),
    ] {
        assert!(
            got.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {got:?}"
        );
    }
    assert!(
        !got.iter()
            .any(|(r, f)| r == "c2" && f != "auditd" && f != "ecs"),
        "{got:?}"
    );
}

/// The pack exported as Sigma keeps what the pack finds: over the bundled samples, every built-in
/// alert on a process start, connection or DNS query is matched, on the same record, by a Sigma
/// rule exported from the same detection (the export may match more, never less, except where a
/// rule's description says the normalizer reads forms no list spells).
#[test]
fn the_pack_exported_as_sigma_finds_what_the_pack_finds() {
    let out = run_ok(&["rules", "export", "--to", "sigma"]);
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs = yaml.split("\n---\n").count();
    assert!(docs >= 10, "{docs} rules");
    assert!(String::from_utf8_lossy(&out.stderr).contains("IMDS-008 not exported"));
    let file = temp_file("export", "pack.yml", &yaml);
    let check = run(&["sigma", "check", file.to_str().unwrap()]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let builtin = alerts(&run(&["hunt", "samples/logs", "--output", "jsonl"]));
    let sigma = alerts(&run(&[
        "hunt",
        "samples/logs",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        file.to_str().unwrap(),
    ]));
    let titles: std::collections::HashMap<String, String> = builtin
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_owned(),
                a["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut missing = Vec::new();
    for a in &builtin {
        let kind = a["event"]["kind"].as_str().unwrap();
        // IMDS-008 reads container context Sigma cannot name; IMDS-1xx are correlations.
        if !matches!(kind, "process-start" | "network-connect" | "dns-query")
            || a["rule_id"] == "IMDS-008"
            || a["rule_id"].as_str().unwrap().starts_with("IMDS-1")
        {
            continue;
        }
        let title = &titles[a["rule_id"].as_str().unwrap()];
        let found = sigma.iter().any(|s| {
            s["source"] == a["source"] && s["title"].as_str().unwrap().starts_with(title.as_str())
        });
        if !found {
            missing.push(format!("{} at {}", a["rule_id"], a["source"]));
        }
    }
    assert!(missing.is_empty(), "exported Sigma misses: {missing:#?}");
}

/// A store of its own for each run, so that no run learns from another's baseline (tests run
/// in parallel) and none touches the user's own store.
fn fresh_db() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("imdsguard-test-hunt-{}", std::process::id()))
        .join(format!("{n}.db"))
}

#[test]
fn a_sigma_filter_given_beside_the_rules_tunes_them_and_says_so() {
    let suite = "crates/imdsguard-regress/tests/data/suite";
    let rule = format!("{suite}/rules/windows/proc_creation_win_test_whoami_all.yml");
    let filter = format!("{suite}/regression_data/filters/mf_whoami_admins.yml");
    let sample = format!(
        "{suite}/regression_data/rules/windows/whoami/5e8d6a4c-1b2f-4c3d-9e8f-0a1b2c3d4e5f.json"
    );
    let plain = run(&[
        "hunt",
        "--no-db",
        "--no-builtin",
        "--output",
        "jsonl",
        "--sigma",
        &rule,
        &sample,
    ]);
    let got = alerts(&plain);
    assert_eq!(got.len(), 1, "{}", String::from_utf8_lossy(&plain.stderr));
    assert_eq!(got[0]["rule_id"], "5e8d6a4c-1b2f-4c3d-9e8f-0a1b2c3d4e5f");
    let tuned = run(&[
        "hunt",
        "--no-db",
        "--no-builtin",
        "--output",
        "jsonl",
        "--sigma",
        &rule,
        "--sigma",
        &filter,
        &sample,
    ]);
    let err = String::from_utf8_lossy(&tuned.stderr);
    assert!(alerts(&tuned).is_empty(), "{err}");
    assert!(
        err.contains("filter \"Filter whoami by the admin accounts\" tunes 1 rules"),
        "{err}"
    );
    // The exports write the tuned rule, and the filter is no query of its own.
    let kql = run(&["rules", "export", "--to", "kql", &rule, &filter]);
    let text = String::from_utf8_lossy(&kql.stdout);
    assert_eq!(text.matches("DeviceProcessEvents").count(), 1, "{text}");
    assert!(
        text.contains(r#"not((AccountDomain =~ "CORP" and AccountName startswith "adm_"))"#),
        "{text}"
    );
    // A filter that names no loaded rule filters nothing, and the run says so.
    let other = run(&[
        "hunt",
        "--no-db",
        "--no-builtin",
        "--output",
        "jsonl",
        "--sigma",
        &filter,
        "--sigma",
        "crates/imdsguard-regress/tests/data/suite/rules/windows/proc_creation_win_test_neq.yml",
        &sample,
    ]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("it filters nothing"), "{err}");
    assert!(err.contains("invalid Sigma filter"), "{err}");
}

#[test]
fn sigma_test_runs_a_regression_suite_and_fails_on_a_failing_case() {
    let out = run(&["sigma", "test", "crates/imdsguard-regress/tests/data/suite"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS ")).count(),
        3,
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("FAIL ")).count(),
        6,
        "{stdout}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("9 test cases: 3 passed, 6 failed"), "{err}");
    let jsonl = run(&[
        "sigma",
        "test",
        "--output",
        "jsonl",
        "crates/imdsguard-regress/tests/data/suite",
    ]);
    let rows: Vec<Value> = String::from_utf8_lossy(&jsonl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 9);
    assert!(rows
        .iter()
        .any(|r| r["type"] == "jsonl" && r["got"] == 2 && r["want"] == 2));
}

#[test]
fn antivirus_rules_read_defender_detections_under_their_own_field_names() {
    // A Defender 1116 detection as evtx_dump writes it; EventData names carry spaces.
    let record = |id: u32, threat: &str| {
        format!(
            r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-Windows Defender"}}}},"EventID":{id},"Channel":"Microsoft-Windows-Windows Defender/Operational","Computer":"ws01","TimeCreated":{{"#attributes":{{"SystemTime":"2026-11-20T10:00:00Z"}}}}}},"EventData":{{"Threat Name":"{threat}","Path":"file:_C:\\Users\\x\\Downloads\\m.exe"}}}}}}"##
        )
    };
    let logs = [
        record(1116, "HackTool:Win32/Mimikatz.D"),
        record(1116, "Trojan:Win32/Wacatac.B"),
        // Not a detection event: the category's event ids leave it out.
        record(5007, "HackTool:Win32/Mimikatz.D"),
    ]
    .join("\n");
    let file = temp_file("av", "defender.jsonl", &(logs + "\n"));
    let rule = shared_data!("sigma/rules/category/antivirus/av_password_dumper.yml");
    let out = run(&[
        "hunt",
        "--no-db",
        "--no-builtin",
        "--output",
        "jsonl",
        "--sigma",
        rule.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let got = alerts(&out);
    assert_eq!(got.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(got[0]["source"]["line"], 1);
}

#[test]
fn sigma_reads_system_fields_such_as_level_and_keywords() {
    // SigmaHQ tests `Level` and `Keywords` of the System element (a 4673 failure, a KDC error).
    let rule = temp_file(
        "system",
        "rule.yml",
        "title: Failed privileged service call\nid: 11111111-2222-4333-8444-555555555555\nlogsource: {product: windows, service: security}\ndetection:\n    s:\n        EventID: 4673\n        Keywords: '0x8010000000000000'\n        Level: 0\n    condition: s\n",
    );
    let json = |keywords: &str| {
        format!(
            r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-Security-Auditing"}}}},"EventID":4673,"Level":0,"Keywords":"{keywords}","Channel":"Security","Computer":"dc01","TimeCreated":{{"#attributes":{{"SystemTime":"2026-11-20T10:00:00Z"}}}}}},"EventData":{{"Service":"LsaRegisterLogonProcess()"}}}}}}"##
        )
    };
    let logs = temp_file(
        "system",
        "security.jsonl",
        &format!(
            "{}\n{}\n",
            json("0x8010000000000000"),
            json("0x8020000000000000")
        ),
    );
    let xml = temp_file(
        "system",
        "security.xml",
        "<Events><Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing'/><EventID>4673</EventID><Version>0</Version><Level>0</Level><Task>13056</Task><Opcode>0</Opcode><Keywords>0x8010000000000000</Keywords><TimeCreated SystemTime='2026-11-20T10:00:01.000Z'/><EventRecordID>7</EventRecordID><Channel>Security</Channel><Computer>dc01</Computer></System><EventData><Data Name='Service'>LsaRegisterLogonProcess()</Data></EventData></Event></Events>\n",
    );
    let out = run(&[
        "hunt",
        "--no-db",
        "--no-builtin",
        "--output",
        "jsonl",
        "--sigma",
        rule.to_str().unwrap(),
        logs.to_str().unwrap(),
        xml.to_str().unwrap(),
    ]);
    let got = alerts(&out);
    let mut at: Vec<String> = got
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["source"]["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap(),
                a["source"]["line"]
            )
        })
        .collect();
    at.sort();
    assert_eq!(
        at,
        ["security.jsonl:1", "security.xml:1"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Security 1102 carries its fields under `UserData`, not `EventData`: a rule testing one of
/// them matches the real record (EVTX-ATTACK-SAMPLES' RDP tunnel file, record 1: the log
/// cleared by admin01).
#[test]
fn user_data_fields_reach_sigma_rules() {
    let rule = temp_file(
        "userdata",
        "cleared.yml",
        "title: Security log cleared by admin01\nid: 00000000-0000-4000-8000-0000000000d1\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 1102\n    SubjectUserName: admin01\n    SubjectDomainName|startswith: 'EX'\n  condition: sel\n",
    );
    let evtx = shared_data!("evtx/evtxattack_DE_RDP_Tunnel_5156.evtx");
    let out = run(&[
        "hunt",
        evtx.to_str().unwrap(),
        "--no-db",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rule.to_str().unwrap(),
    ]);
    let got: Vec<Value> = alerts(&out);
    assert_eq!(got.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(got[0]["event"]["id"], "1102");
}

/// Sigma's `network_connection` rules are written for Sysmon 3; Security 5156 says the same
/// things under other names (`Direction %%14593` is `Initiated: 'true'`). SigmaHQ's "Outbound
/// RDP Connections Over Non-Standard Tools" matches plink.exe's two outbound 5156 connections
/// to port 3389 in EVTX-ATTACK-SAMPLES' RDP tunnel file, the records Hayabusa reports, cited by
/// their `EventRecordID` as Event Viewer shows them, with the record header's number beside.
#[test]
fn network_connection_rules_read_security_5156_and_alerts_cite_event_record_ids() {
    let shared = shared_data!("");
    // Every network_connection rule: the Sysmon-only ones must not misfire on 5156 either
    // (its lsass.exe is `\device\harddiskvolume1\…`, which the Kerberos rule's filter writes
    // as `C:\Windows\System32\lsass.exe`).
    let rule = shared.join("sigma/rules/windows/network_connection");
    let evtx = shared.join("evtx/evtxattack_DE_RDP_Tunnel_5156.evtx");
    let out = run(&[
        "hunt",
        evtx.to_str().unwrap(),
        "--no-db",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rule.to_str().unwrap(),
    ]);
    let got: Vec<(u64, u64, String)> = alerts(&out)
        .iter()
        .map(|a| {
            assert_eq!(a["rule_id"], "ed74fe75-7594-4b4b-ae38-e38e3fd2eb23", "{a}");
            // The alert carries the record fields the rule matched on.
            let fields = &a["event"]["fields"];
            assert_eq!(fields["Initiated"], "true", "{a}");
            assert_eq!(
                fields["Image"], "C:\\users\\user01\\desktop\\plink.exe",
                "{a}"
            );
            (
                a["source"]["record"].as_u64().unwrap(),
                a["source"]["header_record"].as_u64().unwrap(),
                a["event"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (227727, 25, "5156".to_owned()),
            (227741, 37, "5156".to_owned())
        ],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peers = std::fs::read_to_string(shared.join("peers/hayabusa-hits.tsv")).unwrap();
    for (record, _, _) in &got {
        assert!(
            peers.lines().any(|l| l.starts_with("ed74fe75")
                && l.ends_with(&format!("evtxattack_DE_RDP_Tunnel_5156.evtx\t{record}"))),
            "Hayabusa does not report record {record}"
        );
    }
}

/// A Sigma condition nested 100,000 deep (`not not … sel`, or parentheses) is refused by name,
/// quoted short, and the run goes on with the other rules: no stack overflow kills it.
#[test]
fn a_condition_too_deep_is_refused_and_the_run_goes_on() {
    let deep = temp_file(
        "deep-condition",
        "deep.yml",
        &format!(
            "title: Deep\nid: 00000000-0000-4000-8000-0000000000e1\nlogsource: {{category: process_creation, product: windows}}\ndetection:\n  sel:\n    CommandLine|contains: '169.254.169.254'\n  condition: {}sel\n",
            "not ".repeat(100_000)
        ),
    );
    std::fs::write(
        deep.with_file_name("fine.yml"),
        "title: Fine\nid: 00000000-0000-4000-8000-0000000000e2\nlogsource: {category: process_creation, product: windows}\ndetection:\n  sel:\n    CommandLine|contains: '169.254.169.254'\n  condition: sel\n",
    )
    .unwrap();
    let out = run(&[
        "hunt",
        "samples/logs",
        "--no-db",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        deep.parent().unwrap().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("nests deeper than 64 levels"), "{stderr}");
    assert!(stderr.len() < 20_000, "the condition is quoted whole");
    assert!(stderr.contains("1 rules run"), "{stderr}");
    assert!(!alerts(&out).is_empty());
}

/// `--min-severity` chooses what is shown; the store keeps every alert. `--fail-on` judges what
/// is shown: an alert hidden by `--min-severity`, or the hit of a rule that only feeds a
/// correlation (not an alert), never makes the exit status 1 with nothing printed.
#[test]
fn fail_on_judges_the_alerts_shown_and_the_store_keeps_them_all() {
    let medium = temp_file(
        "fail-on",
        "curl.ndjson",
        r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"h"},"process":{"pid":9,"executable":"/usr/bin/curl"},"destination":{"ip":"169.254.169.254","port":80}}
"#,
    );
    let db = medium.with_file_name("store.db");
    let out = bin()
        .args(["hunt", medium.to_str().unwrap(), "--output", "jsonl"])
        .args(["--min-severity", "high", "--fail-on", "medium", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("1 below --min-severity high not shown (the store keeps them)"),
        "{stderr}"
    );
    let kept = bin()
        .args(["alerts", "--output", "jsonl", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let kept: Vec<Value> = String::from_utf8_lossy(&kept.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["rule_id"], "IMDS-001");
    assert_eq!(kept[0]["severity"], "medium");
    // Shown, it fails the run.
    let out = run(&[
        "hunt",
        medium.to_str().unwrap(),
        "--output",
        "jsonl",
        "--fail-on",
        "medium",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(alerts(&out).len(), 1);

    // A critical rule that only feeds a correlation which never fires: no alert, exit 0.
    let rules = medium.with_file_name("feeding.yml");
    std::fs::write(
        &rules,
        "title: Curl to the metadata service\nid: 00000000-0000-4000-8000-0000000000f1\nname: curl_imds\nlogsource: {category: network_connection, product: linux}\ndetection:\n  sel:\n    Image|endswith: '/curl'\n  condition: sel\nlevel: critical\n---\ntitle: Many curls\nid: 00000000-0000-4000-8000-0000000000f2\ncorrelation:\n  type: event_count\n  rules: [curl_imds]\n  group-by: [Computer]\n  timespan: 1m\n  condition: {gte: 100}\nlevel: high\n",
    )
    .unwrap();
    let out = run(&[
        "hunt",
        medium.to_str().unwrap(),
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rules.to_str().unwrap(),
        "--fail-on",
        "low",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(alerts(&out).is_empty());
}

/// SigmaHQ's "Boot Configuration Tampering Via Bcdedit.EXE" on its real records (the Atomic Red
/// Team run in EVTX-ATTACK-SAMPLES, records 3648 and 3650, as Chainsaw reports them): the
/// alerts carry no metadata playbook (no firewall rule against bcdedit.exe, no IMDSv2 advice),
/// since they are not about the metadata service.
#[test]
fn a_sigma_alert_about_something_else_gets_no_metadata_triage() {
    let shared = shared_data!("");
    let rule = shared.join(
        "sigma/rules/windows/process_creation/proc_creation_win_bcdedit_boot_conf_tamper.yml",
    );
    let evtx = shared.join("evtx/evtxattack_PanacheSysmon_vs_AtomicRedTeam01.evtx");
    let out = run(&[
        "hunt",
        evtx.to_str().unwrap(),
        "--no-db",
        "--output",
        "jsonl",
        "--no-builtin",
        "--sigma",
        rule.to_str().unwrap(),
    ]);
    let all = alerts(&out);
    let records: Vec<u64> = all
        .iter()
        .map(|a| a["source"]["record"].as_u64().unwrap())
        .collect();
    assert_eq!(
        records,
        [3648, 3650],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for a in &all {
        assert!(a.get("triage").is_none(), "{a}");
    }
}

/// Nothing analysed is no success: an empty folder, a folder of files in no supported format,
/// and a Sigma-only run whose every rule failed to load end with status 2 and one sentence.
#[test]
fn nothing_analysed_ends_with_status_2_and_says_why() {
    let empty = temp_file("nothing", "keep", "")
        .parent()
        .unwrap()
        .join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&["hunt", "--no-db", empty.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nothing analysed: no file found in the inputs given"),
        "{err}"
    );

    let notes = temp_file("nothing-unsupported", "notes.txt", "hello\n");
    temp_file("nothing-unsupported", "rule.yml", "title: x\n");
    let out = run(&["hunt", "--no-db", notes.parent().unwrap().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nothing analysed: the 2 files found are in no supported log format"),
        "{err}"
    );

    let bad = temp_file("nothing-rules", "r.yml", "title: no logsource\n");
    let out = run(&[
        "hunt",
        "--no-db",
        "--no-builtin",
        "--sigma",
        bad.to_str().unwrap(),
        "samples/logs",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("no rule to run: --no-builtin, and no Sigma rule both loaded and was selected (1 failed to load"),
        "{err}"
    );
}

/// Hidden entries met while walking (`.git`) are passed over and said once per folder; a
/// hidden folder named on the command line is read.
#[test]
fn hidden_entries_are_passed_over_unless_named() {
    let audit = std::fs::read_to_string(repo().join("samples/logs/linux-audit.log")).unwrap();
    let root = temp_file("hidden", "keep", "")
        .parent()
        .unwrap()
        .join("tree");
    for d in ["logs", ".git"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("logs/audit.log"), &audit).unwrap();
    std::fs::write(root.join(".git/audit.log"), &audit).unwrap();
    let out = run(&[
        "hunt",
        "--no-db",
        "--output",
        "jsonl",
        root.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let found = alerts(&out);
    assert!(!found.is_empty());
    assert!(found
        .iter()
        .all(|a| !a["source"]["path"].as_str().unwrap().contains("/.git/")));
    assert!(
        err.contains(&format!(
            "passed over: {}: 1 hidden entries not read (.git): name them to read them",
            root.display()
        )),
        "{err}"
    );
    let named = run(&[
        "hunt",
        "--no-db",
        "--output",
        "jsonl",
        root.join(".git").to_str().unwrap(),
    ]);
    assert_eq!(alerts(&named).len(), found.len());
}

/// A reader that goes away (`| head -1`) ends the run quietly, with status 0.
#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = bin()
        .current_dir(repo())
        .args(["hunt", "--no-db", "--output", "jsonl", "samples/logs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("{\"type\":\"alert\",\"id\""), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("error"), "{err}");
}

/// ZIP and tar archives (plain and gzip) are read like a folder of their members: the same
/// alerts as the files themselves, each cited as `archive!member`; hidden members
/// (`__MACOSX/`) are passed over and said.
#[test]
fn archives_are_read_member_by_member() {
    let dir = temp_file("archives", "keep", "")
        .parent()
        .unwrap()
        .to_owned();
    let members = [
        "samples/logs/linux-audit.log",
        "samples/logs/windows-nxlog.jsonl",
    ];
    let script = format!(
        r#"
import tarfile, zipfile, os
os.chdir({repo:?})
members = {members:?}
z = zipfile.ZipFile({zip:?}, "w", zipfile.ZIP_DEFLATED)
for m in members:
    z.write(m, "logs/" + os.path.basename(m))
z.writestr("__MACOSX/logs/._linux-audit.log", b"\x00\x05\x16\x07")
z.close()
for path, mode in (({tar:?}, "w"), ({tgz:?}, "w:gz")):
    t = tarfile.open(path, mode)
    for m in members:
        t.add(m, "logs/" + os.path.basename(m))
    t.close()
"#,
        repo = repo().display().to_string(),
        zip = dir.join("logs.zip").display().to_string(),
        tar = dir.join("logs.tar").display().to_string(),
        tgz = dir.join("logs.tar.gz").display().to_string(),
    );
    let made = std::process::Command::new("python3")
        .args(["-c", &script])
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "python3 is needed to build the archives"
    );
    let plain = run(&[
        "hunt", "--no-db", "--output", "jsonl", members[0], members[1],
    ]);
    let key = |a: &Value| {
        let path = a["source"]["path"].as_str().unwrap();
        let file = path.rsplit(['/', '!']).next().unwrap().to_owned();
        (
            a["rule_id"].as_str().unwrap().to_owned(),
            file,
            a["source"]["line"].as_u64(),
        )
    };
    let mut want: Vec<_> = alerts(&plain).iter().map(key).collect();
    want.sort();
    assert!(!want.is_empty());
    for archive in ["logs.zip", "logs.tar", "logs.tar.gz"] {
        let path = dir.join(archive);
        let out = run(&[
            "hunt",
            "--no-db",
            "--output",
            "jsonl",
            path.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{archive}: {err}");
        let found = alerts(&out);
        let mut got: Vec<_> = found.iter().map(key).collect();
        got.sort();
        assert_eq!(got, want, "{archive}: {err}");
        assert!(found.iter().all(|a| a["source"]["path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}!logs/", path.display()))));
        assert!(
            err.contains("imdsguard: 2 files (0 in no supported format)"),
            "{archive}: {err}"
        );
        if archive == "logs.zip" {
            assert!(err.contains("1 hidden members not read"), "{err}");
        }
    }
}

/// Color: `--color always` colors a pipe, `never` never does, and `auto` colors a terminal
/// (a real pseudo-terminal, through `script`) unless `NO_COLOR` is set.
#[test]
fn color_follows_color_and_no_color() {
    let esc = |out: &[u8]| String::from_utf8_lossy(out).matches("\x1b[").count();
    let piped = |when: &str| {
        run(&[
            "hunt",
            "--no-db",
            "samples/logs",
            "--output",
            "table",
            "--color",
            when,
        ])
        .stdout
    };
    assert!(esc(&piped("always")) > 0);
    assert_eq!(esc(&piped("never")), 0);
    assert_eq!(esc(&piped("auto")), 0, "a pipe is no terminal");
    let on_terminal = |no_color: Option<&str>| {
        let mut c = std::process::Command::new("script");
        c.current_dir(repo())
            .env("IMDSGUARD_DB", fresh_db())
            .args(["-qec"])
            .arg(format!(
                "{} hunt --no-db samples/logs --output table",
                env!("CARGO_BIN_EXE_imdsguard")
            ))
            .arg("/dev/null");
        match no_color {
            Some(v) => c.env("NO_COLOR", v),
            None => c.env_remove("NO_COLOR"),
        };
        c.output()
    };
    let Ok(plain) = on_terminal(None) else {
        eprintln!("skipped: no `script` to give the run a terminal");
        return;
    };
    assert!(plain.status.success());
    // Severity names are colored (ESC [ 3x m) on a terminal.
    assert!(String::from_utf8_lossy(&plain.stdout).contains("\x1b[3"));
    let no_color = on_terminal(Some("1")).unwrap();
    assert!(!String::from_utf8_lossy(&no_color.stdout).contains("\x1b[3"));
}

/// Exporting a detection that has no Sigma form says so in words, not "no rule".
#[test]
fn exporting_a_rule_with_no_sigma_form_says_why() {
    let out = run(&["rules", "export", "--to", "kql", "--rule", "IMDS-008"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "IMDS-008 cannot be written in kql: it has no Sigma form (needs container context"
        ),
        "{err}"
    );
    assert!(err.contains("not exported for network_connection"), "{err}");
    assert!(
        !err.contains("Some(") && !err.contains("NetworkConnection"),
        "{err}"
    );
    let out = run(&["rules", "export", "--to", "kql", "--rule", "IMDS-999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rule IMDS-999 in the pack"));
}

/// `--from`/`--to` analyse only the events inside the window: the alerts are those of a hunt
/// whose times fall inside it, and the events left out are counted.
#[test]
fn from_and_to_keep_the_events_inside_the_window() {
    let all = alerts(&run(&[
        "hunt",
        "--no-db",
        "--output",
        "jsonl",
        "samples/logs",
    ]));
    let (from, to) = ("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z");
    let out = run(&[
        "hunt",
        "--no-db",
        "--output",
        "jsonl",
        "samples/logs",
        "--from",
        from,
        "--to",
        to,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let inside = alerts(&out);
    assert!(!inside.is_empty());
    assert!(inside.len() < all.len());
    for a in &inside {
        let t = a["time"].as_str().unwrap();
        assert!(t >= from && t < to, "{a}");
    }
    // The same per-event alerts as the whole hunt's inside the window.
    let ids = |v: &[Value]| {
        let mut ids: Vec<String> = v
            .iter()
            .filter(|a| a["rule_id"].as_str().unwrap().starts_with("IMDS-00"))
            .filter(|a| {
                let t = a["time"].as_str().unwrap_or("");
                t >= from && t < to
            })
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&inside), ids(&all));
    assert!(
        err.contains("events outside --from/--to: not analysed"),
        "{err}"
    );
    let bad = run(&[
        "hunt",
        "--no-db",
        "samples/logs",
        "--from",
        to,
        "--to",
        from,
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Sigma rules are selected as Hayabusa selects them: deprecated and unsupported ones are left
/// out unless asked for, and level, tag and id narrow the rest; what was left out is counted.
#[test]
fn sigma_rules_are_selected_by_status_level_tag_and_id() {
    let rule = |name: &str, status: &str, level: &str, tag: &str| {
        temp_file(
            "select",
            &format!("{name}.yml"),
            &format!(
                "title: {name}\nid: {name}-0000-0000-0000-000000000000\nstatus: {status}\nlevel: {level}\ntags:\n  - {tag}\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  s:\n    Image|endswith: '\\curl.exe'\n  condition: s\n"
            ),
        )
    };
    rule("aaaaaaaa", "stable", "high", "attack.t1552.005");
    rule("bbbbbbbb", "test", "medium", "attack.execution");
    rule("cccccccc", "deprecated", "high", "attack.t1552.005");
    let dir = rule("dddddddd", "unsupported", "critical", "attack.t1552.005");
    let dir = dir.parent().unwrap().to_str().unwrap().to_owned();
    let hunt = |extra: &[&str]| {
        let mut args = vec![
            "hunt",
            "--no-db",
            "--no-builtin",
            "--output",
            "jsonl",
            "--sigma",
            &dir,
        ];
        args.extend_from_slice(extra);
        args.push("samples/logs");
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        let mut rules: Vec<String> = alerts(&out)
            .iter()
            .map(|a| a["title"].as_str().unwrap().to_owned())
            .collect();
        rules.sort();
        rules.dedup();
        (rules, err)
    };
    let (rules, err) = hunt(&[]);
    assert_eq!(rules, ["aaaaaaaa", "bbbbbbbb"], "{err}");
    assert!(err.contains("not selected (status deprecated): 1"), "{err}");
    assert!(
        err.contains("not selected (status unsupported): 1"),
        "{err}"
    );
    let (rules, _) = hunt(&["--include-deprecated", "--include-unsupported"]);
    assert_eq!(rules.len(), 4);
    let (rules, err) = hunt(&["--min-level", "high"]);
    assert_eq!(rules, ["aaaaaaaa"], "{err}");
    assert!(err.contains("not selected (level): 1"), "{err}");
    let (rules, _) = hunt(&["--exact-level", "medium"]);
    assert_eq!(rules, ["bbbbbbbb"]);
    let (rules, _) = hunt(&["--tag", "ATTACK.EXECUTION"]);
    assert_eq!(rules, ["bbbbbbbb"]);
    let (rules, _) = hunt(&["--rule-id", "aaaaaaaa-0000-0000-0000-000000000000"]);
    assert_eq!(rules, ["aaaaaaaa"]);
}

/// Timelines: CSV and JSON lines in time order, one row per alert, with each profile's columns
/// (Timesketch's three required ones first in its profile).
#[test]
fn timelines_are_in_time_order_with_each_profiles_columns() {
    let all = alerts(&run(&[
        "hunt",
        "--no-db",
        "--output",
        "jsonl",
        "samples/logs",
    ]));
    let out = run(&[
        "hunt",
        "--no-db",
        "--output",
        "csv-timeline",
        "samples/logs",
    ]);
    assert!(out.status.success());
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header[..8],
        [
            "Timestamp",
            "Computer",
            "Channel",
            "EventID",
            "Level",
            "RuleTitle",
            "Details",
            "RecordID"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), all.len());
    let times: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    let id = header.iter().position(|h| h == "AlertID").unwrap();
    let mut ids: Vec<&str> = rows.iter().map(|r| &r[id]).collect();
    ids.sort();
    let mut want: Vec<&str> = all.iter().map(|a| a["id"].as_str().unwrap()).collect();
    want.sort();
    assert_eq!(ids, want);
    let sysmon = rows
        .iter()
        .find(|r| &r[2] == "Microsoft-Windows-Sysmon/Operational")
        .expect("a Sysmon row names its channel");
    assert!(sysmon[6].starts_with("Proc: "), "{sysmon:?}");

    let out = run(&[
        "hunt",
        "--no-db",
        "--output",
        "json-timeline",
        "--profile",
        "timesketch",
        "samples/logs",
    ]);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), all.len());
    for l in &lines {
        assert!(l["datetime"].as_str().is_some_and(|t| !t.is_empty()), "{l}");
        assert_eq!(l["timestamp_desc"], "Event Time");
        assert!(l["message"].as_str().unwrap().contains(": "), "{l}");
    }
    let minimal = run(&[
        "hunt",
        "--no-db",
        "--output",
        "csv-timeline",
        "--profile",
        "minimal",
        "samples/logs",
    ]);
    let first = String::from_utf8_lossy(&minimal.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        first,
        "Timestamp,Computer,Channel,EventID,Level,RuleTitle,Details"
    );
}

/// A rule given twice (its file beside its folder) is exported once, and said to be.
#[test]
fn a_rule_given_twice_is_exported_once() {
    let rule = temp_file(
        "twice",
        "r.yml",
        "title: Curl\nid: 0b5e1c36-0000-4a2e-9d0a-1f6b3e1f0a11\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  s:\n    Image|endswith: '\\curl.exe'\n  condition: s\n",
    );
    let dir = rule.parent().unwrap().to_str().unwrap().to_owned();
    let out = run(&[
        "rules",
        "export",
        "--to",
        "kql",
        "--output",
        "jsonl",
        &dir,
        rule.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("1 rules given more than once, written once"),
        "{err}"
    );
}

/// Files are read in path order, but correlation sees the whole input in time order: a token
/// request in a file read second still comes before the credential read it precedes (IMDS-101),
/// alerts come in time order, and nothing is called late. With `--reorder 1m` (bounded
/// lateness, alerts as the input is read) the sequence across files is missed and the summary
/// says so in plain words; with too little `--reorder-memory` the same, naming the limit.
#[test]
fn the_whole_input_is_correlated_in_time_order_across_files() {
    let rec = |t: &str, pid: u32, cmd: &str| {
        serde_json::json!({
            "EventTime": t, "Hostname": "web01.corp.example", "SourceModuleType": "im_msvistalog",
            "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "ProcessId": pid.to_string(), "Image": "C:\\Windows\\System32\\curl.exe",
            "CommandLine": cmd, "User": "CORP\\svc-web", "ParentProcessId": "5120",
            "ParentImage": "C:\\Windows\\System32\\cmd.exe", "ParentCommandLine": "cmd.exe"
        })
        .to_string()
    };
    let put = "curl -s -X PUT http://169.254.169.254/latest/api/token -H \"X-aws-ec2-metadata-token-ttl-seconds: 21600\"";
    let get = "curl -s -H \"X-aws-ec2-metadata-token: AQAE\" http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role";
    let other = "curl -s http://169.254.169.254/latest/meta-data/instance-id";
    let a = temp_file(
        "order",
        "a-later.jsonl",
        &format!(
            "{}\n{}\n",
            rec("2026-11-20 09:14:30", 7001, get),
            rec("2026-11-20 10:30:00", 7002, other)
        ),
    );
    temp_file(
        "order",
        "b-earlier.jsonl",
        &format!("{}\n", rec("2026-11-20 09:14:07", 7000, put)),
    );
    let dir = a.parent().unwrap().to_str().unwrap().to_owned();
    let rules = |out: &Output| -> Vec<(String, String)> {
        alerts(out)
            .iter()
            .filter(|v| v["type"] == "alert")
            .map(|v| {
                (
                    v["time"].as_str().unwrap().to_owned(),
                    v["rule_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let out = run(&["hunt", &dir, "--no-db", "--output", "jsonl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let got = rules(&out);
    assert!(
        got.contains(&("2026-11-20T09:14:30.000Z".into(), "IMDS-101".into())),
        "{got:?}\n{stderr}"
    );
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "alerts in time order");
    assert!(!stderr.contains("correlate"), "{stderr}");

    let out = run(&[
        "hunt",
        &dir,
        "--no-db",
        "--output",
        "jsonl",
        "--reorder",
        "1m",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !rules(&out).iter().any(|(_, r)| r == "IMDS-101"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "correlate 1 events came more than --reorder 1m behind newer ones (inputs not in time order)"
        ),
        "{stderr}"
    );

    let out = run(&[
        "hunt",
        &dir,
        "--no-db",
        "--output",
        "jsonl",
        "--reorder-memory",
        "1K",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !rules(&out).iter().any(|(_, r)| r == "IMDS-101"),
        "{stderr}"
    );
    assert!(
        stderr.contains("correlate the records held to put the input in time order reached --reorder-memory 1 KiB: 1 were correlated before the input was read to its end, and 1 came older"),
        "{stderr}"
    );
    let out = run(&["hunt", &dir, "--no-db", "--reorder-memory", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected a number and a unit, like 512M"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a terminal (a real pseudo-terminal, through `script`) a hunt over files shows a progress
/// bar by bytes: percentage, bytes of the total, rate and time left; through a pipe it shows
/// none, and `--no-progress` turns it off.
#[test]
fn a_terminal_gets_a_progress_bar_by_bytes() {
    let sample = std::fs::read_to_string(repo().join("samples/logs/windows-nxlog.jsonl")).unwrap();
    let big = temp_file("progress", "big.jsonl", &sample.repeat(600));
    let size = std::fs::metadata(&big).unwrap().len();
    let on_terminal = |extra: &str| {
        std::process::Command::new("script")
            .current_dir(repo())
            .env("IMDSGUARD_DB", fresh_db())
            .env_remove("NO_COLOR")
            .args(["-qec"])
            .arg(format!(
                "{} hunt --no-db {} -o /dev/null {extra}",
                env!("CARGO_BIN_EXE_imdsguard"),
                big.display()
            ))
            .arg("/dev/null")
            .output()
    };
    let Ok(shown) = on_terminal("") else {
        eprintln!("skipped: no `script` to give the run a terminal");
        return;
    };
    assert!(shown.status.success());
    let text = String::from_utf8_lossy(&shown.stdout);
    let total = format!("{:.2} MiB", size as f64 / 1_048_576.0);
    // The last state drawn: everything read, of the files' total size.
    assert!(
        text.contains(&format!("100% {total}/{total}")),
        "{total}: {text}"
    );
    assert!(text.contains("/s ETA "), "{text}");
    let hidden = on_terminal("--no-progress").unwrap();
    assert!(
        !String::from_utf8_lossy(&hidden.stdout).contains("ETA"),
        "{}",
        String::from_utf8_lossy(&hidden.stdout)
    );
    let piped = run(&["hunt", "--no-db", big.to_str().unwrap(), "-o", "/dev/null"]);
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("ETA"));
}

/// `--ext` chooses which of a directory's files are read (any case, with or without the dot,
/// several allowed); the others are said once per folder; a file named on the command line is
/// read whatever its name; the progress total counts only what is read.
#[test]
fn ext_chooses_the_files_a_directory_gives() {
    let audit = std::fs::read_to_string(repo().join("samples/logs/linux-audit.log")).unwrap();
    let nxlog = std::fs::read_to_string(repo().join("samples/logs/windows-nxlog.jsonl")).unwrap();
    let dir = temp_file("ext", "a.LOG", &audit)
        .parent()
        .unwrap()
        .to_owned();
    std::fs::write(dir.join("b.jsonl"), &nxlog).unwrap();
    std::fs::write(dir.join("c.txt"), &nxlog).unwrap();
    let sources = |out: &Output| -> std::collections::BTreeSet<String> {
        alerts(out)
            .iter()
            .filter(|a| a["type"] == "alert")
            .map(|a| {
                let p = a["source"]["path"].as_str().unwrap();
                p.rsplit('/').next().unwrap().to_owned()
            })
            .collect()
    };
    let d = dir.to_str().unwrap();
    let all = run(&["hunt", "--no-db", "--output", "jsonl", d]);
    assert_eq!(
        sources(&all),
        ["a.LOG", "b.jsonl", "c.txt"].map(String::from).into()
    );
    let some = run(&[
        "hunt", "--no-db", "--output", "jsonl", "--ext", ".log", "--ext", "JSONL", d,
    ]);
    let err = String::from_utf8_lossy(&some.stderr);
    assert_eq!(
        sources(&some),
        ["a.LOG", "b.jsonl"].map(String::from).into(),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{d}: 1 files not named .log, .jsonl not read (--ext)"
        )),
        "{err}"
    );
    let named = run(&[
        "hunt",
        "--no-db",
        "--output",
        "jsonl",
        "--ext",
        "log",
        dir.join("c.txt").to_str().unwrap(),
    ]);
    assert_eq!(sources(&named), ["c.txt"].map(String::from).into());
    let bad = run(&["hunt", "--no-db", "--ext", "a/b", d]);
    assert_eq!(bad.status.code(), Some(2));
}

/// SigmaHQ's web server, proxy and firewall rules run on the typed requests and flows of every
/// web, proxy and network format, their pySigma field names read from the typed fields: a
/// webserver rule fires on an access log and not on the same request through a forward proxy;
/// a proxy rule fires on requests seen on the wire (OTRF's APT29 WebDAV download); a firewall
/// rule on an accepted flow and not on a rejected one.
#[test]
fn sigma_web_proxy_and_firewall_rules_run_on_network_logs() {
    let web = shared_data!("sigma/rules/web");
    let firewall = shared_data!("sigma/rules/network/firewall");
    let apt29 = shared_data!("net/otrf_apt29_day1_SCRANTON_zeek_json_http.log");
    let access = temp_file(
        "sigma-web",
        "access.log",
        "198.51.100.77 - - [20/Nov/2026:10:00:00 +0000] \"GET /download?file=../../../etc/passwd HTTP/1.1\" 400 0 \"-\" \"Mozilla/5.0\"\n\
         198.51.100.7 - - [20/Nov/2026:10:00:02 +0000] \"GET / HTTP/1.1\" 200 5120 \"-\" \"Mozilla/5.0\"\n",
    );
    let proxy = temp_file(
        "sigma-web",
        "squid.log",
        "1795165201.114     87 10.0.2.31 TCP_MISS/200 5120 GET http://198.51.100.9/../../../etc/passwd - HIER_DIRECT/198.51.100.9 text/plain\n",
    );
    let flows = temp_file(
        "sigma-web",
        "flows.log",
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 49761 21 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 49762 23 6 20 4249 1418530010 1418530070 REJECT OK\n",
    );
    let out = bin()
        .current_dir(repo())
        .args(["hunt", "--no-builtin", "--sigma"])
        .arg(&web)
        .arg("--sigma")
        .arg(&firewall)
        .args([&access, &proxy, &flows, &apt29])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let hits: Vec<(String, String)> = alerts(&out)
        .iter()
        .map(|a| {
            let src = &a["source"];
            let file = src["path"].as_str().unwrap().rsplit('/').next().unwrap();
            (
                a["title"].as_str().unwrap().to_owned(),
                format!("{file}:{}", src["line"]),
            )
        })
        .collect();
    let lines_of = |title: &str| -> Vec<&str> {
        hits.iter()
            .filter(|(t, _)| t == title)
            .map(|(_, at)| at.as_str())
            .collect()
    };
    assert_eq!(
        lines_of("Path Traversal Exploitation Attempts"),
        ["access.log:1"],
        "{hits:?}"
    );
    assert_eq!(
        lines_of("Cleartext Protocol Usage"),
        ["flows.log:1"],
        "{hits:?}"
    );
    let webdav = lines_of("Windows WebDAV User Agent");
    assert!(!webdav.is_empty(), "{hits:?}");
    assert!(webdav
        .iter()
        .all(|at| at.starts_with("otrf_apt29_day1_SCRANTON_zeek_json_http.log:")));
    // The forward proxy's request is no web server's: no webserver rule reads it.
    assert!(
        hits.iter().all(|(_, at)| !at.starts_with("squid.log")),
        "{hits:?}"
    );
    assert!(
        stderr.contains("not loaded: log source not mapped to any input       3"),
        "{stderr}"
    );
}

/// Lookups and connections a network monitor saw name no process and no host: the alert names
/// the address that asked, and each address's alerts are one incident.
#[test]
fn wire_records_name_the_asking_address_and_group_by_it() {
    let dns = temp_file(
        "wire-dns",
        "dns.log",
        "{\"ts\":1795165930.0,\"uid\":\"D1\",\"id.orig_h\":\"10.0.1.15\",\"id.orig_p\":5353,\"id.resp_h\":\"10.0.0.2\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"169.254.169.254.nip.io\",\"qtype_name\":\"A\"}\n\
         {\"ts\":1795165932.0,\"uid\":\"D3\",\"id.orig_h\":\"10.0.1.16\",\"id.orig_p\":5355,\"id.resp_h\":\"10.0.0.2\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"metadata.google.internal\",\"qtype_name\":\"A\"}\n",
    );
    let out = bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&dns)
        .output()
        .unwrap();
    assert!(out.status.success());
    let all = alerts(&out);
    let by_src = |ip: &str| -> Vec<&Value> {
        all.iter()
            .filter(|a| a["network"]["src_ip"] == ip)
            .collect()
    };
    let first = by_src("10.0.1.15");
    let second = by_src("10.0.1.16");
    // The rebinding name is obfuscation too; the plain name is not.
    let rules = |v: &[&Value]| -> Vec<String> {
        let mut r: Vec<String> = v
            .iter()
            .map(|a| a["rule_id"].as_str().unwrap().to_owned())
            .collect();
        r.sort();
        r
    };
    assert_eq!(rules(&first), ["IMDS-001", "IMDS-005"]);
    assert_eq!(rules(&second), ["IMDS-001"]);
    assert!(first[0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("(169.254.169.254.nip.io) was looked up"));
    let incidents: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "incident")
        .collect();
    let hosts: Vec<&str> = incidents
        .iter()
        .map(|i| i["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["client 10.0.1.15", "client 10.0.1.16"],
        "{incidents:?}"
    );
}

/// SigmaHQ's `product: zeek` rules for the http, dns and conn services read Zeek's own field
/// names from the records: its WebDAV-executable rule fires on OTRF APT29's Zeek http log (the
/// python.exe fetched over WebDAV), and on nothing else of the public network logs.
#[test]
fn sigma_zeek_rules_read_zeeks_own_fields() {
    let zeek_rules = shared_data!("sigma/rules/network/zeek");
    let net = shared_data!("net");
    let out = bin()
        .current_dir(repo())
        .args(["hunt", "--no-db", "--no-builtin", "--sigma"])
        .arg(&zeek_rules)
        .arg(&net)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let all = alerts(&out);
    assert!(!all.is_empty(), "{stderr}");
    for a in &all {
        assert_eq!(a["title"], "Executable from Webdav", "{a}");
        let path = a["source"]["path"].as_str().unwrap();
        assert!(
            path.ends_with("otrf_apt29_day1_SCRANTON_zeek_json_http.log"),
            "{path}"
        );
    }
    assert!(stderr.contains("sigma    8 rules run"), "{stderr}");
}

/// Sigma's cloud rules run on the cloud audit logs under the provider's own field names:
/// CloudTrail's dotted paths (an object's JSON for `requestParameters|contains`), Azure's
/// `operationName` whether a string or `{"value": …}`, Google's `gcp.audit.method_name` as
/// SigmaHQ's rules write it.
#[test]
fn sigma_cloud_rules_read_cloudtrail_azure_activity_and_gcp_audit_fields() {
    let rules = [
        ("ct.yml", "title: ct\nid: 11111111-1111-4111-8111-111111111111\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventSource: s3.amazonaws.com\n    userIdentity.sessionContext.ec2RoleDelivery: '1.0'\n    requestParameters|contains: 'shop-orders'\n  condition: sel\nlevel: high\n"),
        ("az.yml", "title: az\nid: 22222222-2222-4222-8222-222222222222\nlogsource:\n  product: azure\n  service: activitylogs\ndetection:\n  sel:\n    operationName: MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION\n  condition: sel\nlevel: high\n"),
        ("gcp.yml", "title: gcp\nid: 33333333-3333-4333-8333-333333333333\nlogsource:\n  product: gcp\n  service: gcp.audit\ndetection:\n  sel:\n    gcp.audit.method_name: storage.objects.get\n  condition: sel\nlevel: high\n"),
    ];
    let mut dir = None;
    for (name, text) in rules {
        dir = Some(
            temp_file("sigma-cloud", name, text)
                .parent()
                .unwrap()
                .to_owned(),
        );
    }
    let logs = temp_file(
        "sigma-cloud-logs",
        "cloud.json",
        concat!(
            r#"{"eventTimestamp":"2026-11-20T09:00:00Z","operationName":{"value":"MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION"},"caller":"p-1","claims":{"xms_mirid":"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web1"},"httpRequest":{"clientIpAddress":"198.51.100.23"},"status":{"value":"Succeeded"}}"#,
            "\n",
            r#"{"insertId":"g1","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"web@p.iam.gserviceaccount.com"},"requestMetadata":{"callerIp":"198.51.100.24"},"serviceName":"storage.googleapis.com","methodName":"storage.objects.get"},"timestamp":"2026-11-20T09:00:01Z"}"#,
            "\n"
        ),
    );
    let out = run_ok(&[
        "hunt",
        "--no-builtin",
        "--sigma",
        dir.unwrap().to_str().unwrap(),
        "samples/logs/cloudtrail.json",
        logs.to_str().unwrap(),
        "--output",
        "jsonl",
    ]);
    let got: Vec<(String, String)> = alerts(&out)
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap().to_owned(),
                a["cloud"]["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "az".to_owned(),
                "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION".to_owned()
            ),
            ("gcp".to_owned(), "storage.objects.get".to_owned()),
            ("ct".to_owned(), "ListObjects".to_owned()),
            ("ct".to_owned(), "GetObject".to_owned()),
        ]
    );
}

/// SigmaHQ's Entra ID audit rules on OTRF's golden SAML audit rows (Log Analytics' `AuditLogs`,
/// `InitiatedBy` as JSON text): the delegated permission grant and the application update are
/// found under the names the rules use (`properties.message`); the credential update is not,
/// since its logged name ends with a space the rule's value does not have.
#[test]
fn sigma_entra_audit_rules_run_on_otrf_golden_saml_audit_rows() {
    let file = shared_data!("cloud/otrf_goldensaml_AADAuditEvents.json");
    let rules = shared_data!("sigma/rules/cloud/azure/audit_logs");
    let out = run_ok(&[
        "hunt",
        "--no-builtin",
        "--sigma",
        rules.to_str().unwrap(),
        file.to_str().unwrap(),
        "--output",
        "jsonl",
    ]);
    let mut got: Vec<(u64, String)> = alerts(&out)
        .iter()
        .map(|a| {
            (
                a["source"]["line"].as_u64().unwrap(),
                a["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (3, "Application AppID Uri Configuration Changes".to_owned()),
            (4, "App Granted Microsoft Permissions".to_owned()),
            (4, "Delegated Permissions Granted For All Users".to_owned()),
        ]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("azure-entra              4"), "{err}");
}
