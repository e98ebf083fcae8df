//! The start line: a Request-Line (`METHOD SP Request-URI SP SIP/2.0`) or a Status-Line
//! (`SIP/2.0 SP 3DIGIT SP Reason-Phrase`), RFC 3261 section 7.1 and 7.2.

use super::{
    method::{pack8, Method, MAX_METHOD_LEN},
    word::{alnum, byte, find, keep, load, pack, zero_bytes_exact, HIGHS, ONES},
    Scratch,
};

/// `SIP/2.0` as packed by [`pack8`], upper-case.
const VERSION: u64 = pack8(b"SIP/2.0");
const VERSION_LEN: usize = 7;
/// The case bits of the three letters of `SIP`: the version token is case-insensitive.
const VERSION_CASE: u64 = pack8(b"   \0\0\0\0");
/// Words the space after a method is looked for in.
const METHOD_WORDS: usize = MAX_METHOD_LEN / 8 + 1;
/// Bytes of a Request-URI its scheme's colon must lie within (`sips:`, `tel:`, `urn:`, …).
const SCHEME_WINDOW: usize = 8;

/// What the start line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine {
    Invalid,
    /// A request; the Request-URI spans `uri.0..uri.1` in the buffer.
    Request {
        method: Method,
        uri: (usize, usize),
    },
    Response {
        status: u16,
    },
}

/// Parses the start line in `buf[s..e]` (`e` excludes the line end).
#[inline(always)]
pub fn parse(buf: &Scratch, s: usize, e: usize) -> StartLine {
    if e <= s {
        return StartLine::Invalid;
    }
    if e - s > VERSION_LEN && is_version(buf, s) && byte(buf, s + VERSION_LEN) == b' ' {
        return status_line(buf, s + VERSION_LEN + 1, e);
    }
    request_line(buf, s, e)
}

/// `3DIGIT [SP Reason-Phrase]` from `s`; status codes run from 100 to 699.
#[inline(always)]
fn status_line(buf: &Scratch, s: usize, e: usize) -> StartLine {
    if e < s + 3 {
        return StartLine::Invalid;
    }
    let w = load(buf, s);
    let (a, b, c) = (w as u8, (w >> 8) as u8, (w >> 16) as u8);
    if !(b'1'..=b'6').contains(&a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return StartLine::Invalid;
    }
    if e > s + 3 && (w >> 24) as u8 != b' ' {
        return StartLine::Invalid;
    }
    let status = (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16;
    StartLine::Response { status }
}

#[inline(always)]
fn request_line(buf: &Scratch, s: usize, e: usize) -> StartLine {
    // Method: a token (RFC 3261 section 25.1) ended by one space.
    let limit = if e < s + MAX_METHOD_LEN + 1 { e } else { s + MAX_METHOD_LEN + 1 };
    let sp = find::<METHOD_WORDS>(buf, s, limit, b' ');
    let mlen = sp - s;
    if sp >= limit || mlen == 0 {
        return StartLine::Invalid;
    }
    // `SP SIP/2.0` ends the line; the Request-URI is what lies between, without a space.
    let uri_start = sp + 1;
    if e < uri_start + 1 + 1 + VERSION_LEN {
        return StartLine::Invalid;
    }
    let uri_end = e - VERSION_LEN - 1;
    if byte(buf, uri_end) != b' ' || !is_version(buf, e - VERSION_LEN) {
        return StartLine::Invalid;
    }
    if !is_uri(buf, uri_start, uri_end) {
        return StartLine::Invalid;
    }
    let method = Method::from_packed(pack(buf, s, mlen), mlen, byte(buf, s + 8));
    if method == Method::Unknown && !is_token(buf, s, mlen) {
        return StartLine::Invalid;
    }
    StartLine::Request { method, uri: (uri_start, uri_end) }
}

/// An absolute URI: a letter, then its scheme's colon within [`SCHEME_WINDOW`] bytes; controls
/// and DEL are refused within that window (the space was ruled out by the caller).
#[inline(always)]
fn is_uri(buf: &Scratch, s: usize, e: usize) -> bool {
    let n = if e - s < SCHEME_WINDOW { e - s } else { SCHEME_WINDOW };
    let w = pack(buf, s, n);
    if !(w as u8).is_ascii_alphabetic() {
        return false;
    }
    let colon = find::<1>(buf, s, s + n, b':') < s + n;
    // bytes below 0x20 or equal to 0x7f among the first n
    let pad = !keep(u64::MAX, n) & (ONES * b'a' as u64);
    let bad = super::word::in_range(w | pad, 0, 0x1f) | super::word::in_range(w | pad, 0x7f, 0x7f);
    colon && bad == 0
}

/// `SIP/2.0` at `p`, the letters in any case.
#[inline(always)]
fn is_version(buf: &Scratch, p: usize) -> bool {
    let w = pack(buf, p, VERSION_LEN);
    // only S, I and P differ from another byte of the version in bit 0x20 alone
    (w & !VERSION_CASE) == (VERSION & !VERSION_CASE)
}

/// Whether the `n` (1 to [`MAX_METHOD_LEN`]) bytes at `s` are all RFC 3261 `token` characters
/// (letters, digits and `-.!%*_+`'~`); only unknown methods get here. Word at a time and without a
/// branch per byte.
#[inline(always)]
fn is_token(buf: &Scratch, s: usize, n: usize) -> bool {
    let mut bad = 0u64;
    for k in 0..MAX_METHOD_LEN / 8 {
        let w = load(buf, s + 8 * k);
        let mut ok = alnum(w);
        for c in *b"-.!%*_+`'~" {
            ok |= zero_bytes_exact(w ^ (ONES * c as u64));
        }
        let used = if n > 8 * k { keep(HIGHS, n - 8 * k) } else { 0 };
        bad |= !ok & used;
    }
    bad == 0
}
