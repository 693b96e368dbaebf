//! A Sigma detection lowered to plain boolean logic over field tests, with every modifier applied.
//!
//! This is the one reading of the modifiers: the evaluator ([`crate::compile`]) and the query
//! exports (the `imdsguard-query` crate) both start from it, so a rule means the same thing when
//! imdsguard runs it and when a SIEM runs the exported query.
//!
//! - `contains`, `startswith`, `endswith` add `*` around the value (as pySigma does); keywords
//!   match anywhere in a value unless they say otherwise.
//! - `windash` expands every `-` or `/` that starts a word (`\B[-/]\b`, pySigma's reading) into the
//!   five dashes Windows accepts: one value per combination.
//! - `base64`, `base64offset` and the UTF-16 encodings turn the value into the encoded text
//!   (case-sensitive); `expand` placeholders `%name%` become `*`.
//! - `re` keeps its source and flags; `cidr`, `exists`, `fieldref`, `gt`/`gte`/`lt`/`lte` and
//!   `null` become their own tests. Plain numbers stay numbers.

use std::net::IpAddr;

use base64::Engine;
use imdsguard_rules::Cmp;

use crate::condition::Condition;
use crate::error::DetectionError;
use crate::parse::parse_cidr;
use crate::rule::{Detection, FieldTest, Modifier, Search};
use crate::value::{Pattern, Piece, SigmaValue};

/// Boolean logic over field tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every part holds (an empty list is true).
    All(Vec<Node>),
    /// One part holds (an empty list is false).
    Any(Vec<Node>),
    /// The part does not hold.
    Not(Box<Node>),
    /// One field test.
    Test(Test),
}

/// One test of one field, or of any value of the record when `field` is `None` (keywords).
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    /// The Sigma field name, as written in the rule.
    pub field: Option<String>,
    /// What is tested.
    pub op: Op,
}

/// A test on a field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The whole value matches the pattern (`*` any run, `?` one character).
    Glob {
        /// The pattern.
        pattern: Pattern,
        /// Case-sensitive (`cased`, or an encoded value).
        cased: bool,
    },
    /// The value equals a number (written as the rule writes it).
    Number(String),
    /// The value matches a regular expression (unanchored).
    Regex {
        /// The expression as written.
        source: String,
        /// `i`: case-insensitive.
        ignore_case: bool,
        /// `m`: `^` and `$` at line ends.
        multi_line: bool,
        /// `s`: `.` matches a new line.
        dot_all: bool,
    },
    /// The value is an address in the network.
    Cidr {
        /// The network as written.
        text: String,
        /// Its address.
        net: IpAddr,
        /// Its prefix length.
        len: u8,
    },
    /// The field is present (`true`) or absent (`false`).
    Exists(bool),
    /// The field is absent or empty.
    Null,
    /// The value, read as a number, compares to the bound.
    Compare(Cmp, f64),
    /// The value equals another field's value.
    FieldRef(String),
    /// A part of the value read as a date-time equals the number, or compares with it.
    TimePart(imdsguard_rules::TimePart, Option<Cmp>, i64),
}

/// Lowers a rule's detection.
pub fn lower(det: &Detection) -> Result<Node, DetectionError> {
    condition(&det.condition, det)
}

