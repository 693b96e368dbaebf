//! `imdsguard serve`: the console over a store a hunt filled, asked over HTTP (access token,
//! filters, CSRF, escaping, headers) and driven in headless Chromium through WebDriver
//! (chromedriver): a filter, an incident, a triage action, a live update; screenshots kept.
#![cfg(feature = "console")]

mod browser;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use browser::{have, header, http, Driver};

/// A hunt into a new store; the alerts it printed.
fn hunt_into(db: &Path, inputs: &[&Path]) -> Vec<serde_json::Value> {
    let out = Command::new(browser::exe())
        .args(["hunt", "--output", "jsonl", "--db"])
        .arg(db)
        .args(inputs)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A running console, killed when dropped.
struct Console {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The printed address (with the token, when there is one).
    url: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn console(db: &Path, extra: &[&str]) -> Console {
    let mut child = Command::new(browser::exe())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split(" on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    Console { child, addr, url }
}

/// The text between `id="ID">` and the next `<`.
fn text_of(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    Some(page[start..].split('<').next()?.to_owned())
}

fn triage_of(db: &Path, id: &str) -> String {
    let out = Command::new(browser::exe())
        .args(["triage", "--db"])
        .arg(db)
        .arg(id)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_console_needs_its_token_filters_refuses_forged_actions_and_escapes() {
    let dir = browser::temp_dir("console", "http");
    let db = dir.join("store.db");
    let printed = hunt_into(&db, &[&browser::samples()]);
    // A record whose request carries markup (an attacker's words).
    let evil = dir.join("evil.log");
    std::fs::write(
        &evil,
        "203.0.113.9 - - [20/Nov/2025:10:00:00 +0000] \"GET /fetch?url=http://169.254.169.254/latest/meta-data/<svg/onload=alert(3)> HTTP/1.1\" 200 10 \"-\" \"<script>alert(1)</script>\"\n",
    )
    .unwrap();
    let evil_alerts = hunt_into(&db, &[&evil]);
    let evil_id = evil_alerts
        .iter()
        .find(|v| v["type"] == "alert")
        .and_then(|v| v["id"].as_str())
        .expect("the request alerts")
        .to_owned();
    let c = console(&db, &[]);
    let token = c.url.split("token=").nth(1).expect("a token").to_owned();
    // No token: refused.
    let (status, _, _) = http(&c.addr, "GET", "/", &[], "");
    assert_eq!(status, 401);
    let (status, _, _) = http(&c.addr, "GET", "/?token=0000", &[], "");
    assert_eq!(status, 401);
    // The printed address: a cookie, and the token leaves the address bar.
    let (status, h, _) = http(&c.addr, "GET", &format!("/?token={token}"), &[], "");
    assert_eq!(status, 303);
    let cookie = header(&h, "set-cookie").expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let auth = [("Cookie", cookie.as_str())];
    let (status, h, page) = http(&c.addr, "GET", "/", &auth, "");
    assert_eq!(status, 200);
    let csp = header(&h, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(header(&h, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
    let stored = printed.iter().filter(|v| v["type"] == "alert").count() + 1;
    assert_eq!(
        text_of(&page, "matching").unwrap(),
        format!("{stored} matching of {stored} stored.")
    );
    // Filters: level, rule, free text.
    let critical = printed
        .iter()
        .filter(|v| v["type"] == "alert" && v["severity"] == "critical")
        .count()
        + evil_alerts
            .iter()
            .filter(|v| v["type"] == "alert" && v["severity"] == "critical")
            .count();
    let (_, _, page) = http(&c.addr, "GET", "/?severity=critical", &auth, "");
    assert!(text_of(&page, "matching")
        .unwrap()
        .starts_with(&format!("{critical} matching")));
    let imds004 = printed
        .iter()
        .filter(|v| v["rule_id"] == "IMDS-004")
        .count();
    let (_, _, page) = http(&c.addr, "GET", "/?rule=IMDS-004", &auth, "");
    assert!(text_of(&page, "matching")
        .unwrap()
        .starts_with(&format!("{imds004} matching")));
    let (_, _, page) = http(&c.addr, "GET", "/?q=onload%3Dalert", &auth, "");
    assert!(text_of(&page, "matching")
        .unwrap()
        .starts_with("1 matching"));
    // The attacker's markup is text on the alert's page.
    let (status, _, page) = http(&c.addr, "GET", &format!("/alert/{evil_id}"), &auth, "");
    assert_eq!(status, 200);
    assert!(!page.contains("<svg/onload") && !page.contains("<script>alert"));
    assert!(page.contains("&lt;svg/onload=alert(3)&gt;"));
    // The record's own line, from its file.
    assert!(page.contains("<pre class=\"raw\">203.0.113.9 - - [20/Nov/2025"));
    // Actions: a forged token, another site's form, then a good one.
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let form = |csrf: &str| {
        format!("csrf={csrf}&target={evil_id}&status=escalated&who=ana&note=ssrf+probe")
    };
    let post = |extra: &[(&str, &str)], body: &str| {
        let mut h: Vec<(&str, &str)> = auth.to_vec();
        h.push(("Content-Type", "application/x-www-form-urlencoded"));
        h.extend_from_slice(extra);
        http(&c.addr, "POST", "/act", &h, body).0
    };
    assert_eq!(post(&[], &form("forged")), 403);
    assert_eq!(
        post(&[("Origin", "http://evil.example")], &form(&csrf)),
        403
    );
    assert!(!triage_of(&db, &evil_id).contains("escalated"));
    let (status, _, _) = http(
        &c.addr,
        "POST",
        "/act",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&csrf),
    );
    assert_eq!(status, 401, "an action needs the token too");
    assert_eq!(
        post(&[("Origin", &format!("http://{}", c.addr))], &form(&csrf)),
        303
    );
    let t = triage_of(&db, &evil_id);
    assert!(
        t.contains("escalated") && t.contains("ana") && t.contains("ssrf probe"),
        "{t}"
    );
    let (_, _, page) = http(&c.addr, "GET", "/?status=escalated", &auth, "");
    assert!(text_of(&page, "matching")
        .unwrap()
        .starts_with("1 matching"));
    drop(c);
    // A long queue comes a page at a time, the filters kept from page to page.
    let many = dir.join("many.log");
    let lines: String = (0..450)
        .map(|i| format!("198.51.100.{} - - [22/Nov/2025:10:{:02}:{:02} +0000] \"GET /fetch?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/r{i} HTTP/1.1\" 200 1400 \"-\" \"curl/8\"\n", i % 250, i / 60, i % 60))
        .collect();
    std::fs::write(&many, lines).unwrap();
    let raised = hunt_into(&db, &[&many]);
    // Every IMDS-011 alert in the store: the samples', the record with markup's, these.
    let ssrf = printed
        .iter()
        .chain(&evil_alerts)
        .chain(&raised)
        .filter(|v| v["type"] == "alert" && v["rule_id"] == "IMDS-011")
        .count();
    assert!(ssrf > 400, "{ssrf}");
    let c = console(&db, &["--no-auth"]);
    let (_, _, page) = http(&c.addr, "GET", "/?rule=IMDS-011", &[], "");
    let pages = ssrf.div_ceil(200);
    assert!(
        text_of(&page, "matching")
            .unwrap()
            .contains(&format!("{ssrf} matching of"))
            && page.contains(&format!("page 1 of {pages}, 200 a page")),
        "{}",
        text_of(&page, "matching").unwrap()
    );
    assert_eq!(page.matches("class=\"alert-link\"").count(), 200);
    assert!(!page.contains("id=\"page-newer\""));
    let older = page
        .split("id=\"page-older\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a link to older alerts")
        .replace("&amp;", "&");
    assert!(
        older.contains("rule=IMDS-011") && older.contains("page=2"),
        "{older}"
    );
    let (_, _, last) = http(
        &c.addr,
        "GET",
        &format!("/?rule=IMDS-011&page={pages}"),
        &[],
        "",
    );
    assert_eq!(
        last.matches("class=\"alert-link\"").count(),
        ssrf - (pages - 1) * 200
    );
    assert!(last.contains("id=\"page-newer\"") && !last.contains("id=\"page-older\""));
    drop(c);
    // Beyond loopback only with a token.
    let out = Command::new(browser::exe())
        .args(["serve", "--listen", "0.0.0.0:0", "--no-auth", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only with an access token"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_analyst_filters_opens_an_incident_acts_and_sees_new_alerts_in_chromium() {
    if !(have("chromedriver") && have("chromium")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run installs chromium and chromium-driver"
        );
        eprintln!("skipped: chromium or chromedriver is not installed");
        return;
    }
    let dir = browser::temp_dir("console", "browser");
    let db = dir.join("store.db");
    let printed = hunt_into(&db, &[&browser::samples()]);
    let c = console(&db, &[]);
    let d = Driver::start(&dir);
    d.go(&c.url);
    assert!(d.text("#matching").ends_with(" stored."));
    d.screenshot("console-screenshots", "queue");
    // A filter: critical and above.
    d.click("#filter-severity option[value=critical]");
    d.click("#filter-apply");
    let critical = printed
        .iter()
        .filter(|v| v["type"] == "alert" && v["severity"] == "critical")
        .count();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d
        .text("#matching")
        .starts_with(&format!("{critical} matching"))
    {
        assert!(Instant::now() < deadline, "{}", d.text("#matching"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // An incident, and a triage action on it.
    d.click("#nav-incidents");
    d.click(".incident-link");
    let heading = d.text("h1");
    let incident = heading.trim_start_matches("Incident ").to_owned();
    assert!(incident.starts_with("INC-"), "{heading}");
    assert!(d.find("#timeline li", 2).is_some());
    d.screenshot("console-screenshots", "incident");
    // On a phone: nothing wider than the screen.
    d.assert_fits(390, "the incident page");
    d.screenshot("console-screenshots", "incident-phone");
    d.resize(1280, 1400);
    d.click("#act-status option[value=acknowledged]");
    d.type_in("#act-who", "ana");
    d.type_in("#act-note", "checked with the web team");
    d.click("#act-submit");
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.text("#status") != "acknowledged" {
        assert!(Instant::now() < deadline, "the status did not change");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = triage_of(&db, &incident);
    assert!(
        t.contains("acknowledged") && t.contains("ana") && t.contains("checked with the web team"),
        "{t}"
    );
    // Live: new alerts stored while the queue is open (as `watch` would store them).
    d.click("#nav-alerts");
    d.el("#matching");
    let more = dir.join("more.log");
    std::fs::write(
        &more,
        "198.51.100.7 - - [21/Nov/2025:10:00:00 +0000] \"GET /img?src=http://169.254.169.254/latest/meta-data/iam/security-credentials/ HTTP/1.1\" 200 900 \"-\" \"curl/8\"\n",
    )
    .unwrap();
    assert!(hunt_into(&db, &[&more])
        .iter()
        .any(|v| v["type"] == "alert"));
    assert!(d.find("#live-reload", 10).is_some(), "no live notice");
    assert!(d.text("#live").contains("new alert"));
    d.screenshot("console-screenshots", "live");
    let _ = std::fs::remove_dir_all(&dir);
}
