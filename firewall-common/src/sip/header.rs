//! Header names the classifier recognises: long and compact forms, case-insensitive.

use super::{
    method::pack8,
    word::{first_byte, keep, load, load_near, lower8, opaque, zero_bytes_exact, HIGHS, ONES},
    Scratch,
};

/// Longest header name the recogniser compares; longer names are [`Header::Other`].
pub const MAX_NAME_LEN: usize = 16;

/// A recognised header: only compared, never stored or counted, so its variants carry no ids.
/// Compact forms (RFC 3261 section 7.3.3) map to the same variant.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    Other,
    /// `Via`, `v`.
    Via,
    /// `From`, `f`.
    From,
    /// `To`, `t`.
    To,
    /// `Call-ID`, `i`.
    CallId,
    /// `CSeq` (no compact form).
    CSeq,
    /// `Contact`, `m`.
    Contact,
    /// `Content-Length`, `l`.
    ContentLength,
    /// `User-Agent` (no compact form).
    UserAgent,
}

impl Header {
    /// Identifies a header from its lower-cased name packed into two words (bytes 0..8 and
    /// 8..16, see [`pack8`]) and its length.
    #[inline(always)]
    pub fn from_packed(lo: u64, hi: u64, len: usize) -> Header {
        match (len, lo, hi) {
            (1, w, 0) => match w as u8 {
                b'v' => Header::Via,
                b'f' => Header::From,
                b't' => Header::To,
                b'i' => Header::CallId,
                b'm' => Header::Contact,
                b'l' => Header::ContentLength,
                _ => Header::Other,
            },
            (3, w, 0) if w == pack8(b"via") => Header::Via,
            (4, w, 0) if w == pack8(b"from") => Header::From,
            (2, w, 0) if w == pack8(b"to") => Header::To,
            (7, w, 0) if w == pack8(b"call-id") => Header::CallId,
            (4, w, 0) if w == pack8(b"cseq") => Header::CSeq,
            (7, w, 0) if w == pack8(b"contact") => Header::Contact,
            (14, w, h) if w == pack8(b"content-") && h == pack8(b"length") => Header::ContentLength,
            (10, w, h) if w == pack8(b"user-age") && h == pack8(b"nt") => Header::UserAgent,
            _ => Header::Other,
        }
    }
}

/// The header named at the start of the line `buf[s..e]` and where its value starts (after the
/// colon). Names are compared lower-cased; white space before the colon is allowed (RFC 3261
/// section 7.3.1), up to [`MAX_GAP`] bytes. Word at a time, with few branches: the kernel runs
/// this in a `bpf_loop` callback, where every branch is a path the verifier walks.
#[inline(always)]
pub fn name_at(buf: &Scratch, s: usize, e: usize) -> (Header, usize) {
    let (w0, w1) = (load_near(buf, s), load_near(buf, s + 8));
    let (m0, m1) = (ends_name(w0), ends_name(w1));
    let n = if m0 != 0 {
        first_byte(m0)
    } else if m1 != 0 {
        8 + first_byte(m1)
    } else {
        MAX_NAME_LEN + 1
    };
    // one range for every exit above
    let n = opaque(n) & 31;
    if n == 0 || n > MAX_NAME_LEN || s + n >= e {
        return (Header::Other, e);
    }
    let lo = lower8(keep(w0, n));
    let hi = if n > 8 { lower8(keep(w1, n - 8)) } else { 0 };
    // the colon, after optional white space: the first byte that is neither SP nor HT
    let gap = load(buf, s + n);
    let blank = zero_bytes_exact(gap ^ (ONES * b' ' as u64)) | zero_bytes_exact(gap ^ (ONES * b'\t' as u64));
    let other = !blank & HIGHS;
    if other == 0 {
        return (Header::Other, e);
    }
    let k = first_byte(other);
    let colon = s + n + k;
    if colon >= e || (gap >> (8 * k)) as u8 != b':' {
        return (Header::Other, e);
    }
    (Header::from_packed(lo, hi, n), colon + 1)
}

/// The high bit of each byte of `w` that ends a header name: a colon, SP or HT.
#[inline(always)]
fn ends_name(w: u64) -> u64 {
    zero_bytes_exact(w ^ (ONES * b':' as u64))
        | zero_bytes_exact(w ^ (ONES * b' ' as u64))
        | zero_bytes_exact(w ^ (ONES * b'\t' as u64))
}

/// White space allowed between a header name and its colon.
pub const MAX_GAP: usize = 7;
