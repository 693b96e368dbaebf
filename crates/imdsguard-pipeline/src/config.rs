//! What a run is asked to do, as typed values: the binary turns arguments into these, tests and
//! other entry points build them directly.

use std::path::PathBuf;

use imdsguard_event::{Format, LocalZone, Severity};

/// The catalog and allowlist files that extend the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct ResourceConfig {
    /// A catalog file (same format as `imdsguard catalog --toml`).
    pub catalog: Option<PathBuf>,
    /// An allowlist file (same format as `imdsguard allowlist --toml`).
    pub allowlist: Option<PathBuf>,
    /// Inventory files (`aws ec2 describe-instances`, `az vm list -d`,
    /// `gcloud compute instances list --format=json`).
    pub inventory: Vec<PathBuf>,
}

/// Which rules run.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// Sigma rule files or directories (filters and correlations among them).
    pub sigma: Vec<PathBuf>,
    /// Run the built-in detections and correlations (IMDS-001 … IMDS-104).
    pub builtin: bool,
    /// Which Sigma rules run.
    pub select: Selection,
}

/// Which Sigma rules run, as Hayabusa selects them: by level, status, tag and id. A rule a
/// correlation that runs names is kept whatever the selection, so the correlation can count it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Rules at or above this level (`None`: every level).
    pub min_level: Option<imdsguard_event::Severity>,
    /// Only rules of this level.
    pub exact_level: Option<imdsguard_event::Severity>,
    /// Run rules marked `deprecated` (left out by default).
    pub deprecated: bool,
    /// Run rules marked `unsupported` (left out by default).
    pub unsupported: bool,
    /// Only rules with one of these tags (any case), when any are given.
    pub tags: Vec<String>,
    /// Only rules with one of these ids (any case), when any are given.
    pub ids: Vec<String>,
}

/// How records are read.
#[derive(Debug, Clone, Default)]
pub struct ReadConfig {
    /// Decode every record with this format instead of sniffing.
    pub format: Option<Format>,
    /// The zone of local times written without one.
    pub timezone: Option<LocalZone>,
    /// Where to count the input bytes read, for a progress bar.
    pub progress: Option<std::sync::Arc<imdsguard_parse::Progress>>,
    /// A directory's files are read only with one of these extensions (all when empty).
    pub extensions: Vec<String>,
    /// The user's access-log layout (`--log-format`).
    pub log_format: Option<std::sync::Arc<imdsguard_parse::LogFormat>>,
}

/// The correlation layer's settings.
#[derive(Debug, Clone)]
pub struct CorrelateConfig {
    /// The built-in correlations' settings (learning period, token window, …).
    pub imds: imdsguard_correlate::Config,
    /// Quiet on a host longer than this opens a new incident.
    pub incident_gap_ms: i64,
    /// `hunt`: how far out of time order records may come and still be correlated in order;
    /// `None`: the whole input is put in time order before it is correlated.
    pub reorder_ms: Option<i64>,
    /// `hunt`: the most memory the observations held for ordering take; past it the oldest are
    /// correlated early, and older ones that come later are late.
    pub reorder_bytes: usize,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        CorrelateConfig {
            imds: imdsguard_correlate::Config::default(),
            incident_gap_ms: 3_600_000,
            reorder_ms: None,
            reorder_bytes: 512 << 20,
        }
    }
}

/// What every run shares.
#[derive(Debug, Clone)]
pub struct Config {
    /// Catalog and allowlist.
    pub resources: ResourceConfig,
    /// The rules.
    pub rules: RulesConfig,
    /// Reading.
    pub read: ReadConfig,
    /// Correlation.
    pub correlate: CorrelateConfig,
    /// What is shown: alerts and incidents below it are raised, correlated and stored, not
    /// handed to the caller's sink (nor the webhook).
    pub min_severity: Severity,
    /// Worker threads for decoding and detection (`hunt`), and for loading rules.
    pub threads: usize,
}

/// `hunt`: read inputs to their end.
#[derive(Debug, Clone)]
pub struct HuntConfig {
    /// What every run shares.
    pub common: Config,
    /// Files, directories, `-` for standard input.
    pub inputs: Vec<PathBuf>,
    /// The store; `None` keeps nothing.
    pub db: Option<PathBuf>,
    /// Only events from this time on (ms since the epoch, inclusive).
    pub from_ms: Option<i64>,
    /// Only events before this time (exclusive).
    pub to_ms: Option<i64>,
}

/// `watch`: follow inputs until stopped.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// What every run shares.
    pub common: Config,
    /// Files to follow, `-` for standard input.
    pub inputs: Vec<PathBuf>,
    /// Syslog listeners (RFC 5424/3164) on these addresses.
    pub syslog_udp: Vec<String>,
    /// Syslog over TCP (octet counting or newlines).
    pub syslog_tcp: Vec<String>,
    /// A NATS JetStream stream to read (every partition).
    pub nats: Option<crate::nats::NatsSource>,
    /// The store (required: positions, alerts, incidents, baselines, the outbox).
    pub db: PathBuf,
    /// How long to wait when no input grew.
    pub poll: std::time::Duration,
    /// How long a syslog TCP connection may stay silent before it is closed.
    pub syslog_idle: std::time::Duration,
    /// Most bytes read from an input per transaction.
    pub max_chunk: usize,
    /// Stop once every file is read to its end and standard input is closed.
    pub once: bool,
    /// Wait for files that do not exist yet (else they are an error).
    pub wait: bool,
    /// When stopped, read every file to its end first (the writer of the followed file has
    /// stopped, and what it wrote last is judged now rather than at the next start).
    pub drain: bool,
    /// POST every new alert shown to this destination (through the store's outbox, keyed by
    /// its name).
    pub webhook: Option<crate::Webhook>,
}
