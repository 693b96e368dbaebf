//! The crate's one error type.

use std::fmt;

/// An allowlist file that could not be loaded, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AllowlistError {
    /// The file the allowlist came from (`built-in allowlist` for the bundled one).
    pub origin: String,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for AllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}
