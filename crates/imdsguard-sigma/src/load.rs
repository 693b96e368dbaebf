//! Rule trees: every `.yml`/`.yaml` file under a directory, read on several threads, each file
//! that does not load reported and the rest kept.

use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, SigmaError};
use crate::parse::parse_rule;
use crate::rule::SigmaRule;

/// Loads every `.yml`/`.yaml` file under `root` (sorted), returning the rules that load and an
/// error for each file that does not.
pub fn load_dir(root: &Path) -> (Vec<SigmaRule>, Vec<SigmaError>) {
    load_dir_with(root, 1)
}

/// [`load_dir`] on `threads` threads: the same rules and errors, in the same order (files in
/// sorted path order).
pub fn load_dir_with(root: &Path, threads: usize) -> (Vec<SigmaRule>, Vec<SigmaError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    collect(root, &mut files, &mut errors);
    files.sort();
    let mut rules = Vec::new();
    let read = |f: &PathBuf| {
        let path = f.display().to_string();
        let too_large = std::fs::metadata(f)
            .ok()
            .filter(|m| m.len() > crate::yaml::MAX_BYTES as u64);
        if let Some(m) = too_large {
            return Err(SigmaError {
                path,
                rule: None,
                kind: ErrorKind::Yaml,
                message: format!(
                    "{} bytes, more than the {} a YAML file may hold here; not read",
                    m.len(),
                    crate::yaml::MAX_BYTES
                ),
            });
        }
        match std::fs::read_to_string(f) {
            // A SigmaHQ checkout's regression-test descriptions (`info.yml`) sit beside the
            // rules; they are no rules.
            Ok(text) if is_test_description(&text) => Ok(Vec::new()),
            Ok(text) => parse_rule(&text, &path),
            Err(e) => Err(SigmaError {
                path,
                rule: None,
                kind: ErrorKind::Io,
                message: e.to_string(),
            }),
        }
    };
    for r in crate::par_map(&files, threads, read) {
        match r {
            Ok(rs) => rules.extend(rs),
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}

/// Whether a YAML file is a SigmaHQ regression-test description rather than a rule.
fn is_test_description(text: &str) -> bool {
    text.starts_with("regression_tests_info:") || text.contains("\nregression_tests_info:")
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<SigmaError>) {
    if p.is_file() {
        out.push(p.to_path_buf());
        return;
    }
    match std::fs::read_dir(p) {
        Ok(rd) => {
            for e in rd.flatten() {
                let path = e.path();
                // Hidden folders (`.github`'s workflows) hold no rules.
                let hidden = e.file_name().as_encoded_bytes().starts_with(b".");
                if hidden {
                    continue;
                }
                if path.is_dir() {
                    collect(&path, out, errors);
                } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                    out.push(path);
                }
            }
        }
        Err(e) => errors.push(SigmaError {
            path: p.display().to_string(),
            rule: None,
            kind: ErrorKind::Io,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkouts_test_descriptions_and_hidden_folders_are_not_rules() {
        let dir = std::env::temp_dir().join(format!("imdsguard-sigma-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["rules", "regression_data/rules/x", ".github/workflows"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(
            dir.join("rules/r.yml"),
            "title: T\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  s:\n    Image|endswith: '\\\\curl.exe'\n  condition: s\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("regression_data/rules/x/info.yml"),
            "id: 1\ndescription: d\nrule_metadata:\n  - id: 2\nregression_tests_info:\n  - name: Positive\n    type: evtx\n    path: a.evtx\n",
        )
        .unwrap();
        std::fs::write(dir.join(".github/workflows/ci.yml"), "on: push\njobs: {}\n").unwrap();
        let (rules, errors) = load_dir(&dir);
        assert_eq!(rules.len(), 1, "{errors:?}");
        assert!(errors.is_empty(), "{errors:?}");
    }
}
