//! The manager interface's stream cut into blocks: `Key: Value` lines ended by an empty line.

use std::collections::VecDeque;

use crate::detection::sources::file::MAX_LINE;

/// A complete block of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Block {
    /// Its lines, without `\r`, joined by `\n`.
    Lines(Vec<u8>),
    /// It was longer than `MAX_LINE`, and dropped whole.
    Dropped,
}

/// Cuts the stream into blocks of lines ended by an empty line. Lines end with `\n`, one `\r`
/// before it dropped: a lone `\r` stays in its value.
#[derive(Default)]
pub struct Framer {
    /// The block so far: complete lines, each followed by `\n`, then the current line.
    block: Vec<u8>,
    line_start: usize,
    /// Bytes of the current line, and its first.
    line_len: usize,
    line_first: u8,
    skipping: bool,
    pub ready: VecDeque<Block>,
    pub dropped: u64,
}

impl Framer {
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let end = memchr::memchr(b'\n', data);
            let part = &data[..end.unwrap_or(data.len())];
            if self.line_len == 0 {
                self.line_first = part.first().copied().unwrap_or(0);
            }
            self.line_len += part.len();
            if !self.skipping {
                self.block.extend_from_slice(part);
                // the record, its last `\n` and one `\r`
                if self.block.len() > MAX_LINE + 2 {
                    self.skip();
                }
            }
            let Some(i) = end else { break };
            self.end_line();
            data = &data[i + 1..];
        }
    }

    fn skip(&mut self) {
        self.skipping = true;
        self.block.clear();
        self.line_start = 0;
    }

    fn end_line(&mut self) {
        let blank = self.line_len == 0 || (self.line_len == 1 && self.line_first == b'\r');
        self.line_len = 0;
        if self.skipping {
            if blank {
                self.skipping = false;
                self.dropped += 1;
                self.ready.push_back(Block::Dropped);
            }
            return;
        }
        if self.block.last() == Some(&b'\r') && self.block.len() > self.line_start {
            self.block.pop();
        }
        if !blank {
            self.block.push(b'\n');
            self.line_start = self.block.len();
            return;
        }
        self.block.truncate(self.line_start.saturating_sub(1));
        let text = std::mem::take(&mut self.block);
        self.line_start = 0;
        if text.len() > MAX_LINE {
            self.dropped += 1;
            self.ready.push_back(Block::Dropped);
        } else if !text.is_empty() {
            self.ready.push_back(Block::Lines(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(f: &mut Framer) -> Vec<Block> {
        f.ready.drain(..).collect()
    }

    fn lines(s: &str) -> Block {
        Block::Lines(s.as_bytes().to_vec())
    }

    #[test]
    fn blocks_are_cut_wherever_the_reads_end() {
        let stream = "Response: Success\r\nPing: Pong\r\n\r\nEvent: A\r\nKey: v\rw\r\n\r\n\r\nEvent: B\nX: \n\n";
        let want = [lines("Response: Success\nPing: Pong"), lines("Event: A\nKey: v\rw"), lines("Event: B\nX: ")];
        for size in 1..stream.len() {
            let mut f = Framer::default();
            for chunk in stream.as_bytes().chunks(size) {
                f.push(chunk);
            }
            assert_eq!(blocks(&mut f), want, "chunks of {size}");
        }
        let mut f = Framer::default();
        f.push(b"Event: C\r\nKey: v\r\n");
        assert!(f.ready.is_empty(), "a block is complete at its empty line only");
    }

    #[test]
    fn an_overlong_block_is_dropped_whole_and_counted() {
        let mut f = Framer::default();
        let long = "x".repeat(MAX_LINE);
        f.push(format!("Event: A\r\nKey: {long}\r\nRemoteAddress: IPV4/TCP/192.0.2.1/1\r\n\r\n").as_bytes());
        f.push(b"Event: B\r\n\r\n");
        // one line that never ends holds no memory: it is skipped as it comes
        f.push(b"Event: C\r\nKey: ");
        for _ in 0..100 {
            f.push(long.as_bytes());
            assert!(f.block.len() <= MAX_LINE + 2);
        }
        f.push(b"\r\nMore: 1\r\n\r\nEvent: D\r\n\r\n");
        assert_eq!(blocks(&mut f), [Block::Dropped, lines("Event: B"), Block::Dropped, lines("Event: D")]);
        assert_eq!(f.dropped, 2);
        // exactly MAX_LINE is kept
        let fits = format!("Event: E\nK: {}", "y".repeat(MAX_LINE - "Event: E\nK: ".len()));
        f.push(format!("{fits}\r\n\r\n").as_bytes());
        assert_eq!(blocks(&mut f), [lines(&fits)]);
    }
}
