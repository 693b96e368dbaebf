//! UTF-16 text (what PowerShell's `Out-File` and `>` write on Windows PowerShell 5, with a
//! byte-order mark) read as UTF-8, so that JSON lines, CSV and audit text in UTF-16 are read as
//! any other file, line numbers unchanged. A unit that is no character (a lone surrogate)
//! becomes U+FFFD.

use std::io::{self, BufRead, Read};

/// Reads UTF-16 (little- or big-endian, the byte-order mark already consumed) as UTF-8.
pub(crate) struct Utf16Reader<R> {
    inner: R,
    little: bool,
    /// Bytes of UTF-8 decoded but not yet read.
    out: Vec<u8>,
    at: usize,
    /// A byte of a unit whose other byte has not come yet.
    odd: Option<u8>,
    /// A high surrogate waiting for its low one.
    high: Option<u16>,
}

impl<R: BufRead> Utf16Reader<R> {
    pub(crate) fn new(inner: R, little: bool) -> Utf16Reader<R> {
        Utf16Reader {
            inner,
            little,
            out: Vec::new(),
            at: 0,
            odd: None,
            high: None,
        }
    }

    fn push(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }

    fn unit(&mut self, u: u16) {
        match (self.high.take(), u) {
            (Some(h), 0xDC00..=0xDFFF) => {
                let c = 0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(u) - 0xDC00);
                self.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            (h, 0xD800..=0xDBFF) => {
                if h.is_some() {
                    self.push('\u{FFFD}');
                }
                self.high = Some(u);
            }
            (h, _) => {
                if h.is_some() {
                    self.push('\u{FFFD}');
                }
                // A lone low surrogate is no character either.
                self.push(char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}'));
            }
        }
    }

    /// Decodes the next piece of input; false at its end.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.at = 0;
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            if self.odd.take().is_some() || self.high.take().is_some() {
                self.push('\u{FFFD}');
            }
            return Ok(!self.out.is_empty());
        }
        let bytes = buf.to_vec();
        self.inner.consume(bytes.len());
        let mut it = bytes.into_iter();
        let pair = |a: u8, b: u8, little: bool| {
            if little {
                u16::from_le_bytes([a, b])
            } else {
                u16::from_be_bytes([a, b])
            }
        };
        if let Some(a) = self.odd.take() {
            match it.next() {
                Some(b) => self.unit(pair(a, b, self.little)),
                None => self.odd = Some(a),
            }
        }
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => self.unit(pair(a, b, self.little)),
                None => self.odd = Some(a),
            }
        }
        Ok(true)
    }
}

impl<R: BufRead> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let have = self.fill_buf()?;
            let n = have.len().min(buf.len());
            buf[..n].copy_from_slice(&have[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Utf16Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at >= self.out.len() {
            if !self.refill()? {
                return Ok(&[]);
            }
        }
        Ok(&self.out[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], little: bool, chunk: usize) -> String {
        // A reader that hands `chunk` bytes at a time, to split units and surrogate pairs.
        let r = io::BufReader::with_capacity(chunk, bytes);
        let mut s = String::new();
        Utf16Reader::new(r, little).read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn little_and_big_endian_text_reads_as_utf8_whatever_the_split() {
        let text = "{\"User\":\"CORP\\\\zoë\",\"x\":\"😀\"}\nline 2\r\n";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for chunk in [1, 2, 3, 5, 64] {
            assert_eq!(read_all(&le, true, chunk), text, "chunk {chunk}");
            assert_eq!(read_all(&be, false, chunk), text, "chunk {chunk}");
        }
    }

    #[test]
    fn lone_surrogates_and_an_odd_last_byte_become_replacement_characters() {
        let mut le: Vec<u8> = Vec::new();
        for u in [0x61u16, 0xD800, 0x62, 0xDC00, 0x63] {
            le.extend_from_slice(&u.to_le_bytes());
        }
        le.push(0x64);
        assert_eq!(read_all(&le, true, 3), "a\u{FFFD}b\u{FFFD}c\u{FFFD}");
    }
}
