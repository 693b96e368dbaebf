use super::*;
use imdsguard_correlate::imds::{HostBaseline, ProcessBaseline};
use imdsguard_event::{EventKind, Position, SourceRef};
use imdsguard_rules::AlertEvent;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imdsguard-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("sub").join("imdsguard.db")
}

/// A test run on both databases: `name` on a new SQLite file, `name::on_postgres` on a new
/// database of the tests' PostgreSQL server (skipped, saying so, where none is installed; never
/// under CI).
macro_rules! on_both {
    ($(#[$m:meta])* fn $name:ident(mut $s:ident) $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            #[allow(unused_mut)]
            let mut $s = Store::open(&temp(stringify!($name))).unwrap();
            $body
        }

        #[cfg(feature = "postgres")]
        mod $name {
            use super::*;

            #[test]
            fn on_postgres() {
                let url = imdsguard_testdata::postgres_database!(stringify!($name));
                #[allow(unused_mut)]
                let mut $s = Store::open(Path::new(&url)).unwrap();
                $body
            }
        }
    };
}

/// Runs a statement on the store's database as it is (to damage a row, say).
fn raw(s: &Store, sql: &str) {
    s.db.exec(sql, &[]).unwrap();
}

fn alert(id: &str, rule: &str, host: &str, sev: Severity, line: u64) -> Alert {
    Alert {
        tag: imdsguard_rules::AlertTag,
        id: id.into(),
        rule_id: rule.into(),
        title: format!("title of {rule}"),
        severity: sev,
        attack: Vec::new(),
        time: Some("2026-11-20T10:00:00Z".into()),
        host: Some(host.into()),
        source: SourceRef {
            path: "a.jsonl".into(),
            position: Position::Line(line),
        },
        event: AlertEvent {
            format: imdsguard_event::Format::NxlogJson,
            kind: EventKind::NetworkConnect,
            id: None,
            channel: None,
            fields: Default::default(),
        },
        target: None,
        process: None,
        network: None,
        container: None,
        http: None,
        cloud: None,
        reasons: vec!["why".into()],
        related: Vec::new(),
        triage: None,
    }
}