fn condition(c: &Condition, det: &Detection) -> Result<Node, DetectionError> {
    let each = |names: Vec<&str>| -> Result<Vec<Node>, DetectionError> {
        names
            .into_iter()
            .map(|n| det.search(n).map(search).unwrap_or(Ok(Node::All(vec![]))))
            .collect()
    };
    Ok(match c {
        Condition::And(xs) => Node::All(
            xs.iter()
                .map(|x| condition(x, det))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Or(xs) => Node::Any(
            xs.iter()
                .map(|x| condition(x, det))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Not(x) => Node::Not(Box::new(condition(x, det)?)),
        Condition::Ident(name) => search(
            det.search(name)
                .ok_or_else(|| DetectionError::NoSearch(name.clone()))?,
        )?,
        Condition::OneOf(p) => Node::Any(each(det.expand(p))?),
        Condition::AllOf(p) => Node::All(each(det.expand(p))?),
    })
}

fn search(s: &Search) -> Result<Node, DetectionError> {
    let map = |tests: &[FieldTest]| -> Result<Node, DetectionError> {
        Ok(Node::All(
            tests.iter().map(field_test).collect::<Result<_, _>>()?,
        ))
    };
    Ok(match s {
        Search::Map(tests) => map(tests)?,
        Search::AnyOf(maps) => Node::Any(
            maps.iter()
                .map(|m| map(m))
                .collect::<Result<_, DetectionError>>()?,
        ),
        Search::Keywords(t) => field_test(t)?,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

fn field_test(t: &FieldTest) -> Result<Node, DetectionError> {
    let has = |m: Modifier| t.modifiers.contains(&m);
    let place = if has(Modifier::Contains)
        || (t.field.is_none() && !has(Modifier::StartsWith) && !has(Modifier::EndsWith))
    {
        Place::Contains
    } else if has(Modifier::StartsWith) {
        Place::Prefix
    } else if has(Modifier::EndsWith) {
        Place::Suffix
    } else {
        Place::Exact
    };
    let mut per_value = Vec::new();
    for v in &t.values {
        let ops = value_ops(t, v, place)?;
        let tests: Vec<Node> = ops
            .into_iter()
            .map(|op| {
                Node::Test(Test {
                    field: t.field.clone(),
                    op,
                })
            })
            .collect();
        per_value.push(one_or_any(tests));
    }
    let node = if t.all() {
        Node::All(per_value)
    } else {
        one_or_any(per_value)
    };
    Ok(if has(Modifier::Neq) {
        Node::Not(Box::new(node))
    } else {
        node
    })
}

fn one_or_any(mut xs: Vec<Node>) -> Node {
    if xs.len() == 1 {
        xs.pop().unwrap_or(Node::Any(vec![]))
    } else {
        Node::Any(xs)
    }
}

/// The tests one value stands for (several for `windash` and `base64offset`: any of them).
fn value_ops(t: &FieldTest, v: &SigmaValue, place: Place) -> Result<Vec<Op>, DetectionError> {
    let has = |m: Modifier| t.modifiers.contains(&m);
    match v {
        SigmaValue::Null => return Ok(vec![Op::Null]),
        SigmaValue::Bool(b) if has(Modifier::Exists) => return Ok(vec![Op::Exists(*b)]),
        _ => {}
    }
    let compare = [
        (Modifier::Gt, Cmp::Gt),
        (Modifier::Gte, Cmp::Gte),
        (Modifier::Lt, Cmp::Lt),
        (Modifier::Lte, Cmp::Lte),
    ]
    .into_iter()
    .find(|(m, _)| has(*m))
    .map(|(_, op)| op);
    if let Some(part) = t.modifiers.iter().find_map(|m| match m {
        Modifier::Time(p) => Some(*p),
        _ => None,
    }) {
        let SigmaValue::Int(n) = v else {
            return Err(DetectionError::TimePartNotWhole(part.as_str()));
        };
        return Ok(vec![Op::TimePart(part, compare, *n)]);
    }
    for (m, op) in [
        (Modifier::Gt, Cmp::Gt),
        (Modifier::Gte, Cmp::Gte),
        (Modifier::Lt, Cmp::Lt),
        (Modifier::Lte, Cmp::Lte),
    ] {
        if has(m) {
            let bound = match v {
                SigmaValue::Int(i) => *i as f64,
                SigmaValue::Float(f) => *f,
                _ => return Err(DetectionError::CompareNotANumber),
            };
            return Ok(vec![Op::Compare(op, bound)]);
        }
    }
    let plain = place == Place::Exact
        && !t.modifiers.iter().any(|m| {
            matches!(
                m,
                Modifier::Base64
                    | Modifier::Base64Offset
                    | Modifier::Utf16
                    | Modifier::Utf16Le
                    | Modifier::Utf16Be
                    | Modifier::Wide
                    | Modifier::Cased
                    | Modifier::FieldRef
                    | Modifier::Re
                    | Modifier::Cidr
            )
        });
    let text = match v {
        SigmaValue::Str(p) => p.clone(),
        SigmaValue::Int(i) if plain => return Ok(vec![Op::Number(i.to_string())]),
        SigmaValue::Float(f) if plain => return Ok(vec![Op::Number(f.to_string())]),
        SigmaValue::Int(i) => Pattern::literal(&i.to_string()),
        SigmaValue::Float(f) => Pattern::literal(&f.to_string()),
        SigmaValue::Bool(b) => Pattern::literal(&b.to_string()),
        SigmaValue::Null => unreachable!("handled above"),
    };
    if has(Modifier::FieldRef) {
        let other = text.as_literal().ok_or(DetectionError::FieldRefNotAName)?;
        return Ok(vec![Op::FieldRef(other)]);
    }
    if has(Modifier::Cidr) {
        let t = text.as_literal().unwrap_or_default();
        let (net, len) = parse_cidr(&t).ok_or_else(|| DetectionError::NotANetwork(t.clone()))?;
        return Ok(vec![Op::Cidr { text: t, net, len }]);
    }
    if has(Modifier::Re) {
        let source = text.as_literal().unwrap_or_default();
        let op = Op::Regex {
            source,
            ignore_case: has(Modifier::ReIgnoreCase),
            multi_line: has(Modifier::ReMultiLine),
            dot_all: has(Modifier::ReDotAll),
        };
        // Parsed with its flags, not compiled: compilation (which also refuses a regex too large
        // to build) happens once, when the rule compiles.
        let compiled = regex_source(&op).unwrap_or_default();
        regex_syntax::Parser::new()
            .parse(&compiled)
            .map_err(|e| DetectionError::Regex {
                expr: compiled,
                reason: e.to_string(),
            })?;
        return Ok(vec![op]);
    }
    if has(Modifier::Base64) || has(Modifier::Base64Offset) {
        let lit = text.as_literal().ok_or(DetectionError::Base64Wildcard)?;
        let bytes: Vec<u8> = if has(Modifier::Utf16Le) || has(Modifier::Wide) {
            lit.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else if has(Modifier::Utf16Be) {
            lit.encode_utf16().flat_map(u16::to_be_bytes).collect()
        } else if has(Modifier::Utf16) {
            [0xFF, 0xFE]
                .into_iter()
                .chain(lit.encode_utf16().flat_map(u16::to_le_bytes))
                .collect()
        } else {
            lit.into_bytes()
        };
        let (variants, place) = if has(Modifier::Base64Offset) {
            (base64_offsets(&bytes), Place::Contains)
        } else {
            (
                vec![base64::engine::general_purpose::STANDARD.encode(&bytes)],
                place,
            )
        };
        return Ok(variants
            .iter()
            .map(|s| Op::Glob {
                pattern: placed(Pattern::literal(s), place),
                cased: true,
            })
            .collect());
    }
    let pattern = if has(Modifier::Expand) {
        expand_placeholders(&text)
    } else {
        text
    };
    let cased = has(Modifier::Cased);
    let variants = if has(Modifier::Windash) {
        windash(&pattern)
    } else {
        vec![pattern]
    };
    Ok(variants
        .into_iter()
        .map(|p| Op::Glob {
            pattern: placed(p, place),
            cased,
        })
        .collect())
}

/// The regular expression an [`Op::Regex`] runs, with its flags in front.
pub fn regex_source(op: &Op) -> Option<String> {
    let Op::Regex {
        source,
        ignore_case,
        multi_line,
        dot_all,
    } = op
    else {
        return None;
    };
    let mut flags = String::new();
    for (on, f) in [(ignore_case, 'i'), (multi_line, 'm'), (dot_all, 's')] {
        if *on {
            flags.push(f);
        }
    }
    Some(if flags.is_empty() {
        source.clone()
    } else {
        format!("(?{flags}){source}")
    })
}

/// `*` added where the modifier leaves the value open.
fn placed(mut p: Pattern, place: Place) -> Pattern {
    if matches!(place, Place::Suffix | Place::Contains) && p.pieces.first() != Some(&Piece::Any) {
        p.pieces.insert(0, Piece::Any);
    }
    if matches!(place, Place::Prefix | Place::Contains) && p.pieces.last() != Some(&Piece::Any) {
        p.pieces.push(Piece::Any);
    }
    p
}

/// The dashes Windows reads as an option's start.
pub const WINDASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every form of the pattern with each dash that starts a word (`\B[-/]\b`) replaced by each of
/// [`WINDASHES`].
fn windash(p: &Pattern) -> Vec<Pattern> {
    let mut out = vec![Vec::<Piece>::new()];
    for piece in &p.pieces {
        match piece {
            Piece::Lit(s) => {
                let chars: Vec<char> = s.chars().collect();
                // Split the literal at the dashes to expand.
                let mut parts: Vec<Vec<String>> = vec![vec![String::new()]];
                for (i, &c) in chars.iter().enumerate() {
                    let before_ok = i == 0 || !is_word(chars[i - 1]);
                    let after_ok = chars.get(i + 1).is_some_and(|&n| is_word(n));
                    if (c == '-' || c == '/') && before_ok && after_ok {
                        parts.push(WINDASHES.iter().map(|d| d.to_string()).collect());
                        parts.push(vec![String::new()]);
                    } else if let Some(last) = parts.last_mut() {
                        last[0].push(c);
                    }
                }
                let mut texts = vec![String::new()];
                for alts in &parts {
                    texts = texts
                        .iter()
                        .flat_map(|t| alts.iter().map(move |a| format!("{t}{a}")))
                        .collect();
                }
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        texts.iter().map(move |t| {
                            let mut v = prefix.clone();
                            if !t.is_empty() {
                                v.push(Piece::Lit(t.clone()));
                            }
                            v
                        })
                    })
                    .collect();
            }
            other => {
                for v in &mut out {
                    v.push(other.clone());
                }
            }
        }
    }
    out.into_iter().map(|pieces| Pattern { pieces }).collect()
}

/// `%name%` placeholders (Sigma `expand`) stand for values from a configuration this engine does
/// not have; they are read as `*`, as pySigma's wildcard placeholder transformation does.
fn expand_placeholders(p: &Pattern) -> Pattern {
    let mut pieces = Vec::new();
    for piece in &p.pieces {
        match piece {
            Piece::Lit(s) => {
                let mut rest = s.as_str();
                while let Some(start) = rest.find('%') {
                    let Some(len) = rest[start + 1..].find('%') else {
                        break;
                    };
                    if start > 0 {
                        pieces.push(Piece::Lit(rest[..start].to_owned()));
                    }
                    pieces.push(Piece::Any);
                    rest = &rest[start + len + 2..];
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Lit(rest.to_owned()));
                }
            }
            other => pieces.push(other.clone()),
        }
    }
    Pattern { pieces }
}

/// The three base64 encodings of `v` at byte offsets 0, 1 and 2 of a longer text, with the
/// characters that depend on the neighbouring bytes cut off (Sigma `base64offset`).
pub(crate) fn base64_offsets(v: &[u8]) -> Vec<String> {
    let e = &base64::engine::general_purpose::STANDARD;
    (0..3)
        .map(|i| {
            let mut padded = vec![0u8; i];
            padded.extend_from_slice(v);
            let enc = e.encode(&padded);
            let start = [0, 2, 3][i];
            let end = enc.len() - [0, 3, 2][(v.len() + i) % 3];
            enc[start.min(end)..end].to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_offsets_match_the_known_encodings() {
        // "http" at offsets 0, 1, 2 of an encoded text, as SigmaHQ rules spell them.
        assert_eq!(base64_offsets(b"http"), ["aHR0c", "h0dH", "odHRw"]);
    }

    #[test]
    fn neq_negates_the_whole_test_and_flags_have_long_names() {
        let r = crate::parse_rule(
            "title: t\nlogsource: {product: windows}\ndetection:\n    s:\n        User|neq: [a, b]\n        CommandLine|re|ignorecase|multiline|dotall: 'x.y'\n    condition: s\n",
            "t.yml",
        )
        .unwrap()
        .remove(0);
        let Node::All(parts) = lower(r.detection.as_ref().unwrap()).unwrap() else {
            panic!()
        };
        let Node::Not(inner) = &parts[0] else {
            panic!("{:?}", parts[0])
        };
        assert!(
            matches!(&**inner, Node::Any(xs) if xs.len() == 2),
            "{inner:?}"
        );
        assert!(matches!(
            &parts[1],
            Node::Test(Test {
                op: Op::Regex {
                    ignore_case: true,
                    multi_line: true,
                    dot_all: true,
                    ..
                },
                ..
            })
        ));
    }

    fn texts(ps: Vec<Pattern>) -> Vec<String> {
        ps.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn windash_expands_only_dashes_that_start_a_word() {
        assert_eq!(
            texts(windash(&Pattern::parse(" -enc "))),
            [
                " -enc ",
                " /enc ",
                " \u{2013}enc ",
                " \u{2014}enc ",
                " \u{2015}enc "
            ]
        );
        // `-param-name`: the second dash is inside a word.
        let v = texts(windash(&Pattern::parse("-param-name")));
        assert_eq!(v.len(), 5);
        assert!(v.iter().all(|s| s.ends_with("param-name")));
        assert_eq!(texts(windash(&Pattern::parse("a-b"))), ["a-b"]);
        assert_eq!(texts(windash(&Pattern::parse("-a -b"))).len(), 25);
        // Wildcards stay where they were.
        assert_eq!(texts(windash(&Pattern::parse("*-x*")))[1], "*/x*");
    }

    #[test]
    fn placeholders_become_wildcards() {
        assert_eq!(
            expand_placeholders(&Pattern::parse(r"%System%\x.exe")).to_string(),
            r"*\x.exe"
        );
    }
}
