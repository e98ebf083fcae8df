//! The classifier's state machine: the start line, then the header block a few words and at
//! most one line per call, then the signature search 8 bytes per call, so the XDP program can
//! drive the last two from `bpf_loop` callbacks that the verifier checks once.

use super::{
    header::{name_at, Header},
    signature::{word_starts, Field, SignatureTable, SIGNATURE_LEN, VALUE_WINDOW},
    start::{self, StartLine},
    word::{byte, find, first_byte, load, load_near, min, opaque, zero_bytes_exact, HIGHS, ONES},
    Classification, Hit, Kind, Method, Scratch, INSPECT_LEN, SCRATCH_MASK,
};

/// Words of the header block [`Classifier::headers`] reads per call, at most.
const SCAN_WORDS: usize = 16;
/// Lines [`Classifier::headers`] reads in a message, at most: those that start like a wanted
/// header or end an open value, one call each. The walk ends at the next such line, so what
/// follows it is not searched, as with bytes past [`INSPECT_LEN`]; a tool that hides its
/// User-Agent that way could as well leave it out.
pub const MAX_READ_LINES: usize = 32;
/// Calls to [`Classifier::headers`] that cover any payload: the words, plus one call per line
/// it reads, plus the call that ends the walk at the line past [`MAX_READ_LINES`].
pub const MAX_HEADER_STEPS: usize = INSPECT_LEN / (8 * SCAN_WORDS) + 1 + MAX_READ_LINES + 1;
/// Words read to find the end of a value's line.
const VALUE_WORDS: usize = (VALUE_WINDOW + SIGNATURE_LEN) / 8 + 1;
/// Fields searched, in this order: [`Field`] ids.
const FIELDS: usize = 3;
/// Calls to [`Classifier::search`] that cover every field: one per word start that may begin a
/// signature (at most 4 per 8 bytes of a window), plus one per field to move on.
pub const MAX_SEARCH_STEPS: usize = FIELDS * (4 * VALUE_WINDOW / 8 + 1);
/// 8-byte words in [`INSPECT_LEN`] bytes, rounded up: the bound of the line-end search.
const MAX_WORDS: usize = INSPECT_LEN / 8 + 1;
/// CR and LF bytes accepted before the start line (RFC 3261 section 7.5).
const MAX_LEADING_CRLF: usize = 4;
/// The STUN magic cookie (RFC 5389 section 6), network byte order.
const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const STUN_HEADER_LEN: usize = 20;

/// Whether a step wants another call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    Done,
}

// Bits of `Classifier::seen`: the headers whose values are searched for signatures.
const SEEN_USER_AGENT: u32 = 1 << Field::UserAgent as u32;
const SEEN_FROM: u32 = 1 << Field::From as u32;

// `Classifier::kind` values.
const NOT_SIP: u32 = 0;
const KEEPALIVE: u32 = 1;
const STUN: u32 = 2;
const REQUEST: u32 = 3;
const RESPONSE: u32 = 4;

/// Classification in progress. Plain 32-bit fields, so it can live in a map value the kernel's
/// `bpf_loop` callbacks read afresh on every call (the verifier then checks each callback
/// once, whatever the number of calls).
///
/// Two passes: [`Classifier::first`] and [`Classifier::headers`] read the start line and the
/// header lines and note where the Request-URI, `User-Agent` and `From` values lie;
/// [`Classifier::search`] then looks for signatures in those spans, 8 bytes per call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Classifier {
    /// Where the header walk goes on (it starts at the start line's LF).
    pos: u32,
    /// Bytes to inspect, at most [`INSPECT_LEN`].
    len: u32,
    kind: u32,
    /// The method id of a request, the status of a response.
    detail: u32,
    /// Signature index + 1 (0: none), and the field in bits 8..16.
    hit: u32,
    /// The field + 1 (0: none) whose value is open: its end is the end of its line, or of the
    /// last line folded into it.
    open: u32,
    seen: u32,
    done: u32,
    /// Per [`Field`] id: the value's span (start, end); empty when absent.
    spans: [[u32; 2]; FIELDS],
    /// Lines the header walk read (see [`MAX_READ_LINES`]).
    lines: u32,
    /// The next field to search.
    search_field: u32,
    /// Where the start line ended, read back through memory (see [`Classifier::launder`]).
    lf: u32,
    /// Where the search goes on in the current field (0: at its start), 8 bytes at a time;
    /// whether the byte before it is a letter or digit (0x80) or not (0), with how many of the
    /// 8 bytes at `search_pos` were looked at already in the low 4 bits.
    search_pos: u32,
    search_carry: u32,
    /// The word start (+ 1; 0: none) where the search compares signatures.
    candidate: u32,
}

