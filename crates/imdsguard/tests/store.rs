//! The store as an analyst uses it: `hunt` fills it, a second hunt over the same logs adds
//! nothing, `alerts` filters, `incident` shows the timeline and triage, `triage` records who did
//! what; a store from a newer imdsguard is refused with its path named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn run(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("IMDSGUARD_DB")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("run imdsguard")
}

fn db(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imdsguard-store-{case}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("imdsguard.db")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn hunt_fills_the_store_once_and_alerts_reads_it_back() {
    fills_once_and_reads_back(&db("fill"));
}

/// The same on PostgreSQL (`--db postgres://…`): every command, the same answers.
#[test]
fn hunt_fills_a_postgres_store_once_and_alerts_reads_it_back() {
    let url = imdsguard_testdata::postgres_database!("cli_fill");
    fills_once_and_reads_back(Path::new(&url));
}

fn fills_once_and_reads_back(db: &Path) {
    let first = run(db, &["hunt", "samples/logs", "--output", "jsonl"]);
    let printed: Vec<Value> = jsonl(&stdout(&first))
        .into_iter()
        .filter(|v| v.get("rule_id").is_some())
        .collect();
    let err = String::from_utf8_lossy(&first.stderr);
    let n = printed.len();
    assert!(
        err.contains(&format!("{n} alerts written ({n} new)")),
        "{err}"
    );
    // The same logs again, now with the stored baselines: the same alerts, none new.
    let again = run(db, &["hunt", "samples/logs", "--output", "jsonl"]);
    let reprinted: Vec<Value> = jsonl(&stdout(&again))
        .into_iter()
        .filter(|v| v.get("rule_id").is_some())
        .collect();
    assert_eq!(reprinted, printed);
    assert!(String::from_utf8_lossy(&again.stderr).contains("(0 new)"));

    // Everything printed is stored, as printed.
    let stored = jsonl(&stdout(&run(
        db,
        &["alerts", "--output", "jsonl", "--limit", "1000"],
    )));
    assert_eq!(stored.len(), n);
    for a in &printed {
        assert!(stored.contains(a), "not stored as printed: {}", a["id"]);
    }
    // Filters: host (any case), rule, severity, time.
    let web01 = jsonl(&stdout(&run(
        db,
        &[
            "alerts",
            "--output",
            "jsonl",
            "--host",
            "WEB01.corp.example",
        ],
    )));
    let want = printed
        .iter()
        .filter(|a| a["host"] == "web01.corp.example")
        .count();
    assert_eq!(web01.len(), want);
    let crit = jsonl(&stdout(&run(
        db,
        &[
            "alerts",
            "--output",
            "jsonl",
            "--min-severity",
            "critical",
            "--rule",
            "IMDS-005",
        ],
    )));
    assert!(!crit.is_empty());
    assert!(crit
        .iter()
        .all(|a| a["severity"] == "critical" && a["rule_id"] == "IMDS-005"));
    let later = jsonl(&stdout(&run(
        db,
        &[
            "alerts",
            "--output",
            "jsonl",
            "--since",
            "2026-11-22T00:00:00Z",
        ],
    )));
    assert_eq!(
        later.len(),
        printed
            .iter()
            .filter(|a| a["time"].as_str().unwrap() >= "2026-11-22")
            .count()
    );
}

#[test]
fn an_incident_shows_its_timeline_and_triage_and_keeps_analyst_actions() {
    incident_and_triage(&db("incident"));
}

#[test]
fn an_incident_in_postgres_shows_its_timeline_and_keeps_analyst_actions() {
    let url = imdsguard_testdata::postgres_database!("cli_incident");
    incident_and_triage(Path::new(&url));
}

/// A store that is only a database URL, on a server that is not there: the error names it
/// without its password, and nothing is printed as if the store were empty.
#[test]
fn an_unreachable_postgres_store_is_named_without_its_password() {
    let port = imdsguard_testdata::free_port();
    let url = format!("postgres://ana:s3cret@127.0.0.1:{port}/imdsguard");
    for args in [&["alerts"][..], &["hunt", "samples/logs/sysmon"][..]] {
        let o = run(Path::new(&url), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(
            err.contains(&format!("postgres://ana@127.0.0.1:{port}/imdsguard")),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }
}

fn incident_and_triage(db: &Path) {
    let hunt = stdout(&run(db, &["hunt", "samples/logs", "--output", "jsonl"]));
    let lines = jsonl(&hunt);
    let inc = lines
        .iter()
        .find(|v| v["host"] == "web01.corp.example" && v.get("incident_id").is_some())
        .expect("an incident on web01");
    let id = inc["incident_id"].as_str().unwrap();

    let list = stdout(&run(db, &["incident"]));
    assert!(list.contains(id), "{list}");
    let shown = stdout(&run(db, &["incident", id]));
    assert!(shown.contains("timeline"), "{shown}");
    assert!(shown.contains("IMDS-101"), "{shown}");
    assert!(shown.contains("escalate: true"), "{shown}");
    assert!(shown.contains("status: open"), "{shown}");

    // Analyst actions are kept, with who and the note, in order.
    stdout(&run(
        db,
        &["triage", id, "--status", "acknowledged", "--who", "ana"],
    ));
    stdout(&run(
        db,
        &[
            "triage",
            id,
            "--status",
            "escalated",
            "--note",
            "web shell on web01",
            "--who",
            "bo",
        ],
    ));
    let json: Value = serde_json::from_str(&stdout(&run(db, &["incident", id, "--json"]))).unwrap();
    let acts: Vec<(&str, &str)> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["status"].as_str().unwrap(), a["who"].as_str().unwrap()))
        .collect();
    assert_eq!(acts, [("acknowledged", "ana"), ("escalated", "bo")]);
    assert_eq!(json["actions"][1]["note"], "web shell on web01");
    assert_eq!(
        json["alerts"].as_array().unwrap().len(),
        inc["timeline"].as_array().unwrap().len()
    );

    // An alert can be triaged too; an unknown id or status is refused.
    let alert_id = inc["timeline"][0]["alert_id"].as_str().unwrap();
    let shown = stdout(&run(
        db,
        &["triage", alert_id, "--status", "closed", "--who", "cy"],
    ));
    assert!(shown.contains("closed"), "{shown}");
    let bad = run(db, &["triage", "ffffffffffffffff", "--status", "closed"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no alert or incident ffffffffffffffff"));
    let bad = run(db, &["triage", id, "--status", "fixed"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_store_from_a_newer_imdsguard_is_refused_by_name() {
    let db = db("newer");
    stdout(&run(
        &db,
        &["hunt", "samples/logs/linux-audit.log", "--output", "jsonl"],
    ));
    // Bump the schema version as a newer release would.
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('PRAGMA user_version = 99'); c.commit()",
            db.display().to_string()
        ))
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "python3 with sqlite3 is needed to write the newer version"
    );
    let out = run(&db, &["alerts"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(err.contains("newer"), "{err}");
}

/// An alert's id names what was found in which record, not how the path was typed nor where
/// the file lies: `samples/logs`, `./samples/logs`, the absolute path and a copy elsewhere
/// store each alert once, and each host keeps one incident.
#[test]
fn the_same_logs_by_any_path_or_copy_store_each_alert_once() {
    let db = db("paths");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let copy = db.parent().unwrap().join("copied-logs");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(repo.join("samples/logs")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let absolute = std::fs::canonicalize(repo.join("samples/logs")).unwrap();
    let ids = |out: &Output| -> Vec<String> {
        let mut v: Vec<String> = jsonl(&stdout(out))
            .iter()
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    let first = run(&db, &["hunt", "samples/logs", "--output", "jsonl"]);
    let want = ids(&first);
    assert!(!want.is_empty());
    for path in [
        "./samples/logs".to_owned(),
        absolute.display().to_string(),
        copy.display().to_string(),
    ] {
        let out = run(&db, &["hunt", &path, "--output", "jsonl"]);
        assert_eq!(ids(&out), want, "{path}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("(0 new)"),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stored = jsonl(&stdout(&run(
        &db,
        &["alerts", "--output", "jsonl", "--limit", "100000"],
    )));
    assert_eq!(stored.len(), want.len());
    // One incident per named host: the latest of each host is the only one. (Records that name
    // no host, the audit log's and the access log's a year apart, have one incident each.)
    let incidents = jsonl(&stdout(&run(&db, &["incident", "--json"])));
    let mut hosts: Vec<String> = incidents
        .iter()
        .filter_map(|i| i["host"].as_str().map(str::to_owned))
        .collect();
    let n = hosts.len();
    assert!(n >= 5, "{incidents:#?}");
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), n, "{incidents:#?}");
}

fn sql(db: &Path, statements: &str) {
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.executescript({statements:?}); c.commit()",
            db.display().to_string()
        ))
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "python3 with sqlite3 is needed to damage rows"
    );
}

/// One damaged row costs that row: `alerts`, `incident` and a restarted `watch` name it and
/// show or continue with the rest.
#[test]
fn a_damaged_row_is_named_and_the_rest_is_shown() {
    let db = db("damaged");
    stdout(&run(&db, &["hunt", "samples/logs", "--output", "jsonl"]));
    let all = jsonl(&stdout(&run(
        &db,
        &["alerts", "--output", "jsonl", "--limit", "1000"],
    )));
    let incidents = jsonl(&stdout(&run(&db, &["incident", "--json"])));
    assert!(all.len() > 3 && incidents.len() > 1);
    let (bad_text, bad_blob) = (
        all[0]["id"].as_str().unwrap(),
        all[1]["id"].as_str().unwrap(),
    );
    let bad_incident = incidents[0]["incident_id"].as_str().unwrap();
    sql(
        &db,
        &format!(
            "UPDATE alerts SET json = '{{\"id\": \"cut sho' WHERE id = '{bad_text}';
             UPDATE alerts SET json = X'00ff10' WHERE id = '{bad_blob}';
             UPDATE incidents SET json = 'not json' WHERE id = '{bad_incident}';"
        ),
    );
    let out = run(&db, &["alerts", "--output", "jsonl", "--limit", "1000"]);
    let shown = jsonl(&stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(shown.len(), all.len() - 2, "{err}");
    assert!(shown
        .iter()
        .all(|a| a["id"] != bad_text && a["id"] != bad_blob));
    assert!(
        err.contains(&format!("alert {bad_text}: EOF while parsing")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "alert {bad_blob}: its record is a blob, not JSON text"
        )),
        "{err}"
    );
    assert!(
        err.contains("(2 rows left out: they do not read back)"),
        "{err}"
    );

    let out = run(&db, &["incident", "--json"]);
    let listed = jsonl(&stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(listed.len(), incidents.len() - 1, "{err}");
    assert!(err.contains(&format!("incident {bad_incident}:")), "{err}");

    // A restarted watch continues the readable incidents and says which one it cannot.
    let out = run(
        &db,
        &[
            "watch",
            "--once",
            "samples/logs/linux-audit.log",
            "--output",
            "jsonl",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "incident {bad_incident}: expected ident at line 1 column 2: left out"
        )),
        "{err}"
    );
}

/// Runs `args` as a user who does not own the store: `nobody` when this is root (and `setpriv`
/// can run the binary as it), this user otherwise with the store's file and folder made
/// read-only. `None` when neither can be arranged.
fn as_other_user(db: &Path, args: &[&str]) -> Option<Output> {
    let bin = env!("CARGO_BIN_EXE_imdsguard");
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        use std::os::unix::fs::PermissionsExt;
        let dir = db.parent().unwrap();
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o444)).ok()?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).ok()?;
        Command::new(bin)
    };
    let out = cmd
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("IMDSGUARD_DB")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .ok()?;
    // setpriv missing, or the binary out of nobody's reach (a home directory).
    let err = String::from_utf8_lossy(&out.stderr);
    if root && (err.contains("setpriv:") || out.status.code() == Some(126)) {
        return None;
    }
    Some(out)
}

