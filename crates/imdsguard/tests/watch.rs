//! `imdsguard watch` as it runs for real: killed with SIGKILL in the middle of a file and
//! restarted, it loses and repeats nothing in the store; its output, blocked, stops the reading
//! (back-pressure); it follows a file through rotation; SIGTERM stops it cleanly.

mod live;
use live::{bin, kill9, line};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn write_lines(p: &Path, range: std::ops::Range<u32>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    let text: String = range.map(line).collect();
    f.write_all(text.as_bytes()).unwrap();
}

/// The alert ids the store holds.
fn stored_ids(db: &Path) -> Vec<String> {
    let out = bin()
        .args(["alerts", "--output", "jsonl", "--limit", "1000000", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

fn ids_of(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("rule_id").is_some())
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// What `hunt` finds in the same file: the expected alerts.
fn hunted_ids(log: &Path) -> Vec<String> {
    let out = bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut ids = ids_of(&String::from_utf8_lossy(&out.stdout));
    ids.sort();
    ids
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn checkpoint(db: &Path) -> Option<u64> {
    if db.to_str().is_some_and(|u| u.starts_with("postgres://")) {
        // PostgreSQL's own client, the table as another program sees it.
        let out = Command::new("psql")
            .args(["-X", "-tA", db.to_str().unwrap(), "-c"])
            .arg("select \"offset\" from checkpoints")
            .output()
            .ok()?;
        return String::from_utf8_lossy(&out.stdout).trim().parse().ok();
    }
    // The store is read with the system's SQLite through Python (a second, independent reader).
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3\nc = sqlite3.connect({:?})\ntry:\n  r = c.execute('select offset from checkpoints').fetchone()\n  print(r[0] if r else '')\nexcept Exception:\n  print('')",
            db.display().to_string()
        ))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[test]
fn killed_mid_file_and_restarted_it_stores_every_alert_once() {
    let d = dir("kill");
    let db = d.join("store.db");
    killed_and_restarted(&d, &db);
}

/// The same with the store on PostgreSQL: its transactions, not SQLite's, keep the alerts and
/// the file's position together.
#[test]
fn killed_mid_file_and_restarted_it_stores_every_alert_once_in_postgres() {
    let url = imdsguard_testdata::postgres_database!("watch_kill");
    killed_and_restarted(&dir("kill-pg"), Path::new(&url));
}

fn killed_and_restarted(d: &Path, db: &Path) {
    let log = d.join("sysmon.jsonl");
    write_lines(&log, 0..3000);
    let size = std::fs::metadata(&log).unwrap().len();
    // Its standard output is a pipe nobody reads: once the pipe is full, writing blocks, and
    // with it the reading (back-pressure). Small chunks: many transactions.
    let mut first = bin()
        .args(["watch", "--max-chunk", "4096", "--poll", "20ms", "--db"])
        .arg(db)
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Alerts are printed before their chunk commits: once the pipe is full, the chunk being
    // printed never commits. Wait for a first commit (or a stall before any).
    let started = Instant::now();
    wait_for("a first checkpoint", Duration::from_secs(60), || {
        checkpoint(db).is_some_and(|o| o > 0) || started.elapsed() > Duration::from_secs(10)
    });
    // Blocked on its output, it reads no further: the checkpoint stays put.
    std::thread::sleep(Duration::from_millis(500));
    let held = checkpoint(db);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        checkpoint(db),
        held,
        "reading went on while output was blocked"
    );
    assert!(
        held.unwrap_or(0) < size,
        "the whole file was read before the kill: nothing tested"
    );
    kill9(&mut first);
    let mut printed_first = String::new();
    std::io::Read::read_to_string(first.stdout.as_mut().unwrap(), &mut printed_first).unwrap();
    // Killed mid-write, the last line may be cut: only whole lines were printed.
    printed_first.truncate(printed_first.rfind('\n').map_or(0, |i| i + 1));

    // Restart: it resumes at the checkpoint and reads to the end.
    let second = bin()
        .args(["watch", "--once", "--db"])
        .arg(db)
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(checkpoint(db), Some(size));

    let stored = stored_ids(db);
    let want = hunted_ids(&log);
    assert_eq!(
        stored.len(),
        want.len(),
        "lost or extra alerts in the store"
    );
    assert_eq!(stored, want);
    // Every stored alert was printed, at least once across the two runs (the store's own
    // guarantee: an alert is printed before its transaction commits, so one printed when the
    // kill came is printed again after the restart, by the same id); nothing printed that is
    // not stored. (Before, alerts committed and then lost in the blocked output were never
    // printed: 12% of them in one measurement.)
    let mut printed = ids_of(&printed_first);
    printed.extend(ids_of(&String::from_utf8_lossy(&second.stdout)));
    printed.sort();
    printed.dedup();
    assert_eq!(
        printed, stored,
        "an alert stored but never printed, or printed and not stored"
    );
    // The second run printed what the first had not yet stored.
    assert!(!ids_of(&String::from_utf8_lossy(&second.stdout)).is_empty());
    // The restart continued each host's incident (7 hosts, 50 minutes of alerts each, under
    // the 1 h gap): one incident a host, holding every alert, not a second one after the kill.
    let incidents = bin()
        .args(["incident", "--json", "--limit", "100", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let incidents: Vec<Value> = String::from_utf8_lossy(&incidents.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        incidents.len(),
        7,
        "{:?}",
        incidents
            .iter()
            .map(|i| &i["incident_id"])
            .collect::<Vec<_>>()
    );
    let total: u64 = incidents
        .iter()
        .map(|i| i["alerts"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, stored.len());
}

fn wait_output(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn it_follows_a_rotated_file_and_stops_cleanly_on_sigterm() {
    let d = dir("rotate");
    let log = d.join("sysmon.jsonl");
    let db = d.join("store.db");
    write_lines(&log, 0..10);
    let mut child = bin()
        .args(["watch", "--poll", "20ms", "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Read its output as it comes: an unread pipe would stop it (back-pressure).
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    wait_for("the first lines", Duration::from_secs(30), || {
        checkpoint(&db).is_some_and(|o| o > 0)
    });
    // More lines, then rotation as logrotate does it (rename, create), then lines in the new file.
    write_lines(&log, 10..20);
    std::fs::rename(&log, d.join("sysmon.jsonl.1")).unwrap();
    write_lines(&log, 20..30);
    let new_size = std::fs::metadata(&log).unwrap().len();
    wait_for("the new file", Duration::from_secs(30), || {
        checkpoint(&db) == Some(new_size)
    });
    // Metrics on request: one JSON line on standard error.
    Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let out = wait_output(child);
    let printed_text = reader.join().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("watch stopped on a signal"), "{err}");
    let metrics: Value = err
        .lines()
        .find(|l| l.starts_with("{\"metrics\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no metrics line: {err}"));
    assert_eq!(metrics["events"], 30);
    assert_eq!(metrics["inputs"][0]["offset"], new_size);
    assert_eq!(metrics["inputs"][0]["lines"], 10);
    // Every line of both files was read once: the alerts of all 30 records.
    let all = d.join("all.jsonl");
    write_lines(&all, 0..30);
    let mut printed = ids_of(&printed_text);
    printed.sort();
    // Ids name the file and line, which differ from one file of all 30: compare the counts,
    // and the store with what was printed.
    assert_eq!(printed.len(), hunted_ids(&all).len());
    assert_eq!(stored_ids(&db), printed);
}

/// The rule ids of alert lines, sorted (ids name the input, which differs between a file and a
/// socket; what was found must not).
fn rules_of(text: &str) -> Vec<String> {
    let mut r: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("rule_id").is_some() && v.get("incident_id").is_none())
        .map(|v| v["rule_id"].as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

#[test]
fn standard_input_is_watched_like_a_file() {
    let d = dir("stdin");
    let log = d.join("sysmon.jsonl");
    write_lines(&log, 0..40);
    let mut child = bin()
        .args(["watch", "-", "--once", "--db"])
        .arg(d.join("store.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&log).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hunted = bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&log)
        .output()
        .unwrap();
    let want = rules_of(&String::from_utf8_lossy(&hunted.stdout));
    assert!(!want.is_empty());
    assert_eq!(rules_of(&String::from_utf8_lossy(&out.stdout)), want);
}

/// A line that is no record (a banner on standard input, a sender's junk datagram) costs that
/// line, counted, and never the good records read with it.
#[test]
fn junk_lines_cost_themselves_not_the_records_read_with_them() {
    let d = dir("junk");
    let log = d.join("sysmon.jsonl");
    write_lines(&log, 0..40);
    let good = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(20, "-- rotated by logrotate --");
    let text = format!(
        "tail: following sysmon.jsonl\n[INFO] ready\n{}\n",
        lines.join("\n")
    );
    let mut child = bin()
        .args(["watch", "-", "--once", "--db"])
        .arg(d.join("store.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let hunted = bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&log)
        .output()
        .unwrap();
    let want = rules_of(&String::from_utf8_lossy(&hunted.stdout));
    assert!(!want.is_empty());
    assert_eq!(rules_of(&String::from_utf8_lossy(&out.stdout)), want);
    // The junk lines are named by their line on the stream.
    assert!(stderr.contains("-:1: malformed record"), "{stderr}");
    assert!(stderr.contains("-:2: malformed record"), "{stderr}");
    // (Invalid JSON inside a chunk of records; not a record when a chunk starts with it.)
    assert!(stderr.contains("-:23: "), "{stderr}");
}

#[test]
fn syslog_over_tcp_and_udp_is_decoded_and_detected() {
    let d = dir("syslog");
    let mut child = bin()
        .args([
            "watch",
            "--syslog-tcp",
            "127.0.0.1:0",
            "--syslog-udp",
            "127.0.0.1:0",
            "--poll",
            "20ms",
            "--db",
        ])
        .arg(d.join("store.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The ports it bound are on its standard error, one line each.
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut ports = std::collections::HashMap::new();
    while ports.len() < 2 {
        let mut l = String::new();
        assert!(
            std::io::BufRead::read_line(&mut err, &mut l).unwrap() > 0,
            "no listener line"
        );
        for proto in ["tcp", "udp"] {
            if let Some(rest) = l
                .trim()
                .strip_prefix(&format!("imdsguard: watch: listening on syslog+{proto}://"))
            {
                let addr: std::net::SocketAddr = rest.parse().unwrap();
                ports.insert(proto, addr);
            }
        }
    }
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    // Records 0..10 over TCP, RFC 5424 with octet counting; 10..20 over UDP, RFC 3164.
    let mut tcp = std::net::TcpStream::connect(ports["tcp"]).unwrap();
    for i in 0..10 {
        let frame = format!(
            "<134>1 2026-11-20T08:00:00Z web01 nxlog - - - {}",
            line(i).trim_end()
        );
        tcp.write_all(format!("{} {frame}", frame.len()).as_bytes())
            .unwrap();
    }
    drop(tcp);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 10..20 {
        let frame = format!("<14>Nov 20 08:00:00 web01 nxlog: {}", line(i).trim_end());
        udp.send_to(frame.as_bytes(), ports["udp"]).unwrap();
    }
    let all = d.join("all.jsonl");
    write_lines(&all, 0..20);
    let hunted = bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&all)
        .output()
        .unwrap();
    let want = rules_of(&String::from_utf8_lossy(&hunted.stdout));
    // Wait until the store holds as many alerts as hunt found, then stop it.
    let db = d.join("store.db");
    wait_for("the alerts", Duration::from_secs(30), || {
        stored_ids(&db).len() >= want.len()
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let printed = reader.join().unwrap();
    assert_eq!(rules_of(&printed), want);
}

/// A webhook receiver on loopback: answers 503 to the first `fail` requests, then 200; keeps
/// each request's alert id.
fn receiver(
    listener: std::net::TcpListener,
    fail: usize,
) -> std::sync::Arc<std::sync::Mutex<Vec<(u16, String)>>> {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&got);
    std::thread::spawn(move || {
        let mut n = 0;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
            loop {
                // One request: head, then a body of Content-Length bytes.
                let mut len = 0usize;
                let mut first = String::new();
                if std::io::BufRead::read_line(&mut r, &mut first).unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    let mut h = String::new();
                    std::io::BufRead::read_line(&mut r, &mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; len];
                std::io::Read::read_exact(&mut r, &mut body).unwrap();
                let v: Value = serde_json::from_slice(&body).unwrap();
                let status = if n < fail { 503 } else { 200 };
                n += 1;
                seen.lock()
                    .unwrap()
                    .push((status, v["id"].as_str().unwrap().to_owned()));
                let reply = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-length: 0\r\n\r\n",
                    if status == 200 {
                        "OK"
                    } else {
                        "Service Unavailable"
                    }
                );
                if conn.write_all(reply.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    got
}

#[test]
fn the_webhook_gets_every_alert_through_refusals_errors_and_a_restart() {
    let d = dir("webhook");
    let log = d.join("sysmon.jsonl");
    let db = d.join("store.db");
    write_lines(&log, 0..15);
    // A port nobody listens on yet: the first run's deliveries are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut first = bin()
        .args(["watch", "--poll", "20ms", "--webhook", &url, "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A bound for a stuck run, not a speed goal: a loaded machine (the test suite's other
    // binaries beside it) has taken over 30 s here.
    wait_for("the alerts stored", Duration::from_secs(120), || {
        checkpoint(&db) == Some(std::fs::metadata(&log).unwrap().len())
    });
    std::thread::sleep(Duration::from_millis(300));
    kill9(&mut first);
    let stored = stored_ids(&db);
    assert!(!stored.is_empty());

    // The receiver comes up, failing its first 3 requests; the restarted watch delivers all.
    let got = receiver(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), 3);
    let second = bin()
        .args(["watch", "--poll", "20ms", "--webhook", &url, "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let delivered = || -> Vec<String> {
        let mut ok: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, id)| id.clone())
            .collect();
        ok.sort();
        ok.dedup();
        ok
    };
    wait_for("every alert delivered", Duration::from_secs(60), || {
        delivered().len() >= stored.len()
    });
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(delivered(), stored);
    let refused = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == 503)
        .count();
    assert_eq!(refused, 3, "the failures were retried, not dropped");
    // Nothing waits in the outbox.
    let left = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; print(sqlite3.connect({:?}).execute('select count(*) from outbox').fetchone()[0])",
            db.display().to_string()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
}

/// A record that names no host (an ECS line without `host.name`, an audit record without
/// `node=`) is the syslog sender's: the header's HOSTNAME is its host.
#[test]
fn a_syslog_senders_host_names_records_that_name_none() {
    let d = dir("syslog-host");
    let mut child = bin()
        .args([
            "watch",
            "--syslog-udp",
            "127.0.0.1:0",
            "--poll",
            "20ms",
            "--db",
        ])
        .arg(d.join("store.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr: std::net::SocketAddr = loop {
        let mut l = String::new();
        assert!(std::io::BufRead::read_line(&mut err, &mut l).unwrap() > 0);
        if let Some(rest) = l
            .trim()
            .strip_prefix("imdsguard: watch: listening on syslog+udp://")
        {
            break rest.parse().unwrap();
        }
    };
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let record = r#"{"@timestamp":"2026-11-20T08:00:00Z","event":{"category":["process"]},"process":{"pid":41,"executable":"/usr/bin/curl","command_line":"curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/build-role"}}"#;
    let named = record.replace(
        r#""event""#,
        r#""host":{"name":"Runner3.corp.example"},"event""#,
    );
    for (host, r) in [("Build7.corp.example", record), ("build7", named.as_str())] {
        udp.send_to(
            format!("<14>Nov 20 08:00:00 {host} filebeat: {r}").as_bytes(),
            addr,
        )
        .unwrap();
    }
    let db = d.join("store.db");
    wait_for("the alerts", Duration::from_secs(30), || {
        stored_ids(&db).len() >= 2
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let hosts: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a.get("rule_id").is_some())
        .map(|a| a["host"].as_str().unwrap_or("(none)").to_owned())
        .collect();
    // The first names no host: the sender's; the second names its own, which wins.
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        ["build7.corp.example", "runner3.corp.example"]
    );
}

/// Every byte of the store's files, its WAL included.
fn store_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for ext in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{ext}", db.display()));
        all.extend(std::fs::read(&p).unwrap_or_default());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A webhook URL's secrets (`user:password@`, `?token=`) are shown masked and never stored; the
/// outbox keys alerts by the destination's name, so a new token for the same destination
/// delivers what waited; alerts waiting for another destination are reported at start, not
/// stranded unsaid.
#[test]
fn webhook_secrets_are_never_shown_or_stored_and_a_new_token_delivers_the_backlog() {
    let d = dir("webhook-secret");
    let log = d.join("sysmon.jsonl");
    let db = d.join("store.db");
    write_lines(&log, 0..10);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Refuses everything at first (503), then accepts from its 1,000th request.
    let got = receiver(listener, 1000);
    let url = format!("http://alice:hunter2222@127.0.0.1:{port}/hook?token=s3cr3tvalue");
    let first = bin()
        .args(["watch", "--once", "--webhook", &url, "--db"])
        .arg(&db)
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "webhook: http://***@127.0.0.1:{port}/hook?token=***: HTTP 503"
        )),
        "{stderr}"
    );
    for secret in ["hunter2222", "s3cr3tvalue"] {
        assert!(!stderr.contains(secret), "{secret} shown: {stderr}");
        assert!(!contains(&store_bytes(&db), secret), "{secret} stored");
    }
    let stored = stored_ids(&db);
    assert!(!stored.is_empty());
    assert!(!got.lock().unwrap().is_empty(), "the receiver was asked");

    // Another path without a name: the backlog for the first destination is reported.
    let other = format!("http://127.0.0.1:{port}/elsewhere");
    let second = bin()
        .args(["watch", "--once", "--webhook", &other, "--db"])
        .arg(&db)
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "webhook: {} alerts wait in the store for \"http://127.0.0.1:{port}/hook\", which is not this run's webhook",
            stored.len()
        )),
        "{stderr}"
    );

    // A new token for the same destination (same name) delivers what waits, once the receiver
    // accepts.
    let accepting = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port2 = accepting.local_addr().unwrap().port();
    let got2 = receiver(accepting, 0);
    let url2 = format!("http://alice:newpass99@127.0.0.1:{port2}/hook?token=rotated");
    let third = bin()
        .args([
            "watch",
            "--poll",
            "20ms",
            "--webhook",
            &url2,
            "--webhook-name",
            &format!("http://127.0.0.1:{port}/hook"),
            "--db",
        ])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let delivered = || -> Vec<String> {
        let mut ok: Vec<String> = got2
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, id)| id.clone())
            .collect();
        ok.sort();
        ok.dedup();
        ok
    };
    // Each waits out its backoff from the refusals (a few seconds at most here).
    wait_for("the backlog delivered", Duration::from_secs(60), || {
        delivered().len() >= stored.len()
    });
    Command::new("kill")
        .args(["-TERM", &third.id().to_string()])
        .status()
        .unwrap();
    let out = third.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(delivered(), stored);
    for secret in ["newpass99", "rotated"] {
        assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
        assert!(!contains(&store_bytes(&db), secret), "{secret} stored");
    }
}

/// A receiver that accepts connections and never answers: a stopping `watch` waits for it at
/// most its grace period, leaving undelivered alerts in the outbox (before, 10 s per alert).
#[test]
fn a_hung_webhook_receiver_does_not_hold_the_stop() {
    let d = dir("webhook-hung");
    let log = d.join("sysmon.jsonl");
    let db = d.join("store.db");
    write_lines(&log, 0..15);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let started = std::time::Instant::now();
    let mut child = bin()
        .args(["watch", "--once", "--webhook"])
        .arg(format!("http://127.0.0.1:{port}/hook"))
        .arg("--db")
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Far below the 150 s the old sender took for these 15 alerts.
    let deadline = started + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("watch did not stop while the receiver hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("did not answer within 5 s"), "{stderr}");
    assert!(stderr.contains("alerts wait in the store"), "{stderr}");
}

/// The syslog TCP listener is bounded: at most 256 connections at once (the rest closed as
/// they come, counted), a silent connection closed after `--syslog-idle`, a frame over 1 MiB
/// dropped and said once for its connection (not once per MiB), and the sender's next frame
/// read. Before: a thread per connection without limit or timeout (1,000 idle connections held
/// 1,003 threads), and one warning per MiB.
#[test]
fn the_syslog_tcp_listener_is_bounded() {
    use std::io::{BufRead, Read};
    let d = dir("syslog-bounds");
    let mut child = bin()
        .args([
            "watch",
            "--syslog-tcp",
            "127.0.0.1:0",
            "--syslog-idle",
            "2",
            "--poll",
            "20ms",
            "--db",
        ])
        .arg(d.join("store.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr: std::net::SocketAddr = loop {
        let mut l = String::new();
        assert!(err.read_line(&mut l).unwrap() > 0, "no listener line");
        if let Some(rest) = l
            .trim()
            .strip_prefix("imdsguard: watch: listening on syslog+tcp://")
        {
            break rest.parse().unwrap();
        }
    };
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keep = std::sync::Arc::clone(&said);
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        keep.lock().unwrap().push_str(&rest);
    });
    let mut stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    // 260 silent connections: 256 held, 4 closed at once.
    let conns: Vec<std::net::TcpStream> = (0..260)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let closed_at_once = |c: &std::net::TcpStream| {
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut r = c;
        matches!(r.read(&mut [0u8; 1]), Ok(0))
    };
    std::thread::sleep(Duration::from_millis(300));
    let refused = conns
        .iter()
        .rev()
        .take(8)
        .filter(|c| closed_at_once(c))
        .count();
    assert!(refused >= 4, "{refused} of the last 8 closed at once");
    // The silent ones are closed after the idle timeout, freeing their slots.
    for c in conns.iter().take(3) {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = c;
        assert!(
            matches!(r.read(&mut [0u8; 1]), Ok(0)),
            "an idle connection stayed open"
        );
    }
    drop(conns);
    std::thread::sleep(Duration::from_millis(500));
    // A sender with a 3 MiB frame, then a record: the record is read.
    let mut big = std::net::TcpStream::connect(addr).unwrap();
    big.write_all(&vec![b'A'; 3 << 20]).unwrap();
    big.write_all(b"\n").unwrap();
    big.write_all(line(0).as_bytes()).unwrap();
    drop(big);
    wait_for("the alert", Duration::from_secs(30), || {
        !stored_ids(&d.join("store.db")).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = printed.join().unwrap();
    assert!(
        !rules_of(&out).is_empty(),
        "the record after the big frame alerted"
    );
    std::thread::sleep(Duration::from_millis(200));
    let said = said.lock().unwrap().clone();
    assert!(
        said.contains("connections refused: at most 256 are open at once"),
        "{said}"
    );
    assert!(said.contains("idle connections closed"), "{said}");
    assert_eq!(
        said.matches("sent a frame over 1 MiB").count(),
        1,
        "one warning for the connection: {said}"
    );
    assert!(
        said.contains(": 1 connections sent a frame over 1 MiB"),
        "{said}"
    );
}

/// Datagrams the kernel drops because `watch` reads slower than they come (here: stopped with
/// SIGSTOP while they are sent) are counted from the kernel's own counter and said: what was
/// read and what was dropped add up to what was sent.
#[test]
fn udp_datagrams_the_kernel_drops_are_counted_and_said() {
    let d = dir("udp-drops");
    let mut child = bin()
        .args([
            "watch",
            "--syslog-udp",
            "127.0.0.1:0",
            "--poll",
            "20ms",
            "--db",
        ])
        .arg(d.join("store.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (seen, (tx, rx)) = (std::sync::Arc::clone(&lines), std::sync::mpsc::channel());
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || loop {
        let mut l = String::new();
        if std::io::BufRead::read_line(&mut err, &mut l).unwrap_or(0) == 0 {
            break;
        }
        if let Some(a) = l
            .trim()
            .strip_prefix("imdsguard: watch: listening on syslog+udp://")
        {
            let _ = tx.send(a.parse::<std::net::SocketAddr>().unwrap());
        }
        seen.lock().unwrap().push(l);
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the listener line");
    let signal = |s: &str| {
        assert!(Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let sent = 3000u32;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..sent {
        let frame = format!("<14>Nov 20 08:00:00 web01 nxlog: {}", line(i).trim_end());
        udp.send_to(frame.as_bytes(), addr).unwrap();
    }
    signal("-CONT");
    // Metrics until what was read and what was dropped account for every datagram.
    let mut last = Value::Null;
    let start = Instant::now();
    loop {
        signal("-USR1");
        std::thread::sleep(Duration::from_millis(300));
        if let Some(m) = lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|l| l.starts_with("{\"metrics\""))
        {
            last = serde_json::from_str(m).unwrap();
        }
        let input = &last["inputs"][0];
        let (read, dropped) = (input["lines"].as_u64(), input["dropped_by_kernel"].as_u64());
        if let (Some(r), Some(dr)) = (read, dropped) {
            if r + dr == u64::from(sent) {
                assert!(
                    dr > 0,
                    "the stopped watch's buffer held every datagram: {last}"
                );
                assert!(r > 0, "{last}");
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "read and dropped never added up to {sent}: {last}"
        );
    }
    signal("-TERM");
    assert!(child.wait().unwrap().success());
    let dropped = last["inputs"][0]["dropped_by_kernel"].as_u64().unwrap();
    let said = lines.lock().unwrap().join("");
    assert!(
        said.contains(&format!(
            "syslog+udp://{addr}: {dropped} datagrams dropped by the kernel: its receive buffer was full"
        )),
        "{said}"
    );
}

/// Output appended to a file that a crash cut mid-line: the cut line is ended before the new
/// output, so every new line is whole JSON (before, the first new alert was glued to the cut
/// one and lost to any reader of JSON lines).
#[test]
fn output_appended_after_a_cut_line_starts_on_a_line_of_its_own() {
    let d = dir("cut-line");
    let log = d.join("sysmon.jsonl");
    write_lines(&log, 0..5);
    let out_file = d.join("alerts.jsonl");
    std::fs::write(&out_file, "{\"id\":\"whole\"}\n{\"id\":\"cut sh").unwrap();
    let out = bin()
        .args(["watch", "--once", "--output", "jsonl", "--db"])
        .arg(d.join("store.db"))
        .arg("-o")
        .arg(&out_file)
        .arg(&log)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("the output's last line was cut short"),
        "{err}"
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "{\"id\":\"cut sh");
    let new: Vec<Value> = lines[2..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(new.len(), hunted_ids(&log).len());
    // A file that ends whole gets nothing added.
    let again = bin()
        .args(["watch", "--once", "--output", "jsonl", "--db"])
        .arg(d.join("store2.db"))
        .arg("-o")
        .arg(&out_file)
        .arg(&log)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&again.stderr).contains("cut short"));
    let text2 = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(text2.lines().count(), lines.len() + new.len());
}

/// A file to follow that is missing is an error unless `--wait` says to wait for it; an EVTX
/// file is refused with what to do instead (it is not written line by line).
#[test]
fn a_missing_file_needs_wait_and_evtx_is_refused_by_name() {
    let d = dir("not-followable");
    let missing = d.join("typo.jsonl");
    let out = bin()
        .args(["watch", "--once", "--db"])
        .arg(d.join("store.db"))
        .arg(&missing)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}: no such file (give --wait to wait for it to appear)",
            missing.display()
        )),
        "{err}"
    );
    // With --wait it waits: the file appears, its records are read.
    let child = bin()
        .args(["watch", "--wait", "--poll", "20ms", "--db"])
        .arg(d.join("store.db"))
        .arg(&missing)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    write_lines(&missing, 0..3);
    let db = d.join("store.db");
    wait_for("the new file", Duration::from_secs(30), || {
        checkpoint(&db).is_some_and(|o| o > 0)
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = wait_output(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("does not exist yet; waiting for it"), "{err}");
    // Its summary counts the file it followed.
    assert!(
        err.contains("imdsguard: 1 files (0 in no supported format), 3 events"),
        "{err}"
    );

    let evtx = d.join("security.evtx");
    let mut bytes = b"ElfFile\0".to_vec();
    bytes.resize(4096, 0);
    std::fs::write(&evtx, bytes).unwrap();
    let out = bin()
        .args(["watch", "--once", "--db"])
        .arg(d.join("store2.db"))
        .arg(&evtx)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("an EVTX file: watch follows logs written line by line"),
        "{err}"
    );
    assert!(err.contains("imdsguard hunt"), "{err}");
}

/// `watch -` alone is a filter: the end of standard input ends it (no --once needed), with
/// every alert of the input printed.
#[test]
fn watch_on_standard_input_alone_ends_with_it() {
    let d = dir("stdin-ends");
    let mut child = bin()
        .args(["watch", "-", "--output", "jsonl", "--db"])
        .arg(d.join("store.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text: String = (0..5).map(line).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "watch - did not end with its input"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let all = d.join("all.jsonl");
    write_lines(&all, 0..5);
    assert_eq!(
        ids_of(&String::from_utf8_lossy(&out.stdout)).len(),
        hunted_ids(&all).len()
    );
}

fn dir(case: &str) -> PathBuf {
    live::scratch("watch", case)
}
