//! Header names the classifier recognises: long and compact forms, case-insensitive.

use super::method::pack8;

/// Longest header name the recogniser compares; longer names are [`Header::Other`].
pub const MAX_NAME_LEN: usize = 16;

/// A recognised header. Compact forms (RFC 3261 section 7.3.3) map to the same value.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    Other = 0,
    /// `Via`, `v`.
    Via = 1,
    /// `From`, `f`.
    From = 2,
    /// `To`, `t`.
    To = 3,
    /// `Call-ID`, `i`.
    CallId = 4,
    /// `CSeq` (no compact form).
    CSeq = 5,
    /// `Contact`, `m`.
    Contact = 6,
    /// `Content-Length`, `l`.
    ContentLength = 7,
    /// `User-Agent` (no compact form).
    UserAgent = 8,
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
