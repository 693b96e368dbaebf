//! `imdsguard proxy` in front of `imdsguard mock`, both real processes on loopback, reached by
//! real clients (curl, wget, python, a shell loop): attribution, the policy, the audit log, hot
//! reload and an upstream that goes away.
#![cfg(feature = "guard")]

mod guard;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guard::{curl_in, missing, run, skip, start, Ns};

/// The clients the tests drive.
const CLIENTS: [&str; 4] = ["curl", "wget", "python3", "sh"];

fn tools_missing() -> Option<&'static str> {
    missing(&CLIENTS)
}

/// A proxy on loopback in front of `upstream`, with a policy when given.
fn proxy_to(upstream: &str, policy: Option<&Path>, log: &Path) -> guard::Running {
    let mut args = vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", upstream];
    if let Some(p) = policy {
        args.extend(["--policy", p.to_str().unwrap()]);
    }
    args.extend(["--audit-log", log.to_str().unwrap()]);
    start(&[], &args)
}

/// curl's status and body; status 0 when no answer came.
fn curl(args: &[&str]) -> (u16, String) {
    curl_in(&[], args).unwrap_or((0, String::new()))
}

/// The audit log once it holds at least `n` records (its writer follows the answers by a
/// moment), or as it is after five seconds.
fn audit_n(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = audit(path);
        if r.len() >= n || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("imdsguard-proxy-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const POLICY: &str = r#"
mode = "enforce"
default = "deny"
require_imdsv2 = true

[[rule]]
name = "curl-may-read-credentials"
action = "allow"
exe = ["*/curl"]
kind = ["credentials", "token", "other"]

[[rule]]
name = "region-for-everyone"
action = "allow"
path = ["/latest/meta-data/placement/region", "/latest/api/token"]
"#;

#[test]
fn clients_are_attributed_decided_and_recorded() {
    if let Some(t) = tools_missing() {
        return skip(&format!("{t} is not installed"));
    }
    let dir = temp_dir("clients");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.join("audit.jsonl");
    let mock = start(
        &[],
        &["mock", "--listen", "127.0.0.1:0", "--provider", "aws"],
    );
    let mut proxy = proxy_to(&mock.addr, Some(&policy), &log);
    let base = format!("http://{}", proxy.addr);
    let creds = format!("{base}/latest/meta-data/iam/security-credentials/imdsguard-mock-role");
    let region = format!("{base}/latest/meta-data/placement/region");

    // curl: the IMDSv2 sequence, then the credentials.
    let (status, token) = curl(&[
        "-X",
        "PUT",
        "-H",
        "X-aws-ec2-metadata-token-ttl-seconds: 300",
        &format!("{base}/latest/api/token"),
    ]);
    assert_eq!(status, 200);
    let th = format!("X-aws-ec2-metadata-token: {token}");
    let (status, body) = curl(&["-H", &th, &creds]);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("credentials");
    assert_eq!(v["Type"], "AWS-HMAC");
    // Token-less: IMDSv2 required.
    assert_eq!(curl(&[&creds]).0, 401);
    // Through another proxy: refused.
    assert_eq!(
        curl(&["-H", &th, "-H", "X-Forwarded-For: 203.0.113.5", &region]).0,
        403
    );
    // wget and python: the region, yes; credentials, no.
    let (out, ok) = run(&["wget", "-q", "-O", "-", "--header", &th, &region]);
    assert!(ok && out == "us-east-1", "{out}");
    let (_, ok) = run(&["wget", "-q", "-O", "-", "--header", &th, &creds]);
    assert!(!ok, "wget must be refused the credentials");
    let py = format!(
        "import urllib.request as u, urllib.error as e\ntry:\n  u.urlopen(u.Request('{creds}', headers={{'X-aws-ec2-metadata-token': '{token}'}}))\n  print(200)\nexcept e.HTTPError as x:\n  print(x.code, x.read().decode().strip())"
    );
    let (out, _) = run(&["python3", "-c", &py]);
    assert!(
        out.starts_with("403 imdsguard: refused by policy rule \"default\""),
        "{out}"
    );
    // A shell loop running curl three times.
    let (out, ok) = run(&[
        "sh",
        "-c",
        &format!("for i in 1 2 3; do curl -s -H '{th}' {region}; echo; done"),
    ]);
    assert!(
        ok && out.lines().filter(|l| *l == "us-east-1").count() == 3,
        "{out}"
    );

    let records = audit_n(&log, 10);
    assert_eq!(records.len(), 10, "one record per request");
    let exe = |r: &serde_json::Value| {
        r["process"]["exe"]
            .as_str()
            .and_then(|e| e.rsplit('/').next())
            .unwrap_or("?")
            .to_owned()
    };
    let seen: Vec<(String, String, u64)> = records
        .iter()
        .map(|r| {
            (
                exe(r),
                r["decision"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, u64)> = vec![
        ("curl", "allow", 200),
        ("curl", "allow", 200),
        ("curl", "deny", 401),
        ("curl", "deny", 403),
        ("wget", "allow", 200),
        ("wget", "deny", 403),
        ("python3", "deny", 403),
        ("curl", "allow", 200),
        ("curl", "allow", 200),
        ("curl", "allow", 200),
    ];
    assert_eq!(seen.len(), want.len());
    for ((e, d, s), (we, wd, ws)) in seen.iter().zip(&want) {
        assert!(e.starts_with(we), "{seen:?}");
        assert_eq!((d.as_str(), *s), (*wd, *ws), "{seen:?}");
    }
    assert_eq!(records[3]["rule"], "refuse-forwarded");
    assert_eq!(records[2]["rule"], "require-imdsv2");
    assert_eq!(records[1]["kind"], "credentials");
    assert!(records.iter().all(|r| r["attributed"] == true));
    // The loop's curls are children of the shell, each attributed to itself.
    let pids: std::collections::BTreeSet<u64> = records[7..]
        .iter()
        .map(|r| r["process"]["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    // Never a token or a credential in the log, though the clients' command lines held the token.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(&token),
        "the token leaked into the audit log"
    );
    assert!(!text.contains(v["SecretAccessKey"].as_str().unwrap()));
    assert!(!text.contains(v["AccessKeyId"].as_str().unwrap()));
    assert!(text.contains("X-aws-ec2-metadata-token: [redacted]"));

    // Hot reload: wget may now read credentials; a broken file after it changes nothing.
    std::fs::write(
        &policy,
        POLICY.replace("\"*/curl\"", "\"*/curl\", \"*/wget\""),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, ok) = run(&["wget", "-q", "-O", "-", "--header", &th, &creds]);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new policy never took effect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(&policy, "mode = \"enforce\"\n[[rule]]\nname = \"broken\"\n").unwrap();
    let mut err = proxy.stderr.take().unwrap();
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !said.contains("not reloaded") {
        assert!(
            Instant::now() < deadline,
            "no word of the bad policy: {said}"
        );
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        said.push_str(&line);
    }
    assert!(said.contains("policy.toml:"), "{said}");
    let (_, ok) = run(&["wget", "-q", "-O", "-", "--header", &th, &creds]);
    assert!(ok, "the previous policy must stay after a bad one");

    // The service goes away: 502, quickly.
    drop(mock);
    std::thread::sleep(Duration::from_millis(300));
    let before_502 = audit(&log).len();
    let t = Instant::now();
    let (status, body) = curl(&["-H", &th, &region]);
    assert_eq!(status, 502, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3));
    let last = audit_n(&log, before_502 + 1).pop().unwrap();
    assert_eq!(last["status"], 502);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_policy_everything_passes_and_is_recorded() {
    if let Some(t) = tools_missing() {
        return skip(&format!("{t} is not installed"));
    }
    let dir = temp_dir("monitor");
    let log = dir.join("audit.jsonl");
    let mock = start(&[], &["mock", "--listen", "127.0.0.1:0", "--require-token"]);
    let proxy = proxy_to(&mock.addr, None, &log);
    // The mock itself requires IMDSv2: its 401 comes back through the proxy.
    let (status, _) = curl(&[&format!(
        "http://{}/latest/meta-data/iam/security-credentials/",
        proxy.addr
    )]);
    assert_eq!(status, 401);
    let r = audit_n(&log, 1);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["mode"], "monitor");
    assert_eq!(r[0]["decision"], "allow");
    assert_eq!(r[0]["status"], 401);
    assert_eq!(r[0]["token"], false);
    drop(proxy);

    // Observe, learn, enforce: what monitor mode saw becomes a policy; under it, what was seen
    // passes and nothing else does.
    let mock = start(&[], &["mock", "--listen", "127.0.0.1:0"]);
    let log = dir.join("observed.jsonl");
    let proxy = proxy_to(&mock.addr, None, &log);
    let base = format!("http://{}", proxy.addr);
    let region = format!("{base}/latest/meta-data/placement/region");
    let userdata = format!("{base}/latest/user-data");
    assert_eq!(curl(&[&region]).0, 200);
    assert!(run(&["wget", "-q", "-O", "-", &userdata]).1);
    audit_n(&log, 2);
    drop(proxy);
    std::fs::write(
        &log,
        format!("{}not json\n", std::fs::read_to_string(&log).unwrap()),
    )
    .unwrap();
    let policy = dir.join("suggested.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .args([
            "proxy",
            "suggest-policy",
            log.to_str().unwrap(),
            "-o",
            policy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("observed.jsonl:3: "),
        "the bad line is named: {said}"
    );
    assert!(
        said.contains("2 requests read from 1 audit logs; 1 lines skipped"),
        "{said}"
    );
    let enforced_log = dir.join("enforced.jsonl");
    let proxy = proxy_to(&mock.addr, Some(&policy), &enforced_log);
    let base = format!("http://{}", proxy.addr);
    let region = format!("{base}/latest/meta-data/placement/region");
    let userdata = format!("{base}/latest/user-data");
    assert_eq!(curl(&[&region]).0, 200, "seen: allowed");
    assert_eq!(curl(&[&userdata]).0, 403, "curl never asked for user-data");
    assert!(
        run(&["wget", "-q", "-O", "-", &userdata]).1,
        "seen: allowed"
    );
    assert!(
        !run(&["wget", "-q", "-O", "-", &region]).1,
        "wget never asked for the region"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The namespace's rule set: nftables' whole listing, or for iptables every rule and chain of
/// our own (iptables keeps the `nat` table it creates on first use, its built-in chains empty
/// and accepting: no rule of ours, and nothing that changes traffic).
fn ruleset(ns: &Ns, backend: &str) -> String {
    if backend == "nft" {
        return ns.run(&["nft", "list", "ruleset"]).0;
    }
    let builtin = [
        ":PREROUTING ",
        ":INPUT ",
        ":OUTPUT ",
        ":POSTROUTING ",
        ":FORWARD ",
    ];
    let rules = |t: String| {
        t.lines()
            .filter(|l| {
                l.starts_with("-A")
                    || (l.starts_with(':') && !builtin.iter().any(|b| l.starts_with(b)))
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{}\n{}",
        rules(ns.run(&["iptables-save"]).0),
        rules(ns.run(&["ip6tables-save"]).0)
    )
}

#[test]
fn the_redirect_sends_every_address_form_through_the_guard_and_goes_away_cleanly() {
    let missing = ["nft", "iptables", "curl", "python3"]
        .into_iter()
        .find(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    for backend in ["nft", "iptables"] {
        let ns = match (missing, Ns::create(&format!("rd{}", &backend[..2]))) {
            (None, Ok(ns)) => ns,
            (Some(t), _) => return skip(&format!("{t} is not installed")),
            (None, Err(why)) => return skip(&format!("network namespaces unavailable ({why})")),
        };
        let dir = temp_dir(&format!("redirect-{backend}"));
        let policy = dir.join("policy.toml");
        std::fs::write(
            &policy,
            "default = \"deny\"\n[[rule]]\nname = \"curl\"\naction = \"allow\"\nexe = [\"*/curl\"]\n",
        )
        .unwrap();
        let log = dir.join("audit.jsonl");
        let store = dir.join("store.db");
        let inline = dir.join("alerts.jsonl");
        let before = ruleset(&ns, backend);
        let exe = env!("CARGO_BIN_EXE_imdsguard");
        let (_, ok) = ns.run(&[
            exe,
            "proxy",
            "install",
            "--port",
            "8169",
            "--backend",
            backend,
        ]);
        assert!(ok, "{backend}: install");
        let (status, ok) = ns.run(&[exe, "proxy", "status", "--backend", backend]);
        assert!(ok && status.starts_with("redirect: installed"), "{status}");
        assert_ne!(
            ruleset(&ns, backend),
            before,
            "{backend}: install wrote nothing"
        );
        let _mock = start(
            &ns.exec(),
            &["mock", "--listen", "[::]:80", "--provider", "aws"],
        );
        let region = "http://169.254.169.254/latest/meta-data/placement/region";
        // The rules are in and the proxy is not listening yet: refused, not let through.
        let (_, ok) = ns.run(&["curl", "-s", "-m", "3", region]);
        assert!(
            !ok,
            "{backend}: a connection got through before the proxy listened"
        );
        let _proxy = start(
            &ns.exec(),
            &[
                "proxy",
                "--listen",
                "127.0.0.1:8169",
                "--listen",
                "[::1]:8169",
                "--policy",
                policy.to_str().unwrap(),
                "--audit-log",
                log.to_str().unwrap(),
                "--db",
                store.to_str().unwrap(),
                "--alerts",
                inline.to_str().unwrap(),
            ],
        );
        let forms = [
            "http://169.254.169.254/latest/meta-data/placement/region",
            "http://[fd00:ec2::254]/latest/meta-data/placement/region",
            "http://[::ffff:169.254.169.254]/latest/meta-data/placement/region",
            "http://[::ffff:a9fe:a9fe]/latest/meta-data/placement/region",
        ];
        for url in forms {
            let (out, ok) = ns.run(&["curl", "-s", "-g", "-m", "3", url]);
            assert!(ok && out == "us-east-1", "{backend}: {url}: {out}");
        }
        let py = format!(
            "import urllib.request as u, urllib.error as e\ntry:\n  u.urlopen('{region}'); print(200)\nexcept e.HTTPError as x:\n  print(x.code)"
        );
        let (out, _) = ns.run(&["python3", "-c", &py]);
        assert_eq!(out.trim(), "403", "{backend}: python must be refused");
        let records = audit(&log);
        assert_eq!(
            records.len(),
            5,
            "{backend}: every request went through the guard"
        );
        let dests: Vec<&str> = records
            .iter()
            .map(|r| r["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "169.254.169.254:80",
                "[fd00:ec2::254]:80",
                "169.254.169.254:80",
                "169.254.169.254:80",
                "169.254.169.254:80"
            ],
            "{backend}"
        );
        assert!(records[..4]
            .iter()
            .all(|r| r["process"]["exe"].as_str().unwrap().ends_with("/curl")));
        assert!(records[4]["process"]["exe"]
            .as_str()
            .unwrap()
            .contains("python"));
        // The audit log is a log like any other: hunt reads it, each request a connection of
        // its process to the service.
        let out = Command::new(exe)
            .args([
                "hunt",
                "--no-db",
                "--output",
                "jsonl",
                log.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let summary = String::from_utf8_lossy(&out.stderr);
        assert!(summary.contains("imdsguard-proxy"), "{summary}");
        let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|a: &serde_json::Value| a["type"] == "alert")
            .collect();
        let alerted = |exe: &str, rules: &[&str]| {
            alerts.iter().any(|a| {
                rules.iter().any(|r| a["rule_id"] == *r)
                    && a["process"]["image"]
                        .as_str()
                        .is_some_and(|i| i.contains(exe))
                    && a["target"]["endpoint"].is_string()
            })
        };
        // curl is no cloud agent; python runs from wherever this machine keeps it (a home
        // directory under pyenv: an unusual location).
        assert!(alerted("curl", &["IMDS-001"]), "{alerts:#?}");
        assert!(alerted("python", &["IMDS-001", "IMDS-003"]), "{alerts:#?}");
        // The proxy ran the same detections on each request as it recorded it: the same alerts,
        // printed and in its store.
        let ids = |alerts: &[serde_json::Value]| {
            let mut ids: Vec<String> = alerts
                .iter()
                .map(|a| format!("{} {}", a["rule_id"], a["id"]))
                .collect();
            ids.sort();
            ids
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let inline_alerts = loop {
            let got: Vec<serde_json::Value> = std::fs::read_to_string(&inline)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .filter(|a: &serde_json::Value| a["type"] == "alert")
                .collect();
            if got.len() >= alerts.len() || Instant::now() > deadline {
                break got;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            ids(&inline_alerts),
            ids(&alerts),
            "{backend}: inline alerts"
        );
        let out = Command::new(exe)
            .args([
                "alerts",
                "--db",
                store.to_str().unwrap(),
                "--output",
                "jsonl",
            ])
            .output()
            .unwrap();
        let stored: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ids(&stored), ids(&alerts), "{backend}: stored alerts");
        // Uninstall: the rule set is exactly as before, and requests go straight to the service.
        let (_, ok) = ns.run(&[exe, "proxy", "uninstall", "--backend", backend]);
        assert!(ok, "{backend}: uninstall");
        assert_eq!(
            ruleset(&ns, backend),
            before,
            "{backend}: uninstall left something behind"
        );
        let (out, ok) = ns.run(&["curl", "-s", "-m", "3", region]);
        assert!(ok && out == "us-east-1");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            audit(&log).len(),
            5,
            "{backend}: no longer through the guard"
        );
        let (status, ok) = ns.run(&[exe, "proxy", "status", "--backend", backend]);
        assert!(
            !ok && status.starts_with("redirect: not installed"),
            "{status}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_kept_redirect_goes_in_before_listening_and_comes_back_when_removed() {
    let ns = match Ns::create("keep") {
        Ok(ns) if tools_missing().is_none() => ns,
        Ok(_) => return skip("curl, wget or python3 is not installed"),
        Err(why) => return skip(&format!("network namespaces unavailable ({why})")),
    };
    let dir = temp_dir("keep");
    let log = dir.join("audit.jsonl");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap();
    let exe = env!("CARGO_BIN_EXE_imdsguard");
    let status = |ns: &Ns| ns.run(&[exe, "proxy", "status", "--backend", "nft"]).1;
    assert!(!status(&ns));
    let _mock = start(
        &ns.exec(),
        &[
            "mock",
            "--listen",
            "169.254.169.254:80",
            "--provider",
            "aws",
        ],
    );
    let kept = |ns: &Ns| {
        start(
            &ns.exec(),
            &[
                "proxy",
                "--listen",
                "127.0.0.1:8169",
                "--keep-redirect",
                "8169",
                "--backend",
                "nft",
                "--policy",
                policy.to_str().unwrap(),
                "--audit-log",
                log.to_str().unwrap(),
            ],
        )
    };
    let mut proxy = kept(&ns);
    assert!(status(&ns), "installed before the proxy said it listens");
    let region = "http://169.254.169.254/latest/meta-data/placement/region";
    assert_eq!(
        ns.run(&["curl", "-s", "-m", "3", region]),
        ("us-east-1".to_owned(), true)
    );
    // Someone removes it: back within a few seconds, and requests go through the guard again.
    assert!(ns.run(&["nft", "delete", "table", "inet", "imdsguard"]).1);
    assert!(!status(&ns));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status(&ns) {
        assert!(Instant::now() < deadline, "the redirect was not restored");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        ns.run(&["curl", "-s", "-m", "3", region]),
        ("us-east-1".to_owned(), true)
    );
    assert_eq!(
        audit_n(&log, 2).len(),
        2,
        "both requests went through the guard"
    );
    // Status: the rules, the policy's hash (as sha256sum prints it), the mode the proxy runs
    // in, its last decisions.
    let (said, ok) = ns.run(&[
        exe,
        "proxy",
        "status",
        "--backend",
        "nft",
        "--policy",
        policy.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
        "--last",
        "1",
    ]);
    assert!(ok, "{said}");
    let (sum, _) = run(&["sha256sum", policy.to_str().unwrap()]);
    let sum = sum.split_whitespace().next().unwrap().to_owned();
    assert!(
        said.contains(&format!(
            "sha256 {sum} (enforce mode, 0 rules, default allow)"
        )),
        "{said}"
    );
    assert!(said.contains("running: enforce mode"), "{said}");
    let decisions: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("/usr/bin/curl"))
        .collect();
    assert_eq!(decisions.len(), 1, "{said}");
    assert!(
        decisions[0].contains("allow 200")
            && decisions[0].contains("GET /latest/meta-data/placement/region"),
        "{said}"
    );
    // Stopped (SIGTERM), failing closed: the rules stay, and connections are refused.
    let stop = |r: &mut guard::Running| {
        let _ = Command::new("kill")
            .args(["-TERM", &r.child.id().to_string()])
            .status();
        let _ = r.child.wait();
    };
    stop(&mut proxy);
    assert!(status(&ns), "fail closed: the redirect stays");
    assert!(
        !ns.run(&["curl", "-s", "-m", "3", region]).1,
        "refused while the proxy is down"
    );
    // Failing open: the redirect goes with the proxy.
    std::fs::write(&policy, "default = \"allow\"\nfail = \"open\"\n").unwrap();
    let mut proxy = kept(&ns);
    stop(&mut proxy);
    assert!(!status(&ns), "fail open: the redirect is removed");
    assert_eq!(
        ns.run(&["curl", "-s", "-m", "3", region]),
        ("us-east-1".to_owned(), true)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_systemd_unit_is_written_and_systemd_accepts_it() {
    let dir = temp_dir("unit");
    let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .args([
            "proxy",
            "install",
            "--unit",
            "--unit-dir",
            dir.to_str().unwrap(),
            "--policy",
            "/etc/imdsguard/policy.toml",
            "--port",
            "8170",
            "--backend",
            "nft",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("does not exist yet: the unit fails closed"),
        "{said}"
    );
    let unit = dir.join("imdsguard-proxy.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let exe = env!("CARGO_BIN_EXE_imdsguard");
    assert!(
        text.contains(&format!("ExecStartPre={exe} proxy install --port 8170 ")),
        "{text}"
    );
    assert!(
        text.contains("--listen 127.0.0.1:8170 --listen [::1]:8170"),
        "{text}"
    );
    let have_systemd = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have_systemd {
        let v = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&v.stderr);
        assert!(v.status.success() && said.trim().is_empty(), "{said}");
    } else {
        eprintln!("skipped: systemd-analyze is not installed; the unit was not verified");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn harden_rules_let_only_the_listed_users_reach_the_service() {
    let lacking = missing(&["runuser", "nft", "iptables"]).or_else(tools_missing);
    for emit in ["nftables", "iptables"] {
        let ns = match Ns::create(&format!("h{}", &emit[..2])) {
            Ok(ns) if lacking.is_none() => ns,
            Ok(_) => return skip(&format!("{} is not installed", lacking.unwrap_or("?"))),
            Err(why) => return skip(&format!("network namespaces unavailable ({why})")),
        };
        let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
            .args(["harden", "--emit", emit])
            .output()
            .unwrap();
        assert!(out.status.success());
        let dir = temp_dir(&format!("harden-{emit}"));
        let script = dir.join("rules");
        std::fs::write(&script, &out.stdout).unwrap();
        let _mock = start(
            &ns.exec(),
            &[
                "mock",
                "--listen",
                "169.254.169.254:80",
                "--provider",
                "aws",
            ],
        );
        let region = "http://169.254.169.254/latest/meta-data/placement/region";
        let as_nobody = |ns: &Ns| {
            ns.run(&[
                "runuser", "-u", "nobody", "--", "curl", "-s", "-m", "3", region,
            ])
        };
        // Before: anyone.
        assert_eq!(
            as_nobody(&ns),
            ("us-east-1".to_owned(), true),
            "{emit}: before"
        );
        let apply = if emit == "nftables" {
            vec!["nft", "-f"]
        } else {
            vec!["sh"]
        };
        let mut argv = apply.clone();
        argv.push(script.to_str().unwrap());
        let (_, ok) = ns.run(&argv);
        assert!(ok, "{emit}: the printed rules apply");
        // After: root (the default allowed user) yes, nobody no.
        assert_eq!(
            ns.run(&["curl", "-s", "-m", "3", region]),
            ("us-east-1".to_owned(), true),
            "{emit}: root"
        );
        assert!(!as_nobody(&ns).1, "{emit}: nobody must be refused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_process_past_its_rate_limit_gets_429() {
    if let Some(t) = tools_missing() {
        return skip(&format!("{t} is not installed"));
    }
    let dir = temp_dir("rate");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "default = \"allow\"\nrate_limit = 5\n").unwrap();
    let log = dir.join("audit.jsonl");
    let mock = start(
        &[],
        &["mock", "--listen", "127.0.0.1:0", "--provider", "aws"],
    );
    let proxy = proxy_to(&mock.addr, Some(&policy), &log);
    let url = format!("http://{}/latest/meta-data/placement/region", proxy.addr);
    // One curl process asking twenty times at once: five pass (the burst), the rest are refused.
    let mut argv = vec!["curl", "-s", "-w", "%{http_code}\\n"];
    for _ in 0..20 {
        argv.extend(["-o", "/dev/null", url.as_str()]);
    }
    let (out, _) = run(&argv);
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), 20, "{out}");
    let ok = codes.iter().filter(|c| **c == "200").count();
    let limited = codes.iter().filter(|c| **c == "429").count();
    assert!((5..=6).contains(&ok) && ok + limited == 20, "{codes:?}");
    // Another process has its own budget.
    assert_eq!(curl(&[&url]).0, 200);
    let records = audit_n(&log, 21);
    assert_eq!(
        records.iter().filter(|r| r["rule"] == "rate-limit").count(),
        limited
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A container: a namespace of its own behind a veth pair into the host namespace `host`, its
/// default route through the host; removed on drop.
struct Container(String);

impl Container {
    fn behind(host: &Ns) -> Result<Container, String> {
        let tag = std::process::id() % 100_000;
        let name = format!("imdsg-ctr-{tag}");
        let c = Container(name.clone());
        let (vh, vc) = (format!("ch{tag}"), format!("cc{tag}"));
        for step in [
            vec!["netns", "add", &name],
            vec!["link", "add", &vh, "type", "veth", "peer", "name", &vc],
            vec!["link", "set", &vh, "netns", &host.0],
            vec!["link", "set", &vc, "netns", &name],
            vec!["-n", &host.0, "addr", "add", "10.88.0.1/24", "dev", &vh],
            vec!["-n", &name, "addr", "add", "10.88.0.2/24", "dev", &vc],
            vec!["-n", &host.0, "link", "set", &vh, "up"],
            vec!["-n", &name, "link", "set", &vc, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
            vec!["-n", &name, "route", "add", "default", "via", "10.88.0.1"],
        ] {
            guard::ip(&step)?;
        }
        Ok(c)
    }

    fn run(&self, argv: &[&str]) -> (String, bool) {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(argv);
        run(&all)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_containers_request_is_redirected_and_attributed_to_its_process() {
    let (host, ctr) =
        match Ns::create("ctrhost").and_then(|h| Container::behind(&h).map(|c| (h, c))) {
            Ok(pair) if missing(&["nft", "curl"]).is_none() => pair,
            Ok(_) => return skip("nft or curl is not installed"),
            Err(why) => return skip(&format!("network namespaces unavailable ({why})")),
        };
    let dir = temp_dir("containers");
    let log = dir.join("audit.jsonl");
    let exe = env!("CARGO_BIN_EXE_imdsguard");
    let (_, ok) = host.run(&[
        exe,
        "proxy",
        "install",
        "--port",
        "8169",
        "--containers",
        "--backend",
        "nft",
    ]);
    assert!(ok, "install --containers");
    let _mock = start(
        &host.exec(),
        &[
            "mock",
            "--listen",
            "169.254.169.254:80",
            "--provider",
            "aws",
        ],
    );
    // The upstream given is nothing: the request must go where it was bound.
    let _proxy = start(
        &host.exec(),
        &[
            "proxy",
            "--listen",
            "[::]:8169",
            "--upstream",
            "127.0.0.1:9",
            "--audit-log",
            log.to_str().unwrap(),
        ],
    );
    let region = "http://169.254.169.254/latest/meta-data/placement/region";
    assert_eq!(
        ctr.run(&["curl", "-s", "-m", "3", region]),
        ("us-east-1".to_owned(), true)
    );
    let records = audit_n(&log, 1);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["attributed"], true, "{r}");
    assert!(
        r["process"]["exe"].as_str().unwrap().ends_with("/curl"),
        "{r}"
    );
    assert!(r["client"].as_str().unwrap().contains("10.88.0.2"), "{r}");
    assert_eq!(r["destination"], "169.254.169.254:80");
    // The port itself is no open door: a container connecting to it straight is dropped.
    let (_, ok) = ctr.run(&[
        "curl",
        "-s",
        "-m",
        "2",
        "http://10.88.0.1:8169/latest/meta-data/",
    ]);
    assert!(
        !ok,
        "a direct connection to the proxy's port from a container must be dropped"
    );
    // iptables has no such form: refused with the reason.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &host.0,
            exe,
            "proxy",
            "install",
            "--containers",
            "--backend",
            "iptables",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs nftables"));
    let _ = std::fs::remove_dir_all(&dir);
}
