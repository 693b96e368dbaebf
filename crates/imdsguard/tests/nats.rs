//! The log bus end to end, with a real nats-server (tests/nats/server.sh): `ship` publishes
//! files, `watch --nats` reads the stream into the store. A worker killed with SIGKILL while its
//! output is blocked, and the NATS server restarted, lose and repeat nothing: the store holds what
//! `hunt` finds in the same files, each alert once, one incident per host.

mod live;
use live::{bin, kill9, line};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Each alert as what identifies it whatever file or stream it came from: rule, time, host.
fn keys(text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("rule_id").is_some() && v.get("incident_id").is_none())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("rule_id"), s("time"), s("host"))
        })
        .collect();
    out.sort();
    out
}

fn stored(db: &Path) -> String {
    ok(&bin()
        .args(["alerts", "--output", "jsonl", "--limit", "1000000", "--db"])
        .arg(db)
        .output()
        .unwrap())
}

fn ship(url: &str, file: &Path, host: &str, state: &Path) -> String {
    let o = bin()
        .args(["ship", "--nats", url, "--host", host, "--state"])
        .arg(state)
        .arg(file)
        .output()
        .unwrap();
    ok(&o);
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stops the server and starts it again on the same port and store (its messages and consumers
/// kept on disk).
fn restart_nats(server: &Path) {
    let pid = std::fs::read_to_string(server.join("pid")).unwrap();
    let _ = Command::new("kill").arg(pid.trim()).status();
    let started = Instant::now();
    while Path::new(&format!("/proc/{}", pid.trim())).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nats-server did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Started as the script starts it, in a session of its own (not this test's child); the
    // script's watcher stops the one its `pid` file names when the test binary exits.
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "setsid nats-server -c \"$1/server.conf\" > \"$1/server2.log\" 2>&1 < /dev/null & echo $!",
        )
        .arg("restart")
        .arg(server)
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!pid.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(server.join("pid"), pid).unwrap();
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(server.join("server2.log")).unwrap_or_default();
        if text.contains("Server is ready") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_worker_and_a_restarted_server_lose_and_repeat_no_alert() {
    let (url, server) = imdsguard_testdata::nats!();
    let d = dir("kill");
    run_kill_and_restart(&url, &server, &d, &d.join("store.db"));
}

/// The same with the store on PostgreSQL, the store several workers share.
#[test]
fn a_killed_worker_and_a_restarted_server_lose_and_repeat_no_alert_in_postgres() {
    let (url, server) = imdsguard_testdata::nats!();
    let db = imdsguard_testdata::postgres_database!("nats_kill");
    run_kill_and_restart(&url, &server, &dir("kill-pg"), Path::new(&db));
}

fn run_kill_and_restart(url: &str, server: &Path, d: &Path, db: &Path) {
    let want = shipped(url, d);
    // A worker whose output nobody reads: once the pipe is full it blocks before acknowledging
    // what it printed, and is killed there. Alerts are printed before their messages commit:
    // the batch being printed never commits. Wait for a first commit, or a stall before any.
    let (mut first, _) = worker(url, db, d, "first", true);
    let started = Instant::now();
    while stored_now(db).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        stored_now(db).len() < want.len(),
        "all read before the kill: nothing tested"
    );
    kill9(&mut first);
    let mut printed_first = String::new();
    first
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut printed_first)
        .unwrap();
    printed_first.truncate(printed_first.rfind('\n').map_or(0, |i| i + 1));

    // The server restarts; the stream is on its disk, the partitions' positions in the store.
    restart_nats(server);
    let printed_second = ok(&bin()
        .args(["watch", "--nats", url, "--once", "--db"])
        .arg(db)
        .output()
        .unwrap());
    assert_as_one_worker(db, &want);
    // Printed at least once across the two runs, nothing printed that is not stored.
    let mut printed = keys(&printed_first);
    printed.extend(keys(&printed_second));
    printed.sort();
    printed.dedup();
    assert_eq!(printed, keys(&stored(db)));
    // Nothing is left to read: a third run stores and prints nothing.
    let third = ok(&bin()
        .args(["watch", "--nats", url, "--once", "--db"])
        .arg(db)
        .output()
        .unwrap());
    assert!(keys(&third).is_empty(), "{third}");
}

/// A second worker started on the stream waits while the first one reads it, and takes over,
/// with the state the first one committed, when the first one is killed with SIGKILL: the store
/// then holds what `hunt` finds, each alert once, one incident per host. The store is the one
/// several workers share, PostgreSQL; its session lock goes with the killed worker's connection.
#[test]
fn a_standby_worker_takes_over_from_a_killed_one() {
    let (url, _server) = imdsguard_testdata::nats!();
    let db = imdsguard_testdata::postgres_database!("nats_standby");
    let db = Path::new(&db);
    let d = dir("standby");
    let want = shipped(&url, &d);
    // The first worker's output is a pipe nobody reads: it stalls part way.
    let (mut first, first_err) = worker(&url, db, &d, "first", true);
    wait_until(
        "the first worker's partitions",
        Duration::from_secs(30),
        || said(&first_err).contains("(16 of 16; 1 worker)"),
    );
    let second_err = d.join("second.err");
    let second = bin()
        .args(["watch", "--nats", &url, "--once", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&second_err).unwrap())
        .spawn()
        .unwrap();
    // It waits, and nothing is stored meanwhile.
    wait_until("the second worker waiting", Duration::from_secs(30), || {
        said(&second_err).contains("waiting to take over")
    });
    let before = stored_now(db).len();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        stored_now(db).len(),
        before,
        "stored while the first worker was stalled"
    );
    assert!(
        before < want.len(),
        "all read before the kill: nothing tested"
    );
    kill9(&mut first);
    let out = second.wait_with_output().unwrap();
    let err = said(&second_err);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("of the stream IMDSGUARD (16 of 16;"), "{err}");
    assert_as_one_worker(db, &want);
}