#[test]
fn a_new_file_is_migrated_and_reopening_keeps_its_data() {
    let path = temp("migrate");
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
    let a = alert("a1", "IMDS-001", "web01", Severity::Medium, 1);
    s.commit(&Batch {
        alerts: vec![(&a, Some(1000))],
        ..Batch::default()
    })
    .unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(s.alert_count().unwrap(), 1);
    let mode: String = s
        .sqlite()
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_file_from_a_newer_version_is_refused_untouched() {
    let path = temp("newer");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
        .unwrap();
    drop(c);
    match Store::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {:?}", other.map(|s| s.path)),
    }
    let c = Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

on_both! {
fn alerts_are_kept_once_and_filtered(mut s) {
    let a = alert("a1", "IMDS-001", "WEB01", Severity::Medium, 1);
    let b = alert("b2", "IMDS-004", "web01.corp.example", Severity::High, 2);
    let c = alert("c3", "IMDS-004", "db01", Severity::Critical, 3);
    let batch = Batch {
        alerts: vec![(&a, Some(1000)), (&b, Some(2000)), (&c, Some(3000))],
        ..Batch::default()
    };
    assert_eq!(s.commit(&batch).unwrap(), 3);
    // The same alerts again (a second hunt, a resumed watch): nothing new.
    assert_eq!(s.commit(&batch).unwrap(), 0);
    assert_eq!(s.alert_count().unwrap(), 3);
    let ids = |f: AlertFilter| -> Vec<String> {
        s.alerts(&f)
            .unwrap()
            .rows
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(AlertFilter::default()), ["c3", "b2", "a1"]);
    let web = AlertFilter {
        host: Some("Web01".into()),
        ..AlertFilter::default()
    };
    assert_eq!(ids(web), ["b2", "a1"]);
    // A host by any of its names: the FQDN finds the short name's alerts too, and `web0`
    // finds nothing (names, not prefixes).
    let fqdn = AlertFilter {
        host: Some("WEB01.corp.example".into()),
        ..AlertFilter::default()
    };
    assert_eq!(ids(fqdn), ["b2", "a1"]);
    let prefix = AlertFilter {
        host: Some("web0".into()),
        ..AlertFilter::default()
    };
    assert!(ids(prefix).is_empty());
    let high = AlertFilter {
        min_severity: Some(Severity::High),
        rule: Some("IMDS-004".into()),
        ..AlertFilter::default()
    };
    assert_eq!(ids(high), ["c3", "b2"]);
    let window = AlertFilter {
        since_ms: Some(1500),
        until_ms: Some(3000),
        ..AlertFilter::default()
    };
    assert_eq!(ids(window), ["b2"]);
    let one = AlertFilter {
        limit: Some(1),
        ..AlertFilter::default()
    };
    assert_eq!(ids(one), ["c3"]);
    // The JSON read back is the alert as written.
    let back = &s.alerts(&AlertFilter::default()).unwrap().rows[2];
    assert_eq!(back, &serde_json::to_value(&a).unwrap());
}
}

on_both! {
/// Every alert one at a time, in either time order, as the list gives them; a row that does
/// not read back comes as its error and the walk goes on.
fn alerts_are_walked_one_at_a_time_in_time_order(mut s) {
    let alerts: Vec<Alert> = (0..5)
        .map(|i| alert(&format!("a{i}"), "IMDS-001", "web01", Severity::Medium, i))
        .collect();
    s.commit(&Batch {
        alerts: alerts
            .iter()
            .enumerate()
            .map(|(i, a)| (a, Some(1000 - i as i64 * 100)))
            .collect(),
        ..Batch::default()
    })
    .unwrap();
    raw(&s, "UPDATE alerts SET json = 'not json' WHERE id = 'a2'");
    let walk = |oldest_first: bool| {
        let (mut ids, mut bad) = (Vec::new(), 0);
        s.each_alert(&AlertFilter::default(), oldest_first, &mut |r| match r {
            Ok(v) => ids.push(v["id"].as_str().unwrap().to_owned()),
            Err(_) => bad += 1,
        })
        .unwrap();
        (ids, bad)
    };
    assert_eq!(
        walk(true),
        (vec!["a4".into(), "a3".into(), "a1".into(), "a0".into()], 1)
    );
    let (newest, bad) = walk(false);
    assert_eq!(newest, ["a0", "a1", "a3", "a4"]);
    assert_eq!(bad, 1);
    let listed = s.alerts(&AlertFilter::default()).unwrap();
    let ids: Vec<&str> = listed
        .rows
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, newest);
    assert_eq!(listed.unreadable.len(), 1);
}
}

