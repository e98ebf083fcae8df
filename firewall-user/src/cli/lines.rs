//! Lines of a file or pipe, read in large blocks and split with SIMD `memchr`: no copy per
//! line, no allocation per line. Each block's complete lines are checked for UTF-8 in one
//! pass, so a line of a valid block comes out as text without a check of its own.

use std::{borrow::Cow, io::Read};

/// Bytes read at a time (the buffer grows for a longer line).
const BLOCK: usize = 1 << 20;

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// `buf[..valid]` is known to be UTF-8 and ends at a line end (or is empty).
    valid: usize,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_block(inner, BLOCK)
    }

    fn with_block(inner: R, block: usize) -> Self {
        LineReader { inner, buf: vec![0; block], start: 0, end: 0, valid: 0, eof: false }
    }

    /// The next line as text (invalid UTF-8 replaced, as `String::from_utf8_lossy` does).
    pub fn next_text(&mut self) -> std::io::Result<Option<Cow<'_, str>>> {
        let Some((from, to)) = self.next_range()? else { return Ok(None) };
        let line = &self.buf[from..to];
        if to <= self.valid {
            // SAFETY: `buf[..valid]` is UTF-8, and the line was cut from it at `\n` and `\r`,
            // ASCII bytes, which never fall inside a multi-byte character.
            return Ok(Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(line) })));
        }
        Ok(Some(match crate::detection::detect::utf8(line) {
            Some(l) => Cow::Borrowed(l),
            None => String::from_utf8_lossy(line),
        }))
    }

    /// Where the next line is in `buf`, without its `\n` (or `\r\n`); the last line may lack
    /// one.
    fn next_range(&mut self) -> std::io::Result<Option<(usize, usize)>> {
        let mut searched = self.start;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[searched..self.end]) {
                let (from, to) = (self.start, searched + i);
                self.start = to + 1;
                return Ok(Some(trim_cr(&self.buf, from, to)));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let from = self.start;
                self.start = self.end;
                return Ok(Some(trim_cr(&self.buf, from, self.end)));
            }
            // keep the partial line, make room, read more
            searched = self.end - self.start;
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.valid = self.valid.saturating_sub(self.start);
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.check_utf8();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks the complete lines after `valid` in one pass; on invalid bytes, leaves them to be
    /// checked line by line.
    fn check_utf8(&mut self) {
        let from = self.valid.max(self.start);
        let Some(last) = memchr::memrchr(b'\n', &self.buf[from..self.end]) else { return };
        let to = from + last + 1;
        if crate::detection::detect::utf8(&self.buf[from..to]).is_some() {
            self.valid = to;
        }
    }
}

/// `from..to` without a trailing `\r`.
fn trim_cr(buf: &[u8], from: usize, to: usize) -> (usize, usize) {
    (from, if to > from && buf[to - 1] == b'\r' { to - 1 } else { to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], block: usize) -> Vec<Vec<u8>> {
        let mut r = LineReader::with_block(input, block);
        let mut out = Vec::new();
        while let Some((from, to)) = r.next_range().unwrap() {
            out.push(r.buf[from..to].to_vec());
        }
        out
    }

    #[test]
    fn splits_lines_across_blocks_and_keeps_the_last_partial_line() {
        let input = b"first\nsecond line\r\n\nthird, longer than a block\nlast";
        for block in [1, 3, 7, 64] {
            assert_eq!(
                all(input, block),
                vec![
                    b"first".to_vec(),
                    b"second line".to_vec(),
                    b"".to_vec(),
                    b"third, longer than a block".to_vec(),
                    b"last".to_vec()
                ],
                "block {block}"
            );
        }
        assert!(all(b"", 4).is_empty());
        assert_eq!(all(b"one\n", 2), vec![b"one".to_vec()]);
    }

    #[test]
    fn text_is_checked_by_block_and_invalid_lines_are_replaced() {
        let input = "caf\u{e9}\n\u{1f600} ok\nlast \u{e9}".as_bytes().to_vec();
        let mut bad = input;
        bad.extend_from_slice(b"\nbad \xff byte\n\xe2\x82 cut\nfine\n");
        for block in [1, 2, 3, 5, 8, 64, 4096] {
            let mut r = LineReader::with_block(&bad[..], block);
            let mut got = Vec::new();
            while let Some(l) = r.next_text().unwrap() {
                got.push(l.into_owned());
            }
            assert_eq!(
                got,
                ["caf\u{e9}", "\u{1f600} ok", "last \u{e9}", "bad \u{fffd} byte", "\u{fffd} cut", "fine"],
                "block {block}"
            );
        }
    }
}