/// Seven hosts' logs shipped, each from its host (their partitions: 0, 2, 3, 5, 6, 9 and 15),
/// and what `hunt` finds in them.
fn shipped(url: &str, d: &Path) -> Vec<(String, String, String)> {
    let mut everything = String::new();
    for h in 0..7u32 {
        let text: String = (0..2100).filter(|i| i % 7 == h).map(line).collect();
        everything.push_str(&text);
        let f = d.join(format!("web{h:02}.jsonl"));
        std::fs::write(&f, text).unwrap();
        let said = ship(
            url,
            &f,
            &format!("web{h:02}"),
            &d.join(format!("ship-{h}.json")),
        );
        assert!(said.contains("300 lines of 1 files published"), "{said}");
    }
    let all = d.join("all.jsonl");
    std::fs::write(&all, everything).unwrap();
    keys(&ok(&bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&all)
        .output()
        .unwrap()))
}

/// A worker of the stream (`watch --nats`), its standard error in `d/<name>.err`; its output a
/// pipe nobody reads when `blocked` (it stalls once the pipe is full), else a file.
fn worker(url: &str, db: &Path, d: &Path, name: &str, blocked: bool) -> (Child, PathBuf) {
    let err = d.join(format!("{name}.err"));
    let mut c = bin();
    c.args(["watch", "--nats", url, "--max-chunk", "4096", "--db"])
        .arg(db)
        .stderr(std::fs::File::create(&err).unwrap());
    if blocked {
        c.stdout(Stdio::piped());
    } else {
        c.stdout(std::fs::File::create(d.join(format!("{name}.out"))).unwrap());
    }
    (c.spawn().unwrap(), err)
}

