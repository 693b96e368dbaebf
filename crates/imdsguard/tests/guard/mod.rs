//! What the mock's and the proxy's end-to-end tests share: running `imdsguard` as a service
//! (here or inside a network namespace), real clients, and the one-line skip where the machine
//! cannot run a test, which under CI (`CI` set) is a failure instead.
// Each test file uses part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

/// A running `imdsguard` service (mock or proxy), killed when dropped.
pub struct Running {
    pub child: Child,
    /// The first address it said it listens on.
    pub addr: String,
    /// The rest of what it says.
    pub stderr: Option<BufReader<ChildStderr>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `imdsguard ARGS` (under `prefix`, e.g. `ip netns exec NS`) and waits for its
/// `… on ADDR …` ready line.
pub fn start(prefix: &[&str], args: &[&str]) -> Running {
    let exe = env!("CARGO_BIN_EXE_imdsguard");
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.push(exe);
    argv.extend_from_slice(args);
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
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
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Running {
        child,
        addr,
        stderr: Some(err),
    }
}

/// Runs a program; its standard output and whether it succeeded.
pub fn run(argv: &[&str]) -> (String, bool) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

/// curl's answer (under `prefix`): HTTP status and body, or `None` when no answer came.
pub fn curl_in(prefix: &[&str], args: &[&str]) -> Option<(u16, String)> {
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.extend_from_slice(&["curl", "-s", "--max-time", "3", "-w", "\n%{http_code}"]);
    argv.extend_from_slice(args);
    let (out, ok) = run(&argv);
    if !ok {
        return None;
    }
    let (body, code) = out.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_owned()))
}

/// The first of `tools` this machine lacks.
pub fn missing<'a>(tools: &[&'a str]) -> Option<&'a str> {
    tools.iter().copied().find(|t| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Says why a test cannot run here, in one line; under CI, fails instead.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test (as root, with the tools .ci/run installs): {why}"
    );
    eprintln!("skipped: {why}");
}

/// A network namespace of the test's own, with the guarded addresses on its loopback; removed
/// when dropped.
pub struct Ns(pub String);

impl Ns {
    pub fn create(tag: &str) -> Result<Ns, String> {
        let name = format!("imdsg-{tag}-{}", std::process::id() % 100_000);
        let ns = Ns(name.clone());
        for step in [
            vec!["netns", "add", &name],
            vec!["-n", &name, "link", "set", "lo", "up"],
            vec![
                "-n",
                &name,
                "addr",
                "add",
                "169.254.169.254/32",
                "dev",
                "lo",
            ],
            vec![
                "-n",
                &name,
                "-6",
                "addr",
                "add",
                "fd00:ec2::254/128",
                "dev",
                "lo",
                "nodad",
            ],
        ] {
            ip(&step)?;
        }
        Ok(ns)
    }

    /// `ip netns exec NAME`, to put before a command.
    pub fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.0]
    }

    /// Runs a program inside the namespace.
    pub fn run(&self, argv: &[&str]) -> (String, bool) {
        let mut all: Vec<&str> = self.exec().to_vec();
        all.extend_from_slice(argv);
        run(&all)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `ip ARGS`, or says what failed.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
