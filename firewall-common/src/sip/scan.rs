//! The classifier's state machine: one call to [`Classifier::step`] per line, so the XDP program
//! can drive it from a `bpf_loop` callback that the verifier checks once.

use super::{
    header::{Header, MAX_NAME_LEN},
    signature::{lower, Field, Search, SignatureTable},
    start::{self, StartLine},
    Classification, Hit, Kind, Scratch, INSPECT_LEN, SCRATCH_LEN, SCRATCH_MASK,
};

/// Calls to [`Classifier::step`] that cover any payload: every line before the empty one holds at
/// least one byte and its LF, so [`INSPECT_LEN`] bytes hold at most this many.
pub const MAX_LINES: usize = INSPECT_LEN / 2;
/// 8-byte words in [`INSPECT_LEN`] bytes, rounded up: the bound of the line-end search.
const MAX_WORDS: usize = INSPECT_LEN / 8 + 1;
/// CR and LF bytes accepted before the start line (RFC 3261 section 7.5).
const MAX_LEADING_CRLF: usize = 4;
/// The STUN magic cookie (RFC 5389 section 6), network byte order.
const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const STUN_HEADER_LEN: usize = 20;

/// Whether [`Classifier::step`] wants another call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    Done,
}

// Bits of `Classifier::seen`: the headers whose values are searched for signatures.
const SEEN_USER_AGENT: u8 = 1;
const SEEN_FROM: u8 = 2;

/// Classification in progress; plain data, so it can live in a `bpf_loop` context.
#[derive(Clone, Copy, Debug)]
pub struct Classifier {
    /// Start of the next line.
    pos: usize,
    /// Bytes to inspect, at most [`INSPECT_LEN`].
    len: usize,
    kind: Kind,
    hit: Option<Hit>,
    /// The previous header line's field, for folded continuation lines.
    field: Option<Field>,
    seen: u8,
    done: bool,
}

impl Classifier {
    /// Starts on a payload of `len` bytes at the start of the buffer; bytes past
    /// [`INSPECT_LEN`] are ignored.
    #[inline(always)]
    pub fn new(len: usize) -> Classifier {
        let len = if len > INSPECT_LEN { INSPECT_LEN } else { len };
        Classifier { pos: 0, len, kind: Kind::NotSip, hit: None, field: None, seen: 0, done: false }
    }

    /// The verdict so far; final once [`Classifier::step`] returned [`Step::Done`].
    #[inline(always)]
    pub fn result(&self) -> Classification {
        Classification { kind: self.kind, scanner: self.hit }
    }

    /// Reads one line (the first call: the start line) and updates the verdict.
    #[inline(always)]
    pub fn step(&mut self, buf: &Scratch, table: &SignatureTable) -> Step {
        self.step_with(buf, table, &|s: Search| table.run(buf, s))
    }

    /// [`Classifier::step`] with the signature search run by `find`, which gets the search
    /// set up and returns its hit: the XDP program can run it in a `bpf_loop` of its own, so the
    /// verifier checks one position, not [`VALUE_WINDOW`] of them.
    #[inline(always)]
    pub fn step_with<F: Fn(Search) -> Option<u8>>(&mut self, buf: &Scratch, table: &SignatureTable, find: &F) -> Step {
        if self.done || self.pos >= self.len {
            return self.finish();
        }
        if self.pos == 0 {
            return self.first(buf, table, find);
        }
        let s = self.pos;
        let (e, next) = line_end(buf, s, self.len);
        self.pos = next;
        if e == s {
            // the empty line that ends the headers
            return self.finish();
        }
        let c = buf[s & SCRATCH_MASK];
        if c == b' ' || c == b'\t' {
            // folded: continues the previous header's value (RFC 3261 section 7.3.1)
            return self.search(table, find, s, e);
        }
        if self.seen == SEEN_USER_AGENT | SEEN_FROM {
            // both searched and the last one not folded further: nothing left to find
            return self.finish();
        }
        let (header, value) = header_name(buf, s, e);
        self.field = match header {
            Header::UserAgent => {
                self.seen |= SEEN_USER_AGENT;
                Some(Field::UserAgent)
            }
            Header::From => {
                self.seen |= SEEN_FROM;
                Some(Field::From)
            }
            _ => None,
        };
        self.search(table, find, value, e)
    }

