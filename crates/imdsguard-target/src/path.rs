//! Request paths: normalized the way servers resolve them, then matched against the catalog.

use crate::catalog::{Catalog, PathPattern};
use crate::model::{Encoding, Encodings, Kind};
use crate::text::percent_decode;

/// A path after percent-decoding, backslash folding and dot-segment resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormPath {
    /// `/seg/seg` (with the trailing slash kept when the input had one).
    pub path: String,
    /// The query string, decoded, without `?`.
    pub query: Option<String>,
    /// Tricks seen while normalizing.
    pub enc: Encodings,
}

/// Splits `rest` (what follows the authority) into a normalized path and query. Returns `None`
/// when there is no path at all.
pub(crate) fn normalize(rest: &str) -> Option<NormPath> {
    let rest = rest.split('#').next().unwrap_or("");
    let (raw_path, raw_query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if raw_path.is_empty() && raw_query.is_none() {
        return None;
    }
    let mut enc = Encodings::NONE;
    let mut decoded = raw_path.to_owned();
    for round in 0..2 {
        match percent_decode(&decoded) {
            Some(d) if d != decoded => {
                enc.insert(if round == 0 {
                    Encoding::Percent
                } else {
                    Encoding::DoublePercent
                });
                decoded = d;
            }
            _ => break,
        }
    }
    if decoded.contains('\\') {
        enc.insert(Encoding::Backslash);
        decoded = decoded.replace('\\', "/");
    }
    let trailing = decoded.ends_with('/');
    let mut segments: Vec<&str> = Vec::new();
    let mut raw_segments = decoded.split('/');
    // The part before the first '/' (if any) is not a segment of an absolute path, unless the
    // path is relative, which origin-form requests never are; keep it as a segment all the same.
    if let Some(first) = raw_segments.next() {
        if !first.is_empty() {
            segments.push(first);
        }
    }
    let mut empty_inner = 0usize;
    for seg in raw_segments {
        match seg {
            "" => empty_inner += 1,
            "." => enc.insert(Encoding::DotSegments),
            ".." => {
                enc.insert(Encoding::DotSegments);
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if empty_inner > usize::from(trailing) {
        enc.insert(Encoding::DotSegments);
    }
    let mut path = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if trailing || path.is_empty() {
        path.push('/');
    }
    let query = raw_query.map(|q| percent_decode(q).unwrap_or_else(|| q.to_owned()));
    Some(NormPath { path, query, enc })
}

/// The best pattern for a path among the given providers: most segments, then most literal
/// (non-`*`) segments, then a query condition, then catalog order.
pub(crate) fn best_match<'c>(
    cat: &'c Catalog,
    providers: impl Iterator<Item = usize>,
    path: &NormPath,
    require_specific: bool,
) -> Option<(usize, &'c PathPattern)> {
    let segs: Vec<&str> = path.path.split('/').filter(|s| !s.is_empty()).collect();
    let query = path.query.as_deref().map(str::to_ascii_lowercase);
    let mut best: Option<(usize, &PathPattern, (usize, usize, bool))> = None;
    for pi in providers {
        for pat in &cat.provider_at(pi).paths {
            if require_specific && (pat.generic || pat.kind == Kind::Other) {
                continue;
            }
            if pat.segments.len() > segs.len() {
                continue;
            }
            let fits = pat
                .segments
                .iter()
                .zip(&segs)
                .all(|(want, got)| want == "*" || want.eq_ignore_ascii_case(got));
            if !fits {
                continue;
            }
            if let Some(q) = &pat.query {
                if !query
                    .as_deref()
                    .is_some_and(|have| have.contains(q.as_str()))
                {
                    continue;
                }
            }
            let literals = pat.segments.iter().filter(|s| *s != "*").count();
            let score = (pat.segments.len(), literals, pat.query.is_some());
            if best.as_ref().is_none_or(|(_, _, s)| score > *s) {
                best = Some((pi, pat, score));
            }
        }
    }
    best.map(|(pi, pat, _)| (pi, pat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let table: &[(&str, &str, Option<&str>, &[&str])] = &[
            ("/latest/meta-data/", "/latest/meta-data/", None, &[]),
            (
                "/latest/meta%2Ddata/iam",
                "/latest/meta-data/iam",
                None,
                &["percent"],
            ),
            (
                "/latest/meta%252Ddata",
                "/latest/meta-data",
                None,
                &["percent", "double-percent"],
            ),
            (
                "/latest/x/../meta-data/./iam",
                "/latest/meta-data/iam",
                None,
                &["dot-segments"],
            ),
            (
                "//latest//meta-data",
                "/latest/meta-data",
                None,
                &["dot-segments"],
            ),
            (
                "\\latest\\user-data",
                "/latest/user-data",
                None,
                &["backslash"],
            ),
            (
                "/machine?comp=certificates&incarnation=1",
                "/machine",
                Some("comp=certificates&incarnation=1"),
                &[],
            ),
            ("/a#frag?x", "/a", None, &[]),
            ("?api-version=1", "/", Some("api-version=1"), &[]),
        ];
        for (input, path, query, enc) in table {
            let got = normalize(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(got.path, *path, "{input}");
            assert_eq!(got.query.as_deref(), *query, "{input}");
            let names: Vec<&str> = got.enc.iter().map(Encoding::as_str).collect();
            assert_eq!(&names, enc, "{input}");
        }
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("#x"), None);
    }
}
