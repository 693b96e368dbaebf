//! Sigma values: strings with wildcards and escapes, numbers, booleans, null.

use std::fmt;

/// One part of a string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters.
    Any,
    /// `?`: one character.
    One,
}

/// A string value, split at its unescaped wildcards. As in pySigma, `\` escapes `*`, `?` and `\`
/// when one of them follows it, and is a literal backslash otherwise (`C:\Windows\` stays as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pieces, literals merged.
    pub pieces: Vec<Piece>,
}

impl Pattern {
    /// Reads a Sigma string with its wildcards.
    pub fn parse(s: &str) -> Pattern {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                    lit.push(chars.next().unwrap_or('\\'));
                }
                '*' | '?' => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(if c == '*' { Piece::Any } else { Piece::One });
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Pattern { pieces }
    }

    /// A pattern of literal text only (no wildcard), as for `re` and `cidr` values.
    pub fn literal(s: &str) -> Pattern {
        Pattern {
            pieces: if s.is_empty() {
                Vec::new()
            } else {
                vec![Piece::Lit(s.to_owned())]
            },
        }
    }

    /// The text when there is no wildcard.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Whether the pattern holds a wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Lit(_)))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => {
                    for c in s.chars() {
                        if matches!(c, '*' | '?') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                }
                Piece::Any => f.write_str("*")?,
                Piece::One => f.write_str("?")?,
            }
        }
        Ok(())
    }
}

/// A value in a detection.
#[derive(Debug, Clone, PartialEq)]
pub enum SigmaValue {
    /// `null`: the field is absent or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integer number.
    Float(f64),
    /// A string (for `re`, `cidr`, `fieldref` and `expand` values: its literal text).
    Str(Pattern),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes_follow_pysigma() {
        assert_eq!(
            Pattern::parse(r"*\cmd.exe").pieces,
            vec![Piece::Any, Piece::Lit(r"\cmd.exe".into())]
        );
        assert_eq!(
            Pattern::parse(r"a\*b\?c\\*").pieces,
            vec![Piece::Lit(r"a*b?c\".into()), Piece::Any]
        );
        assert_eq!(
            Pattern::parse(r"C:\Windows\").as_literal().as_deref(),
            Some(r"C:\Windows\")
        );
        assert_eq!(Pattern::parse("x?y").pieces.len(), 3);
        assert_eq!(Pattern::parse(r"a\*b*").to_string(), r"a\*b*");
        assert!(Pattern::parse("").pieces.is_empty());
    }
}
