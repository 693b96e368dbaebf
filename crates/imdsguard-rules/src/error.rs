//! The crate's one error type.

/// A rule that could not be built, with its id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {message}")]
pub struct RuleError {
    /// The rule's id.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}
