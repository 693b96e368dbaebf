//! A Sigma regular expression (PCRE-like, searched anywhere in the value) rewritten as a Lucene
//! regular expression (matched against the whole value), for EQL `regex` and ES|QL `RLIKE`.
//!
//! `.*` is added where the expression is not anchored; `(?:` becomes `(` (Lucene groups do not
//! capture); `\d`, `\w`, `\s` and their negations become classes; lazy quantifiers become greedy
//! (the same whole-value matches); Lucene's operator characters (`@ & < > ~ # "`) are escaped;
//! a leading `(?i)` asks for a case-insensitive match. What has no Lucene form (word boundaries,
//! look-around, back-references, anchors inside the expression, inline flags elsewhere) is an
//! error, and the caller leaves the test out in the direction that widens the query.

/// The Lucene expression and whether it must match case-insensitively.
pub(crate) fn translate(source: &str, ignore_case: bool) -> Result<(String, bool), String> {
    let mut ci = ignore_case;
    let mut s = source;
    // Leading inline flags.
    if let Some(rest) = s.strip_prefix("(?") {
        if let Some(end) = rest.find(')') {
            let flags = &rest[..end];
            if !flags.is_empty() && flags.chars().all(|c| matches!(c, 'i' | 'm' | 's')) {
                ci |= flags.contains('i');
                s = &rest[end + 1..];
            }
        }
    }
    // `(?:^|A)rest`, the file-name idiom ("at the start or after a separator"), is
    // `^(?:.*A)?rest` over the whole value.
    let rewritten;
    if let Some(inner) = s.strip_prefix("(?:^|") {
        if let Some(close) = group_end(inner) {
            rewritten = format!("^(?:.*{}){}{}", &inner[..close], "?", &inner[close + 1..]);
            s = &rewritten;
        }
    }
    let start = s.starts_with('^');
    if start {
        s = &s[1..];
    }
    let end = s.ends_with('$') && !ends_escaped(s);
    if end {
        s = &s[..s.len() - 1];
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    if !start {
        out.push_str(".*");
    }
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("a trailing backslash".into());
                };
                i += 1;
                let class = |inner: &str, neg: bool| -> Result<String, String> {
                    match (in_class, neg) {
                        (true, false) => Ok(inner.to_owned()),
                        (true, true) => Err(format!("\\{n} inside a character class")),
                        (false, false) => Ok(format!("[{inner}]")),
                        (false, true) => Ok(format!("[^{inner}]")),
                    }
                };
                match n {
                    'd' => out.push_str(&class("0-9", false)?),
                    'D' => out.push_str(&class("0-9", true)?),
                    'w' => out.push_str(&class("a-zA-Z0-9_", false)?),
                    'W' => out.push_str(&class("a-zA-Z0-9_", true)?),
                    's' => out.push_str(&class(" \t\n\r\u{c}\u{b}", false)?),
                    'S' => out.push_str(&class(" \t\n\r\u{c}\u{b}", true)?),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    n if n.is_ascii_alphanumeric() => {
                        return Err(format!("\\{n} has no Lucene form"));
                    }
                    n => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is a literal.
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '(' if !in_class && chars.get(i + 1) == Some(&'?') => {
                if chars.get(i + 2) == Some(&':') {
                    out.push('(');
                    i += 2;
                } else {
                    return Err("look-around, named groups or inline flags inside".into());
                }
            }
            '^' | '$' if !in_class => return Err("an anchor inside the expression".into()),
            '*' | '+' | '?' | '}' if !in_class => {
                out.push(c);
                // Lazy or possessive: the same whole-value matches as greedy.
                if matches!(chars.get(i + 1), Some('?' | '+')) {
                    i += 1;
                }
            }
            '@' | '&' | '<' | '>' | '~' | '#' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err("an unclosed character class".into());
    }
    if !end {
        out.push_str(".*");
    }
    Ok((out, ci))
}

/// The index of the `)` closing a group whose text starts at `s[0]`.
fn group_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    let mut in_class = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class && depth == 0 => return Some(i),
            ')' if !in_class => depth -= 1,
            _ => {}
        }
    }
    None
}

fn ends_escaped(s: &str) -> bool {
    let body = &s[..s.len() - 1];
    body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_regexes_become_whole_value_lucene() {
        assert_eq!(translate("abc", false).unwrap(), (".*abc.*".into(), false));
        assert_eq!(translate("^abc$", false).unwrap(), ("abc".into(), false));
        assert_eq!(
            translate(r"(?i)^(?:[a-z]:)?\\x\d+\.exe$", false).unwrap(),
            (r"([a-z]:)?\\x[0-9]+\.exe".into(), true)
        );
        assert_eq!(
            translate(r"[\d\s]a+?", false).unwrap().0,
            ".*[0-9 \t\n\r\u{c}\u{b}]a+.*"
        );
        assert_eq!(translate("a@b#c", false).unwrap().0, r".*a\@b\#c.*");
        assert!(translate(r"\bword\b", false).is_err());
        assert!(translate("(?=x)", false).is_err());
        assert!(translate("a(?:^|/)x", false).is_err());
        assert_eq!(
            translate(r"(?i)(?:^|[\\/])(nginx|w3wp)(\.exe)?$", false).unwrap(),
            (r"(.*[\\/])?(nginx|w3wp)(\.exe)?".into(), true)
        );
        assert!(translate(r"[\D]", false).is_err());
        assert_eq!(translate(r"a\$", false).unwrap().0, r".*a\$.*");
    }
}