fn said(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stored_now(db: &Path) -> Vec<(String, String, String)> {
    let o = bin()
        .args(["alerts", "--output", "jsonl", "--limit", "1000000", "--db"])
        .arg(db)
        .output()
        .unwrap();
    keys(&String::from_utf8_lossy(&o.stdout))
}

/// What one worker alone makes: every alert once, one incident per host holding them all.
fn assert_as_one_worker(db: &Path, want: &[(String, String, String)]) {
    let got = keys(&stored(db));
    assert_eq!(got.len(), want.len(), "lost or extra alerts in the store");
    assert_eq!(got, want);
    let incidents: Vec<Value> = ok(&bin()
        .args(["incident", "--json", "--limit", "100", "--db"])
        .arg(db)
        .output()
        .unwrap())
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(incidents.len(), 7);
    let total: u64 = incidents
        .iter()
        .map(|i| i["alerts"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, got.len());
}

fn stop(w: &mut Child) {
    let _ = Command::new("kill").arg(w.id().to_string()).status();
    assert!(w.wait().unwrap().success());
}

/// Three workers started together each take a share of the partitions (they count one another
/// through the store) and read them; the store holds what one worker alone would.
#[test]
fn three_workers_started_together_share_the_stream() {
    let (url, _server) = imdsguard_testdata::nats!();
    let db = imdsguard_testdata::postgres_database!("nats_three");
    let db = Path::new(&db);
    let d = dir("three");
    let want = shipped(&url, &d);
    // The store made first (a hunt over nothing): the workers then start together.
    let empty = d.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    // (It says there was nothing to analyse, and exits 2; the store is made.)
    bin()
        .args(["hunt", "--db"])
        .arg(db)
        .arg(&empty)
        .output()
        .unwrap();
    let mut ws: Vec<(Child, PathBuf)> = ["a", "b", "c"]
        .iter()
        .map(|n| worker(&url, db, &d, n, false))
        .collect();
    wait_until("every alert stored", Duration::from_secs(60), || {
        stored_now(db).len() >= want.len()
    });
    let mut held = 0;
    for (w, err) in &mut ws {
        stop(w);
        let text = said(err);
        assert!(text.contains("3 workers)"), "{text}");
        held += text
            .lines()
            .filter_map(|l| {
                l.split(" (")
                    .nth(1)?
                    .split(" of 16")
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
    }
    assert_eq!(held, 16, "each partition read by one worker");
    assert_as_one_worker(db, &want);
}

/// A worker that holds every partition stalls and is killed with SIGKILL; two workers that
/// were waiting take its partitions, each half, with its hosts' state from the store.
#[test]
fn a_killed_workers_partitions_move_to_the_waiting_ones() {
    let (url, _server) = imdsguard_testdata::nats!();
    let db = imdsguard_testdata::postgres_database!("nats_move");
    let db = Path::new(&db);
    let d = dir("move");
    let want = shipped(&url, &d);
    let (mut first, first_err) = worker(&url, db, &d, "first", true);
    wait_until(
        "the first worker's partitions",
        Duration::from_secs(30),
        || said(&first_err).contains("(16 of 16; 1 worker)"),
    );
    let (mut a, a_err) = worker(&url, db, &d, "a", false);
    let (mut b, b_err) = worker(&url, db, &d, "b", false);
    for e in [&a_err, &b_err] {
        wait_until("the others waiting", Duration::from_secs(30), || {
            said(e).contains("waiting to take over")
        });
    }
    let before = stored_now(db).len();
    assert!(
        before < want.len(),
        "all stored before the kill: nothing tested"
    );
    kill9(&mut first);
    wait_until("every alert stored", Duration::from_secs(60), || {
        stored_now(db).len() >= want.len()
    });
    // Each took half, as one of two workers.
    wait_until("every partition taken", Duration::from_secs(30), || {
        said(&a_err).contains("(8 of 16; 2 workers)")
            && said(&b_err).contains("(8 of 16; 2 workers)")
    });
    stop(&mut a);
    stop(&mut b);
    assert_as_one_worker(db, &want);
}

/// Two workers share the stream; a third joins: each of the two gives back what is above its
/// new share once its hosts' state is saved, and the third takes it with that state. Records
/// shipped after the handover raise what `hunt` finds, and each host's incident goes on through
/// it (one incident per host, holding every alert).
#[test]
fn a_worker_that_joins_gets_a_share_with_its_hosts_state() {
    let (url, _server) = imdsguard_testdata::nats!();
    let db = imdsguard_testdata::postgres_database!("nats_join");
    let db = Path::new(&db);
    let d = dir("join");
    // The first half of each host's records now, the second half after the third worker came.
    let half = |h: u32, second: bool| -> String {
        (0..2100)
            .filter(|i| i % 7 == h && (*i >= 1050) == second)
            .map(line)
            .collect()
    };
    let ship_half = |second: bool| {
        for h in 0..7u32 {
            let f = d.join(format!("web{h:02}.jsonl"));
            let mut text = std::fs::read_to_string(&f).unwrap_or_default();
            text.push_str(&half(h, second));
            std::fs::write(&f, text).unwrap();
            ship(
                &url,
                &f,
                &format!("web{h:02}"),
                &d.join(format!("ship-{h}.json")),
            );
        }
    };
    ship_half(false);
    let empty = d.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    bin()
        .args(["hunt", "--db"])
        .arg(db)
        .arg(&empty)
        .output()
        .unwrap();
    let (mut a, a_err) = worker(&url, db, &d, "a", false);
    let (mut b, b_err) = worker(&url, db, &d, "b", false);
    wait_until("the two sharing", Duration::from_secs(30), || {
        said(&a_err).contains("2 workers)") && said(&b_err).contains("2 workers)")
    });
    let (mut c, c_err) = worker(&url, db, &d, "c", false);
    wait_until("the third's share", Duration::from_secs(30), || {
        said(&c_err).contains("reading partitions")
    });
    assert!(
        said(&a_err).contains("left partitions") && said(&b_err).contains("left partitions"),
        "{} | {}",
        said(&a_err),
        said(&b_err)
    );
    ship_half(true);
    let all = d.join("all.jsonl");
    std::fs::write(
        &all,
        (0..7u32)
            .map(|h| std::fs::read_to_string(d.join(format!("web{h:02}.jsonl"))).unwrap())
            .collect::<String>(),
    )
    .unwrap();
    let want = keys(&ok(&bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&all)
        .output()
        .unwrap()));
    wait_until("every alert stored", Duration::from_secs(60), || {
        stored_now(db).len() >= want.len()
    });
    for w in [&mut a, &mut b, &mut c] {
        stop(w);
    }
    // The third read its hosts' new records, if its partitions hold any of the seven hosts.
    let text = said(&c_err);
    let parts: Vec<u32> = text
        .lines()
        .filter_map(|l| {
            l.split("reading partitions ")
                .nth(1)?
                .split(" of the")
                .next()
        })
        .flat_map(|l| {
            l.split(", ")
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    if parts.iter().any(|p| [0, 2, 3, 5, 6, 9, 15].contains(p)) {
        let printed = std::fs::read_to_string(d.join("c.out")).unwrap();
        assert!(!keys(&printed).is_empty(), "{text}");
    }
    assert_as_one_worker(db, &want);
}

/// A shipper restarted without its positions publishes every line again, and the stream keeps
/// each once (its message id is the line's place in its file).
#[test]
fn a_shipper_that_lost_its_positions_publishes_nothing_twice() {
    let (url, _server) = imdsguard_testdata::nats!();
    let d = dir("dedupe");
    // The stream exists once a worker has started.
    ok(&bin()
        .args(["watch", "--nats", &url, "--once", "--db"])
        .arg(d.join("w.db"))
        .output()
        .unwrap());
    let f = d.join("web00.jsonl");
    std::fs::write(&f, (0..50).map(line).collect::<String>()).unwrap();
    let state = d.join("state.json");
    let said = ship(&url, &f, "web00", &state);
    assert!(
        said.contains("50 lines of 1 files published") && said.contains("(0 already there)"),
        "{said}"
    );
    // Its positions kept: nothing to publish.
    let said = ship(&url, &f, "web00", &state);
    assert!(said.contains(" 0 lines of 1 files published"), "{said}");
    // Its positions lost: everything is sent, and the stream says it has it all.
    std::fs::remove_file(&state).unwrap();
    let said = ship(&url, &f, "web00", &state);
    assert!(
        said.contains("50 lines of 1 files published") && said.contains("(50 already there)"),
        "{said}"
    );
    // The file grows: only the new lines go.
    let mut more: String = std::fs::read_to_string(&f).unwrap();
    more.extend((50..60).map(line));
    std::fs::write(&f, more).unwrap();
    let said = ship(&url, &f, "web00", &state);
    assert!(
        said.contains("10 lines of 1 files published") && said.contains("(0 already there)"),
        "{said}"
    );
    // A worker reads 60 records.
    let o = bin()
        .args(["watch", "--nats", &url, "--once", "--db"])
        .arg(d.join("w.db"))
        .output()
        .unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("60 events"), "{err}");
}

/// A log of the bundled samples.
fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/logs")
        .join(name)
}

/// The sample logs of three formats, as `hunt` reads them: each alert's rule, time, file and
/// line.
fn sample_alerts(files: &[&str]) -> Vec<(String, String, String, u64)> {
    let mut c = bin();
    c.args(["hunt", "--no-db", "--output", "jsonl"]);
    for f in files {
        c.arg(sample(f));
    }
    let mut out: Vec<_> = ok(&c.output().unwrap())
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "alert")
        .map(|v| {
            let path = v["source"]["path"].as_str().unwrap();
            let file = Path::new(path).file_name().unwrap().to_string_lossy();
            (
                v["rule_id"].as_str().unwrap().to_owned(),
                v["time"].as_str().unwrap_or_default().to_owned(),
                file.into_owned(),
                v["source"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A host's logs of several formats on one partition (its Sysmon JSON, audit log and access
/// log shipped one after the other): each read in its own reading, nothing skipped, the alerts
/// `hunt` finds in the files.
#[test]
fn one_hosts_logs_of_several_formats_share_its_partition() {
    let (url, _server) = imdsguard_testdata::nats!();
    let d = dir("formats");
    let files = ["winlogbeat.ndjson", "linux-audit.log", "nginx-access.log"];
    let mut first_seq = Vec::new();
    let mut seq = 1;
    for f in files {
        first_seq.push(seq);
        seq += std::fs::read_to_string(sample(f)).unwrap().lines().count() as u64;
        ship(&url, &sample(f), "web01", &d.join("ship.json"));
    }
    let o = bin()
        .args([
            "watch", "--nats", &url, "--once", "--output", "jsonl", "--db",
        ])
        .arg(d.join("w.db"))
        .output()
        .unwrap();
    let printed = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(" 0 records skipped"), "{err}");
    // Each alert where `hunt` found it: the stream's sequence number of its line.
    let mut got: Vec<(String, String, u64)> = printed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "alert")
        .map(|v| {
            assert_eq!(v["source"]["path"], "nats:IMDSGUARD");
            (
                v["rule_id"].as_str().unwrap().to_owned(),
                v["time"].as_str().unwrap_or_default().to_owned(),
                v["source"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String, u64)> = sample_alerts(&files)
        .into_iter()
        .map(|(rule, time, file, line)| {
            let i = files.iter().position(|f| *f == file).unwrap();
            (rule, time, first_seq[i] + line - 1)
        })
        .collect();
    want.sort();
    assert!(want.len() >= 10, "{want:?}");
    assert_eq!(got, want);
}

/// An alert's rule, time, message and element.
type Cited = (String, String, u64, u64);

/// What Fluent Bit's NATS output (plugins/out_nats) sends for one flush: a CONNECT, then one
/// core NATS publish to the tag of `[[time, {"tag": tag, …record}], …]`. A PING answered makes
/// sure the server has read it.
fn fluent_bit_flush(url: &str, tag: &str, records: &[serde_json::Map<String, Value>]) {
    use std::io::{BufRead, BufReader, Write};
    let addr = url.trim_start_matches("nats://");
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    let batch: Vec<Value> = records
        .iter()
        .map(|m| {
            let mut with_tag = serde_json::Map::new();
            with_tag.insert("tag".into(), tag.into());
            with_tag.extend(m.clone());
            serde_json::json!([1_763_630_000.123_456, with_tag])
        })
        .collect();
    let json = serde_json::to_string(&batch).unwrap();
    let mut w = s;
    write!(
        w,
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"ssl_required\":false,\"name\":\"fluent-bit\",\"lang\":\"c\",\"version\":\"4.0.3\"}}\r\nPUB {tag} {}\r\n{json}\r\nPING\r\n",
        json.len()
    )
    .unwrap();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed");
        assert!(!line.starts_with("-ERR"), "{line}");
        if line.starts_with("PONG") {
            break;
        }
    }
}

/// Fluent Bit's batches: its `tail` input's lines (`log`) of an audit log and an access log in
/// one message from web01, Sysmon records parsed into maps in another from web02. Each record is
/// read (in its own reading) and cited as an element of its message; a second store reading
/// the stream again gives the same alert ids.
#[test]
fn fluent_bits_batches_are_read_record_by_record() {
    let (url, _server) = imdsguard_testdata::nats!();
    let d = dir("fluent-bit");
    // The stream exists once a worker has started.
    ok(&bin()
        .args(["watch", "--nats", &url, "--once", "--db"])
        .arg(d.join("w.db"))
        .output()
        .unwrap());
    let text = |f: &str| std::fs::read_to_string(sample(f)).unwrap();
    let logged: Vec<serde_json::Map<String, Value>> =
        [text("linux-audit.log"), text("nginx-access.log")]
            .iter()
            .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
            .map(|l| serde_json::Map::from_iter([("log".to_owned(), Value::from(l))]))
            .collect();
    fluent_bit_flush(&url, "imdsguard.logs.web01", &logged);
    let parsed: Vec<serde_json::Map<String, Value>> = text("winlogbeat.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    fluent_bit_flush(&url, "imdsguard.logs.web02", &parsed);

    let audit_lines = text("linux-audit.log").lines().count() as u64;
    let mut want: Vec<Cited> =
        sample_alerts(&["linux-audit.log", "nginx-access.log", "winlogbeat.ndjson"])
            .into_iter()
            .map(|(rule, time, file, line)| match file.as_str() {
                "linux-audit.log" => (rule, time, 1, line - 1),
                "nginx-access.log" => (rule, time, 1, audit_lines + line - 1),
                _ => (rule, time, 2, line - 1),
            })
            .collect();
    want.sort();
    let read = |db: &str| {
        let o = bin()
            .args([
                "watch", "--nats", &url, "--once", "--output", "jsonl", "--db",
            ])
            .arg(d.join(db))
            .output()
            .unwrap();
        let printed = ok(&o);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let mut got: Vec<(String, Cited, String)> = printed
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "alert")
            .map(|v| {
                let src = &v["source"];
                let at = (
                    v["rule_id"].as_str().unwrap().to_owned(),
                    v["time"].as_str().unwrap_or_default().to_owned(),
                    src["line"].as_u64().unwrap(),
                    src["element"].as_u64().expect("cited as an element"),
                );
                let host = v["host"].as_str().unwrap_or_default().to_owned();
                (v["id"].as_str().unwrap().to_owned(), at, host)
            })
            .collect();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        (got, err)
    };
    let (got, err) = read("w.db");
    assert!(err.contains(" 0 records skipped"), "{err}");
    assert_eq!(
        got.iter().map(|g| g.1.clone()).collect::<Vec<_>>(),
        want,
        "{err}"
    );
    // The tag names the host of records that name none.
    assert!(got.iter().any(|g| g.1 .2 == 1 && g.2 == "web01"), "{got:?}");
    let (again, _) = read("again.db");
    assert_eq!(
        again.iter().map(|g| &g.0).collect::<Vec<_>>(),
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
}

/// A server that speaks TLS only and wants a password: `ship` and `watch` reach it with
/// `--nats-ca` and the user in the URL, and never show the password; an authority that did not
/// sign the server's certificate, and a missing password, are refused with the reason.
#[test]
fn the_bus_over_tls_with_a_password() {
    let (url, server) = imdsguard_testdata::nats!(tls);
    assert!(url.starts_with("tls://127.0.0.1:"), "{url}");
    let d = dir("tls");
    let with_user = url.replace("tls://", "tls://imdsguard:s3cret@");
    let f = d.join("web00.jsonl");
    std::fs::write(&f, (0..20).map(|i| line(i * 7)).collect::<String>()).unwrap();
    let ship_with = |url: &str, ca: &str| {
        bin()
            .args(["ship", "--nats", url, "--host", "web00", "--nats-ca"])
            .arg(server.join(ca))
            .arg("--state")
            .arg(d.join("ship.json"))
            .arg(&f)
            .output()
            .unwrap()
    };
    let o = ship_with(&with_user, "ca.pem");
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("20 lines of 1 files published to tls://imdsguard@127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    let o = bin()
        .args(["watch", "--nats", &with_user, "--once", "--nats-ca"])
        .arg(server.join("ca.pem"))
        .arg("--db")
        .arg(d.join("w.db"))
        .output()
        .unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("20 events"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    // What `hunt` finds in the file (the host aside: the records name their own).
    let rule_time = |text: &str| -> Vec<(String, String)> {
        keys(text).into_iter().map(|(r, t, _)| (r, t)).collect()
    };
    let want = rule_time(&ok(&bin()
        .args(["hunt", "--no-db", "--output", "jsonl"])
        .arg(&f)
        .output()
        .unwrap()));
    assert!(!want.is_empty());
    assert_eq!(rule_time(&stored(&d.join("w.db"))), want);

    let o = ship_with(&with_user, "other-ca.pem");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tls://imdsguard@127.0.0.1:")
            && err.contains("connecting")
            && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    let o = ship_with(&url, "ca.pem");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains("connecting") && err.contains("authorization"),
        "{err}"
    );
}

/// No server there: the error names it, and nothing waits forever.
#[test]
fn an_unreachable_server_is_named() {
    let url = format!("nats://127.0.0.1:{}", imdsguard_testdata::free_port());
    let d = dir("unreachable");
    let o = bin()
        .args(["watch", "--nats", &url, "--once", "--db"])
        .arg(d.join("w.db"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("NATS {url}: connecting")), "{err}");
}

fn dir(case: &str) -> PathBuf {
    live::scratch("nats", case)
}
