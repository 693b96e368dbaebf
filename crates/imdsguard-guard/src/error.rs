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
    /// The asynchronous runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}
