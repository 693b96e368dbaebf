//! Where the public logs the tests read are: `../shared/data` beside the repository, or the
//! directory `IMDSGUARD_SHARED_DATA` names.
//!
//! On a developer's clone without them, a test that needs them is skipped with one line on
//! standard error saying which file is missing. Under CI (`CI` set) they must be there: a
//! missing file fails the test instead of skipping it.

use std::io::Write;
use std::path::PathBuf;

/// The directory holding the public logs (it may not exist).
pub fn root() -> PathBuf {
    match std::env::var_os("IMDSGUARD_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

/// `rel` under [`root`], when it exists. When it does not: under CI, a panic naming it; else one
/// line saying the test is skipped, and `None`.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = root().join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: CI runs with ../shared beside the repository",
        shown(rel)
    );
    // Written to the process's standard error directly, not through `eprintln!`, which the test
    // harness captures and shows only for failing tests: a skip is said even when all pass.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {} is not there (the public logs beside the repository; set \
         IMDSGUARD_SHARED_DATA to read them elsewhere)",
        shown(rel)
    );
    None
}

/// `rel` as a reader finds it: under `../shared/data` of the repository, or the directory named.
fn shown(rel: &str) -> String {
    match std::env::var_os("IMDSGUARD_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir).join(rel).display().to_string(),
        None => format!("../shared/data/{rel}"),
    }
}

/// `let p = shared_data!("evtx/otrf_json");` — the path, or the test returns (skipped).
#[macro_export]
macro_rules! shared_data {
    ($rel:expr) => {
        match $crate::shared_data($rel) {
            Some(p) => p,
            None => return,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_skipped_off_ci_and_fails_under_ci() {
        // Run in a child process so the environment of this one is untouched.
        if std::env::var_os("IMDSGUARD_TESTDATA_CHILD").is_some() {
            let got = shared_data("no/such/file");
            writeln!(std::io::stdout(), "RESULT {}", got.is_some()).unwrap();
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let run = |ci: bool| {
            let mut c = std::process::Command::new(&exe);
            // Without --nocapture, as `cargo test` runs: the skip line shows all the same.
            c.args([
                "--exact",
                "tests::a_missing_file_is_skipped_off_ci_and_fails_under_ci",
            ])
            .env("IMDSGUARD_TESTDATA_CHILD", "1")
            .env("IMDSGUARD_SHARED_DATA", "/nonexistent-imdsguard-data");
            if ci {
                c.env("CI", "1");
            } else {
                c.env_remove("CI");
            }
            c.output().unwrap()
        };
        let off = run(false);
        assert!(off.status.success());
        let out = String::from_utf8_lossy(&off.stdout);
        assert!(out.contains("RESULT false"), "{out}");
        let err = String::from_utf8_lossy(&off.stderr);
        assert_eq!(
            err.lines().filter(|l| l.starts_with("skipped: ")).count(),
            1,
            "{err}"
        );
        let on = run(true);
        assert!(!on.status.success());
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&on.stdout),
            String::from_utf8_lossy(&on.stderr)
        );
        assert!(said.contains("is missing: CI runs with"), "{said}");
    }
}