// `Classifier::reset` writes it as 32-bit words.
const _: () = assert!(size_of::<Classifier>() & 3 == 0 && align_of::<Classifier>() == 4);

impl Classifier {
    /// Starts on a payload of `len` bytes at the start of the buffer; bytes past
    /// [`INSPECT_LEN`] are ignored.
    #[inline(always)]
    pub fn new(len: usize) -> Classifier {
        let len = if len > INSPECT_LEN { INSPECT_LEN } else { len };
        Classifier { len: len as u32, ..Classifier::default() }
    }

    /// Starts over on a payload of `len` bytes, one field at a time: a copy of a whole
    /// [`Classifier`] into map memory would be a call to a byte loop on BPF.
    #[inline(always)]
    pub fn reset(&mut self, len: usize) {
        let fresh = Classifier::new(len);
        let from = (&raw const fresh).cast::<u32>();
        let to = core::ptr::from_mut(self).cast::<u32>();
        for i in 0..size_of::<Classifier>() / 4 {
            // SAFETY: both point to a `Classifier`, which is 32-bit fields alone; volatile so the
            // stores stay stores.
            unsafe { core::ptr::write_volatile(to.add(i), *from.add(i)) };
        }
    }

    /// The payload bytes inspected (the copy's length).
    #[inline(always)]
    pub fn inspected(&self) -> usize {
        self.len as usize
    }

    /// The verdict; final once [`Classifier::search`] returned [`Step::Done`].
    #[inline(always)]
    pub fn result(&self) -> Classification {
        let kind = match self.kind {
            KEEPALIVE => Kind::Keepalive,
            STUN => Kind::Stun,
            REQUEST => Kind::Request(Method::from_id(self.detail)),
            RESPONSE => Kind::Response(self.detail as u16),
            _ => Kind::NotSip,
        };
        let scanner = self.hit().map(|(i, f)| Hit { signature: i as u8, field: Field::from_id(f) });
        Classification { kind, scanner }
    }

    /// The method id of a request (the start line read); `None` for anything else. An id,
    /// not a [`Method`]: a value read back from map memory is bounded by the code that uses it,
    /// which the verifier sees, not by an enum's range, which only the compiler assumes.
    #[inline(always)]
    pub fn method_id(&self) -> Option<u32> {
        if self.kind == REQUEST {
            Some(self.detail)
        } else {
            None
        }
    }

    /// The scanner signature found, if any: (index, [`Field`] id).
    #[inline(always)]
    pub fn hit(&self) -> Option<(u32, u32)> {
        match self.hit & 0xff {
            0 => None,
            i => Some((i - 1, self.hit >> 8)),
        }
    }

    /// Whether the payload is a SIP message, a keep-alive or STUN.
    #[inline(always)]
    pub fn is_sip(&self) -> bool {
        self.kind != NOT_SIP
    }

    /// Runs the whole classification with plain loops (userspace and tests; the kernel drives
    /// the same steps from `bpf_loop`), after sealing `buf` ([`super::seal`]).
    pub fn run(&mut self, buf: &mut Scratch, table: &SignatureTable) {
        super::seal(buf, self.len as usize);
        if self.first(buf) == Step::Continue {
            for _ in 0..MAX_HEADER_STEPS {
                if self.headers(buf) == Step::Done {
                    break;
                }
            }
        }
        for _ in 0..MAX_SEARCH_STEPS {
            if self.search(buf, table) == Step::Done {
                break;
            }
        }
    }

