//! The embedded store: one SQLite file keeps alerts, incidents, baselines, analysts' triage
//! actions and input checkpoints, so that `imdsguard alerts`, `incident` and `triage` work on
//! what `hunt` and `watch` found, and a restarted `watch` resumes where it stopped.
//!
//! - Schema migrations are versioned (`PRAGMA user_version`); each runs once, in a transaction,
//!   in order. A file written by a newer imdsguard (a higher version) is refused, not altered.
//! - WAL journal: readers (`imdsguard alerts` in another terminal) run while a writer does.
//! - [`Store::commit`] writes one [`Batch`] — alerts, incidents, baselines and checkpoints — in one
//!   transaction: input offsets are saved with the alerts they produced, or not at all.
//! - Alerts are kept once by id (ids are a hash of rule, record and time): reading the same input
//!   again, or resuming after a crash, adds no duplicate.
//! - With the `postgres` feature, `--db postgres://user@host/db` keeps the same schema (its
//!   version in the table `imdsguard_schema`) in a PostgreSQL database that several processes
//!   share; every method works the same on both (`db.rs` is the one interface under them).

use std::path::{Path, PathBuf};

use imdsguard_correlate::{Baselines, Incident};
use imdsguard_event::Severity;
use imdsguard_rules::Alert;
use rusqlite::{Connection, OpenFlags};

mod db;
#[cfg(feature = "postgres")]
mod pg_tls;
use db::{Arg, Cell, Db, DbError};

/// Stored records listed, and those that did not read back, each named: one damaged row costs
/// that row, never the listing.
#[derive(Debug, Default)]
pub struct Listed {
    /// The records, as their JSON.
    pub rows: Vec<serde_json::Value>,
    /// The rows left out, with why.
    pub unreadable: Vec<StoreError>,
}

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation on the file.
    #[error("{path}: {what}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What was being done.
        what: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file's schema is newer than this program knows.
    #[error("{path}: schema version {found} is newer than this imdsguard knows ({known}); use a newer imdsguard or another --db")]
    TooNew {
        /// The database file.
        path: String,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A stored record could not be read back.
    #[error("{path}: {what}: {message}")]
    Corrupt {
        /// The database file.
        path: String,
        /// Which record.
        what: String,
        /// Why.
        message: String,
    },
    /// The file cannot be written by this user (or is on a read-only file system).
    #[error("{path}: this user cannot write to it ({message})")]
    ReadOnly {
        /// The database file.
        path: String,
        /// Why.
        message: String,
    },
    /// The directory for the file could not be made.
    #[error("{path}: cannot create its directory: {source}")]
    Io {
        /// The database file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// PostgreSQL refused an operation (or could not be reached).
    #[cfg(feature = "postgres")]
    #[error("{path}: {what}: {}", with_causes(.source))]
    Postgres {
        /// The database's URL, without its password.
        path: String,
        /// What was being done.
        what: String,
        /// The client's error.
        source: postgres::Error,
    },
    /// A PostgreSQL URL's TLS options cannot be used (a file missing, a mode unknown).
    #[error("{path}: TLS: {message}")]
    Tls {
        /// The database's URL, without its password.
        path: String,
        /// Why.
        message: String,
    },
    /// A PostgreSQL URL given to a build without PostgreSQL.
    #[error("{path}: this imdsguard was built without PostgreSQL (the `postgres` feature)")]
    NoPostgres {
        /// The database's URL, without its password.
        path: String,
    },
    /// A database to read holds no store yet.
    #[error("{path}: no imdsguard store in this database yet: `imdsguard hunt --db` (or `watch`) fills it")]
    Empty {
        /// The database's URL, without its password.
        path: String,
    },
    /// An id names neither an alert nor an incident.
    #[error("no alert or incident {0} in the store")]
    Unknown(String),
}

/// An error and what caused it, as one line: the PostgreSQL client says "error performing TLS
/// handshake" and keeps the reason (the certificate's issuer unknown) as its cause.
#[cfg(feature = "postgres")]
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The migrations, in order; the file's `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        severity INTEGER NOT NULL,
        time_ms INTEGER,
        host TEXT,
        source TEXT NOT NULL,
        incident_id TEXT,
        json TEXT NOT NULL,
        stored_at_ms INTEGER NOT NULL
     );
     CREATE INDEX alerts_by_time ON alerts(time_ms);
     CREATE INDEX alerts_by_host ON alerts(host, time_ms);
     CREATE INDEX alerts_by_incident ON alerts(incident_id);
     CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        severity INTEGER NOT NULL,
        json TEXT NOT NULL
     );
     CREATE TABLE baselines (host TEXT PRIMARY KEY, json TEXT NOT NULL);
     CREATE TABLE triage_actions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        note TEXT,
        who TEXT NOT NULL,
        at_ms INTEGER NOT NULL
     );
     CREATE INDEX triage_by_target ON triage_actions(target, seq);
     CREATE TABLE checkpoints (
        input TEXT PRIMARY KEY,
        offset INTEGER NOT NULL,
        lines INTEGER NOT NULL,
        identity TEXT,
        updated_at_ms INTEGER NOT NULL
     );",
    // 2: alerts waiting to be delivered to a webhook (the outbox), with their retry schedule.
    "CREATE TABLE outbox (
        alert_id TEXT NOT NULL REFERENCES alerts(id),
        target TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at_ms INTEGER NOT NULL,
        last_error TEXT,
        PRIMARY KEY (alert_id, target)
     );
     CREATE INDEX outbox_due ON outbox(target, next_at_ms);",
    // 3: an index for every query the commands run: each host's latest incident (what `watch`
    // restores at start), incidents by severity and time (`incident`), alerts by rule.
    "CREATE INDEX incidents_by_host ON incidents(host, last_ms);
     CREATE INDEX incidents_by_severity ON incidents(severity, last_ms);
     CREATE INDEX alerts_by_rule ON alerts(rule_id, time_ms);",
    // 4: a fingerprint of the bytes before a followed file's offset, to notice a file truncated
    // and grown past the offset between two reads.
    "ALTER TABLE checkpoints ADD COLUMN tail TEXT;",
    // 5: which partition of a NATS stream each host's records come on, so that a worker taking
    // a partition restores those hosts' baselines and incidents.
    "CREATE TABLE stream_hosts (
        stream TEXT NOT NULL,
        part INTEGER NOT NULL,
        host TEXT NOT NULL,
        PRIMARY KEY (stream, host)
     );
     CREATE INDEX stream_hosts_by_part ON stream_hosts(stream, part);",
    // 6: each host's open correlation windows, saved with every commit that changed them.
    "CREATE TABLE windows (host TEXT PRIMARY KEY, json TEXT NOT NULL);",
];

