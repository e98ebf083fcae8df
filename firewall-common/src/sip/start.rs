//! The start line: a Request-Line (`METHOD SP Request-URI SP SIP/2.0`) or a Status-Line
//! (`SIP/2.0 SP 3DIGIT SP Reason-Phrase`), RFC 3261 section 7.1 and 7.2.

use super::{
    method::{pack8, Method, MAX_METHOD_LEN},
    Scratch, INSPECT_LEN, SCRATCH_MASK,
};

/// `SIP/2.0` as packed by [`pack8`], upper-case.
const VERSION: u64 = pack8(b"SIP/2.0");
const VERSION_LEN: usize = 7;
/// The case bits of the three letters of `SIP`: the version token is case-insensitive.
const VERSION_CASE: u64 = pack8(b"   \0\0\0\0");

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
    let mut status = 0u16;
    for k in 0..3 {
        let d = byte(buf, s + k);
        if !d.is_ascii_digit() {
            return StartLine::Invalid;
        }
        status = status * 10 + (d - b'0') as u16;
    }
    if !(100..700).contains(&status) || (e > s + 3 && byte(buf, s + 3) != b' ') {
        return StartLine::Invalid;
    }
    StartLine::Response { status }
}

#[inline(always)]
fn request_line(buf: &Scratch, s: usize, e: usize) -> StartLine {
    // Method: a token (RFC 3261 section 25.1) ended by one space.
    let mut mlen = 0;
    for k in 0..=MAX_METHOD_LEN {
        let p = s + k;
        if p >= e || k == MAX_METHOD_LEN {
            return StartLine::Invalid;
        }
        let c = byte(buf, p);
        if c == b' ' {
            mlen = k;
            break;
        }
        if !is_token(c) {
            return StartLine::Invalid;
        }
    }
    // `SP SIP/2.0` ends the line; the Request-URI is what lies between.
    let uri_start = s + mlen + 1;
    if mlen == 0 || e < uri_start + 1 + 1 + VERSION_LEN {
        return StartLine::Invalid;
    }
    let uri_end = e - VERSION_LEN - 1;
    if byte(buf, uri_end) != b' ' || !is_version(buf, e - VERSION_LEN) || !is_uri(buf, uri_start, uri_end) {
        return StartLine::Invalid;
    }
    let method = Method::from_packed(pack_at(buf, s, mlen), mlen, byte(buf, s + 8));
    StartLine::Request { method, uri: (uri_start, uri_end) }
}

/// An absolute URI without white space or controls, with a scheme (`sip:`, `sips:`, `tel:`).
#[inline(always)]
fn is_uri(buf: &Scratch, s: usize, e: usize) -> bool {
    if e <= s || !byte(buf, s).is_ascii_alphabetic() {
        return false;
    }
    let mut colon = false;
    for k in 0..INSPECT_LEN {
        let p = s + k;
        if p >= e {
            break;
        }
        let c = byte(buf, p);
        if c <= b' ' || c == 0x7f {
            return false;
        }
        colon |= c == b':';
    }
    colon
}

/// `SIP/2.0` at `p`, the letters in any case.
#[inline(always)]
fn is_version(buf: &Scratch, p: usize) -> bool {
    let w = pack_at(buf, p, VERSION_LEN);
    // only S, I and P differ from another byte of the version in bit 0x20 alone
    (w & !VERSION_CASE) == (VERSION & !VERSION_CASE)
}

/// Packs `n` (at most 8) bytes from `p` like [`pack8`].
#[inline(always)]
fn pack_at(buf: &Scratch, p: usize, n: usize) -> u64 {
    let mut w = 0u64;
    for k in 0..8 {
        if k >= n {
            break;
        }
        w |= (byte(buf, p + k) as u64) << (8 * k);
    }
    w
}

#[inline(always)]
fn byte(buf: &Scratch, p: usize) -> u8 {
    buf[p & SCRATCH_MASK]
}

/// RFC 3261 `token` characters.
#[inline(always)]
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}