    /// Reads up to [`SCAN_WORDS`] words of the header block for the next line it must read (see
    /// [`wanted_lines`]), then reads that line ([`Classifier::line`]): one line per call, and
    /// none of the lines in between. `buf` must be sealed ([`super::seal`]). What the kernel's
    /// header callback runs.
    #[inline(always)]
    pub fn headers(&mut self, buf: &Scratch) -> Step {
        if self.done != 0 {
            return Step::Done;
        }
        let len = self.len as usize & SCRATCH_MASK;
        let mut p = self.pos as usize & SCRATCH_MASK;
        // while a value is open every line end matters: it ends the value or folds into it
        let open = if self.open != 0 { HIGHS } else { 0 };
        let mut at = usize::MAX;
        // the buffer is sealed: the empty line after the data ends the walk at the latest
        for _ in 0..SCAN_WORDS {
            let lf = zero_bytes_exact(load_near(buf, p) ^ (ONES * b'\n' as u64));
            if lf != 0 {
                // byte i of `next` follows byte i of the word: the first byte of a line
                let next = load_near(buf, p + 1);
                let wanted = lf & (wanted_lines(next) | open);
                if wanted != 0 {
                    at = p + first_byte(wanted);
                    break;
                }
            }
            p += 8;
        }
        if at == usize::MAX {
            self.pos = p as u32;
            return Step::Continue;
        }
        // read back from the state: one range for the line whichever word it was found in
        let s = self.launder(at + 1);
        self.pos = s as u32;
        self.lines += 1;
        if self.lines > MAX_READ_LINES as u32 {
            self.close(line_content_end(buf, s - 1));
            return self.finish();
        }
        match self.line(buf, s, len) {
            Step::Continue => Step::Continue,
            Step::Done => self.finish(),
        }
    }

    /// The line starting at `s` (after an LF): ends an open value unless it is folded into it,
    /// ends the headers when empty, and reads the value of a `User-Agent` or `From` header.
    #[inline(always)]
    fn line(&mut self, buf: &Scratch, s: usize, len: usize) -> Step {
        let c = if s < len { byte(buf, s) } else { b'\n' };
        let folded = c == b' ' || c == b'\t';
        if !folded {
            // the line before ended at its LF, or at its CR LF
            self.close(line_content_end(buf, s - 1));
        }
        if c == b'\r' || c == b'\n' || (self.seen == SEEN_USER_AGENT | SEEN_FROM && self.open == 0) {
            // the empty line that ends the headers, the end of the data, or nothing left to find
            return Step::Done;
        }
        // only User-Agent, From and f are wanted
        let first = c | 0x20;
        if folded || (first != b'u' && first != b'f') {
            return Step::Continue;
        }
        let (header, value) = name_at(buf, s, len);
        let field = match header {
            Header::UserAgent => Field::UserAgent,
            Header::From => Field::From,
            _ => return Step::Continue,
        };
        let bit = 1 << field as u32;
        if self.seen & bit != 0 {
            // the first of each: a repeated header is not searched
            return Step::Continue;
        }
        self.seen |= bit;
        self.open = field as u32 + 1;
        self.spans[field as usize & 3] = [value as u32, len as u32];
        self.value_end(buf, value, len)
    }

    /// Ends the value just opened at `value` where its line ends, when that is within the bytes
    /// the search reads and no line folds into it; the walk goes on from that line end. A
    /// longer value stays open: the walk ends it at the next line end it reads.
    #[inline(always)]
    fn value_end(&mut self, buf: &Scratch, value: usize, len: usize) -> Step {
        let limit = value + VALUE_WINDOW + SIGNATURE_LEN;
        let limit = if limit < len { limit } else { len };
        let lf = self.launder(find::<VALUE_WORDS>(buf, value, limit, b'\n'));
        if lf >= limit {
            // the search never reads past `limit`: the value may end there
            if limit < len {
                self.close(limit);
                self.pos = limit as u32;
            }
            return Step::Continue;
        }
        let c = if lf + 1 < len { byte(buf, lf + 1) } else { b'\n' };
        if c == b' ' || c == b'\t' {
            // folded: the walk reads on from this line end with the value open
            self.pos = lf as u32;
            return Step::Continue;
        }
        self.close(line_content_end(buf, lf));
        if self.seen == SEEN_USER_AGENT | SEEN_FROM {
            return self.finish();
        }
        self.pos = lf as u32;
        Step::Continue
    }

    /// Ends the open value at `e`.
    #[inline(always)]
    fn close(&mut self, e: usize) {
        // one 64-bit compare on the index itself: a compare of a 32-bit copy does not bound
        // it for every verifier
        let i = opaque((self.open as usize).wrapping_sub(1));
        if i < FIELDS {
            self.spans[i][1] = e as u32;
        }
        self.open = 0;
    }

