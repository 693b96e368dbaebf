//! The Sigma front end.
//!
//! [`parse_rule`] reads one Sigma file (YAML, one or more documents) into typed [`SigmaRule`]s and
//! checks them against the Sigma specification (v2): search identifiers are maps of field tests
//! (AND), lists of maps (OR) or lists of keywords; a field key is `field|modifier|…` with the
//! specification's modifiers; values may carry `*`/`?` wildcards and `\` escapes; the condition is
//! parsed into a tree (`and`, `or`, `not`, parentheses, `1 of`/`all of` a pattern or `them`) whose
//! identifiers must exist; correlation rules (`event_count`, `value_count`, `temporal`,
//! `temporal_ordered`) are parsed and checked. Every problem is a [`SigmaError`] naming the file and
//! saying why, with a [`ErrorKind`] for counting; [`load_dir`] loads a whole rule tree.
//!
//! [`lower`] applies the modifiers once, into boolean logic over field tests ([`Node`]); [`compile`]
//! turns that into the rule IR the evaluator runs, and the `imdsguard-query` crate into SIEM
//! queries.

mod compile;
mod condition;
mod error;
mod export;
mod filter;
mod load;
mod lower;
mod parse;
mod pipeline;
mod rule;
mod value;
pub mod yaml;

pub use compile::{
    compile, compile_all, compile_all_releasing, compile_detection, logsource_channels, severity,
    sigma_field,
};
pub use condition::{parse_condition, Condition, ConditionError};
pub use error::{DetectionError, ErrorKind, SigmaError};
pub use export::{export_rule, Exported, Skipped as ExportSkipped, Target as ExportTarget};
pub use filter::{apply_filters, FilterReport};
pub use load::{load_dir, load_dir_with};
pub use lower::{lower, regex_source, Node, Op, Test, WINDASHES};
pub use parse::parse_rule;
pub use pipeline::{apply_pipelines, Pipeline};
pub use rule::{
    Correlation, CorrelationKind, Detection, FieldTest, FilterTarget, Level, LogSource, Modifier,
    Search, SigmaRule, Status,
};
pub use value::{Pattern, Piece, SigmaValue};

/// [`par_map`] over items the function may change.
pub(crate) fn par_map_mut<T: Send, U: Send>(
    items: &mut [T],
    threads: usize,
    f: impl Fn(&mut T) -> U + Sync,
) -> Vec<U> {
    let chunk = chunk_len(items.len(), threads);
    on_threads(items.chunks_mut(chunk).collect(), |part| {
        part.iter_mut().map(&f).collect()
    })
}

/// `f` over `items` on up to `threads` scoped threads, each taking a contiguous run: results in
/// the items' order.
pub(crate) fn par_map<T: Sync, U: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> U + Sync,
) -> Vec<U> {
    let chunk = chunk_len(items.len(), threads);
    on_threads(items.chunks(chunk).collect(), |part| {
        part.iter().map(&f).collect()
    })
}

/// Items a thread gets so that `threads` threads share `len` items.
fn chunk_len(len: usize, threads: usize) -> usize {
    len.div_ceil(threads.clamp(1, len.max(1))).max(1)
}

/// Each part on a thread of its own (the calling thread when there is one part), the results in
/// part order.
fn on_threads<P: Send, U: Send>(parts: Vec<P>, f: impl Fn(P) -> Vec<U> + Sync) -> Vec<U> {
    if parts.len() <= 1 {
        return parts.into_iter().flat_map(&f).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let f = &f;
                s.spawn(move || f(part))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