/// The same schema on PostgreSQL, migration for migration (the version in `imdsguard_schema`
/// counts both lists alike): 64-bit integers, host names compared byte by byte (`COLLATE "C"`,
/// as SQLite compares them, for the host ranges of `imdsguard alerts --host`), a `seq` column
/// where SQLite's tables have their implicit `rowid`, and records compressed with LZ4 where the
/// server has it (a quarter less time storing alerts than its default, pglz, measured with
/// `bench/run-store.sh`).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
const PG_MIGRATIONS: &[&str] = &[
    "CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        severity BIGINT NOT NULL,
        time_ms BIGINT,
        host TEXT COLLATE \"C\",
        source TEXT NOT NULL,
        incident_id TEXT,
        json TEXT NOT NULL,
        stored_at_ms BIGINT NOT NULL,
        seq BIGSERIAL NOT NULL
     );
     CREATE INDEX alerts_by_time ON alerts(time_ms);
     CREATE INDEX alerts_by_host ON alerts(host, time_ms);
     CREATE INDEX alerts_by_incident ON alerts(incident_id);
     CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        host TEXT COLLATE \"C\" NOT NULL,
        first_ms BIGINT NOT NULL,
        last_ms BIGINT NOT NULL,
        severity BIGINT NOT NULL,
        json TEXT NOT NULL
     );
     CREATE TABLE baselines (host TEXT PRIMARY KEY, json TEXT NOT NULL);
     CREATE TABLE triage_actions (
        seq BIGSERIAL PRIMARY KEY,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        note TEXT,
        who TEXT NOT NULL,
        at_ms BIGINT NOT NULL
     );
     CREATE INDEX triage_by_target ON triage_actions(target, seq);
     DO $$ BEGIN
        EXECUTE 'ALTER TABLE alerts ALTER COLUMN json SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE incidents ALTER COLUMN json SET COMPRESSION lz4';
     EXCEPTION WHEN OTHERS THEN NULL;
     END $$;
     CREATE TABLE checkpoints (
        input TEXT PRIMARY KEY,
        \"offset\" BIGINT NOT NULL,
        lines BIGINT NOT NULL,
        identity TEXT,
        updated_at_ms BIGINT NOT NULL
     );",
    "CREATE TABLE outbox (
        alert_id TEXT NOT NULL REFERENCES alerts(id),
        target TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        next_at_ms BIGINT NOT NULL,
        last_error TEXT,
        seq BIGSERIAL NOT NULL,
        PRIMARY KEY (alert_id, target)
     );
     CREATE INDEX outbox_due ON outbox(target, next_at_ms);",
    "CREATE INDEX incidents_by_host ON incidents(host, last_ms);
     CREATE INDEX incidents_by_severity ON incidents(severity, last_ms);
     CREATE INDEX alerts_by_rule ON alerts(rule_id, time_ms);",
    "ALTER TABLE checkpoints ADD COLUMN tail TEXT;",
    "CREATE TABLE stream_hosts (
        stream TEXT NOT NULL,
        part BIGINT NOT NULL,
        host TEXT NOT NULL,
        PRIMARY KEY (stream, host)
     );
     CREATE INDEX stream_hosts_by_part ON stream_hosts(stream, part);",
    "CREATE TABLE windows (host TEXT PRIMARY KEY, json TEXT NOT NULL);",
];

const _: () = assert!(PG_MIGRATIONS.len() == MIGRATIONS.len());

/// Where a followed input stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The input's name (a path, `syslog:udp:ADDR`, ...).
    pub input: String,
    /// Bytes consumed.
    pub offset: u64,
    /// Lines consumed (record positions continue from here).
    pub lines: u64,
    /// What identifies the file the offset is in (device and inode), to notice rotation.
    pub identity: Option<String>,
    /// A fingerprint of the bytes just before the offset, to notice the file truncated and
    /// grown again past it.
    pub tail: Option<String>,
}

/// One transaction's worth of results.
#[derive(Default)]
pub struct Batch<'a> {
    /// Alerts with their time (ms) when known.
    pub alerts: Vec<(&'a Alert, Option<i64>)>,
    /// Incidents as they stand now (replaced whole).
    pub incidents: Vec<&'a Incident>,
    /// (alert id, incident id): which incident each alert joined.
    pub links: Vec<(String, String)>,
    /// Baselines of the hosts seen (replaced per host).
    pub baselines: Option<&'a Baselines>,
    /// Input positions reached.
    pub checkpoints: Vec<Checkpoint>,
    /// A webhook the new alerts at or above a severity are to be delivered to: each goes into
    /// the outbox in the same transaction, so none is lost to a crash between storing and
    /// sending.
    pub outbox: Option<(&'a str, Severity)>,
    /// (stream, partition, host): hosts whose records came on a stream's partition.
    pub stream_hosts: Vec<(String, u32, String)>,
    /// Hosts' open correlation windows (replaced per host).
    pub windows: Vec<(String, imdsguard_correlate::Windows)>,
}

/// An alert waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The alert.
    pub alert_id: String,
    /// Its JSON, as `hunt` prints it.
    pub json: String,
    /// Failed deliveries so far.
    pub attempts: u32,
}

/// What `imdsguard alerts` asks for.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this host, by any of its names (case-insensitive; a short name matches the FQDNs
    /// that start with it, an FQDN its short name).
    pub host: Option<String>,
    /// At or above this severity.
    pub min_severity: Option<Severity>,
    /// At or after this time (ms).
    pub since_ms: Option<i64>,
    /// Before this time (ms).
    pub until_ms: Option<i64>,
    /// Only this incident's.
    pub incident: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// An analyst's action on an alert or incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The alert or incident id.
    pub target: String,
    /// `acknowledged`, `escalated` or `closed`.
    pub status: String,
    /// What the analyst wrote.
    pub note: Option<String>,
    /// Who.
    pub who: String,
    /// When (ms).
    pub at_ms: i64,
}

/// The statuses an analyst may set.
pub const STATUSES: [&str; 3] = ["acknowledged", "escalated", "closed"];

/// The status of an alert or incident no analyst has acted on yet.
pub const OPEN: &str = "open";

/// An open store.
pub struct Store {
    db: Db,
    path: String,
    /// Lock files held for [`Store::try_lock`] (SQLite), by name, released when the store is
    /// dropped or [`Store::unlock`]ed.
    locks: std::cell::RefCell<std::collections::HashMap<String, std::fs::File>>,
}

fn severity_rank(s: Severity) -> i64 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0) as i64
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The default file: `$IMDSGUARD_DB`, else `$XDG_DATA_HOME/imdsguard/imdsguard.db`, else
/// `$HOME/.local/share/imdsguard/imdsguard.db`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMDSGUARD_DB").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|p| !p.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("imdsguard").join("imdsguard.db"))
}

/// How [`Store::open_read`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Writable,
    ReadOnly,
    Immutable,
}

