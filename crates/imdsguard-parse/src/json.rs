//! A borrowed JSON tree for decoding records: strings without escapes point into the input line,
//! objects are short vectors of pairs (no hashing, no per-key allocation). The decoders read a
//! record once and drop it, so lookups by a linear scan over a dozen or so keys beat a hash map,
//! and most of `serde_json::Value`'s cost (an owned `String` per key and value, an `IndexMap` per
//! object, since the evtx crate turns on `preserve_order`) disappears.
//!
//! The API mirrors the part of `serde_json::Value` the decoders use, so they read the same.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON number as parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// A non-negative integer.
    U(u64),
    /// A negative integer.
    I(i64),
    /// Anything else.
    F(f64),
}

impl Number {
    /// As text, as `Display` writes it, in one allocation (integers are at most 20 characters).
    pub(crate) fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(24);
        let _ = write!(s, "{self}");
        s
    }

    /// As an unsigned integer, when it is one.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Number::U(n) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Number::U(n) => write!(f, "{n}"),
            Number::I(n) => write!(f, "{n}"),
            // serde_json's spelling (`1.0`, `1e300`), so text read from a number does not change.
            Number::F(x) => match serde_json::Number::from_f64(x) {
                Some(n) => write!(f, "{n}"),
                None => write!(f, "{x}"),
            },
        }
    }
}

/// A JSON value borrowing from its input where it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string: its text in the input, unescaped the first time it is read.
    String(Str<'a>),
    /// An array.
    Array(Vec<Value<'a>>),
    /// An object.
    Object(Map<'a>),
}

/// A JSON string. Read from a line, it keeps its text as written, escapes and all, and decodes
/// them the first time something reads it: most members of a record are never read (a Windows
/// `Message` with its `\r\n\t` and paths with `\\`), so they never cost a copy.
#[derive(Clone)]
pub(crate) struct Str<'a> {
    /// The text between the quotes as written; empty for an owned string.
    raw: &'a str,
    /// Whether `raw` holds escapes (or the text lives in `cooked`).
    escaped: bool,
    /// The decoded text, when `escaped`.
    cooked: OnceCell<Box<str>>,
}

impl<'a> Str<'a> {
    /// A string with no escapes to decode.
    pub(crate) fn borrowed(s: &'a str) -> Self {
        Str {
            raw: s,
            escaped: false,
            cooked: OnceCell::new(),
        }
    }

    /// A string already decoded elsewhere.
    pub(crate) fn owned(s: String) -> Self {
        Str {
            raw: "",
            escaped: true,
            cooked: OnceCell::from(s.into_boxed_str()),
        }
    }

    /// The text, borrowed from the input when it had no escapes.
    pub(crate) fn as_str(&self) -> &str {
        if self.escaped {
            self.cooked
                .get_or_init(|| unescape(self.raw).into_boxed_str())
        } else {
            self.raw
        }
    }
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A JSON object: its members in input order. A repeated key reads as its last value, as in
/// `serde_json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Map<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'a> Map<'a> {
    /// An empty object.
    pub(crate) fn new() -> Self {
        Map(Vec::new())
    }

    /// The member named `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, v)| v)
    }

    /// Members in input order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Whether a member is named `key`.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| same_key(k, key))
    }
}

/// Key equality with the length and first byte compared inline: decoders look up a dozen names
/// in objects of forty-odd members, and nearly every comparison fails on one of the two, without
/// the call to `memcmp` a plain `==` makes.
#[inline]
fn same_key(k: &str, key: &str) -> bool {
    k.len() == key.len() && k.as_bytes().first() == key.as_bytes().first() && k == key
}

impl<'a> FromIterator<(Cow<'a, str>, Value<'a>)> for Map<'a> {
    fn from_iter<I: IntoIterator<Item = (Cow<'a, str>, Value<'a>)>>(iter: I) -> Self {
        Map(iter.into_iter().collect())
    }
}

