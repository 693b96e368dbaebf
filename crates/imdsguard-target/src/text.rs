//! Small text helpers shared by the readers: percent-decoding, escapes, word boundaries.

/// Decodes `%HH` sequences. Returns `None` when there is nothing to decode or the result is not
/// UTF-8 (a host or path that no client would send as text).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if !has_percent_escape(b) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether `b` holds a `%HH` escape.
pub(crate) fn has_percent_escape(b: &[u8]) -> bool {
    memchr::memchr_iter(b'%', b)
        .any(|i| i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
}

pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Whether `c` can be part of an identifier (environment variable, header name).
pub(crate) fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Decodes backslash escapes as shells and script languages write them inside strings
/// (`\xHH`, `\uHHHH`, `\NNN` octal) and replaces `${IFS}`/`$IFS` with a space.
/// Returns `None` when nothing changed.
pub(crate) fn decode_escapes(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let backslash = memchr::memchr_iter(b'\\', b).any(|i| {
        b.get(i + 1)
            .is_some_and(|&c| c == b'x' || c == b'u' || (b'0'..=b'3').contains(&c))
    });
    let dollar = memchr::memchr_iter(b'$', b).any(|i| {
        b[i + 1..].starts_with(b"IFS")
            || b[i + 1..].starts_with(b"{IFS}")
            || b.get(i + 1) == Some(&b'\'')
    });
    if !backslash && !dollar {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'$' {
            if b[i..].starts_with(b"${IFS}") {
                out.push(b' ');
                i += 6;
                changed = true;
                continue;
            }
            if b[i..].starts_with(b"$IFS") && !b.get(i + 4).copied().is_some_and(is_ident) {
                out.push(b' ');
                i += 4;
                changed = true;
                continue;
            }
            // ANSI-C quoting: $'...' — drop the `$` so the quote reads as an ordinary one.
            if b.get(i + 1) == Some(&b'\'') {
                i += 1;
                changed = true;
                continue;
            }
        }
        if b[i] == b'\\' && i + 1 < b.len() {
            let next = b[i + 1];
            if next == b'x' && i + 3 < b.len() {
                if let (Some(h), Some(l)) = (hex_val(b[i + 2]), hex_val(b[i + 3])) {
                    out.push(h << 4 | l);
                    i += 4;
                    changed = true;
                    continue;
                }
            }
            if next == b'u' && i + 5 < b.len() {
                let digits = &b[i + 2..i + 6];
                if digits.iter().all(u8::is_ascii_hexdigit) {
                    let v = digits
                        .iter()
                        .fold(0u32, |acc, &d| acc * 16 + hex_val(d).map_or(0, u32::from));
                    if let Some(c) = char::from_u32(v) {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 6;
                        changed = true;
                        continue;
                    }
                }
            }
            if (b'0'..=b'3').contains(&next)
                && i + 3 < b.len()
                && (b'0'..=b'7').contains(&b[i + 2])
                && (b'0'..=b'7').contains(&b[i + 3])
            {
                out.push((next - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
                i += 4;
                changed = true;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    if !changed {
        return None;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Joins strings split by concatenation (`'a' + 'b'`, `"a"+"b"`, `'a' . 'b'` in PHP/Perl).
/// Returns `None` when there is none.
pub(crate) fn join_concatenations(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let joint_at = |i: usize| -> Option<usize> {
        // quote, spaces, `+` or `.`, spaces, quote: returns the index of the second quote.
        let mut j = i + 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j >= b.len() || (b[j] != b'+' && b[j] != b'.') {
            return None;
        }
        let mut k = j + 1;
        while k < b.len() && b[k] == b' ' {
            k += 1;
        }
        (k < b.len() && (b[k] == b'"' || b[k] == b'\'') && k > i + 1).then_some(k)
    };
    if !memchr::memchr2_iter(b'"', b'\'', b).any(|i| joint_at(i).is_some()) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'"' || b[i] == b'\'' {
            // Look for: quote, spaces, + or ., spaces, quote.
            let mut j = i + 1;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j < b.len() && (b[j] == b'+' || b[j] == b'.') {
                let mut k = j + 1;
                while k < b.len() && b[k] == b' ' {
                    k += 1;
                }
                if k < b.len() && (b[k] == b'"' || b[k] == b'\'') && k > i + 1 {
                    i = k + 1;
                    changed = true;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    if !changed {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%31%36%39.254").as_deref(), Some("169.254"));
        assert_eq!(percent_decode("100%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%25").as_deref(), Some("a%"));
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        assert_eq!(percent_decode("%e2%91%a0").as_deref(), Some("①"));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            decode_escapes(r"curl $'\x31\x36\x39.254.169.254'").as_deref(),
            Some("curl '169.254.169.254'")
        );
        assert_eq!(
            decode_escapes(r"curl\u0020\u0031").as_deref(),
            Some("curl 1")
        );
        assert_eq!(
            decode_escapes(r"echo \061\066\071").as_deref(),
            Some("echo 169")
        );
        assert_eq!(
            decode_escapes("curl${IFS}169.254.169.254").as_deref(),
            Some("curl 169.254.169.254")
        );
        assert_eq!(
            decode_escapes("curl$IFS$9169.254.169.254").as_deref(),
            Some("curl $9169.254.169.254")
        );
        assert_eq!(
            decode_escapes("a$IFS169"),
            None,
            "bash reads $IFS169 as the variable IFS169"
        );
        assert_eq!(decode_escapes(r"C:\Windows\xyz"), None);
        assert_eq!(decode_escapes("plain"), None);
    }

    #[test]
    fn concatenation() {
        assert_eq!(
            join_concatenations("'http://169.254.' + '169.254/'").as_deref(),
            Some("'http://169.254.169.254/'")
        );
        assert_eq!(
            join_concatenations("\"a\"+\"b\"").as_deref(),
            Some("\"ab\"")
        );
        assert_eq!(
            join_concatenations("x = 'a' . 'b'").as_deref(),
            Some("x = 'ab'")
        );
        assert_eq!(join_concatenations("'a' 'b'"), None);
    }
}
