use std::net::SocketAddr;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The audit log could not be written.
    #[error("audit log {}: {source}", path.display())]
    Audit {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file cannot be used.
    #[error("policy {0}")]
    Policy(#[from] crate::policy::PolicyError),
    /// The packet-filter rules could not be changed.
    #[error("redirect rules: {0}")]
    Rules(String),
    /// The asynchronous runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}
