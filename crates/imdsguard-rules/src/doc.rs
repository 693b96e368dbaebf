//! A built-in detection's documentation, read from its own source file's module comment: the one
//! place it is written, shown by rustdoc to maintainers and by `imdsguard rules show` to users.
//!
//! The comment opens with `**ID — Title.**`, then paragraphs that each start with a section name
//! in italics: `*What.*`, `*Why.*`, `*False positives.*` and `*ATT&CK.*` are required; others
//! (`*Not here.*`) are kept in order. A section runs until the next one.

use std::fmt;

/// One detection's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// The stable id (`IMDS-005`).
    pub id: &'static str,
    /// The title, without its closing period.
    pub title: &'static str,
    /// The sections in order: name (`What`) and text, lines joined, paragraphs apart by a blank
    /// line.
    pub sections: Vec<(String, String)>,
}

const REQUIRED: [&str; 4] = ["What", "Why", "False positives", "ATT&CK"];

impl Doc {
    /// The documentation in a Rust source file's `//!` comment.
    pub fn from_source(source: &'static str) -> Result<Doc, String> {
        let (id, title) = Doc::header(source)?;
        let mut sections: Vec<(String, Vec<String>)> = Vec::new();
        let mut paragraph = String::new();
        let lines = source
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .skip(1)
            .chain(std::iter::once(""));
        for line in lines {
            if !line.trim().is_empty() {
                if !paragraph.is_empty() {
                    paragraph.push(' ');
                }
                paragraph.push_str(line.trim());
                continue;
            }
            if paragraph.is_empty() {
                continue;
            }
            let p = std::mem::take(&mut paragraph);
            match section_start(&p) {
                Some((name, rest)) => sections.push((name.to_owned(), vec![rest.to_owned()])),
                None => match sections.last_mut() {
                    Some((_, ps)) => ps.push(p),
                    None => return Err(format!("{id}: text before the first section: {p:?}")),
                },
            }
        }
        for r in REQUIRED {
            if !sections.iter().any(|(n, _)| n == r) {
                return Err(format!("{id}: no *{r}.* section"));
            }
        }
        Ok(Doc {
            id,
            title,
            sections: sections
                .into_iter()
                .map(|(n, ps)| (n, ps.join("\n\n")))
                .collect(),
        })
    }

    /// A section's text (`What`, `Why`, `False positives`, `ATT&CK`...).
    pub fn section(&self, name: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    /// The ATT&CK technique ids the `ATT&CK` section names (`T1552.005`, `T1580`).
    pub fn techniques(&self) -> Vec<String> {
        let text = self.section("ATT&CK").unwrap_or("");
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
            let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if b[i] == b'T' && boundary && digits(i + 1) == 4 {
                let mut end = i + 5;
                if b.get(end) == Some(&b'.') && digits(end + 1) == 3 {
                    end += 4;
                }
                out.push(text[i..end].to_owned());
                i = end;
            } else {
                i += 1;
            }
        }
        out
    }
}

impl Doc {
    /// The id and title: `**ID — Title.**` on the first `//!` line.
    pub fn header(source: &'static str) -> Result<(&'static str, &'static str), String> {
        let first = source.lines().next().unwrap_or("");
        let inner = first
            .strip_prefix("//! **")
            .and_then(|s| s.strip_suffix("**"))
            .ok_or_else(|| format!("the first line is not `//! **ID — Title.**`: {first:?}"))?;
        let (id, title) = inner
            .split_once(" — ")
            .ok_or_else(|| format!("no ` — ` between id and title: {first:?}"))?;
        Ok((id.trim(), title.trim().trim_end_matches('.')))
    }
}

/// `*Name.* rest` → (`Name`, `rest`).
fn section_start(p: &str) -> Option<(&str, &str)> {
    let rest = p.strip_prefix('*')?;
    let end = rest.find(".*")?;
    let name = &rest[..end];
    (!name.is_empty() && !name.contains('*')).then(|| (name, rest[end + 2..].trim_start()))
}

impl fmt::Display for Doc {
    /// Every section, its name as a heading and its text wrapped at 96 columns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, text)) in self.sections.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{name}:")?;
            for (j, p) in text.split("\n\n").enumerate() {
                if j > 0 {
                    writeln!(f)?;
                }
                wrap(f, p, 96)?;
            }
        }
        Ok(())
    }
}

fn wrap(f: &mut fmt::Formatter<'_>, text: &str, width: usize) -> fmt::Result {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && 2 + line.len() + 1 + word.len() > width {
            writeln!(f, "  {line}")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(f, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "//! **X-1 — A thing.**\n//!\n//! *What.* One\n//! two.\n//!\n//! More of it.\n//!\n//! *Why.* Because.\n//!\n//! *False positives.* None.\n//!\n//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API), T1580; not XT1234.\n\nuse x;\n//! not doc\n";

    #[test]
    fn sections_come_from_the_module_comment() {
        let d = Doc::from_source(SOURCE).unwrap();
        assert_eq!((d.id, d.title), ("X-1", "A thing"));
        assert_eq!(d.section("What"), Some("One two.\n\nMore of it."));
        assert_eq!(d.section("False positives"), Some("None."));
        assert_eq!(d.techniques(), ["T1552.005", "T1580"]);
        let shown = d.to_string();
        assert!(
            shown.starts_with("What:\n  One two.\n\n  More of it.\n\nWhy:\n"),
            "{shown}"
        );
    }

    #[test]
    fn a_comment_without_a_required_section_or_header_is_refused() {
        let e = Doc::from_source("//! **X-1 — A.**\n//!\n//! *What.* a\n").unwrap_err();
        assert!(e.contains("no *Why.* section"), "{e}");
        let e = Doc::from_source("//! X-1: A.\n").unwrap_err();
        assert!(e.contains("first line"), "{e}");
    }
}
