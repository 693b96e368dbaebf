//! One module per command: its arguments, how they become a configuration, and how its results
//! are printed. The work is in the library crates.

pub(crate) mod allowlist;
pub(crate) mod audit;
pub(crate) mod catalog;
pub(crate) mod events;
pub(crate) mod harden;
pub(crate) mod hunt;
pub(crate) mod mock;
pub(crate) mod proxy;
pub(crate) mod report;
pub(crate) mod rules;
pub(crate) mod search;
pub(crate) mod ship;
pub(crate) mod sigma;
pub(crate) mod store;
pub(crate) mod target;
pub(crate) mod timeline;
pub(crate) mod watch;
