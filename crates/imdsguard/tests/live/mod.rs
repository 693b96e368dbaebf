//! What the tests of live inputs (`watch` on files, `watch --nats`) share: the binary, a scratch
//! directory, the record they write, and a SIGKILL.

use std::path::PathBuf;
use std::process::{Child, Command};

use serde_json::json;

/// The binary, run from the repository, with no store named by the environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imdsguard"));
    c.current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("IMDSGUARD_DB");
    c
}

/// A new, empty directory for one test.
pub fn scratch(kind: &str, case: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("imdsguard-{kind}-{case}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A Sysmon process start of curl reading role credentials at second `i` on host
/// `web0<i % 7>` (each one an IMDS-004 alert, and others), as NXLog writes it.
pub fn line(i: u32) -> String {
    let t = 8 * 3600 + i;
    json!({
        "EventTime": format!("2026-11-20 {:02}:{:02}:{:02}", t / 3600 % 24, t / 60 % 60, t % 60),
        "Hostname": format!("web{:02}", i % 7), "SourceModuleType": "im_msvistalog", "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational", "ProcessId": (10_000 + i).to_string(),
        "Image": "C:\\Windows\\System32\\curl.exe",
        "CommandLine": format!("curl.exe -s http://169.254.169.254/latest/meta-data/iam/security-credentials/role-{i}"),
        "User": "CORP\\svc-web", "ParentProcessId": "6900",
        "ParentImage": "C:\\Windows\\System32\\cmd.exe",
    })
    .to_string()
        + "\n"
}

/// Kills the process with SIGKILL and reaps it.
pub fn kill9(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        !child.wait().unwrap().success(),
        "the process was killed, not finished"
    );
}
