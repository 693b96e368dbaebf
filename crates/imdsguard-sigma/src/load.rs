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

fn collect(p: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<SigmaError>) {
    if p.is_file() {
        out.push(p.to_path_buf());
        return;
    }
    match std::fs::read_dir(p) {
        Ok(rd) => {
            for e in rd.flatten() {
                let path = e.path();
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
