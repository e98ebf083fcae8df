//! SIP request methods: a small id for counters and an allowed-methods bitmask.

use super::word::{first_byte, keep, zero_bytes_exact, ONES};

/// A request method. The id (`as u8`) indexes counters and is the bit in [`MethodSet`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// A well-formed token that is none of the methods below.
    Unknown = 0,
    // RFC 3261
    Invite = 1,
    Ack = 2,
    Bye = 3,
    Cancel = 4,
    Register = 5,
    Options = 6,
    /// RFC 3262.
    Prack = 7,
    /// RFC 3265.
    Subscribe = 8,
    /// RFC 3265.
    Notify = 9,
    /// RFC 3311.
    Update = 10,
    /// RFC 3428.
    Message = 11,
    /// RFC 3515.
    Refer = 12,
    /// RFC 3903.
    Publish = 13,
    /// RFC 6086.
    Info = 14,
}

/// Longest method token the parser accepts; longer first words are not SIP.
pub const MAX_METHOD_LEN: usize = 32;

/// A set of methods, one bit per [`Method`] id.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MethodSet(pub u32);

impl MethodSet {
    /// Every method an RFC above defines; [`Method::Unknown`] is not in it.
    pub const STANDARD: MethodSet = MethodSet(((1 << 15) - 1) & !1);

    #[inline(always)]
    pub const fn contains(self, m: Method) -> bool {
        self.0 & m.bit() != 0
    }
}

impl Method {
    pub const ALL: [Method; 15] = [
        Method::Unknown,
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Register,
        Method::Options,
        Method::Prack,
        Method::Subscribe,
        Method::Notify,
        Method::Update,
        Method::Message,
        Method::Refer,
        Method::Publish,
        Method::Info,
    ];

    /// The method with id `id` ([`Method::Unknown`] for an id that names none).
    #[inline(always)]
    pub const fn from_id(id: u32) -> Method {
        if (id as usize) < Method::ALL.len() {
            Method::ALL[id as usize]
        } else {
            Method::Unknown
        }
    }

    #[inline(always)]
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The method's name as it appears on the wire (`"unknown"` for [`Method::Unknown`]).
    pub const fn name(self) -> &'static str {
        match self {
            Method::Unknown => "unknown",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Update => "UPDATE",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
        }
    }

    /// Identifies a method token from its first 8 bytes packed by [`pack8`], its length and its
    /// ninth byte (only SUBSCRIBE is longer than 8). Method names are case-sensitive (RFC 3261
    /// section 7.1), so there is no case folding here.
    #[inline(always)]
    pub fn from_packed(word: u64, len: usize, ninth: u8) -> Method {
        match (len, word) {
            (6, w) if w == pack8(b"INVITE") => Method::Invite,
            (3, w) if w == pack8(b"ACK") => Method::Ack,
            (3, w) if w == pack8(b"BYE") => Method::Bye,
            (6, w) if w == pack8(b"CANCEL") => Method::Cancel,
            (8, w) if w == pack8(b"REGISTER") => Method::Register,
            (7, w) if w == pack8(b"OPTIONS") => Method::Options,
            (5, w) if w == pack8(b"PRACK") => Method::Prack,
            (9, w) if w == pack8(b"SUBSCRIB") && ninth == b'E' => Method::Subscribe,
            (6, w) if w == pack8(b"NOTIFY") => Method::Notify,
            (6, w) if w == pack8(b"UPDATE") => Method::Update,
            (7, w) if w == pack8(b"MESSAGE") => Method::Message,
            (5, w) if w == pack8(b"REFER") => Method::Refer,
            (7, w) if w == pack8(b"PUBLISH") => Method::Publish,
            (4, w) if w == pack8(b"INFO") => Method::Info,
            _ => Method::Unknown,
        }
    }
}

/// The method a request line starts with, from its first 16 bytes as two little-endian words:
/// the token before the first space. [`Method::Unknown`] when no space comes within the
/// longest method name and one, or the token is none of [`Method::ALL`]. What the inspector
/// reads of a request from a source it inspected clean a moment ago (see
/// [`super::clean`]); the rest of the start line is not checked.
#[inline(always)]
pub fn leading(w0: u64, w1: u64) -> Method {
    let spaces = ONES * b' ' as u64;
    let first = zero_bytes_exact(w0 ^ spaces);
    let second = zero_bytes_exact(w1 ^ spaces);
    let len = if first != 0 {
        first_byte(first)
    } else if second != 0 {
        8 + first_byte(second)
    } else {
        return Method::Unknown;
    };
    Method::from_packed(keep(w0, len), len, w1 as u8)
}

/// Packs up to the first 8 bytes of `s` little-endian into a word, zero-filled.
pub const fn pack8(s: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < s.len() && i < 8 {
        w |= (s[i] as u64) << (8 * i);
        i += 1;
    }
    w
}