impl<'a> Value<'a> {
    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub(crate) fn as_object(&self) -> Option<&Map<'a>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub(crate) fn as_array(&self) -> Option<&Vec<Value<'a>>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this is an object.
    pub(crate) fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// A borrowed copy of a `serde_json::Value` (the evtx crate's records).
    pub(crate) fn from_serde(v: &'a serde_json::Value) -> Value<'a> {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(if let Some(u) = n.as_u64() {
                Number::U(u)
            } else if let Some(i) = n.as_i64() {
                Number::I(i)
            } else {
                Number::F(n.as_f64().unwrap_or(f64::NAN))
            }),
            serde_json::Value::String(s) => Value::String(Str::borrowed(s)),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_serde).collect()),
            serde_json::Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Value::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(Number::U(n)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(if n >= 0 {
            Number::U(n as u64)
        } else {
            Number::I(n)
        }))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value<'de>, E> {
        Ok(Value::Number(Number::F(x)))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(Str::borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Str::owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Str::owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v: Value<'de> = map.next_value()?;
            out.push((k.0, v));
        }
        Ok(Value::Object(Map(out)))
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Map<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(m) => Ok(m),
            _ => Err(de::Error::custom("expected a JSON object")),
        }
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Nesting deeper than this is refused, as `serde_json` refuses it.
const MAX_DEPTH: u32 = 128;

/// Parses one JSON document, borrowing from `text`. Accepts exactly what `serde_json` accepts
/// (RFC 8259: no trailing commas, no control characters in strings, paired surrogates, finite
/// numbers, at most 127 levels of nesting, whitespace only around the value); `None` on anything
/// else, and the caller asks `serde_json` to say what is wrong. Strings are not decoded here
/// (see [`Str`]); numbers read as `serde_json` reads them.
pub(crate) fn parse(text: &str) -> Option<Value<'_>> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
        // Sized for a typical record (a Windows event has forty-odd members), so the stacks
        // do not grow member by member.
        members: Vec::with_capacity(64),
        items: Vec::with_capacity(16),
    };
    p.whitespace();
    let v = p.value()?;
    p.whitespace();
    (p.at == p.bytes.len()).then_some(v)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: u32,
    /// Members of the objects being read, innermost last: each object takes its own from the
    /// end once closed, in one allocation of the right size.
    members: Vec<(Cow<'a, str>, Value<'a>)>,
    /// The same for arrays.
    items: Vec<Value<'a>>,
}