on_both! {
fn incidents_link_their_alerts_and_baselines_round_trip(mut s) {
    let a = alert("a1", "IMDS-003", "web01", Severity::High, 1);
    let b = alert("b2", "IMDS-004", "web01", Severity::High, 2);
    let mut inc = imdsguard_correlate::Incidents::new(3_600_000);
    let id = inc.add(&a, a.host.as_deref().unwrap(), 1000);
    inc.add(&b, b.host.as_deref().unwrap(), 2000);
    let links = vec![("a1".to_owned(), id.clone()), ("b2".to_owned(), id.clone())];
    let all = inc.all();
    let mut baselines = Baselines::new();
    let mut hb = HostBaseline {
        since_ms: 5,
        ..HostBaseline::default()
    };
    let mut p = ProcessBaseline::default();
    (p.first_ms, p.last_ms, p.requests, p.busiest) = (7, 9, 3, 2);
    hb.processes.insert("/usr/bin/curl".into(), p);
    baselines.insert("web01".into(), hb);
    s.commit(&Batch {
        alerts: vec![(&a, Some(1000)), (&b, Some(2000))],
        incidents: all.clone(),
        links,
        outbox: None,
        stream_hosts: vec![("S".into(), 3, "web01".into())],
        windows: Vec::new(),
        baselines: Some(&baselines),
        checkpoints: vec![Checkpoint {
            input: "/var/log/x.log".into(),
            offset: 4096,
            lines: 12,
            identity: Some("2049:1234".into()),
            tail: Some("5f3a".into()),
        }],
    })
    .unwrap();
    let stored = s.incident(&id).unwrap().expect("the incident");
    assert_eq!(stored["incident_id"], id.as_str());
    assert_eq!(stored["timeline"].as_array().unwrap().len(), 2);
    let linked = s
        .alerts(&AlertFilter {
            incident: Some(id.clone()),
            ..AlertFilter::default()
        })
        .unwrap();
    assert_eq!(linked.rows.len(), 2);
    assert!(linked.unreadable.is_empty());
    assert_eq!(s.baselines().unwrap(), baselines);
    assert_eq!(s.stream_hosts("S", 3).unwrap(), ["web01"]);
    assert!(s.stream_hosts("S", 4).unwrap().is_empty());
    let cp = s.checkpoint("/var/log/x.log").unwrap().unwrap();
    assert_eq!((cp.offset, cp.lines), (4096, 12));
    assert_eq!(s.checkpoint("/nope").unwrap(), None);
    // One at a time: lasting into a time, at a severity.
    let walk = |min: Option<Severity>, since: Option<i64>| {
        let mut ids = Vec::new();
        s.each_incident(min, since, &mut |r| {
            ids.push(r.unwrap()["incident_id"].as_str().unwrap().to_owned())
        })
        .unwrap();
        ids
    };
    assert_eq!(walk(None, None), std::slice::from_ref(&id));
    assert_eq!(walk(None, Some(2000)), std::slice::from_ref(&id));
    assert!(walk(None, Some(2001)).is_empty());
    assert!(walk(Some(Severity::Critical), None).is_empty());
    // Two high alerts showing execution only: a high incident.
    assert_eq!(s.incidents(Some(Severity::High), 10).unwrap().rows.len(), 1);
    assert_eq!(
        s.incidents(Some(Severity::Critical), 10)
            .unwrap()
            .rows
            .len(),
        0
    );
}
}

on_both! {
fn analysts_act_on_what_exists_and_their_actions_are_kept_in_order(mut s) {
    let a = alert("a1", "IMDS-001", "web01", Severity::Medium, 1);
    s.commit(&Batch {
        alerts: vec![(&a, None)],
        ..Batch::default()
    })
    .unwrap();
    assert!(matches!(
        s.act("zz", "closed", None, "ana"),
        Err(StoreError::Unknown(_))
    ));
    s.act("a1", "acknowledged", Some("looking"), "ana").unwrap();
    s.act("a1", "closed", Some("SSM agent update"), "bo")
        .unwrap();
    let acts = s.actions("a1").unwrap();
    let got: Vec<(&str, &str)> = acts
        .iter()
        .map(|a| (a.status.as_str(), a.who.as_str()))
        .collect();
    assert_eq!(got, [("acknowledged", "ana"), ("closed", "bo")]);
    assert_eq!(acts[1].note.as_deref(), Some("SSM agent update"));
}
}

