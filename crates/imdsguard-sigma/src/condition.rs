//! The condition language: `and`, `or`, `not`, parentheses, `1 of`/`any of`/`all of` a pattern or
//! `them`, identifiers. Precedence, loosest first: `or`, `and`, `not`.

use std::fmt;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Every part holds.
    And(Vec<Condition>),
    /// One part holds.
    Or(Vec<Condition>),
    /// The part does not hold.
    Not(Box<Condition>),
    /// A search identifier.
    Ident(String),
    /// At least one of the identifiers a pattern matches (`them`: all not starting with `_`).
    OneOf(String),
    /// All of them.
    AllOf(String),
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionError {
    /// A character no token starts with, and its byte position.
    UnexpectedCharacter {
        /// The character.
        c: char,
        /// Its byte offset in the condition.
        at: usize,
    },
    /// More than [`MAX_CONDITION_DEPTH`] levels of `not` and parentheses.
    TooDeep,
    /// More than [`MAX_CONDITION_DEPTH`] levels once precedence nests `and` in `or`.
    TooDeepTree,
    /// A `(` without its `)`.
    Unclosed,
    /// A `)` without its `(`.
    StrayClose,
    /// `1 of`, `all of` or `any of` without what they range over (the quantifier as written).
    QuantifierWithoutTarget(String),
    /// A wildcard identifier pattern without `1 of` or `all of`.
    BarePattern(String),
    /// `and` or `or` where an operand belongs.
    MisplacedOperator,
    /// `not` with nothing after it.
    NotWithoutOperand,
    /// A `|` (Sigma v1 aggregation).
    Pipe,
    /// The condition ends where an operand belongs.
    Truncated,
    /// Nothing but blanks.
    Empty,
    /// Two operands side by side.
    MissingOperator,
}

impl std::fmt::Display for ConditionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConditionError::UnexpectedCharacter { c, at } => {
                write!(f, "unexpected character {c:?} at position {at}")
            }
            ConditionError::TooDeep => write!(
                f,
                "the condition nests deeper than {MAX_CONDITION_DEPTH} levels of 'not' and \
                 parentheses"
            ),
            ConditionError::TooDeepTree => write!(
                f,
                "the condition nests deeper than {MAX_CONDITION_DEPTH} levels of 'not', 'and', \
                 'or' and parentheses"
            ),
            ConditionError::Unclosed => f.write_str("a '(' is not closed"),
            ConditionError::StrayClose => f.write_str("a ')' without its '('"),
            ConditionError::QuantifierWithoutTarget(w) => {
                write!(f, "'{w} of' needs an identifier pattern or 'them'")
            }
            ConditionError::BarePattern(w) => {
                write!(f, "the pattern {w:?} needs '1 of' or 'all of' before it")
            }
            ConditionError::MisplacedOperator => {
                f.write_str("an operator where an operand was expected")
            }
            ConditionError::NotWithoutOperand => f.write_str("'not' without an operand"),
            ConditionError::Pipe => f.write_str("'|'"),
            ConditionError::Truncated => {
                f.write_str("the condition ends where an operand was expected")
            }
            ConditionError::Empty => f.write_str("the condition is empty"),
            ConditionError::MissingOperator => {
                f.write_str("two operands without 'and' or 'or' between them")
            }
        }
    }
}

impl std::error::Error for ConditionError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Word(String),
    Pipe,
}

fn tokens(s: &str) -> Result<Vec<Tok>, ConditionError> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '|' => out.push(Tok::Pipe),
            c if c.is_alphanumeric() || matches!(c, '_' | '*' | '.' | '-') => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_alphanumeric() || matches!(d, '_' | '*' | '.' | '-') {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let w = &s[i..end];
                out.push(match w.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Word(w.to_owned()),
                });
            }
            c => return Err(ConditionError::UnexpectedCharacter { c, at: i }),
        }
    }
    Ok(out)
}

