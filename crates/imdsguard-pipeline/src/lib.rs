//! The pipeline every imdsguard entry point runs, so that `hunt` and `watch` share one path
//! from a record to an alert:
//!
//! ```text
//!  Config ──► Resources (catalog, allowlist) ──► Detector (enricher + Rules)   [immutable, shared]
//!                                                    │ observe(event) → Found  [worker threads]
//!  sources ─► decode (imdsguard-parse) ─► Detector ─►┘
//!                                                    ▼
//!                                  Correlation (Engine, Reorder)               [one thread]
//!                                                    │ alerts, in output order
//!                          ┌─────────────────────────┼──────────────────────┐
//!                    the store (every alert)   the caller's AlertSink   the webhook (outbox)
//!                                              (shown: ≥ min severity)
//! ```
//!
//! - [`config`]: typed configuration ([`HuntConfig`], [`WatchConfig`]), built by the binary
//!   from its arguments or by a test directly.
//! - [`Resources`]: the catalog and allowlist, owned for the run and borrowed by the rest.
//! - [`Rules`]: the built-in pack and the Sigma rules, compiled once; [`RulesReport`] says what
//!   did not load.
//! - [`Detector`]: enrich + evaluate one event, on any thread.
//! - `run`: the one routing of findings through correlation, triage and incidents (events whose
//!   time cannot be read are triaged and released at once).
//! - [`hunt()`] reads inputs to their end (files, directories, standard input, in parallel) and
//!   returns a [`HuntReport`] with the exit policy ([`HuntReport::exit_code`]); [`watch()`]
//!   follows files, standard input and syslog until stopped, committing each chunk to the store
//!   with its position, and tells a [`Reporter`] what it does.
//! - [`AlertSink`]: the caller's output; the store and the webhook are the pipeline's own.

mod audit;
pub mod config;
mod destination;
mod detect;
mod error;
mod hunt;
pub mod memory;
pub mod nats;
mod resources;
mod rules;
mod run;
mod sink;
mod sources;
mod spill;
mod watch;
mod webhook;

pub use audit::{audit, AuditConfig, AuditReport, Check, Finding};
pub use config::{
    Config, CorrelateConfig, HuntConfig, ReadConfig, ResourceConfig, RulesConfig, WatchConfig,
};
pub use destination::Webhook;
pub use detect::{Detector, Found};
pub use error::PipelineError;
pub use hunt::{hunt, HuntReport, RuleCount, StoreReport};
pub use nats::{ship, NatsAuth, NatsSource, ShipConfig, ShipReport};
pub use resources::Resources;
pub use rules::{Rules, RulesReport};
pub use sink::{AlertSink, Collect};
pub use watch::{watch, Reporter, WatchReport, WatchStatus};