    /// The start line, after leading CRLFs; also tells keep-alives and STUN apart.
    #[inline(always)]
    pub fn first(&mut self, buf: &Scratch) -> Step {
        let len = self.len as usize & SCRATCH_MASK;
        if is_stun(buf, len) {
            self.kind = STUN;
            return self.finish();
        }
        // leading CR and LF bytes, counted without a branch per byte (each count would be a
        // path of its own for the verifier)
        let w = load(buf, 0);
        let crlf = zero_bytes_exact(w ^ (ONES * b'\r' as u64)) | zero_bytes_exact(w ^ (ONES * b'\n' as u64));
        let other = !crlf & HIGHS;
        let lead = if other == 0 { 8 } else { first_byte(other) };
        let lead = if lead > MAX_LEADING_CRLF { MAX_LEADING_CRLF } else { lead };
        let s = if lead > len { len } else { lead };
        if s == len {
            // CRLF keep-alive pings (RFC 5626 section 4.4.1)
            self.kind = if len == 0 { NOT_SIP } else { KEEPALIVE };
            return self.finish();
        }
        let (e, next) = self.line_end(buf, s, len);
        if next > len {
            // a start line must end within the inspected bytes
            return self.finish();
        }
        // the header walk starts at the start line's LF
        self.pos = (next - 1) as u32;
        match start::parse(buf, s, e) {
            StartLine::Invalid => self.finish(),
            StartLine::Response { status } => {
                // responses are not searched: they echo the From of the request they answer
                self.kind = RESPONSE;
                self.detail = status as u32;
                self.finish()
            }
            StartLine::Request { method, uri } => {
                self.kind = REQUEST;
                self.detail = method as u32;
                self.spans[Field::RequestUri as usize] = [uri.0 as u32, uri.1 as u32];
                Step::Continue
            }
        }
    }

    /// Looks for signatures in the current field's value; [`Step::Done`] after a hit or the
    /// last field. What the kernel's search callback runs. The value's window is read 8 bytes
    /// per turn of a loop for the first word start that may begin a signature
    /// ([`SignatureTable::candidates`]); there the signatures are compared
    /// ([`SignatureTable::match_at`]), and without a hit the next call goes on after it. A value
    /// in which no word starts like a signature (a legitimate request's, as a rule) costs one
    /// call, where a call per 8 bytes cost about as much again as their search.
    #[inline(always)]
    pub fn search(&mut self, buf: &Scratch, table: &SignatureTable) -> Step {
        let f = self.search_field as usize;
        if self.kind != REQUEST || self.hit != 0 || f >= FIELDS {
            return Step::Done;
        }
        let wanted = table.by_field[f & 3];
        if wanted != 0 {
            if self.search_pos == 0 {
                self.search_pos = self.spans[f][0];
            }
            let (mut p, stop, mut carry, mut skip) = self.search_at(f);
            for _ in 0..VALUE_WINDOW / 8 {
                if p >= stop {
                    break;
                }
                let (starts, next) = word_starts(buf, p, stop, carry);
                let candidates = table.candidates(buf, p, starts & !skip);
                if candidates != 0 {
                    // compared below; the next call looks on past this word start
                    let k = first_byte(candidates);
                    self.candidate = (p + k + 1) as u32;
                    (self.search_pos, self.search_carry) = (p as u32, (carry | (k as u64 + 1)) as u32);
                    break;
                }
                (p, carry, skip) = (p + 8, next, 0);
            }
            // SAFETY: a read of a field of `self`; volatile, so that every way out of the loop
            // comes here with the same state for the verifier.
            if unsafe { core::ptr::read_volatile(&self.candidate) } != 0 {
                return self.compare(buf, table, f, wanted);
            }
        }
        self.search_field += 1;
        (self.search_pos, self.search_carry) = (0, 0);
        if f + 1 < FIELDS {
            Step::Continue
        } else {
            Step::Done
        }
    }

    /// Compares the signatures for `wanted` at the candidate word start of field `f`.
    #[inline(always)]
    fn compare(&mut self, buf: &Scratch, table: &SignatureTable, f: usize, wanted: u32) -> Step {
        let at = (self.candidate as usize).wrapping_sub(1) & SCRATCH_MASK;
        self.candidate = 0;
        let end = self.spans[f][1] as usize & SCRATCH_MASK;
        if let Some(i) = table.match_at(buf, at, end, wanted) {
            self.hit = (i as u32 + 1) | (f as u32) << 8;
            return Step::Done;
        }
        Step::Continue
    }