#[test]
fn a_reader_reads_while_a_writer_holds_a_transaction() {
    let path = temp("wal");
    let mut w = Store::open(&path).unwrap();
    let a = alert("a1", "IMDS-001", "web01", Severity::Medium, 1);
    w.commit(&Batch {
        alerts: vec![(&a, None)],
        ..Batch::default()
    })
    .unwrap();
    w.sqlite()
        .unwrap()
        .execute_batch("BEGIN IMMEDIATE")
        .unwrap();
    w.sqlite()
        .unwrap()
        .execute(
            "INSERT INTO alerts (id, rule_id, severity, source, json, stored_at_ms)
             VALUES ('b2', 'IMDS-001', 2, 'x', '{}', 0)",
            [],
        )
        .unwrap();
    // The reader sees the committed state at once, without waiting for the writer.
    let r = Store::open(&path).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(r.alert_count().unwrap(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    w.sqlite().unwrap().execute_batch("COMMIT").unwrap();
    assert_eq!(r.alert_count().unwrap(), 2);
}

/// A second store opened in the same process (`watch --webhook`'s delivery thread) must not
/// drop the first connection's locks: a reader in another process (here Python's sqlite3, as
/// `imdsguard alerts` in another terminal) would then think itself the last connection and, on
/// closing, delete the `-wal` file the writer keeps writing to, so that what it writes next is
/// lost.
#[test]
fn a_second_store_in_the_process_keeps_the_writers_wal_for_other_readers() {
    let path = temp("second-open");
    let mut w = Store::open(&path).unwrap();
    let a = alert("a1", "IMDS-001", "web01", Severity::Medium, 1);
    w.commit(&Batch {
        alerts: vec![(&a, None)],
        ..Batch::default()
    })
    .unwrap();
    let _second = Store::open(&path).unwrap();
    let count = || -> String {
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import sqlite3\nc = sqlite3.connect({:?})\nprint(c.execute('select count(*) from alerts').fetchone()[0])\nc.close()",
                path.display().to_string()
            ))
            .output()
            .expect("python3 runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(count(), "1");
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    assert!(
        std::path::Path::new(&wal).exists(),
        "the reader deleted the writer's WAL"
    );
    let b = alert("b2", "IMDS-001", "web01", Severity::Medium, 2);
    w.commit(&Batch {
        alerts: vec![(&b, None)],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(count(), "2");
}

on_both! {
fn new_alerts_queue_for_a_webhook_and_leave_the_outbox_when_delivered(mut s) {
    let a = alert("a1", "IMDS-001", "web01", Severity::Medium, 1);
    let b = alert("b2", "IMDS-004", "web01", Severity::High, 2);
    let low = alert("c3", "IMDS-103", "web01", Severity::Low, 3);
    let batch = Batch {
        alerts: vec![(&a, Some(1)), (&b, Some(2)), (&low, Some(3))],
        outbox: Some(("http://soar/hook", Severity::Medium)),
        ..Batch::default()
    };
    s.commit(&batch).unwrap();
    // Stored again (a restart reading the same lines): not queued twice. The low alert is kept,
    // and not sent: below the webhook's severity.
    s.commit(&batch).unwrap();
    assert_eq!(s.alert_count().unwrap(), 3);
    assert_eq!(s.outbox_len("http://soar/hook").unwrap(), 2);
    let due = s.due("http://soar/hook", now_ms(), 10).unwrap();
    let ids: Vec<&str> = due.iter().map(|p| p.alert_id.as_str()).collect();
    assert_eq!(ids, ["a1", "b2"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&due[0].json).unwrap(),
        serde_json::to_value(&a).unwrap()
    );
    s.retry_at("a1", "http://soar/hook", now_ms() + 60_000, "503")
        .unwrap();
    s.delivered("b2", "http://soar/hook").unwrap();
    assert!(s.due("http://soar/hook", now_ms(), 10).unwrap().is_empty());
    let later = s.due("http://soar/hook", now_ms() + 120_000, 10).unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attempts, 1);
}
}

#[test]
fn a_file_of_an_older_schema_is_upgraded_with_its_data() {
    let path = temp("upgrade");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A store as the first release wrote it: migration 1 only, with an alert.
    let c = Connection::open(&path).unwrap();
    c.execute_batch(MIGRATIONS[0]).unwrap();
    c.execute_batch("PRAGMA user_version = 1").unwrap();
    c.execute(
        "INSERT INTO alerts (id, rule_id, severity, source, json, stored_at_ms)
         VALUES ('old1', 'IMDS-001', 2, 'a.jsonl:1', '{\"id\":\"old1\"}', 0)",
        [],
    )
    .unwrap();
    drop(c);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(s.alert("old1").unwrap().unwrap()["id"], "old1");
    assert_eq!(s.outbox_len("x").unwrap(), 0);
}

on_both! {
fn a_restored_incident_takes_in_alerts_linked_after_it_was_written(mut s) {
    let a = alert("a1", "IMDS-003", "web01", Severity::High, 1);
    let mut inc = imdsguard_correlate::Incidents::new(3_600_000);
    let id = inc.add(&a, a.host.as_deref().unwrap(), 1000);
    let saved = inc.all().into_iter().cloned().collect::<Vec<_>>();
    s.commit(&Batch {
        alerts: vec![(&a, Some(1000))],
        incidents: saved.iter().collect(),
        links: vec![("a1".into(), id.clone())],
        ..Batch::default()
    })
    .unwrap();
    // A later alert and its link are stored; the crash comes before the incident is rewritten.
    let mut b = alert("b2", "IMDS-004", "web01", Severity::High, 2);
    b.target = Some(imdsguard_rules::AlertTarget {
        provider: Some("aws".into()),
        endpoint: Some("169.254.169.254".into()),
        path: Some("/latest/meta-data/iam/security-credentials/r".into()),
        kind: imdsguard_target::Kind::Credentials,
        encoding: Vec::new(),
        found_in: imdsguard_enrich::TargetSource::CommandLine,
        method: None,
    });
    s.commit(&Batch {
        alerts: vec![(&b, Some(2000))],
        links: vec![("b2".into(), id.clone())],
        ..Batch::default()
    })
    .unwrap();
    let (restored, unreadable) = s.latest_incidents().unwrap();
    assert!(unreadable.is_empty());
    assert_eq!(restored.len(), 1);
    let r = &restored[0];
    assert_eq!(r.id, id);
    assert_eq!(r.alerts, 2);
    assert_eq!(r.timeline[1].alert_id, "b2");
    assert_eq!(r.last_ms, 2000);
    // Execution (IMDS-003) then credential access (IMDS-004 on a credential path): the chain
    // raises the incident.
    assert_eq!(
        r.stages,
        [
            imdsguard_correlate::Stage::Execution,
            imdsguard_correlate::Stage::CredentialAccess
        ]
    );
    assert_eq!(r.severity, Severity::High);
    assert!(
        r.severity_reason.contains("its most severe"),
        "{}",
        r.severity_reason
    );
}
}

/// A schema version no imdsguard writes (negative) is refused and the file left as it is.
#[test]
fn a_negative_schema_version_is_refused_untouched() {
    let path = temp("negative");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA user_version = -1;").unwrap();
    drop(c);
    match Store::open(&path) {
        Err(StoreError::Corrupt { message, .. }) => assert!(message.contains("-1"), "{message}"),
        other => panic!("expected a refusal, got {:?}", other.map(|s| s.path)),
    }
    let c = Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, -1);
    let tables: i64 = c
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "nothing was created in it");
}

/// Several processes opening one new store at once (two `watch`es started together): one
/// migrates, the others find it done; none fails with "table alerts already exists".
#[test]
fn stores_opened_at_once_migrate_once() {
    for round in 0..5 {
        let path = temp(&format!("race{round}"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let opened: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|s| s.version().unwrap())
                })
            })
            .collect();
        for t in opened {
            match t.join().unwrap() {
                Ok(v) => assert_eq!(v, MIGRATIONS.len() as i64),
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
}

/// Every query the commands and `watch` run on a growing table reads it through an index (the
/// query plan, not a timing): each host's latest incident (what `watch` restores at start, once
/// a correlated scan per row), incidents by severity, alerts by rule, host, incident and time.
#[test]
fn the_commands_queries_use_indexes() {
    let s = Store::open(&temp("plans")).unwrap();
    let plan = |sql: &str| -> String {
        let mut st = s
            .sqlite()
            .unwrap()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = st
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        rows.join(" | ")
    };
    let latest = plan(
        "SELECT id, json FROM incidents i WHERE last_ms =
           (SELECT MAX(last_ms) FROM incidents j WHERE j.host = i.host) ORDER BY host, id",
    );
    assert!(
        latest.contains("USING COVERING INDEX incidents_by_host"),
        "{latest}"
    );
    for (sql, index) in [
        ("SELECT json FROM incidents WHERE severity >= 3 ORDER BY last_ms DESC, id LIMIT 10", "incidents_by_severity"),
        ("SELECT json FROM alerts WHERE 1=1 AND rule_id = 'IMDS-001' ORDER BY time_ms DESC, id", "alerts_by_rule"),
        ("SELECT json FROM alerts WHERE 1=1 AND host >= 'web01' AND host < 'web01' || '/' AND (host = 'web01' OR host >= 'web01' || '.') ORDER BY time_ms DESC, id", "alerts_by_host"),
        ("SELECT COUNT(*) FROM alerts WHERE incident_id = 'x'", "alerts_by_incident"),
    ] {
        let p = plan(sql);
        assert!(p.contains(index), "{sql}: {p}");
    }
}

on_both! {
/// The latest incident of each of 5,000 hosts, each with two incidents, is restored exactly.
fn a_large_store_restores_each_hosts_latest_incident(mut s) {
    let mut inc = imdsguard_correlate::Incidents::new(1_000);
    let alerts: Vec<Alert> = (0..10_000)
        .map(|i| {
            alert(
                &format!("a{i}"),
                "IMDS-001",
                &format!("h{}", i % 5_000),
                Severity::Medium,
                i,
            )
        })
        .collect();
    let mut links = Vec::new();
    for (i, a) in alerts.iter().enumerate() {
        // The second alert of each host comes after the gap: a new incident.
        let t = if i < 5_000 { 0 } else { 10_000 };
        links.push((a.id.clone(), inc.add(a, a.host.as_deref().unwrap(), t)));
    }
    let all = inc.all().into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(all.len(), 10_000);
    s.commit(&Batch {
        alerts: alerts.iter().map(|a| (a, Some(0))).collect(),
        incidents: all.iter().collect(),
        links,
        ..Batch::default()
    })
    .unwrap();
    let (restored, unreadable) = s.latest_incidents().unwrap();
    assert!(unreadable.is_empty());
    assert_eq!(restored.len(), 5_000);
    assert!(
        restored.iter().all(|r| r.last_ms == 10_000),
        "each host's later incident"
    );
}
}

#[test]
fn a_database_url_is_shown_without_its_password() {
    let shown = |u: &str| super::shown(Path::new(u));
    assert_eq!(
        shown("postgres://ana:s3cret@db.example:5432/imdsguard?sslmode=disable"),
        "postgres://ana@db.example:5432/imdsguard?sslmode=disable"
    );
    assert_eq!(
        shown("postgresql://db.example/imdsguard?user=ana&password=s3cret"),
        "postgresql://db.example/imdsguard?user=ana&password=…"
    );
    // A password holding '@' (percent-encoded by the rules, but not always by people).
    assert_eq!(shown("postgres://ana:a@b@h/d"), "postgres://ana@h/d");
    assert_eq!(shown("postgres://h"), "postgres://h");
    assert_eq!(
        shown("/var/lib/imdsguard/a:b@c.db"),
        "/var/lib/imdsguard/a:b@c.db"
    );
    assert!(is_url(Path::new("postgresql://h/d")));
    assert!(!is_url(Path::new("./postgres://h/d")));
}

/// PostgreSQL: a new database is given the schema, reopening keeps what was stored, and a
/// reader of a database that holds no store is told so rather than shown an empty one.
#[cfg(feature = "postgres")]
#[test]
fn a_postgres_database_is_migrated_once_and_reopened_with_its_data() {
    let url = imdsguard_testdata::postgres_database!("pg_migrate");
    let at = Path::new(&url);
    match Store::open_read(at) {
        Err(StoreError::Empty { path }) => assert_eq!(path, url),
        other => panic!("expected Empty, got {:?}", other.map(|s| s.path)),
    }
    // Workers started together: one migrates, the others find it done.
    let opened: Vec<_> = (0..6)
        .map(|_| {
            let at = at.to_path_buf();
            std::thread::spawn(move || Store::open(&at).map(|s| s.version().unwrap()))
        })
        .collect();
    for t in opened {
        assert_eq!(t.join().unwrap().unwrap(), MIGRATIONS.len() as i64);
    }
    let mut s = Store::open(at).unwrap();
    let a = alert("a1", "IMDS-001", "web01", Severity::Medium, 1);
    s.commit(&Batch {
        alerts: vec![(&a, Some(1000))],
        ..Batch::default()
    })
    .unwrap();
    drop(s);
    let r = Store::open_read(at).unwrap();
    assert_eq!(r.alert_count().unwrap(), 1);
    assert_eq!(
        r.alert("a1").unwrap().unwrap(),
        serde_json::to_value(&a).unwrap()
    );
    // A schema newer than this build knows: refused, and left as it is.
    raw(&r, "UPDATE imdsguard_schema SET version = 99");
    match Store::open(at) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {:?}", other.map(|s| s.path)),
    }
    assert_eq!(r.version().unwrap(), 99);
    assert_eq!(r.alert_count().unwrap(), 1);
}

