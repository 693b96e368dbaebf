//! The crate's one error type.

use std::fmt;

/// The class of a problem, for counting a rule set's failures by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not YAML.
    Yaml,
    /// A required key is missing or has the wrong type.
    Structure,
    /// An unknown or misplaced value modifier.
    Modifier,
    /// A value a modifier cannot take (a bad regex, CIDR, number).
    Value,
    /// A condition that does not parse.
    ConditionSyntax,
    /// A condition that names an identifier the detection lacks.
    UndefinedIdentifier,
    /// Sigma v1 aggregations in a condition (`| count() by …`), replaced by correlation rules.
    Aggregation,
    /// A correlation rule that is not valid.
    Correlation,
    /// A log source no input is mapped to.
    LogSource,
    /// A rule whose id another loaded rule already has.
    Duplicate,
    /// A Sigma filter that is not valid, or names no loaded rule.
    Filter,
    /// A processing pipeline that is not valid or not supported.
    Pipeline,
}

impl ErrorKind {
    /// A short name for summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "unreadable file",
            ErrorKind::Yaml => "invalid YAML",
            ErrorKind::Structure => "invalid rule structure",
            ErrorKind::Modifier => "unknown or misplaced modifier",
            ErrorKind::Value => "invalid value for its modifier",
            ErrorKind::ConditionSyntax => "condition syntax",
            ErrorKind::UndefinedIdentifier => "condition names an undefined identifier",
            ErrorKind::Aggregation => "v1 aggregation in condition",
            ErrorKind::Correlation => "invalid correlation rule",
            ErrorKind::LogSource => "log source not mapped to any input",
            ErrorKind::Duplicate => "duplicate rule id",
            ErrorKind::Filter => "invalid Sigma filter",
            ErrorKind::Pipeline => "invalid or unsupported processing pipeline",
        }
    }
}

/// A Sigma file or rule that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SigmaError {
    /// The file.
    pub path: String,
    /// The rule's title or id, when known.
    pub rule: Option<String>,
    /// The class of problem.
    pub kind: ErrorKind,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for SigmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(r) => write!(f, "{}: rule {r:?}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a rule's detection cannot be lowered or compiled, before the file and rule are attached
/// (a [`SigmaError`] of kind [`ErrorKind::Value`] carries it to the user).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectionError {
    /// The condition names a search the detection lacks.
    #[error("no search {0:?}")]
    NoSearch(String),
    /// A time-part modifier (`minute`, `hour`…) with a value that is not a whole number.
    #[error("{0} takes a whole number")]
    TimePartNotWhole(&'static str),
    /// `gt`, `gte`, `lt` or `lte` with a value that is not a number.
    #[error("gt, gte, lt and lte take a number")]
    CompareNotANumber,
    /// `fieldref` with a value that is not a plain field name.
    #[error("fieldref takes a field name")]
    FieldRefNotAName,
    /// `cidr` with a value that is not a network.
    #[error("{0:?} is not a network")]
    NotANetwork(String),
    /// A regular expression that does not compile.
    #[error("regex {expr:?}: {reason}")]
    Regex {
        /// The expression as compiled.
        expr: String,
        /// The regex crate's reason.
        reason: String,
    },
    /// `base64` or `base64offset` on a value with wildcards.
    #[error("base64 values cannot hold wildcards")]
    Base64Wildcard,
    /// A wildcard pattern whose regex form does not compile (too large).
    #[error("pattern {pattern}: {reason}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// The regex crate's reason.
        reason: String,
    },
}
