//! ZIP and tar archives (plain or gzip-compressed), read like a folder of their members: the
//! way public datasets ship logs (OTRF's Security-Datasets zip every dataset). Each member is
//! read as a file of its own would be, EVTX included, and cited as `archive.zip!path/in/it`.
//! Folders, hidden members (`__MACOSX/`, `.DS_Store`) and archives inside archives are passed
//! over and said; a member that cannot be read is named and the rest are read.

use std::io::{BufRead, BufReader, Read, Seek};

use imdsguard_event::Event;

use crate::{parallel, ReadOptions, Summary};

/// Whether these first bytes start a ZIP archive (a member, or an empty archive's end record).
pub(crate) fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// Whether these first bytes are a tar header (POSIX `ustar`, or GNU's `ustar  `).
pub(crate) fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// Whether a member is left out: a folder's own entry, or hidden (`__MACOSX/`, `.DS_Store`).
fn passed_over(path: &str) -> bool {
    path.ends_with('/')
        || path
            .split('/')
            .any(|part| part.starts_with('.') || part == "__MACOSX")
}

/// Reads every member of a ZIP archive.
pub(crate) fn read_zip<R: Read + Seek>(
    name: &str,
    source: R,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
    par: Option<&dyn parallel::JsonLines>,
) {
    let mut zip = match zip::ZipArchive::new(source) {
        Ok(z) => z,
        Err(e) => {
            summary
                .input_errors
                .push(format!("{name}: not a readable ZIP archive: {e}"));
            return;
        }
    };
    let mut passed = 0usize;
    for i in 0..zip.len() {
        let mut member = match zip.by_index(i) {
            Ok(m) => m,
            Err(e) => {
                summary
                    .input_errors
                    .push(format!("{name}: member {} cannot be read: {e}", i + 1));
                continue;
            }
        };
        let path = member
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("member {}", i + 1));
        if member.is_dir() || passed_over(&path) {
            passed += usize::from(!member.is_dir());
            continue;
        }
        let size = member.size();
        read_member(
            &format!("{name}!{path}"),
            &mut member,
            size,
            opts,
            summary,
            on_event,
            par,
        );
    }
    say_passed(name, passed, summary);
}

/// Reads every regular member of a tar archive (from a file or a gzip stream).
pub(crate) fn read_tar(
    name: &str,
    source: &mut dyn Read,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
    par: Option<&dyn parallel::JsonLines>,
) {
    let mut archive = tar::Archive::new(source);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            summary
                .input_errors
                .push(format!("{name}: not a readable tar archive: {e}"));
            return;
        }
    };
    let mut passed = 0usize;
    for (i, entry) in entries.enumerate() {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                // A damaged header leaves no way to find the next member.
                summary
                    .input_errors
                    .push(format!("{name}: reading stopped at member {}: {e}", i + 1));
                return;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("member {}", i + 1));
        if passed_over(&path) {
            passed += 1;
            continue;
        }
        let size = entry.size();
        read_member(
            &format!("{name}!{path}"),
            &mut entry,
            size,
            opts,
            summary,
            on_event,
            par,
        );
    }
    say_passed(name, passed, summary);
}

fn say_passed(name: &str, passed: usize, summary: &mut Summary) {
    if passed > 0 {
        summary.passed_over.push(format!(
            "{name}: {passed} hidden members not read (__MACOSX/, .DS_Store and the like)"
        ));
    }
}

/// One member, as a file of that name would be read: EVTX (held in memory: it needs seeking),
/// gzip, or text sniffed by its records. Archives inside archives are named, not opened.
fn read_member(
    name: &str,
    member: &mut dyn Read,
    size: u64,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
    par: Option<&dyn parallel::JsonLines>,
) {
    summary.files += 1;
    let mut r = BufReader::with_capacity(256 * 1024, member);
    let head = match r.fill_buf() {
        Ok(h) => h,
        Err(e) => {
            summary.input_errors.push(format!("{name}: {e}"));
            return;
        }
    };
    if head.starts_with(crate::evtx_file::MAGIC) {
        if size > opts.max_document {
            summary.input_errors.push(format!(
                "{name}: an EVTX member of {size} bytes, over the {} bytes read into memory: extract it first",
                opts.max_document
            ));
            return;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        if let Err(e) = r.read_to_end(&mut bytes) {
            summary.input_errors.push(format!("{name}: {e}"));
            return;
        }
        crate::read_evtx_bytes(name, &bytes, opts, summary, on_event);
        return;
    }
    if is_zip(head) || (head.len() >= 262 && is_tar(head)) {
        summary.unrecognized_files.push(format!(
            "{name}: an archive inside an archive: extract it to read it"
        ));
        return;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = BufReader::new(flate2::read::MultiGzDecoder::new(r));
        crate::read_stream(name, Box::new(gz), 0, opts, summary, on_event, par);
        return;
    }
    crate::read_stream(name, Box::new(r), 0, opts, summary, on_event, par);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_members_and_folders_are_passed_over() {
        assert!(passed_over("logs/"));
        assert!(passed_over("__MACOSX/logs/._a.json"));
        assert!(passed_over("logs/.DS_Store"));
        assert!(!passed_over("logs/sysmon.json"));
        assert!(!passed_over("a.b/c.json"));
    }

    #[test]
    fn archives_are_told_by_their_first_bytes() {
        assert!(is_zip(b"PK\x03\x04rest"));
        assert!(!is_zip(b"{\"a\":1}"));
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert!(is_tar(&tar));
        assert!(!is_tar(&tar[..200]));
    }
}
