//! Incidents a hunt is done with, kept on disk until the end of the run, so that memory holds a
//! few dozen bytes per finished incident instead of the incident (its timeline and triage are
//! kilobytes): a hunt over a fleet's logs with hundreds of thousands of incidents stays within
//! the memory of one.
//!
//! The file is a temporary one (in `TMPDIR`), unlinked as soon as it is created where the
//! system allows, removed on drop otherwise. When it cannot be created the incidents stay in
//! memory and [`Spill::note`] says why.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use imdsguard_correlate::Incident;

use crate::sink::AlertSink;

/// Where an incident is, with what orders it.
struct Entry {
    first_ms: i64,
    host: Option<Box<str>>,
    id: Box<str>,
    at: At,
}

enum At {
    /// Offset and length in the file.
    File(u64, u32),
    /// In `Spill::held`.
    Held(usize),
}

/// Finished incidents, in a temporary file (or in memory when there is none).
#[derive(Default)]
pub(crate) struct Spill {
    file: Option<TempFile>,
    len: u64,
    entries: Vec<Entry>,
    held: Vec<Incident>,
    /// The incident being written.
    buf: Vec<u8>,
    /// A write failed: what was written before stays readable, the rest stays in memory.
    failed: bool,
    /// Why the incidents stay in memory, once that happened.
    pub(crate) note: Option<String>,
}

struct TempFile {
    w: BufWriter<File>,
    /// Set when the file could not be unlinked at once: removed on drop.
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn create() -> io::Result<TempFile> {
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for n in 0..16u32 {
        let path = dir.join(format!(
            "imdsguard-incidents-{}-{nanos:x}-{n}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let keep = std::fs::remove_file(&path).is_err().then_some(path);
                return Ok(TempFile {
                    w: BufWriter::with_capacity(1 << 16, f),
                    path: keep,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

impl Spill {
    /// Keeps `i` until [`Spill::drain`].
    pub(crate) fn push(&mut self, i: Incident) {
        let first_ms = i.timeline.first().map_or(0, |s| s.time_ms);
        let host = i.host.as_deref().map(Box::from);
        let id = Box::from(i.id.as_str());
        if self.file.is_none() && self.note.is_none() {
            match create() {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    self.note = Some(format!(
                        "incidents kept in memory: no temporary file in {} ({e})",
                        std::env::temp_dir().display()
                    ))
                }
            }
        }
        let buf = &mut self.buf;
        let written = self
            .file
            .as_mut()
            .filter(|_| !self.failed)
            .map(|f| -> io::Result<u32> {
                buf.clear();
                serde_json::to_writer(&mut *buf, &i)?;
                f.w.write_all(buf)?;
                u32::try_from(buf.len()).map_err(io::Error::other)
            });
        let at = match written {
            Some(Ok(n)) => {
                let at = At::File(self.len, n);
                self.len += u64::from(n);
                at
            }
            Some(Err(e)) => {
                self.note = Some(format!(
                    "incidents kept in memory: the temporary file failed ({e})"
                ));
                self.failed = true;
                self.held.push(i);
                At::Held(self.held.len() - 1)
            }
            None => {
                self.held.push(i);
                At::Held(self.held.len() - 1)
            }
        };
        self.entries.push(Entry {
            first_ms,
            host,
            id,
            at,
        });
    }

    /// Hands every incident to `each` by first alert time, then host, then id: the order of
    /// [`imdsguard_correlate::Incidents::all`].
    pub(crate) fn drain(mut self, sink: &mut dyn AlertSink) -> io::Result<()> {
        self.entries
            .sort_by(|a, b| (a.first_ms, &a.host, &a.id).cmp(&(b.first_ms, &b.host, &b.id)));
        let mut file = match self.file.take() {
            Some(mut f) => {
                f.w.flush()?;
                let mut r = f.w.get_ref().try_clone()?;
                r.seek(SeekFrom::Start(0))?;
                // `f` stays alive until the end: its drop removes a file not yet unlinked.
                Some((f, BufReader::with_capacity(1 << 16, r), 0u64))
            }
            None => None,
        };
        let mut buf = Vec::new();
        for e in &self.entries {
            match e.at {
                At::Held(n) => sink.incident(&self.held[n])?,
                At::File(off, len) => {
                    let (_, r, pos) = file
                        .as_mut()
                        .ok_or_else(|| io::Error::other("the temporary file is gone"))?;
                    // Incidents mostly finish in the order they began: read on where possible.
                    if *pos != off {
                        r.seek(SeekFrom::Start(off))?;
                    }
                    buf.resize(len as usize, 0);
                    r.read_exact(&mut buf)?;
                    *pos = off + u64::from(len);
                    if !sink.incident_json(&buf)? {
                        let i: Incident = serde_json::from_slice(&buf)?;
                        sink.incident(&i)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Collect;

    fn incident(id: &str, host: &str, first_ms: i64) -> Incident {
        serde_json::from_value(serde_json::json!({
            "incident_id": id,
            "host": host,
            "first": "t",
            "last": "t",
            "severity": "high",
            "severity_reason": "",
            "stages": [],
            "alerts": 1,
            "timeline": [{
                "time": "t", "time_ms": first_ms, "alert_id": format!("a-{id}"),
                "rule_id": "IMDS-001", "title": "x", "severity": "high", "stages": [],
                "what": "x", "source": "x:1"
            }],
            "worst": "high",
            "last_ms": first_ms,
        }))
        .unwrap()
    }

    /// A sink that takes incidents as JSON, as the JSON-lines output does.
    #[derive(Default)]
    struct Raw(Vec<String>);

    impl AlertSink for Raw {
        fn alert(&mut self, _: &imdsguard_rules::Alert) -> io::Result<()> {
            Ok(())
        }
        fn incident_json(&mut self, json: &[u8]) -> io::Result<bool> {
            self.0.push(String::from_utf8(json.to_vec()).unwrap());
            Ok(true)
        }
    }

    #[test]
    fn incidents_come_back_from_the_file_in_first_alert_order() {
        let mut spill = Spill::default();
        // Finished out of order, as incidents of different hosts do.
        let order = [(30, "c"), (10, "b"), (10, "a"), (20, "z"), (5, "q")];
        for (n, (t, h)) in order.iter().enumerate() {
            spill.push(incident(&format!("INC-{n}"), h, *t));
        }
        assert!(spill.held.is_empty(), "{:?}", spill.note);
        assert!(spill.file.is_some());
        let mut got = Collect::default();
        spill.drain(&mut got).unwrap();
        let keys: Vec<(i64, String)> = got
            .incidents
            .iter()
            .map(|i| (i.timeline[0].time_ms, i.host.clone().unwrap()))
            .collect();
        let want: Vec<(i64, String)> = [(5, "q"), (10, "a"), (10, "b"), (20, "z"), (30, "c")]
            .iter()
            .map(|(t, h)| (*t, h.to_string()))
            .collect();
        assert_eq!(keys, want);
        // What comes back is what went in.
        assert_eq!(got.incidents[0], incident("INC-4", "q", 5));
    }

    #[test]
    fn a_sink_that_writes_json_gets_the_bytes_serde_writes() {
        let mut spill = Spill::default();
        spill.push(incident("INC-1", "h", 2));
        spill.push(incident("INC-0", "h", 1));
        let mut raw = Raw::default();
        spill.drain(&mut raw).unwrap();
        assert_eq!(raw.0.len(), 2);
        assert_eq!(
            raw.0[0],
            serde_json::to_string(&incident("INC-0", "h", 1)).unwrap()
        );
        assert!(raw.0[1].contains("\"INC-1\""));
    }
}
