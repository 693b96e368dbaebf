//! Following a file as it grows, through rotation and truncation: what `imdsguard watch` reads.
//!
//! A [`Follower`] hands out the complete lines appended since the last call ([`Follower::poll`]),
//! never a partial last line, with the number of lines before them so that record positions
//! continue the file's. Its [`Position`] (file identity, byte offset, lines) is what a checkpoint
//! saves; a follower opened at a saved position resumes there when the file is still the same one.
//!
//! - Rotation (the path now names another file: `logrotate`'s rename-and-create): the old file is
//!   read to its end first, then the new one from its start.
//! - Truncation (the same file, now shorter than the offset: `copytruncate`): read again from the
//!   start.
//! - A missing file is waited for.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where a follower stands in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file's identity: device and inode (`dev:ino`).
    pub identity: String,
    /// Bytes consumed (always at a line end).
    pub offset: u64,
    /// Lines consumed.
    pub lines: u64,
    /// A fingerprint of the bytes just before `offset` (up to [`TAIL`]), when any were read:
    /// what tells a file truncated and grown again past the offset between two reads (same
    /// file, longer than the offset, other bytes) from one that only grew.
    pub tail: Option<u64>,
}

/// How many bytes before the offset the fingerprint covers.
pub const TAIL: u64 = 256;

/// The fingerprint of `bytes` (FNV-1a).
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Complete lines read from a followed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The lines, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// Lines of the file before them.
    pub lines_before: u64,
    /// The position after them.
    pub end: Position,
    /// The file was rotated or truncated before these lines: they start a new file.
    pub restarted: bool,
}

/// A file being followed.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    pos: Position,
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}:{}", meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(meta: &std::fs::Metadata) -> String {
    format!("created:{:?}", meta.created().ok())
}

