//! Lines of a file or pipe, read in large blocks and split with SIMD `memchr`: no copy per
//! line, no allocation per line.

use std::io::Read;

/// Bytes read at a time (the buffer grows for a longer line).
const BLOCK: usize = 1 << 20;

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader { inner, buf: vec![0; BLOCK], start: 0, end: 0, eof: false }
    }

    /// The next line without its `\n` (or `\r\n`); the last line may lack one.
    pub fn next_line(&mut self) -> std::io::Result<Option<&[u8]>> {
        let mut searched = self.start;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[searched..self.end]) {
                let (from, to) = (self.start, searched + i);
                self.start = to + 1;
                return Ok(Some(trim_cr(&self.buf[from..to])));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let from = self.start;
                self.start = self.end;
                return Ok(Some(trim_cr(&self.buf[from..self.end])));
            }
            // keep the partial line, make room, read more
            searched = self.end - self.start;
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], block: usize) -> Vec<Vec<u8>> {
        let mut r = LineReader { inner: input, buf: vec![0; block], start: 0, end: 0, eof: false };
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(l.to_vec());
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
}