/// A store another user owns: `hunt` refuses it before printing anything and leaves no file
/// beside it; `alerts` and `incident` read it as it is, leaving nothing either.
#[test]
fn a_store_this_user_cannot_write_is_refused_by_hunt_and_read_by_alerts() {
    let db = db("not-mine");
    stdout(&run(&db, &["hunt", "samples/logs", "--output", "jsonl"]));
    let want = jsonl(&stdout(&run(
        &db,
        &["alerts", "--output", "jsonl", "--limit", "1000"],
    )));
    // As `watch` leaves a store once stopped: no -wal, no -shm.
    let dir = db.parent().unwrap().to_owned();
    let beside = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(beside(), ["imdsguard.db"]);
    // The folder writable by anyone: only the file's ownership says no.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let Some(out) = as_other_user(&db, &["hunt", "samples/logs", "--output", "jsonl"]) else {
        eprintln!("skipped: no way to run as a user other than the store's owner here");
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{err}");
    // Said once, with the way out.
    assert_eq!(
        err.matches("this user cannot write to it").count(),
        1,
        "{err}"
    );
    assert!(err.contains("give another --db, or --no-db"), "{err}");
    assert_eq!(beside(), ["imdsguard.db"]);

    let out = as_other_user(&db, &["alerts", "--output", "jsonl", "--limit", "1000"]).unwrap();
    assert_eq!(jsonl(&stdout(&out)), want);
    let out = as_other_user(&db, &["incident"]).unwrap();
    assert!(stdout(&out).contains("INC-"));
    assert_eq!(beside(), ["imdsguard.db"]);
}

