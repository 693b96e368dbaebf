//! The crate's one error type: what stopped a run from starting or finishing, and where.

use std::path::PathBuf;

/// Why a pipeline could not be built or could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A file the configuration names could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// What the file is (`catalog`, `allowlist`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The catalog file given does not load (its message names file and line).
    #[error(transparent)]
    Catalog(#[from] Box<imdsguard_target::CatalogError>),
    /// The allowlist file given does not load (its message names file and line).
    #[error(transparent)]
    Allowlist(#[from] Box<imdsguard_enrich::AllowlistError>),
    /// Nothing to run: the built-in pack is off and no Sigma rule loaded.
    #[error("no rule to run: --no-builtin, and no Sigma rule both loaded and was selected ({failed} failed to load; the reasons are above)")]
    NoRules {
        /// Sigma files or rules that failed.
        failed: usize,
    },
    /// A file to follow that cannot be followed: missing (without `--wait`), or EVTX.
    #[error("{}: {why}", path.display())]
    NotFollowable {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// A `--sigma` path that does not exist.
    #[error("no Sigma rules at {}", .0.display())]
    NoSigmaRules(PathBuf),
    /// An inventory file that cannot be read (its message names the file).
    #[error("inventory {0}")]
    Inventory(#[from] imdsguard_parse::InputError),
    /// The rule set could not be built.
    #[error(transparent)]
    Rules(#[from] Box<imdsguard_rules::RuleError>),
    /// A Sigma correlation rule that cannot run.
    #[error("Sigma correlation {id} ({title}): {message}")]
    Correlation {
        /// Its id.
        id: String,
        /// Its title.
        title: String,
        /// Why it cannot run.
        message: String,
    },
    /// The store could not be opened or written (its message names the file).
    #[error("{context}: {source}")]
    Store {
        /// What was being done (`cannot use the store x.db (give another --db, or --no-db)`).
        context: String,
        /// Why (boxed: errors stay small on the happy path).
        source: Box<imdsguard_store::StoreError>,
    },
    /// A file the run writes could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing alerts to the caller's output failed.
    #[error("writing alerts: {0}")]
    Output(#[source] std::io::Error),
    /// A syslog listener could not be opened.
    #[error("cannot listen for syslog on {proto} {addr}: {source}")]
    Listen {
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The address given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// `watch` was given nothing to read.
    #[error("nothing to watch: give files, `-`, --syslog-udp, --syslog-tcp or --nats")]
    NothingToWatch,
    /// The webhook cannot be used.
    #[error("{0}")]
    Webhook(String),
    /// The NATS server could not be used (its message names the server and what failed).
    #[error("NATS {0}")]
    Nats(String),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

impl PipelineError {
    /// A store error, with what was being done.
    pub(crate) fn store(
        context: impl Into<String>,
    ) -> impl FnOnce(imdsguard_store::StoreError) -> Self {
        let context = context.into();
        move |source| PipelineError::Store {
            context,
            source: Box::new(source),
        }
    }

    /// Whether the error is the reader of the output going away (`| head`): what it wanted
    /// was written, and the run is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, PipelineError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