/// How deep `not` and parentheses may nest. SigmaHQ's rules nest three or four levels; a
/// deeper condition is refused by name instead of overflowing the stack of every later stage
/// (lowering, compilation, exports, evaluation), which all walk it recursively.
pub const MAX_CONDITION_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.next();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.not()?];
        while self.peek() == Some(&Tok::And) {
            self.next();
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn deeper(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_CONDITION_DEPTH {
            return Err(ConditionError::TooDeep);
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Condition, ConditionError> {
        if self.peek() == Some(&Tok::Not) {
            self.next();
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Condition, ConditionError> {
        match self.next() {
            Some(Tok::Open) => {
                self.deeper()?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err(ConditionError::Unclosed),
                }
            }
            Some(Tok::Word(w)) => {
                let quant = w.to_ascii_lowercase();
                let is_quant = matches!(quant.as_str(), "1" | "any" | "all");
                if is_quant
                    && matches!(self.peek(), Some(Tok::Word(o)) if o.eq_ignore_ascii_case("of"))
                {
                    self.next();
                    let target = match self.next() {
                        Some(Tok::Word(t)) => t,
                        _ => return Err(ConditionError::QuantifierWithoutTarget(w)),
                    };
                    let target = if target.eq_ignore_ascii_case("them") {
                        "them".to_owned()
                    } else {
                        target
                    };
                    return Ok(if quant == "all" {
                        Condition::AllOf(target)
                    } else {
                        Condition::OneOf(target)
                    });
                }
                if w.contains('*') {
                    return Err(ConditionError::BarePattern(w));
                }
                Ok(Condition::Ident(w))
            }
            Some(Tok::Close) => Err(ConditionError::StrayClose),
            Some(Tok::And | Tok::Or) => Err(ConditionError::MisplacedOperator),
            Some(Tok::Not) => Err(ConditionError::NotWithoutOperand),
            Some(Tok::Pipe) => Err(ConditionError::Pipe),
            None => Err(ConditionError::Truncated),
        }
    }
}

/// Whether a condition uses the Sigma v1 aggregation syntax (`… | count() by X > 5`).
pub(crate) fn is_aggregation(s: &str) -> bool {
    s.contains('|')
}

/// Parses a condition.
pub fn parse_condition(s: &str) -> Result<Condition, ConditionError> {
    let toks = tokens(s)?;
    if toks.is_empty() {
        return Err(ConditionError::Empty);
    }
    let mut p = Parser {
        toks,
        at: 0,
        depth: 0,
    };
    let c = p.or()?;
    // Precedence nests `and` in `or` without parentheses: the tree can be deeper than the text.
    // Refused too, so that every condition printed (each `and`/`or` in parentheses) parses back.
    if c.depth() > MAX_CONDITION_DEPTH {
        return Err(ConditionError::TooDeepTree);
    }
    match p.next() {
        None => Ok(c),
        Some(Tok::Close) => Err(ConditionError::StrayClose),
        Some(_) => Err(ConditionError::MissingOperator),
    }
}

/// Whether `name` matches a condition pattern (`*` any run of characters). Iterative, with one
/// backtracking point (the last `*`): linear in practice and never deep, whatever the pattern.
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

impl Condition {
    /// How many `not`, `and` and `or` nodes the deepest path holds.
    pub fn depth(&self) -> usize {
        match self {
            Condition::And(xs) | Condition::Or(xs) => {
                1 + xs.iter().map(Condition::depth).max().unwrap_or(0)
            }
            Condition::Not(x) => 1 + x.depth(),
            Condition::Ident(_) | Condition::OneOf(_) | Condition::AllOf(_) => 0,
        }
    }

    /// Every identifier and pattern the condition names.
    pub fn names(&self, out: &mut Vec<(bool, String)>) {
        match self {
            Condition::And(xs) | Condition::Or(xs) => xs.iter().for_each(|x| x.names(out)),
            Condition::Not(x) => x.names(out),
            Condition::Ident(i) => out.push((false, i.clone())),
            Condition::OneOf(p) | Condition::AllOf(p) => out.push((true, p.clone())),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, xs: &[Condition], op: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(")")
        };
        match self {
            Condition::And(xs) => join(f, xs, "and"),
            Condition::Or(xs) => join(f, xs, "or"),
            Condition::Not(x) => write!(f, "not {x}"),
            Condition::Ident(i) => f.write_str(i),
            Condition::OneOf(p) => write!(f, "1 of {p}"),
            Condition::AllOf(p) => write!(f, "all of {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_not_and_or() {
        let c = parse_condition("a or b and not c").unwrap();
        assert_eq!(c.to_string(), "(a or (b and not c))");
        let c = parse_condition("(a or b) and not 1 of filter_* and all of them").unwrap();
        assert_eq!(
            c.to_string(),
            "((a or b) and not 1 of filter_* and all of them)"
        );
        assert_eq!(
            parse_condition("any of sel*").unwrap(),
            Condition::OneOf("sel*".into())
        );
        assert_eq!(
            parse_condition("NOT a").unwrap(),
            Condition::Not(Box::new(Condition::Ident("a".into())))
        );
    }

    #[test]
    fn bad_conditions_say_why() {
        for (c, kind, why) in [
            ("a and", ConditionError::Truncated, "ends where an operand"),
            ("(a or b", ConditionError::Unclosed, "not closed"),
            ("a b", ConditionError::MissingOperator, "two operands"),
            (
                "sel*",
                ConditionError::BarePattern("sel*".into()),
                "needs '1 of'",
            ),
            ("a)", ConditionError::StrayClose, "without its '('"),
            ("", ConditionError::Empty, "empty"),
            (
                "1 of",
                ConditionError::QuantifierWithoutTarget("1".into()),
                "needs an identifier",
            ),
            (
                "a & b",
                ConditionError::UnexpectedCharacter { c: '&', at: 2 },
                "position 2",
            ),
        ] {
            let e = parse_condition(c).unwrap_err();
            assert_eq!(e, kind, "{c:?}");
            assert!(e.to_string().contains(why), "{c:?}: {e}");
        }
        assert!(is_aggregation("selection | count() by host > 5"));
    }

    #[test]
    fn deep_conditions_are_refused_by_name_not_by_a_crash() {
        for deep in [
            format!("{}sel", "not ".repeat(100_000)),
            format!("{}sel{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("{}sel{}", "not (".repeat(40), ")".repeat(40)),
        ] {
            let e = parse_condition(&deep).unwrap_err();
            assert!(
                matches!(e, ConditionError::TooDeep | ConditionError::TooDeepTree),
                "{e}"
            );
            assert!(e.to_string().contains("nests deeper than 64"), "{e}");
        }
        let ok = format!("{}sel{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(
            parse_condition(&ok).unwrap(),
            Condition::Ident("sel".into())
        );
    }

    #[test]
    fn patterns_match_in_linear_time() {
        let name = "a".repeat(10_000);
        assert!(!pattern_matches(&format!("{}b", "*a".repeat(50)), &name));
        assert!(pattern_matches("*a*a*a*", &name));
        assert!(pattern_matches("sel*", "selection_1"));
        assert!(!pattern_matches("sel*x", "selection_1"));
        assert!(pattern_matches("*", ""));
        assert!(!pattern_matches("a", ""));
    }

    #[test]
    fn patterns_match_identifiers() {
        assert!(pattern_matches("filter_*", "filter_main_x"));
        assert!(pattern_matches("*", "a"));
        assert!(pattern_matches("sel*_b", "sel_a_b"));
        assert!(!pattern_matches("filter_*", "selection"));
    }
}