impl<'a> Parser<'a> {
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                self.at += 1;
                self.string().map(Value::String)
            }
            b't' => self.word(b"true", Value::Bool(true)),
            b'f' => self.word(b"false", Value::Bool(false)),
            b'n' => self.word(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => None,
        }
    }

    fn word(&mut self, w: &[u8], v: Value<'a>) -> Option<Value<'a>> {
        let end = self.at + w.len();
        (self.bytes.get(self.at..end)? == w).then(|| {
            self.at = end;
            v
        })
    }

    fn nest(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < MAX_DEPTH).then_some(())
    }

    fn object(&mut self) -> Option<Value<'a>> {
        self.nest()?;
        self.at += 1;
        let first = self.members.len();
        self.whitespace();
        if self.peek()? != b'}' {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                self.at += 1;
                let key = self.string()?;
                let key = if key.escaped {
                    Cow::Owned(key.as_str().to_owned())
                } else {
                    Cow::Borrowed(key.raw)
                };
                self.whitespace();
                if self.peek()? != b':' {
                    return None;
                }
                self.at += 1;
                self.whitespace();
                let v = self.value()?;
                self.members.push((key, v));
                self.whitespace();
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.whitespace();
                    }
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.at += 1;
        self.depth -= 1;
        Some(Value::Object(Map(self.members.drain(first..).collect())))
    }

    fn array(&mut self) -> Option<Value<'a>> {
        self.nest()?;
        self.at += 1;
        let first = self.items.len();
        self.whitespace();
        if self.peek()? != b']' {
            loop {
                let v = self.value()?;
                self.items.push(v);
                self.whitespace();
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.whitespace();
                    }
                    b']' => break,
                    _ => return None,
                }
            }
        }
        self.at += 1;
        self.depth -= 1;
        Some(Value::Array(self.items.drain(first..).collect()))
    }

    /// The string starting after its opening quote, escapes checked but not decoded.
    fn string(&mut self) -> Option<Str<'a>> {
        let start = self.at;
        let mut escaped = false;
        loop {
            self.at += special_byte(&self.bytes[self.at..])?;
            match self.bytes[self.at] {
                b'"' => {
                    let raw = &self.text[start..self.at];
                    self.at += 1;
                    return Some(Str {
                        raw,
                        escaped,
                        cooked: OnceCell::new(),
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// Checks one escape, `at` on its backslash, and steps over it.
    fn escape(&mut self) -> Option<()> {
        self.at += 1;
        match self.peek()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.at += 1;
                Some(())
            }
            b'u' => {
                let n = self.hex4()?;
                match n {
                    0xDC00..=0xDFFF => None,
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.at..self.at + 2)? != b"\\u" {
                            return None;
                        }
                        self.at += 1;
                        matches!(self.hex4()?, 0xDC00..=0xDFFF).then_some(())
                    }
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }

    /// Reads `uXXXX`, `at` on the `u`.
    fn hex4(&mut self) -> Option<u16> {
        let digits = self.bytes.get(self.at + 1..self.at + 5)?;
        let mut n = 0u16;
        for &d in digits {
            n = n * 16 + (d as char).to_digit(16)? as u16;
        }
        self.at += 5;
        Some(n)
    }

    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_end = self.at;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
            float = true;
        }
        let text = &self.text[start..self.at];
        let digits = &self.text[start + usize::from(negative)..int_end];
        let as_float = || {
            let x: f64 = text.parse().ok()?;
            x.is_finite().then_some(Number::F(x))
        };
        if float {
            return as_float();
        }
        match digits.parse::<u64>() {
            Ok(n) if !negative => Some(Number::U(n)),
            // As `serde_json`: a negative integer is an `i64` when it is one, `-0` a float.
            Ok(n) => {
                let neg = (n as i64).wrapping_neg();
                Some(if neg >= 0 {
                    Number::F(-(n as f64))
                } else {
                    Number::I(neg)
                })
            }
            Err(_) => as_float(),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }
}

/// Where the first byte that ends a string's plain run is: a quote, a backslash or a control
/// character. Eight bytes at a time: in each word, a byte of one of the three kinds sets its top
/// bit in the mask (borrows can only set bits above the first such byte, and only the first is
/// read).
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let mask = below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            | below(x, 0x20);
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// Decodes the escapes of a string [`parse`] checked.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let b = rest.as_bytes();
        let (c, used) = match b[i + 1] {
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => {
                let hex = |at: usize| u32::from_str_radix(&rest[at..at + 4], 16).unwrap_or(0xFFFD);
                let n = hex(i + 2);
                if (0xD800..0xDC00).contains(&n) && b.get(i + 6) == Some(&b'\\') {
                    let low = hex(i + 8);
                    let c = 0x10000 + ((n - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                    (char::from_u32(c).unwrap_or('\u{FFFD}'), 12)
                } else {
                    (char::from_u32(n).unwrap_or('\u{FFFD}'), 6)
                }
            }
            other => (other as char, 2),
        };
        out.push(c);
        rest = &rest[i + used..];
    }
    out.push_str(rest);
    out
}

/// Whether [`parse`] reads `text` as `serde_json` does: both refuse it, or both read the same
/// tree (strings decoded, floats within rounding, a repeated key read as its last value). For the
/// tests and the fuzz target; `Err` says where they differ.
pub fn agrees_with_serde(text: &str) -> Result<(), String> {
    let ours = parse(text);
    let theirs = serde_json::from_str::<serde_json::Value>(text);
    match (&ours, &theirs) {
        (None, Err(_)) => Ok(()),
        (Some(a), Ok(b)) => same(a, b, "$"),
        (Some(_), Err(e)) => Err(format!("serde_json refuses ({e}), the fast reader accepts")),
        (None, Ok(_)) => Err("the fast reader refuses what serde_json accepts".to_owned()),
    }
}

fn same(a: &Value<'_>, b: &serde_json::Value, at: &str) -> Result<(), String> {
    use serde_json::Value as J;
    let ok = match (a, b) {
        (Value::Null, J::Null) => true,
        (Value::Bool(x), J::Bool(y)) => x == y,
        (Value::String(x), J::String(y)) => x.as_str() == y,
        (Value::Number(Number::U(x)), J::Number(y)) => y.as_u64() == Some(*x),
        (Value::Number(Number::I(x)), J::Number(y)) => {
            y.as_u64().is_none() && y.as_i64() == Some(*x)
        }
        (Value::Number(Number::F(x)), J::Number(y)) => {
            let y = y.as_f64().unwrap_or(f64::NAN);
            !y.is_nan() && (x == &y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs()))
        }
        (Value::Array(x), J::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at}: {} items against {}", x.len(), y.len()));
            }
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same(x, y, &format!("{at}[{i}]"))?;
            }
            true
        }
        (Value::Object(x), J::Object(y)) => {
            let mut keys: Vec<&str> = x.iter().map(|(k, _)| k).collect();
            keys.sort_unstable();
            keys.dedup();
            if keys.len() != y.len() {
                return Err(format!("{at}: {} keys against {}", keys.len(), y.len()));
            }
            for k in keys {
                let yv = y
                    .get(k)
                    .ok_or_else(|| format!("{at}: key {k:?} only here"))?;
                same(x.get(k).expect("listed key"), yv, &format!("{at}.{k}"))?;
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {a:?} against {b}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_serde_json_and_borrows_plain_strings() {
        let text =
            r#"{"a":"x","b":"C:\\Windows","c":[1,-2,1.5,true,null],"d":{"e":"f"},"a":"last"}"#;
        for v in [
            serde_json::from_str::<Value<'_>>(text).unwrap(),
            parse(text).unwrap(),
        ] {
            let m = v.as_object().unwrap();
            assert_eq!(m.get("a").and_then(Value::as_str), Some("last"));
            assert_eq!(m.get("b").and_then(Value::as_str), Some("C:\\Windows"));
        }
        let v = parse(text).unwrap();
        let m = v.as_object().unwrap();
        // Read from the line: plain strings borrow, escaped ones are decoded when first read.
        let Some(Value::String(b)) = m.get("b") else {
            panic!("b is a string")
        };
        assert!(b.escaped && b.cooked.get().is_none() && b.raw == "C:\\\\Windows");
        assert_eq!(b.as_str(), "C:\\Windows");
        assert!(b.cooked.get().is_some());
        let Some(Value::Object(d)) = m.get("d") else {
            panic!("d is an object")
        };
        let Some(Value::String(e)) = d.get("e") else {
            panic!("e is a string")
        };
        assert!(!e.escaped && e.raw == "f");
        let c = m.get("c").and_then(Value::as_array).unwrap();
        let shown: Vec<String> = c
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(shown, ["1", "-2", "1.5", "Bool(true)", "Null"]);
        let serde: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            Value::from_serde(&serde).as_object().unwrap().get("d"),
            m.get("d")
        );
        assert!(serde_json::from_str::<Value<'_>>("{\"a\":").is_err());
        assert!(parse("{\"a\":").is_none());
    }

    /// Documents both readers must treat alike, accepted or refused: the grammar's corners.
    const CASES: &[&str] = &[
        "null",
        "true",
        "false",
        " [ ] ",
        "{}",
        "{ }",
        "[1,2]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1}x",
        "{\"a\":1} ",
        "\t\r\n{}\n",
        "tru",
        "nul",
        "truex",
        "0",
        "-0",
        "00",
        "01",
        "-",
        "-01",
        "1.",
        ".5",
        "1.5",
        "1e5",
        "1E+5",
        "1e-5",
        "1e",
        "1e+",
        "-1.5e-300",
        "1e400",
        "-1e400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "0.1",
        "2.2250738585072014e-308",
        "5e-324",
        "1.7976931348623157e308",
        "\"\"",
        "\"a\\\"b\"",
        "\"\\u0041\"",
        "\"\\u00e9\\u4e2d\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ud83dx\"",
        "\"\\ud83d\\u0041\"",
        "\"\\ude00\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\x\"",
        "\"\\/\\b\\f\\n\\r\\t\"",
        "\"tab\there\"",
        "\"nl\nhere\"",
        "\"\u{7f}\"",
        "\"é中😀\"",
        "\"open",
        "\"a\\",
        "{\"k\\u0041\":\"v\"}",
        "{\"a\":1,\"a\":2}",
        "[[[[]]]]",
        "[\"\\\\\"]",
        "{\"a\":[1,{\"b\":null}],\"c\":\"C:\\\\x\"}",
        "",
        " ",
        "[1]]",
        "]",
        "{\"a\":1 \"b\":2}",
    ];

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for case in CASES {
            if let Err(e) = agrees_with_serde(case) {
                panic!("{case:?}: {e}");
            }
        }
        // Nesting: 127 levels read, 128 refused, by both.
        for depth in [1, 126, 127, 128, 129, 400] {
            let arrays = "[".repeat(depth) + &"]".repeat(depth);
            let objects = "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth);
            for text in [arrays, objects] {
                agrees_with_serde(&text).unwrap_or_else(|e| panic!("depth {depth}: {e}"));
            }
        }
        assert!(parse(&("[".repeat(127) + &"]".repeat(127))).is_some());
        assert!(parse(&("[".repeat(128) + &"]".repeat(128))).is_none());
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        let n = |t: &str| match parse(t) {
            Some(Value::Number(n)) => n,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(n("18446744073709551615"), Number::U(u64::MAX));
        assert_eq!(n("-9223372036854775808"), Number::I(i64::MIN));
        assert_eq!(n("-0").to_string(), "-0.0");
        assert_eq!(n("1e2").to_string(), "100.0");
        assert_eq!(
            n("18446744073709551616").to_string(),
            "1.8446744073709552e+19"
        );
        assert!(parse("1e400").is_none());
    }

    /// Every JSON line and document under `dir`, checked; how many.
    fn agree_under(dir: &std::path::Path) -> usize {
        let mut checked = 0;
        let mut paths = vec![dir.to_path_buf()];
        while let Some(path) = paths.pop() {
            if path.is_dir() {
                paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let whole = std::iter::once(text.as_str()).filter(|t| t.len() < 64 << 20);
            for (i, doc) in whole.chain(text.lines()).enumerate() {
                if doc.trim_start().starts_with(['{', '[']) {
                    checked += 1;
                    if let Err(e) = agrees_with_serde(doc) {
                        panic!("{} (line {i}, 0 = whole file): {e}", path.display());
                    }
                }
            }
        }
        checked
    }

    #[test]
    fn agrees_on_every_record_of_the_bundled_samples() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/logs");
        let n = agree_under(std::path::Path::new(dir));
        assert!(n >= 20, "only {n} JSON documents in {dir}");
    }

    #[test]
    fn agrees_on_the_public_json_logs() {
        let mut n = 0;
        for rel in ["evtx/otrf_json", "linux", "cloud", "defender"] {
            let dir = imdsguard_testdata::shared_data!(rel);
            n += agree_under(&dir);
        }
        assert!(n > 1_500, "only {n} JSON documents");
    }
}
