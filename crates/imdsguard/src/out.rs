//! Where a command writes and in which JSON shape: the one vocabulary every command shares
//! (`-o FILE`, `--output jsonl` for one value a line, `--output json` for one array).

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

/// `-o FILE` (created, buffered) or standard output, and whether that is a terminal.
pub(crate) fn destination(path: Option<&PathBuf>) -> Result<(Box<dyn Write>, bool)> {
    Ok(match path {
        Some(p) => (
            Box::new(BufWriter::new(
                File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            )),
            false,
        ),
        None => (
            Box::new(BufWriter::new(io::stdout())),
            io::stdout().is_terminal(),
        ),
    })
}

/// JSON values written one a line (`jsonl`) or as the elements of one array (`json`), which
/// [`JsonItems::finish`] closes (`[]` when there were none).
pub(crate) struct JsonItems<W: Write> {
    pub(crate) w: W,
    array: bool,
    count: u64,
    finished: bool,
}

impl<W: Write> JsonItems<W> {
    pub(crate) fn new(w: W, array: bool) -> Self {
        JsonItems {
            w,
            array,
            count: 0,
            finished: false,
        }
    }

    /// One value, already serialized.
    pub(crate) fn raw(&mut self, json: &[u8]) -> io::Result<()> {
        if self.array {
            self.w
                .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
            self.w.write_all(json)?;
        } else {
            self.w.write_all(json)?;
            self.w.write_all(b"\n")?;
        }
        self.count += 1;
        Ok(())
    }

    /// One value.
    pub(crate) fn item<T: serde::Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        let json = serde_json::to_vec(v)?;
        self.raw(&json)
    }

    /// Closes the array (once; nothing for lines) and flushes.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if self.array && !self.finished {
            self.w
                .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.finished = true;
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(array: bool, items: &[serde_json::Value]) -> String {
        let mut j = JsonItems::new(Vec::new(), array);
        for i in items {
            j.item(i).unwrap();
        }
        j.finish().unwrap();
        j.finish().unwrap();
        String::from_utf8(j.w).unwrap()
    }

    #[test]
    fn lines_or_one_array_that_parses_back() {
        let items = [serde_json::json!({"a": 1}), serde_json::json!({"b": [2]})];
        assert_eq!(written(false, &items), "{\"a\":1}\n{\"b\":[2]}\n");
        let array = written(true, &items);
        let back: Vec<serde_json::Value> = serde_json::from_str(&array).unwrap();
        assert_eq!(back, items);
        assert_eq!(written(true, &[]), "[]\n");
        assert_eq!(written(false, &[]), "");
    }
}