impl Follower {
    /// Follows `path`, from a saved position when it still names the same file (else from the
    /// start).
    pub fn new(path: &Path, saved: Option<Position>) -> Follower {
        Follower {
            path: path.to_owned(),
            file: None,
            pos: saved.unwrap_or(Position {
                identity: String::new(),
                offset: 0,
                lines: 0,
                tail: None,
            }),
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where it stands.
    pub fn position(&self) -> &Position {
        &self.pos
    }

    /// The complete lines appended since the last call, at most about `max_bytes`, or `None`
    /// when there is nothing new.
    pub fn poll(&mut self, max_bytes: usize) -> io::Result<Option<Chunk>> {
        let mut restarted = false;
        let at_path = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if self.file.is_none() {
            let Some(meta) = &at_path else {
                return Ok(None);
            };
            let f = File::open(&self.path)?;
            let id = identity(&f.metadata()?);
            if id != self.pos.identity || meta.len() < self.pos.offset {
                // Another file than the saved one, or the saved one truncated.
                restarted = !self.pos.identity.is_empty();
                self.pos = Position {
                    identity: id,
                    offset: 0,
                    lines: 0,
                    tail: None,
                };
            }
            self.file = Some(f);
        }
        let file = self.file.as_mut().expect("opened above");
        let open_meta = file.metadata()?;
        if open_meta.len() < self.pos.offset || !self.tail_holds()? {
            // Truncated in place — and perhaps written again past the offset before this read,
            // which only the bytes before the offset tell.
            self.pos.offset = 0;
            self.pos.lines = 0;
            self.pos.tail = None;
            restarted = true;
        }
        if let Some(chunk) = self.read_lines(max_bytes, restarted)? {
            return Ok(Some(chunk));
        }
        if restarted {
            // Another file, or this one truncated, with no complete line yet: the position is
            // news still, so that a checkpoint stops naming the old file's offset.
            return Ok(Some(self.empty_restart()));
        }
        // Nothing more in the open file: has the path moved on to another one?
        let rotated = at_path.is_some_and(|m| identity(&m) != self.pos.identity);
        if rotated {
            self.file = None;
            self.pos = Position {
                identity: String::new(),
                offset: 0,
                lines: 0,
                tail: None,
            };
            let next = self.poll(max_bytes)?;
            return Ok(Some(match next {
                Some(mut c) => {
                    c.restarted = true;
                    c
                }
                None => self.empty_restart(),
            }));
        }
        Ok(None)
    }

    /// No lines, at the start of a new file.
    fn empty_restart(&self) -> Chunk {
        Chunk {
            bytes: Vec::new(),
            lines_before: 0,
            end: self.pos.clone(),
            restarted: true,
        }
    }

    /// Whether the bytes before the offset are still those read there.
    fn tail_holds(&mut self) -> io::Result<bool> {
        let Some(want) = self.pos.tail else {
            return Ok(true);
        };
        let file = self.file.as_mut().expect("an open file");
        let from = self.pos.offset.saturating_sub(TAIL);
        file.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::with_capacity(TAIL as usize);
        file.take(self.pos.offset - from).read_to_end(&mut buf)?;
        Ok(buf.len() as u64 == self.pos.offset - from && fingerprint(&buf) == want)
    }

    fn read_lines(&mut self, max_bytes: usize, restarted: bool) -> io::Result<Option<Chunk>> {
        let file = self.file.as_mut().expect("an open file");
        file.seek(SeekFrom::Start(self.pos.offset))?;
        let mut buf = Vec::with_capacity(max_bytes.min(1 << 20));
        file.take(max_bytes as u64).read_to_end(&mut buf)?;
        let Some(last_nl) = memchr::memrchr(b'\n', &buf) else {
            if buf.len() >= max_bytes && max_bytes > 0 {
                // A line longer than a whole chunk: hand it over as it is, so the follower
                // never stalls on it (the decoder names and skips what it cannot read).
                return Ok(Some(self.take(buf, restarted)));
            }
            return Ok(None);
        };
        buf.truncate(last_nl + 1);
        Ok(Some(self.take(buf, restarted)))
    }

    fn take(&mut self, bytes: Vec<u8>, restarted: bool) -> Chunk {
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        let before = self.pos.lines;
        // The fingerprint of what now lies just before the offset: this chunk's end, and the
        // previous one's when the chunk is shorter than the window.
        let tail_start = bytes.len().saturating_sub(TAIL as usize);
        let mut window = Vec::with_capacity(TAIL as usize);
        if (bytes.len() as u64) < TAIL && self.pos.offset > 0 {
            if let Some(f) = self.file.as_mut() {
                let want = (TAIL - bytes.len() as u64).min(self.pos.offset);
                let _ = f.seek(SeekFrom::Start(self.pos.offset - want));
                let _ = f.take(want).read_to_end(&mut window);
            }
        }
        window.extend_from_slice(&bytes[tail_start..]);
        self.pos.tail = Some(fingerprint(&window));
        self.pos.offset += bytes.len() as u64;
        self.pos.lines += lines;
        Chunk {
            bytes,
            lines_before: before,
            end: self.pos.clone(),
            restarted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir(case: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("imdsguard-follow-{case}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn append(p: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn text(c: &Chunk) -> &str {
        std::str::from_utf8(&c.bytes).unwrap()
    }

    #[test]
    fn complete_lines_only_and_line_numbers_continue() {
        let d = dir("lines");
        let p = d.join("a.log");
        let mut f = Follower::new(&p, None);
        assert_eq!(f.poll(1 << 20).unwrap(), None, "no file yet");
        append(&p, "one\ntwo\nthr");
        let c = f.poll(1 << 20).unwrap().unwrap();
        assert_eq!(
            (text(&c), c.lines_before, c.end.lines),
            ("one\ntwo\n", 0, 2)
        );
        assert_eq!(f.poll(1 << 20).unwrap(), None, "a partial line waits");
        append(&p, "ee\nfour\n");
        let c = f.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.lines_before), ("three\nfour\n", 2));
        assert_eq!(c.end.offset, 19);
    }

    #[test]
    fn a_saved_position_resumes_and_another_file_starts_over() {
        let d = dir("resume");
        let p = d.join("a.log");
        append(&p, "one\ntwo\n");
        let mut f = Follower::new(&p, None);
        f.poll(1 << 20).unwrap().unwrap();
        let saved = f.position().clone();
        append(&p, "three\n");
        let mut again = Follower::new(&p, Some(saved.clone()));
        let c = again.poll(1 << 20).unwrap().unwrap();
        assert_eq!(
            (text(&c), c.lines_before, c.restarted),
            ("three\n", 2, false)
        );
        // The path now names a new file: the saved offset means nothing there.
        std::fs::remove_file(&p).unwrap();
        append(&p, "new\n");
        let mut other = Follower::new(&p, Some(saved));
        let c = other.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.lines_before, c.restarted), ("new\n", 0, true));
    }

    #[test]
    fn rotation_reads_the_old_file_to_its_end_then_the_new_one() {
        let d = dir("rotate");
        let p = d.join("a.log");
        append(&p, "1\n");
        let mut f = Follower::new(&p, None);
        assert_eq!(text(&f.poll(1 << 20).unwrap().unwrap()), "1\n");
        // Written after the last poll, then rotated (rename and create), as logrotate does.
        append(&p, "2\n");
        std::fs::rename(&p, d.join("a.log.1")).unwrap();
        append(&p, "3\n");
        let c = f.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.restarted), ("2\n", false));
        let c = f.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.lines_before, c.restarted), ("3\n", 0, true));
        assert_eq!(f.poll(1 << 20).unwrap(), None);
    }

    /// Rotated to a new file with nothing in it yet: the position moves to the new file at
    /// once (a checkpoint naming the old file's offset would outlive it), then stays quiet.
    #[test]
    fn rotation_to_an_empty_file_moves_the_position_at_once() {
        let d = dir("rotate-empty");
        let p = d.join("a.log");
        append(&p, "1\n");
        let mut f = Follower::new(&p, None);
        let old = f.poll(1 << 20).unwrap().unwrap().end;
        std::fs::rename(&p, d.join("a.log.1")).unwrap();
        append(&p, "");
        let c = f.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.restarted, c.end.offset), ("", true, 0));
        assert_ne!(c.end.identity, old.identity);
        assert_eq!(f.poll(1 << 20).unwrap(), None);
        // A restart from the old position says the same.
        let mut again = Follower::new(&p, Some(old));
        let c = again.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.restarted, c.end.offset), ("", true, 0));
        assert_eq!(again.poll(1 << 20).unwrap(), None);
    }

    #[test]
    fn truncation_starts_over() {
        let d = dir("truncate");
        let p = d.join("a.log");
        append(&p, "first line\nsecond line\n");
        let mut f = Follower::new(&p, None);
        f.poll(1 << 20).unwrap().unwrap();
        // copytruncate: the same file, emptied, then written again.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        append(&p, "x\n");
        let c = f.poll(1 << 20).unwrap().unwrap();
        assert_eq!((text(&c), c.lines_before, c.restarted), ("x\n", 0, true));
    }

    /// copytruncate, then more written than was there before the next read: the file is longer
    /// than the offset, so only the bytes before the offset tell. Every new line is read, from
    /// the start, not from the middle of one (4,000 lines were lost so).
    #[test]
    fn truncation_then_regrowth_past_the_offset_starts_over() {
        let d = dir("regrow");
        let p = d.join("a.log");
        let old: String = (0..100).map(|i| format!("old record {i}\n")).collect();
        append(&p, &old);
        let mut f = Follower::new(&p, None);
        while f.poll(1 << 20).unwrap().is_some() {}
        let saved = f.position().clone();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        let new: String = (0..400)
            .map(|i| format!("new entry number {i}\n"))
            .collect();
        append(&p, &new);
        let mut got = String::new();
        let mut restarted = false;
        while let Some(c) = f.poll(1 << 20).unwrap() {
            restarted |= c.restarted;
            got.push_str(text(&c));
        }
        assert!(restarted);
        assert_eq!(got, new);
        assert_eq!(f.position().lines, 400);
        // The same from a saved position, as after a restart.
        let mut resumed = Follower::new(&p, Some(saved));
        let c = resumed.poll(1 << 20).unwrap().unwrap();
        assert!(c.restarted);
        assert_eq!(c.lines_before, 0);
        assert!(text(&c).starts_with("new entry number 0\n"));
    }

    /// A file that only grew keeps its place, chunk after chunk, however small.
    #[test]
    fn growth_alone_keeps_the_place() {
        let d = dir("grow");
        let p = d.join("a.log");
        let mut f = Follower::new(&p, None);
        let mut all = String::new();
        for i in 0..50 {
            let line = format!("{i}\n");
            append(&p, &line);
            let c = f.poll(1 << 20).unwrap().unwrap();
            assert!(!c.restarted, "line {i}");
            all.push_str(text(&c));
        }
        assert_eq!(all, (0..50).map(|i| format!("{i}\n")).collect::<String>());
    }

    #[test]
    fn big_appends_come_in_bounded_chunks() {
        let d = dir("bounded");
        let p = d.join("a.log");
        let line = "x".repeat(99) + "\n";
        append(&p, &line.repeat(100));
        let mut f = Follower::new(&p, None);
        let mut n = 0;
        while let Some(c) = f.poll(1000).unwrap() {
            assert!(c.bytes.len() <= 1000);
            n += c.bytes.len();
        }
        assert_eq!(n, 10_000);
        assert_eq!(f.position().lines, 100);
    }
}
