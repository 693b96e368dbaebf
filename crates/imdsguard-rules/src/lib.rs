//! The rule IR and its evaluator.
//!
//! A [`Rule`] is a condition ([`Expr`]) over typed [`Field`]s of an enriched event, a base
//! [`Severity`](imdsguard_event::Severity) with [`Escalation`]s, and [`Reason`] templates. Field
//! names are resolved to [`Field`] values when a rule is built; per event, a field is read by a
//! `match` on that value. The built-in pack (`imdsguard-detections`) is written in this IR, and the
//! Sigma front end compiles to it, so there is one evaluator.
//!
//! A [`RuleSet`] is immutable once built and is shared by reference across threads; mutable state
//! (sequences, baselines) belongs to the correlation layer.

mod alert;
mod doc;
mod error;
mod field;
mod index;
mod ir;
mod prefilter;
mod rule;
mod timepart;

pub use alert::{
    Alert, AlertEvent, AlertFields, AlertNetwork, AlertProcess, AlertTag, AlertTarget, Answer,
    Containment, Question, Reply, Triage,
};
pub use doc::Doc;
pub use error::RuleError;
pub use field::{Field, Value};
pub use imdsguard_event::stable_hash;
pub use ir::{on, Cmp, Expr, Glob, Matcher, On, Text};
pub use rule::{
    record_fields, record_fields_of, Escalation, Hit, Reason, Rule, RuleBuilder, RuleSet, Template,
};
pub use timepart::TimePart;
