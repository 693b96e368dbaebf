//! The crate's error types: one for a whole input that cannot be read, one for a record skipped.

use std::fmt;
use std::path::PathBuf;

use imdsguard_event::SourceRef;

/// An input that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Opening or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A document read whole (JSON, XML, a compressed EVTX file) larger than the limit; line
    /// formats have no such limit.
    #[error("{path}: {what} larger than the {limit} bytes read whole; {advice}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the file holds ("a JSON document", "an XML document", "a gzip-compressed EVTX file").
        what: &'static str,
        /// The limit.
        limit: u64,
        /// What to do about it.
        advice: &'static str,
    },
    /// An access-log layout (`--log-format`) that cannot be read.
    #[error("--log-format, at character {at}: {message}")]
    LogFormat {
        /// Where in the layout (characters from its start).
        at: usize,
        /// What is wrong.
        message: String,
    },
}

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Not valid JSON (or truncated).
    InvalidJson,
    /// Valid JSON of a shape no decoder recognizes.
    UnknownShape,
    /// A recognized shape missing a field it cannot do without.
    MissingField,
    /// A line longer than the reader's limit.
    LineTooLong,
    /// Not valid UTF-8.
    NotUtf8,
    /// A line of a line format that does not follow it.
    Malformed,
}

impl SkipReason {
    /// A short name for summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::InvalidJson => "invalid JSON",
            SkipReason::UnknownShape => "unrecognized record shape",
            SkipReason::MissingField => "missing required field",
            SkipReason::LineTooLong => "line too long",
            SkipReason::NotUtf8 => "not UTF-8",
            SkipReason::Malformed => "malformed record",
        }
    }
}

/// A record that was skipped, where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where.
    pub source: SourceRef,
    /// Why, as a class.
    pub reason: SkipReason,
    /// Why, in a sentence.
    pub detail: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.source,
            self.reason.as_str(),
            self.detail
        )
    }
}