/// Whether this process's user owns the file (true where that cannot be told).
/// Whether this user may write `path`, asked of the kernel without opening it. Opening and
/// closing a descriptor of a store this process already has a connection to would drop that
/// connection's locks (POSIX record locks belong to the process and go with any close): another
/// process's reader would then see no writer, and on closing delete the `-wal` file this
/// process goes on writing to, losing what it writes (seen with `watch --webhook`, whose
/// delivery thread opens the store a second time, and a reader beside it). `access(2)` has no
/// binding in std: the one `unsafe` call of this crate.
#[allow(unsafe_code)]
fn can_write(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
    #[cfg(not(unix))]
    {
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().readonly() => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn owned_by_me(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // `/proc/self` belongs to the process's effective user.
        match (std::fs::metadata("/proc/self"), std::fs::metadata(path)) {
            (Ok(me), Ok(file)) => me.uid() == file.uid(),
            _ => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

/// A path as the path of a `file:` URI: `%`, `?` and `#` (and anything not printable ASCII)
/// percent-encoded.
fn uri_path(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in abs.as_os_str().as_encoded_bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            0x21..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether `--db` names a PostgreSQL database (`postgres://…` or `postgresql://…`) rather than
/// a SQLite file.
pub fn is_url(location: &Path) -> bool {
    location
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// A store's location as it may be shown: a URL's password left out (`user:secret@` →
/// `user@`, `password=…` → `password=…`), a file's path as it is.
pub fn shown(location: &Path) -> String {
    let s = location.display().to_string();
    if !is_url(location) {
        return s;
    }
    let (scheme, rest) = s.split_once("://").unwrap_or(("", &s));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, hosts)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{user}@{hosts}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=…"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether a store is there to read: a file that exists, or any database URL (whether the
/// database holds a store is known once connected: [`StoreError::Empty`]).
pub fn exists(location: &Path) -> bool {
    is_url(location) || location.exists()
}

impl Store {
    /// Opens (creating it and its directory if need be) and migrates the store: a SQLite file,
    /// or a PostgreSQL database given by URL (`postgres://user@host/db`).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if is_url(path) {
            return Store::open_postgres(path, true);
        }
        let p = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: p.clone(),
                source,
            })?;
        }
        // A file this user cannot write is refused before SQLite opens it: SQLite would open it
        // read-only, leave `-wal` and `-shm` files owned by this user beside it, and fail at
        // the first write, after the output is done.
        if let Err(e) = can_write(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(StoreError::ReadOnly {
                    path: p,
                    message: e.to_string(),
                });
            }
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: p.clone(),
            what: "opening".into(),
            source,
        })?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::ReadOnly {
                path: p,
                message: "SQLite opened it read-only".into(),
            });
        }
        let mut store = Store {
            db: Db::Sqlite(conn),
            path: p,
            locks: Default::default(),
        };
        store.setup()?;
        Ok(store)
    }

    /// Opens an existing store to read: no migration, nothing created. A PostgreSQL database
    /// that holds no store is [`StoreError::Empty`]. A SQLite file in a directory this user
    /// cannot write (another user's, a read-only mount) is read as it is:
    ///
    /// - its owner, who can write it, reads through a read-write connection, which removes the
    ///   `-wal` and `-shm` files on close as a writer does;
    /// - another user, while a writer runs (its `-shm` exists), reads through a read-only one;
    /// - otherwise (no writer: no `-shm`, which a reader that is not the owner must not leave
    ///   behind for the owner's next writer to trip on, or cannot create) the file is read as
    ///   immutable.
    pub fn open_read(path: &Path) -> Result<Store, StoreError> {
        if is_url(path) {
            return Store::open_postgres(path, false);
        }
        let p = path.display().to_string();
        let open = |how: Reading| -> Result<Store, StoreError> {
            let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
            let (uri, flags) = match how {
                Reading::Writable => (
                    format!("file:{}", uri_path(path)),
                    base | OpenFlags::SQLITE_OPEN_READ_WRITE,
                ),
                Reading::ReadOnly => (
                    format!("file:{}", uri_path(path)),
                    base | OpenFlags::SQLITE_OPEN_READ_ONLY,
                ),
                Reading::Immutable => (
                    format!("file:{}?immutable=1", uri_path(path)),
                    base | OpenFlags::SQLITE_OPEN_READ_ONLY,
                ),
            };
            let conn =
                Connection::open_with_flags(uri, flags).map_err(|source| StoreError::Sqlite {
                    path: p.clone(),
                    what: "opening to read".into(),
                    source,
                })?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(|source| StoreError::Sqlite {
                    path: p.clone(),
                    what: "setting the busy timeout".into(),
                    source,
                })?;
            let store = Store {
                db: Db::Sqlite(conn),
                path: p.clone(),
                locks: Default::default(),
            };
            let version = store.version()?;
            let known = MIGRATIONS.len() as i64;
            if version > known {
                return Err(StoreError::TooNew {
                    path: p.clone(),
                    found: version,
                    known,
                });
            }
            Ok(store)
        };
        let mut shm = path.as_os_str().to_owned();
        shm.push("-shm");
        let writer_running = Path::new(&shm).exists();
        let mine = owned_by_me(path);
        let writable = can_write(path).is_ok();
        let first = match (mine && writable, writer_running) {
            (true, _) => Reading::Writable,
            (false, true) => Reading::ReadOnly,
            (false, false) => Reading::Immutable,
        };
        match open(first) {
            Err(StoreError::Sqlite { source, .. })
                if first != Reading::Immutable
                    && matches!(
                        source.sqlite_error_code(),
                        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                    ) =>
            {
                open(Reading::Immutable)
            }
            other => other,
        }
    }

    #[cfg(not(feature = "postgres"))]
    fn open_postgres(path: &Path, _write: bool) -> Result<Store, StoreError> {
        Err(StoreError::NoPostgres { path: shown(path) })
    }

    /// Connects to a PostgreSQL database; to write, creates or migrates its schema (under an
    /// advisory lock, so workers starting at once migrate once).
    #[cfg(feature = "postgres")]
    fn open_postgres(path: &Path, write: bool) -> Result<Store, StoreError> {
        let shown = shown(path);
        let pg_err = |what: &str| {
            let what = what.to_owned();
            let path = shown.clone();
            move |source| StoreError::Postgres { path, what, source }
        };
        let tls_err = |message: String| StoreError::Tls {
            path: shown.clone(),
            message,
        };
        let (url, tls) = pg_tls::split(path.to_str().unwrap_or_default()).map_err(tls_err)?;
        let connector = pg_tls::connector(&tls).map_err(tls_err)?;
        let mut config: postgres::Config = url.parse().map_err(pg_err("reading the URL"))?;
        if config.get_application_name().is_none() {
            config.application_name("imdsguard");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let client = config.connect(connector).map_err(pg_err("connecting"))?;
        let mut client = client;
        // Each statement planned for the table as it is now: a plan kept from when the table
        // was new (a scan of every row, cheaper than an index then) is otherwise kept until the
        // table is next analyzed, and a store filling at thousands of alerts a second outgrows it
        // within seconds (measured: looking up which alerts are new went from 0.3 to 19 ms a
        // batch). Planning these short statements costs far less. Servers before 12 lack it.
        let _ = client.batch_execute("SET plan_cache_mode = force_custom_plan");
        let store = Store {
            db: Db::Postgres(Box::new(std::cell::RefCell::new(db::Pg::new(client)))),
            path: shown.clone(),
            locks: Default::default(),
        };
        let known = MIGRATIONS.len() as i64;
        if !write {
            let there = store
                .db
                .one("SELECT to_regclass('imdsguard_schema') IS NOT NULL", &[])
                .map_err(store.err("looking for the store's tables"))?;
            if there != Cell::Int(1) {
                return Err(StoreError::Empty { path: shown });
            }
            let version = store.version()?;
            if version > known {
                return Err(StoreError::TooNew {
                    path: shown,
                    found: version,
                    known,
                });
            }
            return Ok(store);
        }
        let tx = store
            .db
            .begin_write()
            .map_err(store.err("starting the migrations"))?;
        // Any number, the same in every imdsguard: its schema's lock.
        store
            .db
            .batch(
                "SELECT pg_advisory_xact_lock(7236854590620001);
                 CREATE TABLE IF NOT EXISTS imdsguard_schema (version BIGINT NOT NULL);",
            )
            .map_err(store.err("locking the schema"))?;
        let version = match store
            .db
            .first("SELECT version FROM imdsguard_schema", &[])
            .map_err(store.err("reading the schema version"))?
        {
            Some(row) => row
                .into_iter()
                .next()
                .unwrap_or(Cell::Null)
                .int("the schema version")
                .map_err(store.err("reading the schema version"))?,
            None => {
                store
                    .db
                    .exec("INSERT INTO imdsguard_schema (version) VALUES (0)", &[])
                    .map_err(store.err("starting the schema"))?;
                0
            }
        };
        let version = store.check_version(version)?;
        for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(version as usize) {
            let n = i + 1;
            store
                .db
                .batch(sql)
                .and_then(|_| {
                    store.db.exec(
                        "UPDATE imdsguard_schema SET version = ?1",
                        &[Arg::Int(n as i64)],
                    )
                })
                .map_err(store.err(&format!("migration {n}")))?;
        }
        tx.commit()
            .map_err(store.err("committing the migrations"))?;
        Ok(store)
    }

    /// A record that cannot be written as JSON, named.
    fn corrupt(&self, what: String) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
        move |e| StoreError::Corrupt {
            path: self.path.clone(),
            what,
            message: e.to_string(),
        }
    }

    fn err(&self, what: &str) -> impl FnOnce(DbError) -> StoreError + '_ {
        let what = what.to_owned();
        move |e| match e {
            DbError::Sqlite(source) => StoreError::Sqlite {
                path: self.path.clone(),
                what,
                source,
            },
            #[cfg(feature = "postgres")]
            DbError::Postgres(source) => StoreError::Postgres {
                path: self.path.clone(),
                what,
                source,
            },
            DbError::Type(message) => StoreError::Corrupt {
                path: self.path.clone(),
                what,
                message,
            },
        }
    }

    /// Where NULL times sort: SQLite puts them first ascending and last descending, and
    /// PostgreSQL is told to do the same.
    fn nulls(&self, ascending: bool) -> &'static str {
        match (&self.db, ascending) {
            (Db::Sqlite(_), _) => "",
            #[cfg(feature = "postgres")]
            (Db::Postgres(_), true) => " NULLS FIRST",
            #[cfg(feature = "postgres")]
            (Db::Postgres(_), false) => " NULLS LAST",
        }
    }

    #[cfg(test)]
    fn sqlite(&self) -> Option<&Connection> {
        match &self.db {
            Db::Sqlite(c) => Some(c),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => None,
        }
    }

    /// A schema version this build can use, or why not.
    #[cfg(feature = "postgres")]
    fn check_version(&self, version: i64) -> Result<i64, StoreError> {
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        if version < 0 {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: "the schema version".into(),
                message: format!(
                    "{version} is no schema version of imdsguard's; the store is left as it is"
                ),
            });
        }
        Ok(version)
    }

    fn setup(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |what: String| {
            let path = path.clone();
            move |source| StoreError::Sqlite { path, what, source }
        };
        // A match, not a `let`: with the `postgres` feature it has a second arm.
        #[allow(clippy::infallible_destructuring_match)]
        let conn = match &mut self.db {
            Db::Sqlite(c) => c,
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => return Ok(()),
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite("setting the busy timeout".into()))?;
        // Switching a new file to WAL takes an exclusive lock that the busy timeout does not wait
        // for: another process opening the same new store at that moment makes it fail with
        // "database is locked". Retried for as long as the busy timeout.
        let started = std::time::Instant::now();
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other.map_err(sqlite("switching to WAL".into()))?,
            }
        };
        debug_assert!(mode.eq_ignore_ascii_case("wal") || mode == "memory");
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(sqlite("setting pragmas".into()))?;
        let known = MIGRATIONS.len() as i64;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite("reading the schema version".into()))?;
        let check = |v: i64| -> Result<i64, StoreError> {
            if v > known {
                return Err(StoreError::TooNew {
                    path: path.clone(),
                    found: v,
                    known,
                });
            }
            if v < 0 {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    what: "the schema version".into(),
                    message: format!(
                        "{v} is no schema version of imdsguard's; the file is left as it is"
                    ),
                });
            }
            Ok(v)
        };
        if check(version)? == known {
            return Ok(());
        }
        // Migrations run under an exclusive lock, the version read again inside it: of two
        // processes opening a new store at once, one migrates and the other finds it done.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(sqlite("starting the migrations".into()))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite("reading the schema version".into()))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(check(version)? as usize) {
            let n = i + 1;
            tx.execute_batch(sql)
                .and_then(|_| tx.execute_batch(&format!("PRAGMA user_version = {n}")))
                .map_err(sqlite(format!("migration {n}")))?;
        }
        tx.commit()
            .map_err(sqlite("committing the migrations".into()))?;
        Ok(())
    }

    /// The schema version of the store.
    pub fn version(&self) -> Result<i64, StoreError> {
        let sql = match &self.db {
            Db::Sqlite(_) => "PRAGMA user_version",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => "SELECT version FROM imdsguard_schema",
        };
        self.db
            .one(sql, &[])
            .and_then(|c| c.int("the schema version"))
            .map_err(self.err("reading the schema version"))
    }

    /// The file, or the database's URL without its password.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Writes a batch in one transaction; returns how many alerts were new.
    pub fn commit(&mut self, batch: &Batch<'_>) -> Result<usize, StoreError> {
        self.commit_new(batch)
            .map(|new| new.iter().filter(|n| **n).count())
    }

    /// [`Store::commit`], saying for each alert of the batch whether it was new (not already
    /// stored): what `watch` prints, so that a restart prints nothing twice.
    pub fn commit_new(&mut self, batch: &Batch<'_>) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        // SQLite: IMMEDIATE, the write lock taken (waiting up to the busy timeout) before the
        // transaction reads anything. A deferred one that reads first and then writes fails at
        // once with "database is locked" when another connection (the webhook's deliveries)
        // committed in between: WAL cannot upgrade a stale snapshot, and SQLite does not wait.
        let tx = self
            .db
            .begin_write()
            .map_err(self.err("starting a commit"))?;
        #[cfg(feature = "postgres")]
        if let Some(done) = self.pg_alerts_and_links(batch, now) {
            let new = done?;
            self.commit_rest(batch, now)?;
            tx.commit().map_err(self.err("committing"))?;
            return Ok(new);
        }
        let mut new = Vec::with_capacity(batch.alerts.len());
        for (a, time_ms) in &batch.alerts {
            let json = serde_json::to_string(a).map_err(self.corrupt(format!("alert {}", a.id)))?;
            let host = a.host.as_deref().map(str::to_ascii_lowercase);
            let source = a.source_text();
            let n = self
                .db
                .exec(
                    "INSERT INTO alerts
                     (id, rule_id, severity, time_ms, host, source, json, stored_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                    &[
                        Arg::Text(&a.id),
                        Arg::Text(&a.rule_id),
                        Arg::Int(severity_rank(a.severity)),
                        Arg::OptInt(*time_ms),
                        Arg::OptText(host.as_deref()),
                        Arg::Text(&source),
                        Arg::Text(&json),
                        Arg::Int(now),
                    ],
                )
                .map_err(self.err("storing an alert"))?;
            new.push(n == 1);
            let send = batch.outbox.filter(|(_, min)| n == 1 && a.severity >= *min);
            if let Some((target, _)) = send {
                self.db
                    .exec(
                        "INSERT INTO outbox (alert_id, target, next_at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                        &[Arg::Text(&a.id), Arg::Text(target), Arg::Int(now)],
                    )
                    .map_err(self.err("queueing an alert for the webhook"))?;
            }
        }
        for (alert, incident) in &batch.links {
            self.db
                .exec(
                    "UPDATE alerts SET incident_id = ?1 WHERE id = ?2",
                    &[Arg::Text(incident), Arg::Text(alert)],
                )
                .map_err(self.err("linking an alert to its incident"))?;
        }
        self.commit_rest(batch, now)?;
        tx.commit().map_err(self.err("committing"))?;
        Ok(new)
    }

    /// On PostgreSQL, a batch's alerts, outbox entries and incident links in three statements
    /// over arrays rather than a round trip each; whether each alert was new. `None` on SQLite.
    #[cfg(feature = "postgres")]
    fn pg_alerts_and_links(
        &self,
        batch: &Batch<'_>,
        now: i64,
    ) -> Option<Result<Vec<bool>, StoreError>> {
        if !matches!(self.db, Db::Postgres(_)) {
            return None;
        }
        let run = || -> Result<Vec<bool>, StoreError> {
            let n = batch.alerts.len();
            let (mut ids, mut rules, mut sevs, mut times, mut hosts, mut sources, mut jsons) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for (a, time_ms) in &batch.alerts {
                jsons.push(
                    serde_json::to_string(a).map_err(self.corrupt(format!("alert {}", a.id)))?,
                );
                ids.push(a.id.as_str());
                rules.push(a.rule_id.as_str());
                sevs.push(severity_rank(a.severity));
                times.push(*time_ms);
                hosts.push(a.host.as_deref().map(str::to_ascii_lowercase));
                sources.push(a.source_text());
            }
            // An alert stored with the incident it joins, rather than updated after: a second
            // version of every new row otherwise, with all its index entries.
            let joins: std::collections::HashMap<&str, &str> = batch
                .links
                .iter()
                .map(|(a, i)| (a.as_str(), i.as_str()))
                .collect();
            let incs: Vec<Option<&str>> = ids.iter().map(|id| joins.get(id).copied()).collect();
            let inserted: std::collections::HashSet<String> = if n == 0 {
                Default::default()
            } else {
                self.db
                    .pg_texts(
                        "INSERT INTO alerts
                         (id, rule_id, severity, time_ms, host, source, json, incident_id,
                          stored_at_ms)
                         SELECT u.*, ?9::int8 FROM unnest(?1::text[], ?2::text[], ?3::int8[],
                           ?4::int8[], ?5::text[], ?6::text[], ?7::text[], ?8::text[]) AS u
                         ON CONFLICT DO NOTHING RETURNING id",
                        &[
                            &ids, &rules, &sevs, &times, &hosts, &sources, &jsons, &incs, &now,
                        ],
                    )
                    .unwrap_or(Ok(Vec::new()))
                    .map_err(self.err("storing alerts"))?
                    .into_iter()
                    .collect()
            };
            // An id twice in the batch is new once, the first time, as row by row.
            let mut seen = std::collections::HashSet::new();
            let new: Vec<bool> = ids
                .iter()
                .map(|id| inserted.contains(*id) && seen.insert(*id))
                .collect();
            if let Some((target, min)) = batch.outbox {
                let send: Vec<&str> = batch
                    .alerts
                    .iter()
                    .zip(&new)
                    .filter(|((a, _), new)| **new && a.severity >= min)
                    .map(|((a, _), _)| a.id.as_str())
                    .collect();
                if !send.is_empty() {
                    self.db
                        .pg_texts(
                            "INSERT INTO outbox (alert_id, target, next_at_ms)
                             SELECT unnest(?1::text[]), ?2::text, ?3::int8
                             ON CONFLICT DO NOTHING RETURNING alert_id",
                            &[&send, &target, &now],
                        )
                        .unwrap_or(Ok(Vec::new()))
                        .map_err(self.err("queueing alerts for the webhook"))?;
                }
            }
            // The links of alerts not inserted just now (stored before, or not in this batch).
            let (alerts, incidents): (Vec<&str>, Vec<&str>) = batch
                .links
                .iter()
                .filter(|(a, _)| !inserted.contains(a.as_str()))
                .map(|(a, i)| (a.as_str(), i.as_str()))
                .unzip();
            if !alerts.is_empty() {
                self.db
                    .pg_texts(
                        "UPDATE alerts SET incident_id = u.inc
                         FROM unnest(?1::text[], ?2::text[]) AS u(id, inc)
                         WHERE alerts.id = u.id RETURNING alerts.id",
                        &[&alerts, &incidents],
                    )
                    .unwrap_or(Ok(Vec::new()))
                    .map_err(self.err("linking alerts to their incidents"))?;
            }
            Ok(new)
        };
        Some(run())
    }

    /// [`Store::commit_rest`] on PostgreSQL: incidents and baselines in one statement each,
    /// over arrays (an incident named twice in a batch is written as it stands last).
    #[cfg(feature = "postgres")]
    fn pg_rest(&self, batch: &Batch<'_>, now: i64) -> Result<(), StoreError> {
        let mut last: std::collections::HashMap<&str, usize> = Default::default();
        for (n, i) in batch.incidents.iter().enumerate() {
            last.insert(i.id.as_str(), n);
        }
        let (mut ids, mut hosts, mut firsts, mut lasts, mut sevs, mut jsons) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (n, i) in batch.incidents.iter().enumerate() {
            if last.get(i.id.as_str()) != Some(&n) {
                continue;
            }
            jsons.push(
                serde_json::to_string(i).map_err(self.corrupt(format!("incident {}", i.id)))?,
            );
            ids.push(i.id.as_str());
            hosts.push(i.host.as_deref().unwrap_or(""));
            firsts.push(i.timeline.first().map_or(0, |s| s.time_ms));
            lasts.push(i.last_ms);
            sevs.push(severity_rank(i.severity));
        }
        if !ids.is_empty() {
            self.db
                .pg_texts(
                    "INSERT INTO incidents (id, host, first_ms, last_ms, severity, json)
                     SELECT * FROM unnest(?1::text[], ?2::text[], ?3::int8[], ?4::int8[],
                       ?5::int8[], ?6::text[])
                     ON CONFLICT (id) DO UPDATE SET host = excluded.host,
                       first_ms = excluded.first_ms, last_ms = excluded.last_ms,
                       severity = excluded.severity, json = excluded.json
                     RETURNING id",
                    &[&ids, &hosts, &firsts, &lasts, &sevs, &jsons],
                )
                .unwrap_or(Ok(Vec::new()))
                .map_err(self.err("storing incidents"))?;
        }
        if let Some(b) = batch.baselines.filter(|b| !b.is_empty()) {
            let mut hosts = Vec::with_capacity(b.len());
            let mut jsons = Vec::with_capacity(b.len());
            for (host, hb) in b {
                jsons.push(
                    serde_json::to_string(hb)
                        .map_err(self.corrupt(format!("baseline of {host}")))?,
                );
                hosts.push(host.as_str());
            }
            self.db
                .pg_texts(
                    "INSERT INTO baselines (host, json) SELECT * FROM unnest(?1::text[], ?2::text[])
                     ON CONFLICT (host) DO UPDATE SET json = excluded.json RETURNING host",
                    &[&hosts, &jsons],
                )
                .unwrap_or(Ok(Vec::new()))
                .map_err(self.err("storing baselines"))?;
        }
        self.checkpoints(batch, now)
    }

    /// A batch's checkpoints, the partitions its hosts came on, and their windows.
    fn checkpoints(&self, batch: &Batch<'_>, now: i64) -> Result<(), StoreError> {
        for (host, w) in &batch.windows {
            let json =
                serde_json::to_string(w).map_err(self.corrupt(format!("windows of {host}")))?;
            self.db
                .exec(
                    "INSERT INTO windows (host, json) VALUES (?1, ?2)
                     ON CONFLICT (host) DO UPDATE SET json = excluded.json",
                    &[Arg::Text(host), Arg::Text(&json)],
                )
                .map_err(self.err("storing a host's windows"))?;
        }
        for (stream, part, host) in &batch.stream_hosts {
            self.db
                .exec(
                    "INSERT INTO stream_hosts (stream, part, host) VALUES (?1, ?2, ?3)
                     ON CONFLICT (stream, host) DO UPDATE SET part = excluded.part",
                    &[
                        Arg::Text(stream),
                        Arg::Int(i64::from(*part)),
                        Arg::Text(host),
                    ],
                )
                .map_err(self.err("storing a host's partition"))?;
        }
        for c in &batch.checkpoints {
            self.db
                .exec(
                    "INSERT INTO checkpoints (input, \"offset\", lines, identity, updated_at_ms, tail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (input) DO UPDATE SET \"offset\" = excluded.\"offset\",
                       lines = excluded.lines, identity = excluded.identity,
                       updated_at_ms = excluded.updated_at_ms, tail = excluded.tail",
                    &[
                        Arg::Text(&c.input),
                        Arg::Int(c.offset as i64),
                        Arg::Int(c.lines as i64),
                        Arg::OptText(c.identity.as_deref()),
                        Arg::Int(now),
                        Arg::OptText(c.tail.as_deref()),
                    ],
                )
                .map_err(self.err("storing a checkpoint"))?;
        }
        Ok(())
    }

    /// A batch's incidents, baselines and checkpoints, inside the caller's transaction.
    fn commit_rest(&self, batch: &Batch<'_>, now: i64) -> Result<(), StoreError> {
        #[cfg(feature = "postgres")]
        if matches!(self.db, Db::Postgres(_)) {
            return self.pg_rest(batch, now);
        }
        for i in &batch.incidents {
            let json =
                serde_json::to_string(i).map_err(self.corrupt(format!("incident {}", i.id)))?;
            let first = i.timeline.first().map_or(0, |s| s.time_ms);
            self.db
                .exec(
                    "INSERT INTO incidents (id, host, first_ms, last_ms, severity, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET host = excluded.host,
                       first_ms = excluded.first_ms, last_ms = excluded.last_ms,
                       severity = excluded.severity, json = excluded.json",
                    &[
                        Arg::Text(&i.id),
                        Arg::Text(i.host.as_deref().unwrap_or("")),
                        Arg::Int(first),
                        Arg::Int(i.last_ms),
                        Arg::Int(severity_rank(i.severity)),
                        Arg::Text(&json),
                    ],
                )
                .map_err(self.err("storing an incident"))?;
        }
        if let Some(b) = batch.baselines {
            for (host, hb) in b {
                let json = serde_json::to_string(hb)
                    .map_err(self.corrupt(format!("baseline of {host}")))?;
                self.db
                    .exec(
                        "INSERT INTO baselines (host, json) VALUES (?1, ?2)
                         ON CONFLICT (host) DO UPDATE SET json = excluded.json",
                        &[Arg::Text(host), Arg::Text(&json)],
                    )
                    .map_err(self.err("storing a baseline"))?;
            }
        }
        self.checkpoints(batch, now)
    }

    /// For each id, whether the store holds no alert of it yet (an id twice in `ids` is new
    /// once): what `watch` prints before it commits, without holding the write lock meanwhile.
    pub fn unseen(&self, ids: &[&str]) -> Result<Vec<bool>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        #[cfg(feature = "postgres")]
        if let Some(stored) = self
            .db
            .pg_texts("SELECT id FROM alerts WHERE id = ANY(?1::text[])", &[&ids])
        {
            let stored: std::collections::HashSet<String> = stored
                .map_err(self.err("looking alerts up"))?
                .into_iter()
                .collect();
            return Ok(ids
                .iter()
                .map(|id| !stored.contains(*id) && seen.insert(*id))
                .collect());
        }
        ids.iter()
            .map(|id| {
                let stored = self
                    .db
                    .one(
                        "SELECT EXISTS(SELECT 1 FROM alerts WHERE id = ?1)",
                        &[Arg::Text(id)],
                    )
                    .map_err(self.err("looking alerts up"))?;
                Ok(stored != Cell::Int(1) && seen.insert(*id))
            })
            .collect()
    }

    /// The saved baselines of every host. A row that does not read back is an error naming it.
    pub fn baselines(&self) -> Result<Baselines, StoreError> {
        let rows = self
            .db
            .rows("SELECT host, json FROM baselines", &[])
            .map_err(self.err("reading baselines"))?;
        let mut out = Baselines::new();
        for row in rows {
            let [host, json] = pair(row);
            let host = host
                .text("a baseline's host")
                .map_err(self.err("reading a baseline"))?;
            let what = format!("baseline of {host}");
            let json = json.text("its record").map_err(self.err(&what))?;
            let b = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                what,
                message: e.to_string(),
            })?;
            out.insert(host, b);
        }
        Ok(out)
    }

    /// The saved correlation windows of every host. A row that does not read back is named in
    /// the second list (its host's windows start empty).
    #[allow(clippy::type_complexity)]
    pub fn windows(
        &self,
    ) -> Result<(Vec<(String, imdsguard_correlate::Windows)>, Vec<StoreError>), StoreError> {
        let rows = self
            .db
            .rows("SELECT host, json FROM windows", &[])
            .map_err(self.err("reading the windows"))?;
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for row in rows {
            let [host, json] = pair(row);
            let host = host
                .text("a host")
                .map_err(self.err("reading the windows"))?;
            let what = format!("windows of {host}");
            match json
                .text("its record")
                .map_err(self.err(&what))
                .and_then(|j| {
                    serde_json::from_str(&j).map_err(|e| StoreError::Corrupt {
                        path: self.path.clone(),
                        what: what.clone(),
                        message: e.to_string(),
                    })
                }) {
                Ok(w) => out.push((host, w)),
                Err(e) => bad.push(e),
            }
        }
        Ok((out, bad))
    }

    /// The checkpoint of an input.
    pub fn checkpoint(&self, input: &str) -> Result<Option<Checkpoint>, StoreError> {
        let Some(row) = self
            .db
            .first(
                "SELECT input, \"offset\", lines, identity, tail FROM checkpoints WHERE input = ?1",
                &[Arg::Text(input)],
            )
            .map_err(self.err("reading a checkpoint"))?
        else {
            return Ok(None);
        };
        let mut c = row.into_iter();
        let mut next = || c.next().unwrap_or(Cell::Null);
        let mut read = || -> Result<Checkpoint, DbError> {
            Ok(Checkpoint {
                input: next().text("its input")?,
                offset: next().int("its offset")? as u64,
                lines: next().int("its line count")? as u64,
                identity: next().opt_text("its identity")?,
                tail: next().opt_text("its tail")?,
            })
        };
        read()
            .map(Some)
            .map_err(self.err(&format!("the checkpoint of {input}")))
    }

    /// Stored alerts (as their JSON), newest first; rows that do not read back are named in
    /// [`Listed::unreadable`].
    pub fn alerts(&self, f: &AlertFilter) -> Result<Listed, StoreError> {
        let mut out = Listed::default();
        self.each_alert(f, false, &mut |row| match row {
            Ok(v) => out.rows.push(v),
            Err(e) => out.unreadable.push(e),
        })?;
        Ok(out)
    }

    /// Stored alerts one at a time (as their JSON), oldest first when `oldest_first`, else
    /// newest first: for a reader of every alert (a report) that must not hold them all. A row
    /// that does not read back comes as its error, and the walk goes on. `each` must not use
    /// this store (another [`Store`] may).
    pub fn each_alert(
        &self,
        f: &AlertFilter,
        oldest_first: bool,
        each: &mut dyn FnMut(Result<serde_json::Value, StoreError>),
    ) -> Result<(), StoreError> {
        enum Val {
            I(i64),
            T(String),
        }
        let mut sql = String::from("SELECT id, json FROM alerts WHERE 1=1");
        let mut vals: Vec<Val> = Vec::new();
        // A clause whose `?` are the next parameters, in order.
        let mut arg = |sql: &mut String, clause: &str, v: Vec<Val>| {
            let mut parts = clause.split('?');
            sql.push_str(parts.next().unwrap_or(""));
            for (part, v) in parts.zip(v) {
                vals.push(v);
                sql.push_str(&format!("?{}{part}", vals.len()));
            }
        };
        if let Some(r) = &f.rule {
            arg(&mut sql, " AND rule_id = ?", vec![Val::T(r.clone())]);
        }
        if let Some(h) = f.host.as_deref().and_then(imdsguard_event::host_name) {
            // Any of the host's names: `web01` finds `web01.corp.example` and the reverse.
            let key = imdsguard_event::host_key(&h).to_owned();
            // A range on the host index (`key` up to `key/`, '/' following '.'), narrowed to
            // the name itself and its `key.` suffixes.
            arg(
                &mut sql,
                " AND host >= ? AND host < ? AND (host = ? OR host >= ?)",
                vec![
                    Val::T(key.clone()),
                    Val::T(format!("{key}/")),
                    Val::T(key.clone()),
                    Val::T(format!("{key}.")),
                ],
            );
        }
        if let Some(s) = f.min_severity {
            arg(
                &mut sql,
                " AND severity >= ?",
                vec![Val::I(severity_rank(s))],
            );
        }
        if let Some(t) = f.since_ms {
            arg(&mut sql, " AND time_ms >= ?", vec![Val::I(t)]);
        }
        if let Some(t) = f.until_ms {
            arg(&mut sql, " AND time_ms < ?", vec![Val::I(t)]);
        }
        if let Some(i) = &f.incident {
            arg(&mut sql, " AND incident_id = ?", vec![Val::T(i.clone())]);
        }
        sql.push_str(&if oldest_first {
            format!(" ORDER BY time_ms{}, id", self.nulls(true))
        } else {
            format!(" ORDER BY time_ms DESC{}, id", self.nulls(false))
        });
        if let Some(n) = f.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let args: Vec<Arg<'_>> = vals
            .iter()
            .map(|v| match v {
                Val::I(i) => Arg::Int(*i),
                Val::T(t) => Arg::Text(t),
            })
            .collect();
        self.db
            .each(&sql, &args, &mut |row| {
                let [id, json] = pair(row);
                each(self.row_value(id, json, "alert"));
            })
            .map_err(self.err("listing alerts"))
    }

    /// Reads listed rows: each one's JSON, or why it is left out.
    fn listed(&self, rows: Vec<Vec<Cell>>, kind: &str) -> Listed {
        let mut out = Listed::default();
        for row in rows {
            let [id, json] = pair(row);
            match self.row_value(id, json, kind) {
                Ok(v) => out.rows.push(v),
                Err(e) => out.unreadable.push(e),
            }
        }
        out
    }

    /// A row's JSON, or why it does not read back.
    fn row_value(&self, id: Cell, json: Cell, kind: &str) -> Result<serde_json::Value, StoreError> {
        let id = match id {
            Cell::Text(t) => t,
            other => format!("{other:?}"),
        };
        let what = format!("{kind} {id}");
        match json {
            Cell::Text(t) => self.value(&t, &what),
            other => Err(StoreError::Corrupt {
                path: self.path.clone(),
                what,
                message: format!("its record is {}, not JSON text", other.kind()),
            }),
        }
    }

    fn value(&self, json: &str, what: &str) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            what: what.to_owned(),
            message: e.to_string(),
        })
    }

    /// One record's JSON by id, or `None`.
    fn json_by_id(
        &self,
        sql: &str,
        id: &str,
        kind: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let what = format!("{kind} {id}");
        let json = self
            .db
            .first(sql, &[Arg::Text(id)])
            .map_err(self.err(&format!("reading an {kind}")))?
            .map(|row| row.into_iter().next().unwrap_or(Cell::Null));
        match json {
            None => Ok(None),
            Some(Cell::Text(t)) => self.value(&t, &what).map(Some),
            Some(other) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                what,
                message: format!("its record is {}, not JSON text", other.kind()),
            }),
        }
    }

    /// One alert (as its JSON), or `None`.
    pub fn alert(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.json_by_id("SELECT json FROM alerts WHERE id = ?1", id, "alert")
    }

    /// One incident (as its JSON), or `None`.
    pub fn incident(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.json_by_id("SELECT json FROM incidents WHERE id = ?1", id, "incident")
    }

    /// The latest incident of each host, as the correlation layer keeps it: what a restarted
    /// `watch` continues. A row that does not read back is left out and named in the second
    /// list (its host then starts a new incident).
    pub fn latest_incidents(&self) -> Result<(Vec<Incident>, Vec<StoreError>), StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id, json FROM incidents i WHERE last_ms =
                   (SELECT MAX(last_ms) FROM incidents j WHERE j.host = i.host) ORDER BY host, id",
                &[],
            )
            .map_err(self.err("reading the latest incidents"))?;
        let listed = self.listed(rows, "incident");
        let mut out = Vec::new();
        let mut unreadable = listed.unreadable;
        for v in listed.rows {
            let id = v["incident_id"].as_str().unwrap_or("?").to_owned();
            match serde_json::from_value::<Incident>(v) {
                Ok(mut inc) => {
                    self.catch_up(&mut inc)?;
                    out.push(inc);
                }
                Err(e) => unreadable.push(StoreError::Corrupt {
                    path: self.path.clone(),
                    what: format!("incident {id}"),
                    message: e.to_string(),
                }),
            }
        }
        Ok((out, unreadable))
    }

    /// Folds into a saved incident the alerts linked to it after it was last written (incidents
    /// are rewritten at most once a second; alerts and their links in every transaction).
    fn catch_up(&self, inc: &mut Incident) -> Result<(), StoreError> {
        let linked = self
            .db
            .one(
                "SELECT COUNT(*) FROM alerts WHERE incident_id = ?1",
                &[Arg::Text(&inc.id)],
            )
            .and_then(|c| c.int("a count"))
            .map_err(self.err("counting an incident's alerts"))?;
        let missing = linked - inc.alerts as i64;
        if missing <= 0 {
            return Ok(());
        }
        let rows = self
            .db
            .rows(
                &format!(
                    "SELECT json, time_ms FROM alerts WHERE incident_id = ?1
                     ORDER BY time_ms DESC{}, rowid DESC LIMIT ?2",
                    self.nulls(false)
                ),
                &[Arg::Text(&inc.id), Arg::Int(missing)],
            )
            .map_err(self.err("reading an incident's alerts"))?;
        let mut late = Vec::new();
        for row in rows {
            let [json, time_ms] = pair(row);
            let json = json
                .text("its record")
                .map_err(self.err("reading an alert"))?;
            let time_ms = time_ms
                .opt_int("its time")
                .map_err(self.err("reading an alert"))?;
            late.push((
                self.value(&json, "an alert")?,
                time_ms.unwrap_or(inc.last_ms),
            ));
        }
        for (v, time_ms) in late.into_iter().rev() {
            let text = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            let severity: Severity =
                serde_json::from_value(v["severity"].clone()).unwrap_or(Severity::Info);
            let triage = serde_json::from_value(v["triage"].clone()).ok();
            let step = imdsguard_correlate::incident::Step {
                time: imdsguard_event::format_time_ms(time_ms),
                time_ms,
                alert_id: text("id"),
                rule_id: text("rule_id"),
                title: text("title"),
                severity,
                stages: imdsguard_correlate::incident::stages_for(
                    v["rule_id"].as_str().unwrap_or(""),
                    v["event"]["kind"] == "process-start",
                    serde_json::from_value(v["target"]["kind"].clone()).ok(),
                ),
                what: format!(
                    "{} → {}",
                    v["process"]["image"].as_str().unwrap_or("-"),
                    v["target"]["endpoint"].as_str().unwrap_or("-")
                ),
                source: serde_json::from_value::<imdsguard_event::SourceRef>(v["source"].clone())
                    .map(|s| s.to_string())
                    .unwrap_or_else(|_| v["source"]["path"].as_str().unwrap_or("").to_owned()),
            };
            inc.absorb(step, triage.as_ref());
        }
        Ok(())
    }

    /// Stored incidents (as their JSON), newest first, at or above a severity; rows that do
    /// not read back are named in [`Listed::unreadable`].
    pub fn incidents(
        &self,
        min_severity: Option<Severity>,
        limit: usize,
    ) -> Result<Listed, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id, json FROM incidents WHERE severity >= ?1 ORDER BY last_ms DESC, id LIMIT ?2",
                &[
                    Arg::Int(min_severity.map_or(0, severity_rank)),
                    Arg::Int(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .map_err(self.err("listing incidents"))?;
        Ok(self.listed(rows, "incident"))
    }

    /// Stored incidents one at a time (as their JSON), by their last alert's time, oldest
    /// first, at or above a severity and lasting into `since_ms`; a row that does not read back
    /// comes as its error. `each` must not use this store.
    pub fn each_incident(
        &self,
        min_severity: Option<Severity>,
        since_ms: Option<i64>,
        each: &mut dyn FnMut(Result<serde_json::Value, StoreError>),
    ) -> Result<(), StoreError> {
        self.db
            .each(
                "SELECT id, json FROM incidents WHERE severity >= ?1 AND last_ms >= ?2 ORDER BY last_ms, id",
                &[
                    Arg::Int(min_severity.map_or(0, severity_rank)),
                    Arg::Int(since_ms.unwrap_or(i64::MIN)),
                ],
                &mut |row| {
                    let [id, json] = pair(row);
                    each(self.row_value(id, json, "incident"));
                },
            )
            .map_err(self.err("listing incidents"))
    }

    /// Records an analyst's action on an alert or incident, which must exist.
    pub fn act(
        &mut self,
        target: &str,
        status: &str,
        note: Option<&str>,
        who: &str,
    ) -> Result<Action, StoreError> {
        let exists = self
            .db
            .one(
                "SELECT EXISTS(SELECT 1 FROM alerts WHERE id = ?1)
                     OR EXISTS(SELECT 1 FROM incidents WHERE id = ?1)",
                &[Arg::Text(target)],
            )
            .map_err(self.err("looking up the id"))?;
        if exists != Cell::Int(1) {
            return Err(StoreError::Unknown(target.to_owned()));
        }
        let at_ms = now_ms();
        self.db
            .exec(
                "INSERT INTO triage_actions (target, status, note, who, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                &[
                    Arg::Text(target),
                    Arg::Text(status),
                    Arg::OptText(note),
                    Arg::Text(who),
                    Arg::Int(at_ms),
                ],
            )
            .map_err(self.err("recording the action"))?;
        Ok(Action {
            target: target.to_owned(),
            status: status.to_owned(),
            note: note.map(str::to_owned),
            who: who.to_owned(),
            at_ms,
        })
    }

    /// The status of an alert or incident: its latest action's, or [`OPEN`].
    pub fn status(&self, target: &str) -> Result<String, StoreError> {
        let status = self
            .db
            .one(
                "SELECT status FROM triage_actions WHERE target = ?1 ORDER BY seq DESC LIMIT 1",
                &[Arg::Text(target)],
            )
            .and_then(|c| c.opt_text("a status"))
            .map_err(self.err("reading a status"))?;
        Ok(status.unwrap_or_else(|| OPEN.to_owned()))
    }

    /// The actions on an alert or incident, oldest first.
    pub fn actions(&self, target: &str) -> Result<Vec<Action>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT target, status, note, who, at_ms FROM triage_actions
                 WHERE target = ?1 ORDER BY seq",
                &[Arg::Text(target)],
            )
            .map_err(self.err("reading actions"))?;
        rows.into_iter()
            .map(|row| {
                let mut c = row.into_iter();
                let mut next = || c.next().unwrap_or(Cell::Null);
                Ok(Action {
                    target: next().text("its target")?,
                    status: next().text("its status")?,
                    note: next().opt_text("its note")?,
                    who: next().text("who")?,
                    at_ms: next().int("its time")?,
                })
            })
            .collect::<Result<_, DbError>>()
            .map_err(self.err("reading an action"))
    }

    /// Alerts due for delivery to `target` (their retry time has come), oldest first.
    pub fn due(&self, target: &str, now_ms: i64, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT o.alert_id, a.json, o.attempts FROM outbox o JOIN alerts a ON a.id = o.alert_id
                 WHERE o.target = ?1 AND o.next_at_ms <= ?2 ORDER BY o.next_at_ms, o.rowid LIMIT ?3",
                &[
                    Arg::Text(target),
                    Arg::Int(now_ms),
                    Arg::Int(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .map_err(self.err("reading the outbox"))?;
        rows.into_iter()
            .map(|row| {
                let mut c = row.into_iter();
                let mut next = || c.next().unwrap_or(Cell::Null);
                Ok(Pending {
                    alert_id: next().text("its alert")?,
                    json: next().text("its record")?,
                    attempts: next().int("its attempts")? as u32,
                })
            })
            .collect::<Result<_, DbError>>()
            .map_err(self.err("reading the outbox"))
    }

    /// The alert was delivered: out of the outbox.
    pub fn delivered(&mut self, alert_id: &str, target: &str) -> Result<(), StoreError> {
        self.db
            .exec(
                "DELETE FROM outbox WHERE alert_id = ?1 AND target = ?2",
                &[Arg::Text(alert_id), Arg::Text(target)],
            )
            .map(|_| ())
            .map_err(self.err("clearing a delivered alert"))
    }

    /// The delivery failed: try again at `next_at_ms`.
    pub fn retry_at(
        &mut self,
        alert_id: &str,
        target: &str,
        next_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.db
            .exec(
                "UPDATE outbox SET attempts = attempts + 1, next_at_ms = ?3, last_error = ?4
                 WHERE alert_id = ?1 AND target = ?2",
                &[
                    Arg::Text(alert_id),
                    Arg::Text(target),
                    Arg::Int(next_at_ms),
                    Arg::Text(error),
                ],
            )
            .map(|_| ())
            .map_err(self.err("rescheduling a delivery"))
    }

    /// How many alerts wait for `target`.
    pub fn outbox_len(&self, target: &str) -> Result<u64, StoreError> {
        self.db
            .one(
                "SELECT COUNT(*) FROM outbox WHERE target = ?1",
                &[Arg::Text(target)],
            )
            .and_then(|c| c.int("a count"))
            .map(|n| n as u64)
            .map_err(self.err("counting the outbox"))
    }

    /// Every destination the outbox holds alerts for, with how many.
    pub fn outbox_targets(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT target, COUNT(*) FROM outbox GROUP BY target ORDER BY target",
                &[],
            )
            .map_err(self.err("reading the outbox"))?;
        rows.into_iter()
            .map(|row| {
                let [t, n] = pair(row);
                Ok((t.text("its destination")?, n.int("a count")? as u64))
            })
            .collect::<Result<_, DbError>>()
            .map_err(self.err("reading the outbox"))
    }

    /// Moves the alerts waiting for `from` to `to` (an alert already waiting for `to` stays
    /// once), and replaces their last error by `error` when given: one transaction.
    pub fn rename_outbox_target(
        &mut self,
        from: &str,
        to: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let what = "renaming an outbox destination";
        if from == to {
            return self
                .db
                .exec(
                    "UPDATE outbox SET last_error = COALESCE(?2, last_error) WHERE target = ?1",
                    &[Arg::Text(from), Arg::OptText(error)],
                )
                .map(|_| ())
                .map_err(self.err(what));
        }
        let tx = self.db.begin_write().map_err(self.err(what))?;
        self.db
            .exec(
                "INSERT INTO outbox (alert_id, target, attempts, next_at_ms, last_error)
                 SELECT alert_id, ?2, attempts, next_at_ms, COALESCE(?3, last_error)
                 FROM outbox WHERE target = ?1 ORDER BY rowid ON CONFLICT DO NOTHING",
                &[Arg::Text(from), Arg::Text(to), Arg::OptText(error)],
            )
            .and_then(|_| {
                self.db
                    .exec("DELETE FROM outbox WHERE target = ?1", &[Arg::Text(from)])
            })
            .map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))
    }

    /// Takes the lock `name` for as long as this store is open, if no other process holds it
    /// (false when one does): one reader of a stream at a time, others waiting to take over.
    /// On PostgreSQL a session advisory lock (released when this connection ends, however the
    /// process ends); on SQLite a lock on a file beside the store (`<file>.<name>.lock`).
    pub fn try_lock(&self, name: &str) -> Result<bool, StoreError> {
        match &self.db {
            Db::Sqlite(_) => {
                let safe: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let path = format!("{}.{safe}.lock", self.path);
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|source| StoreError::Io {
                        path: path.clone(),
                        source,
                    })?;
                match f.try_lock() {
                    Ok(()) => {
                        self.locks.borrow_mut().insert(name.to_owned(), f);
                        Ok(true)
                    }
                    Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                    Err(std::fs::TryLockError::Error(source)) => {
                        Err(StoreError::Io { path, source })
                    }
                }
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => {
                let got = self
                    .db
                    .one(
                        "SELECT pg_try_advisory_lock(?1::int8)",
                        &[Arg::Int(lock_key(name))],
                    )
                    .map_err(self.err(&format!("taking the lock {name}")))?;
                Ok(got == Cell::Int(1))
            }
        }
    }

    /// Gives up the lock `name` this store took with [`Store::try_lock`].
    pub fn unlock(&self, name: &str) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(_) => {
                // Closing the file releases its lock.
                self.locks.borrow_mut().remove(name);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => self
                .db
                .one(
                    "SELECT pg_advisory_unlock(?1::int8)::text",
                    &[Arg::Int(lock_key(name))],
                )
                .map(|_| ())
                .map_err(self.err(&format!("giving up the lock {name}"))),
        }
    }

    /// The hosts whose records came on partition `part` of `stream` (as their records name
    /// them, lower case).
    pub fn stream_hosts(&self, stream: &str, part: u32) -> Result<Vec<String>, StoreError> {
        self.db
            .rows(
                "SELECT host FROM stream_hosts WHERE stream = ?1 AND part = ?2 ORDER BY host",
                &[Arg::Text(stream), Arg::Int(i64::from(part))],
            )
            .map_err(self.err("reading a partition's hosts"))?
            .into_iter()
            .map(|r| r.into_iter().next().unwrap_or(Cell::Null).text("a host"))
            .collect::<Result<_, DbError>>()
            .map_err(self.err("reading a partition's hosts"))
    }

    /// How many processes hold the shared lock `name` ([`Store::join`]); 1 on SQLite (a file
    /// is one machine's, and its locks are not counted).
    pub fn members(&self, name: &str) -> Result<u64, StoreError> {
        let _ = name;
        match &self.db {
            Db::Sqlite(_) => Ok(1),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => {
                let key = lock_key(name);
                // A bigint key shows in pg_locks as its high and low 32 bits.
                self.db
                    .one(
                        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                         AND classid::bigint = ?1 AND objid::bigint = ?2 AND objsubid = 1",
                        &[
                            Arg::Int(((key as u64) >> 32) as i64),
                            Arg::Int(((key as u64) & 0xffff_ffff) as i64),
                        ],
                    )
                    .and_then(|c| c.int("a count"))
                    .map(|n| n.max(0) as u64)
                    .map_err(self.err(&format!("counting the holders of {name}")))
            }
        }
    }

    /// Holds the shared lock `name` for as long as this store is open (PostgreSQL; nothing on
    /// SQLite): how workers of a stream count one another ([`Store::members`]).
    pub fn join(&self, name: &str) -> Result<(), StoreError> {
        let _ = name;
        match &self.db {
            Db::Sqlite(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => self
                .db
                .one(
                    "SELECT pg_advisory_lock_shared(?1::int8)::text",
                    &[Arg::Int(lock_key(name))],
                )
                .map(|_| ())
                .map_err(self.err(&format!("taking the lock {name}"))),
        }
    }

    /// How many alerts the store holds.
    pub fn alert_count(&self) -> Result<u64, StoreError> {
        self.db
            .one("SELECT COUNT(*) FROM alerts", &[])
            .and_then(|c| c.int("a count"))
            .map(|n| n as u64)
            .map_err(self.err("counting alerts"))
    }
}

/// An advisory lock's 64-bit key from its name (FNV-1a), the same in every imdsguard.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn lock_key(name: &str) -> i64 {
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        key ^= u64::from(b);
        key = key.wrapping_mul(0x0100_0000_01b3);
    }
    key as i64
}

/// A two-column row's cells.
fn pair(row: Vec<Cell>) -> [Cell; 2] {
    let mut c = row.into_iter();
    [
        c.next().unwrap_or(Cell::Null),
        c.next().unwrap_or(Cell::Null),
    ]
}

#[cfg(test)]
mod tests;
