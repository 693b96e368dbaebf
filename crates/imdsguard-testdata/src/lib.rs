//! Where the public logs the tests read are: `../shared/data` beside the repository, or the
//! directory `IMDSGUARD_SHARED_DATA` names.
//!
//! On a developer's clone without them, a test that needs them is skipped with one line on
//! standard error saying which file is missing. Under CI (`CI` set) they must be there: a
//! missing file fails the test instead of skipping it.
//!
//! The same for a PostgreSQL server: [`postgres`] starts one of the tests' own.

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

/// A loopback TCP port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A PostgreSQL server of the tests' own (`tests/postgres/server.sh`: a new cluster on
/// loopback, stopped when this process exits), started on first use: the URL of its `postgres`
/// database. Without PostgreSQL installed: under CI a panic, else one line saying the test is
/// skipped, and `None`.
pub fn postgres() -> Option<String> {
    postgres_server().map(|(url, _)| url)
}

/// The directory of the tests' PostgreSQL server ([`postgres`]), with the certificate authority
/// that signed its certificate (`ca.pem`; the certificate names `localhost` only) and one that
/// signed nothing (`other-ca.pem`).
pub fn postgres_certificates() -> Option<PathBuf> {
    postgres_server().map(|(_, dir)| dir)
}

fn postgres_server() -> Option<(String, PathBuf)> {
    static SERVER: std::sync::OnceLock<Result<(String, PathBuf), String>> =
        std::sync::OnceLock::new();
    let got = SERVER.get_or_init(|| {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("imdsguard-pg-{}-{port}", std::process::id()));
        // Durability is not under test: a test run need not wait for the disk.
        start_server(
            "postgres/server.sh",
            &dir,
            port,
            &["fsync=off", "synchronous_commit=off"],
        )
        .map(|url| (url, dir))
    });
    match got {
        Ok(server) => Some(server.clone()),
        Err(e) if !e.is_empty() => panic!("cannot start the tests' PostgreSQL: {e}"),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is not installed: CI installs Debian's postgresql package"
            );
            let _ = writeln!(
                std::io::stderr(),
                "skipped: no PostgreSQL server here (Debian's postgresql package)"
            );
            None
        }
    }
}

/// A new, empty database on the tests' PostgreSQL server ([`postgres`]), named from `name`
/// and this process (an older one of the name is dropped first): its URL.
pub fn postgres_database(name: &str) -> Option<String> {
    let base = postgres()?;
    let db: String = format!("t{}_{}", std::process::id(), name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        // PostgreSQL's names are at most 63 bytes (a longer one is cut, silently).
        .take(63)
        .collect();
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &base, "-c", sql])
            .output()
            .expect("psql (Debian's postgresql-client) runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS {db}"));
    psql(&format!("CREATE DATABASE {db}"));
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    Some(format!("{server}/{db}"))
}

/// A new NATS server with JetStream of the test's own (`tests/nats/server.sh`: loopback, the
/// subject mapping of `deploy/nats/imdsguard.conf`, stopped when this process exits; one per
/// call, since the stream's subjects are fixed and two streams cannot share them): its URL and
/// its directory (whose `pid` file names the server's process). Without nats-server installed:
/// under CI a panic, else one line saying the test is skipped, and `None`.
pub fn nats() -> Option<(String, PathBuf)> {
    nats_with(&[])
}

/// [`nats`] with TLS only (a certificate for `localhost` and `127.0.0.1` signed by the
/// authority in the directory's `ca.pem`; `other-ca.pem` signed nothing) and one user,
/// `imdsguard` with the password `s3cret`: its `tls://` URL (without the user) and directory.
pub fn nats_tls() -> Option<(String, PathBuf)> {
    nats_with(&["tls"])
}

fn nats_with(extra: &[&str]) -> Option<(String, PathBuf)> {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("imdsguard-nats-{}-{port}", std::process::id()));
    let got = start_server("nats/server.sh", &dir, port, extra).map(|url| (url, dir));
    match got {
        Ok(server) => Some(server),
        Err(e) if !e.is_empty() => panic!("cannot start the tests' NATS server: {e}"),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "nats-server is not installed: CI installs Debian's nats-server package"
            );
            let _ = writeln!(
                std::io::stderr(),
                "skipped: no nats-server here (Debian's nats-server package)"
            );
            None
        }
    }
}

/// `let (url, dir) = nats!();` — a new NATS server, or the test returns (skipped);
/// `nats!(tls)` one with TLS and a password ([`nats_tls`]).
#[macro_export]
macro_rules! nats {
    () => {
        match $crate::nats() {
            Some(u) => u,
            None => return,
        }
    };
    (tls) => {
        match $crate::nats_tls() {
            Some(u) => u,
            None => return,
        }
    };
}

/// Runs a server script of `tests/` (`DIR PORT WATCH`, then `extra` settings): its printed URL,
/// `Err("")` when the server is not installed (the script's status 3), else why it failed.
fn start_server(
    script: &str,
    dir: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> Result<String, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(script);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .args(extra)
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        Some(3) => Err(String::new()),
        _ => Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// `let url = postgres_database!("name");` — a new database's URL, or the test returns
/// (skipped).
#[macro_export]
macro_rules! postgres_database {
    ($name:expr) => {
        match $crate::postgres_database($name) {
            Some(u) => u,
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
