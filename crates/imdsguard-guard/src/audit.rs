//! The proxy's audit log: one JSON object a line, flushed as written (so `watch` follows it),
//! rotated past a size (`FILE` → `FILE.1` → … → `FILE.5`, the oldest dropped).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::GuardError;

/// How many rotated files are kept.
const KEEP: u32 = 5;

/// An open audit log.
pub struct AuditLog {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max: u64,
}

impl AuditLog {
    /// Opens (appending) or creates the log.
    pub fn open(path: &Path, max: u64) -> Result<AuditLog, GuardError> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(AuditLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            size,
            max: max.max(4096),
        })
    }

    /// Writes one line (newline included) to the buffer, rotating first when the file is full.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), GuardError> {
        if self.size > 0 && self.size + line.len() as u64 > self.max {
            self.rotate()?;
        }
        let io = |source| GuardError::Audit {
            path: self.path.clone(),
            source,
        };
        self.out.write_all(line).map_err(io)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Writes what is buffered to the file.
    pub fn flush(&mut self) -> Result<(), GuardError> {
        self.out.flush().map_err(|source| GuardError::Audit {
            path: self.path.clone(),
            source,
        })
    }

    fn rotate(&mut self) -> Result<(), GuardError> {
        let _ = self.out.flush();
        let name = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let _ = std::fs::remove_file(name(KEEP));
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        std::fs::rename(&self.path, name(1)).map_err(|source| GuardError::Audit {
            path: self.path.clone(),
            source,
        })?;
        self.out = BufWriter::new(open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, GuardError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| GuardError::Audit {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_its_size_keeping_five() {
        let dir = std::env::temp_dir().join(format!("imdsguard-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let mut log = AuditLog::open(&path, 4096).unwrap();
        let mut rec = serde_json::to_vec(&serde_json::json!({ "pad": "x".repeat(1000) })).unwrap();
        rec.push(b'\n');
        for _ in 0..40 {
            log.write_line(&rec).unwrap();
        }
        log.flush().unwrap();
        let lines = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        // Four 1 KB lines fit in 4 KiB; 40 lines make ten files, of which six remain.
        assert_eq!(lines(&path), 4);
        for n in 1..=5 {
            assert_eq!(lines(&dir.join(format!("audit.jsonl.{n}"))), 4, "file .{n}");
        }
        assert!(!dir.join("audit.jsonl.6").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