/// A server that is not there: an error naming the URL (without its password), not a hang.
#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgres_is_named_without_its_password() {
    let port = imdsguard_testdata::free_port();
    let url = format!("postgres://ana:s3cret@127.0.0.1:{port}/imdsguard");
    let e = Store::open(Path::new(&url)).err().expect("no server there");
    let said = e.to_string();
    assert!(
        said.starts_with(&format!(
            "postgres://ana@127.0.0.1:{port}/imdsguard: connecting: "
        )),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
}

/// One holder of a lock at a time; it goes with the store that took it.
#[test]
fn a_lock_is_held_by_one_store_until_it_closes() {
    let path = temp("lock");
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    assert!(a.try_lock("nats:S").unwrap());
    assert!(!b.try_lock("nats:S").unwrap());
    assert!(
        b.try_lock("nats:T").unwrap(),
        "another name is another lock"
    );
    drop(a);
    assert!(b.try_lock("nats:S").unwrap());
    b.unlock("nats:S").unwrap();
    let c = Store::open(&path).unwrap();
    assert!(c.try_lock("nats:S").unwrap(), "given up");
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_lock_is_held_by_one_session_until_it_ends() {
    let url = imdsguard_testdata::postgres_database!("pg_lock");
    let a = Store::open(Path::new(&url)).unwrap();
    let b = Store::open(Path::new(&url)).unwrap();
    assert!(a.try_lock("nats:S").unwrap());
    assert!(!b.try_lock("nats:S").unwrap());
    drop(a);
    // The server lets go of a closed session's locks when its backend has ended, a moment
    // after the client closed the connection.
    let started = std::time::Instant::now();
    while !b.try_lock("nats:S").unwrap() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the closed session's lock was never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    b.unlock("nats:S").unwrap();
    let c = Store::open(Path::new(&url)).unwrap();
    assert!(c.try_lock("nats:S").unwrap(), "given up");
}

/// TLS to PostgreSQL as libpq's options ask (the tests' server has a certificate for `localhost`
/// signed by an authority of its own): encrypted by default; `verify-full` refuses the
/// certificate when connecting by an address it does not name, and accepts it by the name;
/// `verify-ca` checks the authority only; an authority that did not sign it is refused; a
/// missing file is named; `sslmode=disable` is plain.
#[cfg(feature = "postgres")]
#[test]
fn postgres_over_tls_checks_the_certificate_as_sslmode_asks() {
    let url = imdsguard_testdata::postgres_database!("pg_tls");
    let certs = imdsguard_testdata::postgres_certificates().unwrap();
    let ca = certs.join("ca.pem");
    let other = certs.join("other-ca.pem");
    let by_name = url.replace("@127.0.0.1:", "@localhost:");
    let encrypted = |u: &str| -> Result<bool, String> {
        let s = Store::open(Path::new(u)).map_err(|e| e.to_string())?;
        let c = s
            .db
            .one(
                "SELECT CASE WHEN ssl THEN 1 ELSE 0 END::bigint FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        Ok(c == Cell::Int(1))
    };
    assert_eq!(encrypted(&url), Ok(true), "prefer: encrypted");
    assert_eq!(encrypted(&format!("{url}?sslmode=disable")), Ok(false));
    assert_eq!(encrypted(&format!("{url}?sslmode=require")), Ok(true));
    let e = encrypted(&format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca.display()
    ))
    .unwrap_err();
    assert!(
        e.contains("connecting") && e.contains("certificate not valid for name \"127.0.0.1\""),
        "{e}"
    );
    assert_eq!(
        encrypted(&format!(
            "{url}?sslmode=verify-ca&sslrootcert={}",
            ca.display()
        )),
        Ok(true)
    );
    assert_eq!(
        encrypted(&format!(
            "{by_name}?sslmode=verify-full&sslrootcert={}",
            ca.display()
        )),
        Ok(true)
    );
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = encrypted(&format!(
            "{by_name}?sslmode={mode}&sslrootcert={}",
            other.display()
        ))
        .unwrap_err();
        assert!(e.contains("UnknownIssuer"), "{mode}: {e}");
    }
    let e = encrypted(&format!(
        "{url}?sslmode=verify-full&sslrootcert={}/missing.pem",
        certs.display()
    ))
    .unwrap_err();
    assert!(
        e.contains(": TLS: sslrootcert ") && e.contains("missing.pem"),
        "{e}"
    );
}