    /// The start line, after leading CRLFs; also tells keep-alives and STUN apart.
    #[inline(always)]
    fn first<F: Fn(Search) -> Option<u8>>(&mut self, buf: &Scratch, table: &SignatureTable, find: &F) -> Step {
        if is_stun(buf, self.len) {
            self.kind = Kind::Stun;
            return self.finish();
        }
        let mut s = 0;
        for _ in 0..MAX_LEADING_CRLF {
            let c = buf[s & SCRATCH_MASK];
            if s < self.len && (c == b'\r' || c == b'\n') {
                s += 1;
            }
        }
        if s == self.len {
            // CRLF keep-alive pings (RFC 5626 section 4.4.1)
            self.kind = Kind::Keepalive;
            return self.finish();
        }
        let (e, next) = line_end(buf, s, self.len);
        if next > self.len {
            // a start line must end within the inspected bytes
            return self.finish();
        }
        self.pos = next;
        match start::parse(buf, s, e) {
            StartLine::Invalid => self.finish(),
            StartLine::Response { status } => {
                // responses are not searched: they echo the From of the request they answer
                self.kind = Kind::Response(status);
                self.finish()
            }
            StartLine::Request { method, uri } => {
                self.kind = Kind::Request(method);
                self.field = None;
                self.field_search(table, find, uri.0, uri.1, Field::RequestUri)
            }
        }
    }

    #[inline(always)]
    fn search<F: Fn(Search) -> Option<u8>>(&mut self, table: &SignatureTable, find: &F, s: usize, e: usize) -> Step {
        match self.field {
            Some(field) => self.field_search(table, find, s, e, field),
            None => Step::Continue,
        }
    }

    #[inline(always)]
    fn field_search<F: Fn(Search) -> Option<u8>>(
        &mut self,
        table: &SignatureTable,
        find: &F,
        s: usize,
        e: usize,
        field: Field,
    ) -> Step {
        match find(table.search(s, e, field)) {
            Some(signature) => {
                self.hit = Some(Hit { signature, field });
                self.finish()
            }
            None => Step::Continue,
        }
    }

    #[inline(always)]
    fn finish(&mut self) -> Step {
        self.done = true;
        Step::Done
    }
}

/// The line starting at `s`: where its content ends (before CR LF or LF) and where the next
/// line starts. A line cut off by the end of the data ends there, and the next starts past it.
#[inline(always)]
fn line_end(buf: &Scratch, s: usize, len: usize) -> (usize, usize) {
    let lf = find_lf(buf, s, len);
    let mut e = lf;
    if e > s && buf[(e - 1) & SCRATCH_MASK] == b'\r' {
        e -= 1;
    }
    (e, lf + 1)
}

/// Index of the first LF in `buf[from..len]`, or `len`. Tests 8 bytes per step for a zero byte
/// in `word ^ 0x0a0a…` (the "haszero" bit trick) and looks at single bytes only in a word that
/// has one.
#[inline(always)]
fn find_lf(buf: &Scratch, from: usize, len: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LFS: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut p = from;
    for _ in 0..MAX_WORDS {
        if p >= len {
            return len;
        }
        // len <= INSPECT_LEN keeps p below SCRATCH_LEN - 8; the clamp shows it to the verifier
        let q = if p > SCRATCH_LEN - 8 { SCRATCH_LEN - 8 } else { p };
        // SAFETY: q + 8 <= SCRATCH_LEN, and read_unaligned has no alignment requirement.
        let w = u64::from_le(unsafe { core::ptr::read_unaligned(buf.as_ptr().add(q) as *const u64) });
        let x = w ^ LFS;
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            for k in 0..8 {
                let i = q + k;
                if i >= len {
                    return len;
                }
                if buf[i & SCRATCH_MASK] == b'\n' {
                    return i;
                }
            }
        }
        p = q + 8;
    }
    len
}

/// The header named at the start of the line `buf[s..e]` and where its value starts (after the
/// colon). Names are compared lower-cased; white space before the colon is allowed (RFC 3261
/// section 7.3.1).
#[inline(always)]
pub(crate) fn header_name(buf: &Scratch, s: usize, e: usize) -> (Header, usize) {
    let (mut lo, mut hi) = (0u64, 0u64);
    let mut n = MAX_NAME_LEN + 1;
    for k in 0..=MAX_NAME_LEN {
        let p = s + k;
        if p >= e {
            return (Header::Other, e);
        }
        let c = buf[p & SCRATCH_MASK];
        if c == b':' || c == b' ' || c == b'\t' {
            n = k;
            break;
        }
        let c = lower(c) as u64;
        if k < 8 {
            lo |= c << (8 * k);
        } else if k < 16 {
            hi |= c << (8 * (k - 8));
        }
    }
    if n > MAX_NAME_LEN || n == 0 {
        return (Header::Other, e);
    }
    // the colon, after optional white space
    for k in 0..8 {
        let p = s + n + k;
        if p >= e {
            break;
        }
        match buf[p & SCRATCH_MASK] {
            b':' => return (Header::from_packed(lo, hi, n), p + 1),
            b' ' | b'\t' => {}
            _ => break,
        }
    }
    (Header::Other, e)
}

/// A STUN message (RFC 5389 section 6): the top two bits zero and the magic cookie at byte 4.
/// SIP outbound (RFC 5626 section 4.4.2) sends these to the SIP port as keep-alives.
#[inline(always)]
fn is_stun(buf: &Scratch, len: usize) -> bool {
    len >= STUN_HEADER_LEN && buf[0] & 0xc0 == 0 && buf[4..8] == STUN_COOKIE
}
