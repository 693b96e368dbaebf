//! Zeek's logs in their native TSV form: a header (`#separator \x09`, `#set_separator`,
//! `#empty_field`, `#unset_field`, `#path`, `#fields`, `#types`), then one record a line, its
//! values in the `#fields` order, `-` for unset and `(empty)` for an empty set. `http`, `conn`
//! and `dns` logs are read into the same events as their JSON form; a log of another path
//! (`ssh`, `files` …) is named once with its record count. A file can hold several logs one
//! after the other (a new header starts the next).

use std::borrow::Cow;
use std::io::BufRead;

use imdsguard_event::{Event, Position, SourceRef};

use super::Decoding;
use crate::error::SkipReason;
use crate::json::{Map, Str, Value};
use crate::{ReadOptions, Skipped, Summary};

/// Whether a first line is a Zeek TSV header's.
pub(crate) fn sniff_line(line: &str) -> bool {
    line.starts_with("#separator ")
}

/// What the header says.
#[derive(Default)]
struct Header {
    separator: String,
    set_separator: String,
    empty: String,
    unset: String,
    path: Option<String>,
    fields: Vec<String>,
}

/// The separator as written (`\x09`), read.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("\\x") {
        out.push_str(&rest[..at]);
        match rest
            .get(at + 2..at + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[at + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A Zeek TSV log.
pub(crate) fn read(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let mut header = Header {
        separator: "\t".into(),
        ..Header::default()
    };
    // Records of paths not read, by path: a file says each once, with its count.
    let mut not_read: Vec<(String, u64)> = Vec::new();
    let mut one = |t: Vec<u8>, n: u64, summary: &mut Summary| {
        let text = String::from_utf8_lossy(&t);
        let at = SourceRef {
            path: name.to_owned(),
            position: Position::Line(n),
        };
        if let Some(h) = text.strip_prefix('#') {
            let (key, value) = match h.split_once(' ') {
                Some((k, v)) if k == "separator" => (k, v.to_owned()),
                _ => match h.split_once(header.separator.as_str()) {
                    Some((k, v)) => (k, v.to_owned()),
                    None => (h, String::new()),
                },
            };
            match key {
                "separator" => header.separator = unescape(&value),
                "set_separator" => header.set_separator = value,
                "empty_field" => header.empty = value,
                "unset_field" => header.unset = value,
                "path" => header.path = Some(value),
                "fields" => {
                    header.fields = value
                        .split(header.separator.as_str())
                        .map(str::to_owned)
                        .collect();
                }
                _ => {}
            }
            return;
        }
        let path = header.path.clone().unwrap_or_default();
        let decode = match path.as_str() {
            "http" => super::zeek_http::decode,
            "conn" => super::zeek_conn::decode,
            "dns" => super::zeek_dns::decode,
            _ => {
                match not_read.iter_mut().find(|(p, _)| *p == path) {
                    Some((_, n)) => *n += 1,
                    None => not_read.push((path, 1)),
                }
                return;
            }
        };
        let values: Vec<&str> = text.split(header.separator.as_str()).collect();
        if values.len() != header.fields.len() {
            summary.skip(
                Skipped {
                    source: at,
                    reason: SkipReason::Malformed,
                    detail: format!(
                        "{} values for the {} fields of the header",
                        values.len(),
                        header.fields.len()
                    ),
                },
                opts.keep_skips,
            );
            return;
        }
        let record: Map<'_> = header
            .fields
            .iter()
            .zip(values)
            .filter(|(_, v)| *v != header.unset)
            .map(|(k, v)| {
                let value = if v == header.empty {
                    Value::Array(Vec::new())
                } else if matches!(
                    k.as_str(),
                    "proxied" | "answers" | "TTLs" | "tunnel_parents"
                ) || k.ends_with("_names")
                {
                    Value::Array(
                        v.split(header.set_separator.as_str())
                            .map(|s| Value::String(Str::borrowed(s)))
                            .collect(),
                    )
                } else {
                    Value::String(Str::borrowed(v))
                };
                (Cow::Borrowed(k.as_str()), value)
            })
            .collect();
        summary.decoded(
            decode(&record, at.clone(), Decoding::of(opts)),
            at,
            opts,
            on_event,
        );
    };
    crate::each_line_from(name, first, first_line, r, opts, summary, &mut one);
    for (path, records) in not_read {
        summary.unrecognized_files.push(format!(
            "{name}: a Zeek {} log ({records} record{}): the Zeek logs read are http, conn and dns",
            if path.is_empty() { "(unnamed)" } else { &path },
            if records == 1 { "" } else { "s" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_read_from_their_escapes() {
        assert_eq!(unescape("\\x09"), "\t");
        assert_eq!(unescape("a\\x2cb"), "a,b");
        assert_eq!(unescape("\\xZZ"), "\\xZZ");
        assert!(sniff_line("#separator \\x09"));
        assert!(!sniff_line("#fields\tts"));
    }
}
