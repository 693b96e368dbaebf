//! `imdsguard proxy` in front of `imdsguard mock`, both real processes on loopback, reached by
//! real clients (curl, wget, python, a shell loop): attribution, the policy, the audit log, hot
//! reload and an upstream that goes away.
#![cfg(feature = "guard")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    addr: String,
    stderr: Option<BufReader<ChildStderr>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imdsguard");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("ready line");
    let addr = line
        .split(" on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Running {
        child,
        addr,
        stderr: Some(err),
    }
}

fn tools_missing() -> Option<&'static str> {
    ["curl", "wget", "python3", "sh"].into_iter().find(|t| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs a client; its standard output and exit status.
fn run(argv: &[&str]) -> (String, bool) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect(argv[0]);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

/// curl's body and status.
fn curl(args: &[&str]) -> (u16, String) {
    let mut argv = vec!["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}"];
    argv.extend_from_slice(args);
    let (out, _) = run(&argv);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
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
        assert!(std::env::var_os("CI").is_none(), "CI installs {t}");
        eprintln!("skipped: {t} is not installed");
        return;
    }
    let dir = temp_dir("clients");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.join("audit.jsonl");
    let mock = start(&["mock", "--listen", "127.0.0.1:0", "--provider", "aws"]);
    let mut proxy = start(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &mock.addr,
        "--policy",
        policy.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
    ]);
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

    let records = audit(&log);
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
    let t = Instant::now();
    let (status, body) = curl(&["-H", &th, &region]);
    assert_eq!(status, 502, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3));
    let last = audit(&log).pop().unwrap();
    assert_eq!(last["status"], 502);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_policy_everything_passes_and_is_recorded() {
    if tools_missing().is_some() {
        return;
    }
    let dir = temp_dir("monitor");
    let log = dir.join("audit.jsonl");
    let mock = start(&["mock", "--listen", "127.0.0.1:0", "--require-token"]);
    let proxy = start(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &mock.addr,
        "--audit-log",
        log.to_str().unwrap(),
    ]);
    // The mock itself requires IMDSv2: its 401 comes back through the proxy.
    let (status, _) = curl(&[&format!(
        "http://{}/latest/meta-data/iam/security-credentials/",
        proxy.addr
    )]);
    assert_eq!(status, 401);
    let r = audit(&log);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["mode"], "monitor");
    assert_eq!(r[0]["decision"], "allow");
    assert_eq!(r[0]["status"], 401);
    assert_eq!(r[0]["token"], false);
    let _ = std::fs::remove_dir_all(&dir);
}