/// The store's tables have a heading and the triage status; `triage --status` answers in one
/// line and, without `--who`, names the operating system's user.
#[test]
fn tables_show_the_triage_status_and_triage_answers_in_one_line() {
    let db = db("status");
    stdout(&run(&db, &["hunt", "samples/logs", "--output", "jsonl"]));
    let table = stdout(&run(&db, &["alerts", "--limit", "1000"]));
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("SEVERITY ID"), "{table}");
    let first = lines.next().unwrap();
    let id = first.split_whitespace().nth(1).unwrap().to_owned();
    assert!(first.contains("  open  "), "{first}");
    let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args([
            "triage",
            &id,
            "--status",
            "escalated",
            "--note",
            "web shell",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let said = stdout(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with(&format!("{id}  escalated  by ")), "{said}");
    assert!(said.trim_end().ends_with("web shell"), "{said}");
    let who = said
        .split("  by ")
        .nth(1)
        .unwrap()
        .split("  at ")
        .next()
        .unwrap();
    assert!(!who.is_empty() && who != "unknown", "{said}");
    let table = stdout(&run(&db, &["alerts", "--limit", "1000"]));
    let row = table.lines().find(|l| l.contains(&id)).unwrap();
    assert!(row.contains("  escalated  "), "{row}");
    let incidents = stdout(&run(&db, &["incident"]));
    assert!(
        incidents.lines().next().unwrap().ends_with("STATUS"),
        "{incidents}"
    );
    assert!(
        incidents.lines().skip(1).all(|l| l.ends_with("open")),
        "{incidents}"
    );
}

/// One vocabulary across commands: `--output jsonl` (a value a line), `json` (one array), `csv`
/// where rows make sense, `-o FILE`. The store gives back `hunt`'s CSV row for row, and every
/// JSON array holds exactly what the lines hold.
#[test]
fn every_command_speaks_jsonl_json_csv_and_writes_to_a_file() {
    let db = db("vocabulary");
    let lines = jsonl(&stdout(&run(
        &db,
        &["hunt", "samples/logs", "--output", "jsonl"],
    )));
    let array: Vec<Value> = serde_json::from_str(&stdout(&run(
        &db,
        &["hunt", "samples/logs", "--output", "json"],
    )))
    .unwrap();
    assert_eq!(array, lines);
    assert!(lines.iter().any(|v| v["type"] == "incident"));

    // `alerts`: the same CSV rows as the hunt's own CSV, and an array of its lines.
    let sorted = |text: &str| {
        let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
        let header = rows.remove(0);
        rows.sort();
        (header, rows)
    };
    let hunt_csv = stdout(&run(&db, &["hunt", "samples/logs", "--output", "csv"]));
    let stored_csv = stdout(&run(&db, &["alerts", "--output", "csv", "--limit", "1000"]));
    let (header, rows) = sorted(&stored_csv);
    assert_eq!(sorted(&hunt_csv), (header.clone(), rows.clone()));
    assert!(
        header.starts_with("id,severity,rule_id,title,time,host,source,format,channel,event_id,")
    );
    assert!(rows
        .iter()
        .any(|r| r.contains(",Microsoft-Windows-Sysmon/Operational,")));
    let alerts_jsonl = jsonl(&stdout(&run(
        &db,
        &["alerts", "--output", "jsonl", "--limit", "1000"],
    )));
    let alerts_json: Vec<Value> = serde_json::from_str(&stdout(&run(
        &db,
        &["alerts", "--output", "json", "--limit", "1000"],
    )))
    .unwrap();
    assert_eq!(alerts_json, alerts_jsonl);
    assert_eq!(alerts_json.len(), rows.len());
    let file = db.with_file_name("alerts.csv");
    let quiet = stdout(&run(
        &db,
        &[
            "alerts",
            "--output",
            "csv",
            "--limit",
            "1000",
            "-o",
            file.to_str().unwrap(),
        ],
    ));
    assert!(quiet.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stored_csv);

    // `incident`: lines, one array, and a clear refusal of CSV.
    let listed = jsonl(&stdout(&run(&db, &["incident", "--output", "jsonl"])));
    let listed_json: Vec<Value> =
        serde_json::from_str(&stdout(&run(&db, &["incident", "--output", "json"]))).unwrap();
    assert_eq!(listed_json, listed);
    assert_eq!(
        listed.len(),
        lines.iter().filter(|v| v["type"] == "incident").count()
    );
    let csv = run(&db, &["incident", "--output", "csv"]);
    assert_eq!(csv.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&csv.stderr).contains("incidents have no CSV form"));
}
