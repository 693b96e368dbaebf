//! The `imdsguard` binary as a user runs it: arguments, standard input, output formats, errors and
//! exit codes. Alert-shaped output is snapshotted (insta) so any change to it is reviewed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imdsguard"));
    // Never the user's own store, nor another run's.
    c.env("IMDSGUARD_DB", fresh_db());
    c
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes `contents` to a file in a directory of this test run's own.
fn temp_file(case: &str, name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imdsguard-cli-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(name);
    std::fs::write(&file, contents).expect("write temp file");
    file
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn imdsguard");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn target_over_the_bundled_samples_matches_the_snapshot() {
    let samples =
        std::fs::read_to_string(repo().join("samples/targets.txt")).expect("samples/targets.txt");
    let out = run_with_stdin(&["target"], &samples);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        lines.len(),
        samples.lines().count(),
        "one output line per input line"
    );
    for v in &lines {
        for key in [
            "input", "metadata", "provider", "endpoint", "path", "kind", "encoding",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
    }
    insta::assert_snapshot!("target_samples_jsonl", stdout);
}

#[test]
fn table_output_and_only_targets() {
    let out = bin()
        .args([
            "target",
            "--output",
            "table",
            "--only-targets",
            "curl http://0xa9fea9fe/latest/user-data",
            "ping 8.8.8.8",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("target_table_only_targets", stdout);
}

#[test]
fn several_targets_in_one_input_list_the_rest() {
    let out = bin()
        .args(["target", "curl -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'; curl http://169.254.169.254/latest/meta-data/iam/security-credentials/"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["kind"], "credentials", "the most severe first: {v}");
    assert_eq!(v["targets"][0]["kind"], "token", "{v}");
    assert_eq!(
        v["targets"][0]["method"], "PUT",
        "the PUT is the token request's: {v}"
    );
    assert!(
        v.get("method").is_none(),
        "the credential read is a GET: {v}"
    );
    assert_eq!(
        v["headers"][0], "X-aws-ec2-metadata-token-ttl-seconds",
        "{v}"
    );
}

#[test]
fn a_bad_catalog_is_reported_with_file_and_line_and_exit_2() {
    let file = temp_file(
        "bad",
        "corp.toml",
        "[[provider]]\nid = \"corp\"\nname = \"Corp\"\naddresses = [\"10.1.2.300\"]\n",
    );
    let out = bin()
        .args([
            "target",
            "--catalog",
            file.to_str().unwrap(),
            "http://10.1.2.3/",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corp.toml:4:"), "{stderr}");
    assert!(stderr.contains("10.1.2.300"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_user_catalog_adds_an_endpoint() {
    let file = temp_file(
        "ok",
        "corp.toml",
        "[[provider]]\nid = \"corp\"\nname = \"Corp metadata\"\naddresses = [\"10.1.2.3\"]\npaths = [{ path = \"/creds\", kind = \"credentials\" }]\n",
    );
    let out = bin()
        .args([
            "target",
            "--catalog",
            file.to_str().unwrap(),
            "curl http://0x0a010203/creds/app",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["provider"], "corp");
    assert_eq!(v["kind"], "credentials");
    assert_eq!(v["encoding"][0], "hex");
}

#[test]
fn non_utf8_stdin_is_reported_by_line_and_read_on() {
    let mut input = b"ping 8.8.8.8\n".to_vec();
    input.extend_from_slice(b"curl http://169.254.169.254/latest/user-data \xff\n");
    let mut child = bin()
        .arg("target")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("<stdin>:2: not UTF-8"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let second: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["metadata"], true);
    assert_eq!(second["kind"], "userdata");
}

#[test]
fn catalog_command_lists_every_provider() {
    let out = bin().arg("catalog").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for id in [
        "aws",
        "aws-ecs",
        "azure",
        "azure-wireserver",
        "gcp",
        "oracle",
        "alibaba",
        "tencent",
        "ibm",
        "digitalocean",
        "openstack",
        "hetzner",
        "linode",
        "scaleway",
        "equinix",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} missing"
        );
    }
    let toml = bin().args(["catalog", "--toml"]).output().expect("run");
    assert!(String::from_utf8(toml.stdout)
        .unwrap()
        .contains("[[provider]]"));
}

#[test]
fn an_input_longer_than_the_limit_is_said_to_be_cut() {
    let long = format!(
        "{} http://169.254.169.254/latest/user-data",
        "a".repeat(imdsguard_target_limit())
    );
    let out = run_with_stdin(&["target"], &long);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was read up to its first 1048576 bytes"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["metadata"], false,
        "the target lies past the limit and is not read"
    );
}

/// The normalizer's input limit (1 MiB), as documented in `imdsguard_target::MAX_INPUT`.
fn imdsguard_target_limit() -> usize {
    1 << 20
}

#[test]
fn events_decodes_real_logs_and_names_what_it_could_not_read() {
    let data = imdsguard_testdata::shared_data!("evtx/otrf_json");
    let out = bin()
        .args(["events", data.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let imds_in = |file: &str| {
        events
            .iter()
            .filter(|e| {
                e["network"]["dst_ip"] == "169.254.169.254"
                    && e["source"]["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(file))
            })
            .count()
    };
    assert_eq!(
        imds_in("otrf_windows_imds_events.jsonl"),
        1077,
        "every IMDS connection in the OTRF IMDS file"
    );
    let log4shell = "log4shell_cve2021_44228_java_serialized_object_2022-05-1304";
    assert_eq!(
        imds_in(&format!("securityauditing_{log4shell}5400.json")),
        2,
        "two in the log4shell Security export"
    );
    assert_eq!(
        imds_in(&format!("sysmon_{log4shell}5800.json")),
        2,
        "two in the log4shell Sysmon export"
    );
    assert!(events
        .iter()
        .all(|e| e["source"]["line"].as_u64().is_some_and(|n| n >= 1)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} events", events.len())),
        "{stderr}"
    );
    assert!(stderr.contains("otrf_windows_imds_events.index.tsv: not a supported log format (tried windows-xml, auditd, zeek-http, zeek-conn, zeek-dns, w3c, web-access, haproxy, squid, aws-alb, aws-vpc-flow, defender-csv and the JSON formats: evtx-json"), "{stderr}");
    assert!(stderr.contains("events   nxlog-json"), "{stderr}");
}

#[test]
fn events_on_a_missing_file_is_an_error_exit_2() {
    let out = bin()
        .args(["events", "/nonexistent/imdsguard-test.json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: /nonexistent/imdsguard-test.json: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn events_over_the_bundled_log_samples_match_the_snapshot() {
    let out = bin()
        .current_dir(repo())
        .args(["events", "samples/logs"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("16 files (0 in no supported format), 71 events, 0 records skipped"),
        "{stderr}"
    );
    insta::assert_snapshot!(
        "events_log_samples_jsonl",
        String::from_utf8(out.stdout).unwrap()
    );
}

#[test]
fn events_on_files_in_no_supported_format_only_is_exit_2() {
    let notes = temp_file("notes", "notes.txt", "shopping list\nmilk\n");
    let out = bin()
        .args(["events", notes.to_str().unwrap()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "nothing could be read");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.txt: not a supported log format"),
        "{stderr}"
    );
    // Beside a readable file, the same file is named but the run completes.
    let log = temp_file(
        "notes",
        "one.jsonl",
        r#"{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"a.exe"}"#,
    );
    let out = bin()
        .args(["events", notes.to_str().unwrap(), log.to_str().unwrap()])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_pack_exports_to_every_query_language() {
    // 15 Sigma rules come from the pack (IMDS-008 needs container context); Defender XDR has no
    // table for dns_query, so KQL gets the 10 process and network ones.
    for (lang, want) in [
        ("kql", 10),
        ("spl", 15),
        ("eql", 15),
        ("esql", 15),
        ("sql", 15),
    ] {
        let out = bin()
            .args(["rules", "export", "--to", lang, "--output", "jsonl"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{lang}");
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), want, "{lang}");
        for l in &lines {
            assert_eq!(l["lang"], lang);
            let q = l["query"].as_str().unwrap_or_default();
            // Each export says its size.
            assert_eq!(l["bytes"].as_u64(), Some(q.len() as u64), "{lang}");
            // Every query carries the metadata address it hunts for.
            assert!(q.contains("169.254.169.254"), "{lang}: {q}");
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{want} {lang} queries from 15 rules")),
            "{err}"
        );
    }
}

#[test]
fn sigma_files_export_and_bad_ones_are_named() {
    let good = repo().join("crates/imdsguard-query/tests/data/constructs.yml");
    let bad = temp_file("export", "bad.yml", "title: broken\ndetection: [\n");
    let out = bin()
        .args(["rules", "export", "--to", "spl"])
        .arg(&good)
        .arg(&bad)
        .output()
        .expect("run");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("```Every construct the exports write"),
        "{stdout}"
    );
    assert!(stdout.contains("Image=\"*\\\\curl.exe\""), "{stdout}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml"), "{err}");
    assert!(
        err.contains("1 spl queries from 1 rules (917 bytes in all, the largest 917 bytes); 0 not expressible; 1 files did not load"),
        "{err}"
    );
}

/// A store of its own for each run, so that no run learns from another's baseline (tests run
/// in parallel) and none touches the user's own store.
fn fresh_db() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("imdsguard-test-cli-{}", std::process::id()))
        .join(format!("{n}.db"))
}

/// A directory walk reads every regular file and names, without reading, what it cannot or must
/// not read: a dangling symbolic link, a link back to an ancestor (a loop), a FIFO (opening it
/// would wait for a writer forever). Before, the first two made `hunt DIR` read nothing (exit 2)
/// and the FIFO hung it.
#[test]
fn a_walk_reads_the_files_and_names_links_and_fifos_it_skips() {
    let dir = std::env::temp_dir().join(format!("imdsguard-cli-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(
        repo().join("samples/logs/windows-nxlog.jsonl"),
        dir.join("a.jsonl"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("samples/logs/ecs.ndjson"),
        dir.join("sub/b.ndjson"),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.join("gone.jsonl"), dir.join("dangling.jsonl")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/loop")).unwrap();
    let fifo = dir.join("pipe.jsonl");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for threads in ["1", "2"] {
        // Output to files, so that waiting never stalls on a full pipe.
        let (out_file, err_file) = (dir.with_extension("out"), dir.with_extension("err"));
        let mut child = bin()
            .args(["hunt", "--no-db", "-j", threads, "--output", "jsonl"])
            .arg(&dir)
            .stdout(std::fs::File::create(&out_file).unwrap())
            .stderr(std::fs::File::create(&err_file).unwrap())
            .spawn()
            .unwrap();
        // A hang is a failure, not a stuck test run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("hunt over a directory with a FIFO did not finish");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(&err_file).unwrap();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("2 files"), "{stderr}");
        assert!(
            stderr.contains("dangling.jsonl: a symbolic link that leads nowhere"),
            "{stderr}"
        );
        assert!(stderr.contains("pipe.jsonl: a FIFO: not read"), "{stderr}");
        assert!(
            stderr.contains("loop: a directory already walked"),
            "{stderr}"
        );
        // The files were read: their alerts are there.
        assert!(std::fs::read_to_string(&out_file)
            .unwrap()
            .contains("\"rule_id\""));
    }
}

/// One invalid UTF-8 byte in one field (here the command line an attacker shaped) does not hide
/// the record: it is read with U+FFFD in that place, alerted on, and counted with its line.
/// Before, the whole record was skipped as "not UTF-8".
#[test]
fn a_record_with_an_invalid_utf8_byte_is_read_and_marked() {
    let mut record = br#"{"EventTime":"2026-11-20 08:00:00","Hostname":"web01","SourceModuleType":"im_msvistalog","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","ProcessId":"4242","Image":"C:\\Users\\bob\\AppData\\Local\\Temp\\x.exe","CommandLine":"x.exe http://169.254.169.254/latest/meta-data/iam/security-credentials/ "#.to_vec();
    record.extend_from_slice(b"\xff\xfe");
    record.extend_from_slice(
        br#"","User":"CORP\\bob","ParentImage":"C:\\Windows\\System32\\cmd.exe"}"#,
    );
    record.push(b'\n');
    let dir = std::env::temp_dir().join(format!("imdsguard-cli-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad-byte.jsonl");
    std::fs::write(&file, &record).unwrap();
    let out = bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 records were not valid UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad-byte.jsonl:1: read with U+FFFD"),
        "{stderr}"
    );
    assert!(stderr.contains("0 records skipped"), "{stderr}");
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["host"], "web01");
    assert!(first["process"]["command_line"]
        .as_str()
        .unwrap()
        .ends_with("security-credentials/ \u{fffd}\u{fffd}"));
}

/// `target` speaks the shared vocabulary: `--output jsonl` (the default, `-f` the same
/// option), `json` (one array of the same objects), `table`, and `-o FILE`.
#[test]
fn target_prints_lines_an_array_or_a_table_to_a_file_or_stdout() {
    let inputs = [
        "curl http://169.254.169.254/latest/meta-data/",
        "ls -la /tmp",
    ];
    let run_target = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
            .arg("target")
            .args(inputs)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<serde_json::Value> = run_target(&[])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["metadata"], true);
    assert_eq!(lines[1]["metadata"], false);
    let array: Vec<serde_json::Value> =
        serde_json::from_str(&run_target(&["--output", "json"])).unwrap();
    assert_eq!(array, lines);
    assert_eq!(
        run_target(&["-f", "jsonl"]),
        run_target(&["--output", "jsonl"])
    );
    let table = run_target(&["--output", "table"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    let file = std::env::temp_dir().join(format!("imdsguard-target-{}.json", std::process::id()));
    assert!(run_target(&["--output", "json", "-o", file.to_str().unwrap()]).is_empty());
    let written: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written, lines);
    std::fs::remove_file(&file).ok();
}

/// Exports report their sizes; `--max-size` leaves out, by name, the queries a SIEM would refuse;
/// `--output json` is one array and `-o FILE` writes there.
#[test]
fn exports_report_their_size_and_keep_to_a_limit() {
    let all = bin()
        .args(["rules", "export", "--to", "spl", "--output", "json"])
        .output()
        .expect("run");
    assert!(all.status.success());
    let queries: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
    let sizes: Vec<u64> = queries
        .iter()
        .map(|q| q["bytes"].as_u64().unwrap())
        .collect();
    let largest = *sizes.iter().max().unwrap();
    let limit = sizes.iter().sum::<u64>() / sizes.len() as u64;
    let over = sizes.iter().filter(|&&s| s > limit).count();
    assert!(over > 0 && over < sizes.len());
    let file = std::env::temp_dir().join(format!("imdsguard-export-{}.json", std::process::id()));
    let kept = bin()
        .args([
            "rules",
            "export",
            "--to",
            "spl",
            "--output",
            "json",
            "--max-size",
        ])
        .arg(limit.to_string())
        .arg("-o")
        .arg(&file)
        .output()
        .expect("run");
    assert!(kept.status.success());
    assert!(kept.stdout.is_empty());
    let written: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written.len(), sizes.len() - over);
    assert!(written
        .iter()
        .all(|q| q["bytes"].as_u64().unwrap() <= limit));
    let err = String::from_utf8_lossy(&kept.stderr);
    assert_eq!(
        err.matches(&format!(", over --max-size {limit}")).count(),
        over,
        "{err}"
    );
    assert!(err.contains(&format!("; {over} over --max-size")), "{err}");
    let plain = bin()
        .args(["rules", "export", "--to", "spl"])
        .output()
        .unwrap();
    let plain_err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        plain_err.contains(&format!("the largest {:.1} KiB", largest as f64 / 1024.0)),
        "{plain_err}"
    );
    std::fs::remove_file(&file).ok();
}

/// `search` finds records of every format by keyword (any case), regular expression or field
/// value and prints them in time order; `metrics` counts records by channel and event id as
/// `events` decodes them.
#[test]
fn search_and_metrics_read_every_format() {
    let samples = repo().join("samples/logs");
    let run = |args: &[&str]| {
        let out = bin()
            .arg(args[0])
            .arg(&samples)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // Every record whose raw text names curl, in any case, and no other: counted independently
    // from the files' lines (each of these formats is one record a line).
    let found = lines(&run(&["search", "-k", "CURL", "--output", "jsonl"]));
    let mut want: Vec<String> = Vec::new();
    for f in [
        "ecs.ndjson",
        "windows-nxlog.jsonl",
        "winlogbeat.ndjson",
        "sentinel-securityevent.json",
        // A user agent in a web server's and a network monitor's records.
        "nginx-access.log",
        "zeek-http.log",
        "alb-access.log",
        // A package name in a forward proxy's URL.
        "squid-access.log",
    ] {
        let text = std::fs::read_to_string(samples.join(f)).unwrap();
        for (i, l) in text.lines().enumerate() {
            if l.to_lowercase().contains("curl") {
                want.push(format!("samples/logs/{f}:{}", i + 1));
            }
        }
    }
    let mut got: Vec<String> = found
        .iter()
        .map(|v| {
            v["Source"]
                .as_str()
                .unwrap()
                .replace(&format!("{}/", repo().display()), "")
        })
        .map(|s| s.trim_start_matches("./").to_owned())
        .collect();
    got.iter_mut().for_each(|s| {
        if let Some(i) = s.find("samples/logs/") {
            *s = s[i..].to_owned();
        }
    });
    let mut sorted_want = want.clone();
    sorted_want.sort();
    let mut sorted_got = got.clone();
    sorted_got.sort();
    assert_eq!(sorted_got, sorted_want);
    let times: Vec<&str> = found
        .iter()
        .map(|v| v["Timestamp"].as_str().unwrap())
        .collect();
    let mut in_order = times.clone();
    in_order.sort();
    assert_eq!(times, in_order);
    assert!(found.iter().all(|v| v["Matched"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("curl")));

    // A regular expression, a field, the time window; the array holds what the lines hold.
    let obfuscated = lines(&run(&[
        "search",
        "-r",
        r"\[::ffff:[0-9a-f:]+\]",
        "--output",
        "jsonl",
    ]));
    // In time order: the SSRF payload in the shop's access log, then curl on web01.
    let ids: Vec<&str> = obfuscated
        .iter()
        .map(|v| v["EventID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["GET", "4688"]);
    let powershell = lines(&run(&[
        "search",
        "-F",
        "Image=POWERSHELL.exe",
        "--output",
        "jsonl",
    ]));
    assert!(!powershell.is_empty());
    assert!(powershell.iter().all(|v| v["Details"]
        .as_str()
        .unwrap()
        .contains("Proc: powershell.exe")));
    let array: Vec<serde_json::Value> =
        serde_json::from_str(&run(&["search", "-k", "curl", "--output", "json"])).unwrap();
    assert_eq!(array, found);
    let later = lines(&run(&[
        "search",
        "-k",
        "curl",
        "--from",
        "2026-11-20T10:00:00Z",
        "--output",
        "jsonl",
    ]));
    assert_eq!(
        later.len(),
        times
            .iter()
            .filter(|t| **t >= "2026-11-20T10:00:00Z")
            .count()
    );
    // A field no record carries is said, not left as an empty result.
    let typo = bin()
        .args(["search"])
        .arg(&samples)
        .args(["-F", "Imgae=curl", "--output", "jsonl"])
        .output()
        .unwrap();
    assert!(typo.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&typo.stderr)
            .contains("no record read carried a field named \"Imgae\""),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
    let nothing = bin().args(["search"]).arg(&samples).output().unwrap();
    assert_eq!(nothing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("say what to look for"));

    // metrics: the same counts as the decoded events, grouped.
    let events = bin().arg("events").arg(&samples).output().unwrap();
    let mut want: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for e in lines(&String::from_utf8(events.stdout).unwrap()) {
        let channel = e["channel"]
            .as_str()
            .or(e["format"].as_str())
            .unwrap()
            .to_owned();
        let id = e["native_id"].as_str().unwrap_or("").to_owned();
        *want.entry((channel, id)).or_default() += 1;
    }
    let rows = lines(&run(&["metrics", "--output", "jsonl"]));
    let got: std::collections::BTreeMap<(String, String), u64> = rows
        .iter()
        .map(|r| {
            (
                (
                    r["Channel"].as_str().unwrap().to_owned(),
                    r["EventID"].as_str().unwrap().to_owned(),
                ),
                r["Records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let counts: Vec<u64> = rows
        .iter()
        .map(|r| r["Records"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most first");
    let hosts = run(&["metrics", "--by", "host", "--output", "csv"]);
    assert!(
        hosts.starts_with("Computer,Records,Percent,First,Last\n"),
        "{hosts}"
    );
    assert!(hosts.contains("\nweb01.corp.example,"), "{hosts}");
}

/// `--log-format` reads an access log in the server's own layout (nginx's `log_format` with the
/// Host first and timings after), beside files in the standard forms, which are still sniffed;
/// a layout that cannot be read is refused with where.
#[test]
fn log_format_reads_a_custom_layout_and_names_bad_layouts() {
    let dir = std::env::temp_dir().join(format!("imdsguard-logformat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let custom = dir.join("custom.log");
    std::fs::write(
        &custom,
        "shop.example 198.51.100.7 [20/Nov/2026:09:00:04 +0000] \"GET / HTTP/1.1\" 200 5120 rt=0.004 \"Mozilla/5.0\"\n\
         169.254.169.254 198.51.100.23 [20/Nov/2026:09:20:41 +0000] \"GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\" 404 153 rt=0.001 \"curl/8.4.0\"\n\
         not a line of this layout\n",
    )
    .unwrap();
    let layout = r#"$host $remote_addr [$time_local] "$request" $status $body_bytes_sent rt=$request_time "$http_user_agent""#;
    let out = bin()
        .current_dir(repo())
        .args([
            "hunt",
            "--no-db",
            "--output",
            "jsonl",
            "--log-format",
            layout,
        ])
        .arg(&custom)
        .arg("samples/logs/nginx-access.log")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "alert")
        .collect();
    let custom_hits: Vec<(&str, u64)> = alerts
        .iter()
        .filter(|a| {
            a["source"]["path"]
                .as_str()
                .unwrap()
                .ends_with("custom.log")
        })
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap(),
                a["source"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(custom_hits, [("IMDS-009", 2)], "{stderr}");
    // The standard log beside it is still read as its own form.
    assert!(alerts.iter().any(|a| a["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("nginx-access.log")));
    assert!(
        stderr.contains("custom.log:3: malformed record: does not follow the --log-format"),
        "{stderr}"
    );

    let bad = bin()
        .args([
            "events",
            "--log-format",
            "$remote_addr$remote_user [$time_local] \"$request\"",
        ])
        .arg(&custom)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--log-format, at character 12: two fields with nothing between them"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
