//! The crate's one error type.

use std::fmt;

/// A catalog that could not be loaded, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CatalogError {
    /// The file the catalog came from (`built-in catalog` for the bundled one).
    pub origin: String,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}