    /// Where the search of field `f` goes on, where its window ends, the carry, and a mask of
    /// the first 8 bytes that were looked at already. No branch: the window's end is a minimum
    /// in arithmetic, so that the search loop starts from one state for the verifier, where a
    /// compare would give it two (one per bound), each walked through every turn.
    #[inline(always)]
    fn search_at(&self, f: usize) -> (usize, usize, u64, u64) {
        // SAFETY: reads of fields of `self`; volatile so that the compiler keeps them reads.
        let (p, carry, [start, end]) = unsafe {
            (
                core::ptr::read_volatile(&self.search_pos),
                core::ptr::read_volatile(&self.search_carry),
                core::ptr::read_volatile(&self.spans[f]),
            )
        };
        let (start, end) = (start as usize & SCRATCH_MASK, end as usize & SCRATCH_MASK);
        // the low `skip` bytes (0 to 8; two shifts, as one of 64 would be undefined)
        let skip = carry as u64 & 15;
        let skipped = (1u64 << (4 * skip) << (4 * skip)).wrapping_sub(1);
        (p as usize & SCRATCH_MASK, min(end, start + VALUE_WINDOW), carry as u64 & 0x80, skipped)
    }

    /// The line starting at `s`: where its content ends (before CR LF or LF) and where the next
    /// line starts. A line cut off by the end of the data ends there, and the next starts past
    /// it.
    #[inline(always)]
    fn line_end(&mut self, buf: &Scratch, s: usize, len: usize) -> (usize, usize) {
        let lf = self.launder(find_lf(buf, s, len));
        let mut e = lf;
        if e > s && byte(buf, e - 1) == b'\r' {
            e -= 1;
        }
        (e, lf + 1)
    }

    /// `x` (below [`SCRATCH_MASK`]) written to the state and read back. In the kernel the state
    /// is map memory, whose contents the verifier does not track: the search loop's exits, each
    /// with its own range for `x`, become one state, checked once instead of once per exit.
    #[inline(always)]
    fn launder(&mut self, x: usize) -> usize {
        self.lf = x as u32;
        // SAFETY: a read of a field of `self`; volatile so the compiler does not reuse `x`.
        (unsafe { core::ptr::read_volatile(&self.lf) }) as usize & SCRATCH_MASK
    }

    #[inline(always)]
    fn finish(&mut self) -> Step {
        self.done = 1;
        Step::Done
    }
}

/// The high bit of each byte of `w` that starts a line the walk must read: `u` or `f` in either
/// case (`User-Agent`, `From`, `f`), or CR or LF (the empty line that ends the headers).
#[inline(always)]
fn wanted_lines(w: u64) -> u64 {
    let lower = w | (ONES * 0x20);
    zero_bytes_exact(lower ^ (ONES * b'u' as u64))
        | zero_bytes_exact(lower ^ (ONES * b'f' as u64))
        | zero_bytes_exact(w ^ (ONES * b'\r' as u64))
        | zero_bytes_exact(w ^ (ONES * b'\n' as u64))
}

/// Where the content of the line whose LF is at `lf` ends: before its CR LF or its LF.
#[inline(always)]
fn line_content_end(buf: &Scratch, lf: usize) -> usize {
    if lf >= 1 && byte(buf, lf - 1) == b'\r' {
        lf - 1
    } else {
        lf
    }
}

/// Index of the first LF in `buf[from..len]`, or `len`.
#[inline(always)]
fn find_lf(buf: &Scratch, from: usize, len: usize) -> usize {
    find::<MAX_WORDS>(buf, from, len, b'\n')
}

/// A STUN message (RFC 5389 section 6): the top two bits zero and the magic cookie at byte 4.
/// SIP outbound (RFC 5626 section 4.4.2) sends these to the SIP port as keep-alives.
#[inline(always)]
fn is_stun(buf: &Scratch, len: usize) -> bool {
    len >= STUN_HEADER_LEN && buf[0] & 0xc0 == 0 && buf[4..8] == STUN_COOKIE
}
