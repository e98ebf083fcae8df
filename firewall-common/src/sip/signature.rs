//! Scanner signatures: a fixed-size table userspace compiles into a map, matched in the kernel
//! with one array read per word start of a header value.

use core::fmt;

use super::{
    word::{alnum, first_byte, load_near, low_bytes, lower, lower8, opaque, HIGHS},
    Scratch,
};

/// Entries in a [`SignatureTable`]; bit `i` of every mask below stands for entry `i`.
pub const MAX_SIGNATURES: usize = 32;
/// Longest signature, in bytes.
pub const SIGNATURE_LEN: usize = 32;
/// Shortest signature: shorter ones would match ordinary words.
pub const MIN_SIGNATURE_LEN: usize = 4;
/// Bytes of a header value (or request URI) in which a signature may start.
pub const VALUE_WINDOW: usize = 128;
/// Buckets of [`SignatureTable::by_prefix`].
pub const PREFIX_BUCKETS: usize = 256;
/// Signatures one bucket holds.
pub const BUCKET_LEN: usize = 4;

/// Where in a request a signature is looked for.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The `User-Agent` header value.
    UserAgent = 0,
    /// The `From` header value (`f` in compact form).
    From = 1,
    /// The Request-URI of the request line.
    RequestUri = 2,
}

impl Field {
    /// The field with id `id` (`as u8`); ids past the last are the Request-URI.
    #[inline(always)]
    pub const fn from_id(id: u32) -> Field {
        match id {
            0 => Field::UserAgent,
            1 => Field::From,
            _ => Field::RequestUri,
        }
    }

    /// Name in reports and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Field::UserAgent => "User-Agent",
            Field::From => "From",
            Field::RequestUri => "Request-URI",
        }
    }

    #[inline(always)]
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The default `User-Agent` signatures: the tools seen scanning SIP ports on the Internet, and the
/// User-Agent of nmap's SIP scripts (`sip-methods`, `sip-enum-users`, `sip-brute`).
pub const DEFAULT_SCANNER_USER_AGENTS: [&str; 13] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "VaxSIPUserAgent",
    "pplsip",
    "iWar",
    "sundayddr",
    "SIVuS",
    "smap",
    "Nsauditor",
    "sip-scan",
    "sipsak",
    "Nmap NSE",
];

/// The URI nmap's service probe (`nmap -sV`, probe `SIPOptions`) puts in `From` and `Contact`.
pub const NMAP_PROBE_URI: &str = "sip:nm@nm";

const USER_AGENT: u8 = Field::UserAgent.bit();

/// The default table: [`DEFAULT_SCANNER_USER_AGENTS`] in `User-Agent`, then [`NMAP_PROBE_URI`]
/// in `From` or the Request-URI.
pub const DEFAULT_SIGNATURES: SignatureTable = {
    let u = &DEFAULT_SCANNER_USER_AGENTS;
    let entries = [
        (u[0], USER_AGENT),
        (u[1], USER_AGENT),
        (u[2], USER_AGENT),
        (u[3], USER_AGENT),
        (u[4], USER_AGENT),
        (u[5], USER_AGENT),
        (u[6], USER_AGENT),
        (u[7], USER_AGENT),
        (u[8], USER_AGENT),
        (u[9], USER_AGENT),
        (u[10], USER_AGENT),
        (u[11], USER_AGENT),
        (u[12], USER_AGENT),
        (NMAP_PROBE_URI, Field::From.bit() | Field::RequestUri.bit()),
    ];
    match SignatureTable::build(&entries) {
        Ok(t) => t,
        Err(_) => panic!("the default scanner signatures do not fit the table"),
    }
};

/// One signature: lower-case bytes, matched case-insensitively at the start of a word.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Per 8 bytes of `bytes`: the bytes in use, so a compare needs no branch on the length.
    pub masks: [u64; SIGNATURE_LEN / 8],
    pub bytes: [u8; SIGNATURE_LEN],
    /// Bytes used in `bytes`; 0 marks an unused entry.
    pub len: u8,
    /// [`Field::bit`]s this signature applies to.
    pub fields: u8,
    pub _pad: [u8; 6],
}

const _: () = assert!(size_of::<Signature>() == 72);

impl Signature {
    pub const EMPTY: Signature =
        Signature { masks: [0; SIGNATURE_LEN / 8], bytes: [0; SIGNATURE_LEN], len: 0, fields: 0, _pad: [0; 6] };

    /// The signature text (lower-case).
    pub fn text(&self) -> &str {
        let n = (self.len as usize).min(SIGNATURE_LEN);
        core::str::from_utf8(&self.bytes[..n]).unwrap_or("")
    }

    /// Bytes `8 * w..8 * w + 8` of the signature, little-endian, read in place.
    #[inline(always)]
    fn word(&self, w: usize) -> u64 {
        let w = if w < SIGNATURE_LEN / 8 { w } else { 0 };
        // SAFETY: 8 bytes within `bytes` (w < SIGNATURE_LEN / 8); no alignment requirement.
        u64::from_le(unsafe { core::ptr::read_unaligned(self.bytes.as_ptr().add(8 * w).cast::<u64>()) })
    }

    /// Zero if the signature occurs at `buf[p..end]`, comparing case-insensitively. Four words
    /// compared under the signature's masks, and the length checks done in arithmetic: no
    /// branch, so the verifier walks one path however many signatures it checks.
    #[inline(always)]
    fn diff_at(&self, buf: &Scratch, p: usize, end: usize) -> u64 {
        let mut diff = 0u64;
        for w in 0..SIGNATURE_LEN / 8 {
            diff |= (lower8(load_near(buf, p + w * 8)) ^ self.word(w)) & self.masks[w];
        }
        let n = self.len as u64;
        // all ones when the signature would run past `end`, or the entry is unused
        let past = ((end as i64 - (p as i64 + n as i64)) >> 63) as u64;
        let unused = n.wrapping_sub(1) >> 63;
        diff | past | unused
    }
}

/// The signature list in the shape the kernel matches cheaply: signatures are filed by a hash of
/// their first four bytes ([`prefix_bucket`]), so a word that starts no signature costs one
/// array read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureTable {
    /// Indexed by [`prefix_bucket`]: the signatures (index + 1; 0 ends the list) whose first
    /// four bytes fall in that bucket.
    pub by_prefix: [[u8; BUCKET_LEN]; PREFIX_BUCKETS],
    /// Indexed by [`Field`]: bit `i` set if signature `i` applies to that field.
    pub by_field: [u32; 4],
    pub signatures: [Signature; MAX_SIGNATURES],
    /// Entries used in `signatures`.
    pub count: u32,
    /// What the signatures start with: bit [`first_class`] of each one's first byte, so that
    /// [`SignatureTable::candidates`] passes over a word whose first byte starts none.
    pub first: u32,
}

const _: () = assert!(size_of::<SignatureTable>() == 3352);

/// The bucket of the four bytes packed little-endian in `prefix` (lower-cased).
#[inline(always)]
pub const fn prefix_bucket(prefix: u32) -> usize {
    (prefix.wrapping_mul(0x9e37_79b1) >> 24) as usize
}

/// Why a signature list does not fit a [`SignatureTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    TooMany {
        count: usize,
    },
    TooShort {
        index: usize,
        len: usize,
    },
    TooLong {
        index: usize,
        len: usize,
    },
    NotPrintable {
        index: usize,
    },
    NoField {
        index: usize,
    },
    /// More than [`BUCKET_LEN`] signatures share a bucket.
    Crowded {
        index: usize,
    },
}

#[cfg(feature = "user")]
impl std::error::Error for SignatureError {}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SignatureError::TooMany { count } => write!(
                f,
                "{count} scanner signatures given, the kernel table holds {MAX_SIGNATURES}; remove some or \
                 replace several with a common word they start with"
            ),
            SignatureError::TooShort { index, len } => write!(
                f,
                "scanner signature {} is {len} bytes; use at least {MIN_SIGNATURE_LEN} so it does not match \
                 ordinary words",
                index + 1
            ),
            SignatureError::TooLong { index, len } => write!(
                f,
                "scanner signature {} is {len} bytes, the kernel matches at most {SIGNATURE_LEN}; shorten it \
                 to its distinctive start",
                index + 1
            ),
            SignatureError::NotPrintable { index } => {
                write!(f, "scanner signature {} has a byte that is not printable ASCII; use plain text", index + 1)
            }
            SignatureError::NoField { index } => {
                write!(f, "scanner signature {} applies to no field; say where to look for it", index + 1)
            }
            SignatureError::Crowded { index } => write!(
                f,
                "scanner signature {} shares its first four letters' slot with {BUCKET_LEN} others; drop one \
                 of them or shorten several to a common start",
                index + 1
            ),
        }
    }
}

impl SignatureTable {
    pub const EMPTY: SignatureTable = SignatureTable {
        by_prefix: [[0; BUCKET_LEN]; PREFIX_BUCKETS],
        by_field: [0; 4],
        signatures: [Signature::EMPTY; MAX_SIGNATURES],
        count: 0,
        first: 0,
    };

    /// Compiles `(text, fields)` pairs (fields: [`Field::bit`]s) into a table. Text is stored
    /// lower-case; matching ignores ASCII case.
    pub const fn build(entries: &[(&str, u8)]) -> Result<SignatureTable, SignatureError> {
        if entries.len() > MAX_SIGNATURES {
            return Err(SignatureError::TooMany { count: entries.len() });
        }
        let mut t = SignatureTable::EMPTY;
        let mut i = 0;
        while i < entries.len() {
            let (text, fields) = entries[i];
            let s = text.as_bytes();
            if s.len() < MIN_SIGNATURE_LEN {
                return Err(SignatureError::TooShort { index: i, len: s.len() });
            }
            if s.len() > SIGNATURE_LEN {
                return Err(SignatureError::TooLong { index: i, len: s.len() });
            }
            if fields & 0b111 == 0 {
                return Err(SignatureError::NoField { index: i });
            }
            let mut j = 0;
            while j < s.len() {
                if s[j] < 0x20 || s[j] > 0x7e {
                    return Err(SignatureError::NotPrintable { index: i });
                }
                t.signatures[i].bytes[j] = lower(s[j]);
                t.signatures[i].masks[j / 8] |= 0xff << (8 * (j % 8));
                j += 1;
            }
            t.signatures[i].len = s.len() as u8;
            t.first |= 1 << first_class(s[0]);
            t.signatures[i].fields = fields & 0b111;
            let b = prefix_bucket(u32::from_le_bytes([lower(s[0]), lower(s[1]), lower(s[2]), lower(s[3])]));
            let mut k = 0;
            while k < BUCKET_LEN && t.by_prefix[b][k] != 0 {
                k += 1;
            }
            if k == BUCKET_LEN {
                return Err(SignatureError::Crowded { index: i });
            }
            t.by_prefix[b][k] = i as u8 + 1;
            let mut f = 0;
            while f < 3 {
                if fields & (1 << f) != 0 {
                    t.by_field[f] |= 1 << i;
                }
                f += 1;
            }
            i += 1;
        }
        t.count = entries.len() as u32;
        Ok(t)
    }

    /// The signature at `index`, if the table has one there.
    pub fn get(&self, index: u8) -> Option<&Signature> {
        let i = index as usize;
        if i < self.count as usize && i < MAX_SIGNATURES {
            Some(&self.signatures[i])
        } else {
            None
        }
    }

    /// The word starts among `starts` (the high bit of each, see [`word_starts`]) in the 8
    /// bytes at `p` where a signature may start: a signature starts with the word's first
    /// letter (or a digit, see [`SignatureTable::first`]), and the bucket of the word's first
    /// four bytes holds more than one signature, or one whose first 8 bytes (or fewer) are the
    /// word's. A cheap test that lets most words of a value go without
    /// [`SignatureTable::match_at`]: most start with a digit or a letter no signature starts
    /// with, or fall in an empty bucket; the Request-URI's and `From`'s `sip:` share a bucket
    /// with nmap's `sip:nm@nm`, but not its first 8 bytes. A branch per test (each a path for
    /// the verifier, rejoining at the next word start), the compare in arithmetic.
    #[inline(always)]
    pub fn candidates(&self, buf: &Scratch, p: usize, starts: u64) -> u64 {
        let mut starts = starts;
        let mut candidates = 0;
        // a word start needs a byte that is not one before it: at most 4 per 8 bytes
        for _ in 0..4 {
            if starts == 0 {
                break;
            }
            let lowest = starts & starts.wrapping_neg();
            starts ^= lowest;
            let word = load_near(buf, p + first_byte(lowest));
            // a word whose first letter (or digit) starts no signature: no read at all
            if (self.first >> first_class(word as u8)) & 1 == 0 {
                continue;
            }
            let head = lower8(word);
            let bucket = &self.by_prefix[prefix_bucket(head as u32)];
            // most words fall in an empty bucket: no further reads
            if bucket[0] == 0 {
                continue;
            }
            let s = &self.signatures[index(bucket[0])];
            // zero when the first signature's first bytes are the word's, or a second one
            // follows
            let differ = (head ^ s.word(0)) & s.masks[0] & is_empty(bucket[1]).wrapping_neg();
            // all ones when they differ: the word start is no candidate
            let no = (opaque((differ | differ.wrapping_neg()) as usize) as i64 >> 63) as u64;
            candidates |= lowest & !no;
        }
        candidates
    }

    /// The first signature in `wanted` (a bitmask) that matches at `p`. An empty bucket (the
    /// common case) costs one branch; a bucket's entries are then compared on their first 8
    /// bytes, and only an entry that matches them is compared in full. Every compare is
    /// branch-free: few paths for the verifier, whatever the table.
    #[inline(always)]
    pub fn match_at(&self, buf: &Scratch, p: usize, end: usize, wanted: u32) -> Option<u8> {
        let head = lower8(load_near(buf, p));
        let bucket = &self.by_prefix[prefix_bucket(head as u32)];
        if bucket[0] == 0 {
            return None;
        }
        let mut heads = 0u64;
        for (k, &slot) in bucket.iter().enumerate() {
            let i = index(slot);
            let s = &self.signatures[i];
            let d = ((head ^ s.word(0)) & s.masks[0]) | skip(slot, wanted, i);
            heads |= is_zero(d) << k;
        }
        if heads == 0 {
            return None;
        }
        let mut hits = 0u64;
        for (k, &slot) in bucket.iter().enumerate() {
            let i = index(slot);
            hits |= is_zero(self.signatures[i].diff_at(buf, p, end) | skip(slot, wanted, i)) << k;
        }
        if hits == 0 {
            return None;
        }
        let k = hits.trailing_zeros() as usize & (BUCKET_LEN - 1);
        Some(index(bucket[k]) as u8)
    }
}

/// The bit of [`SignatureTable::first`] for a word starting with byte `c`: its low 5 bits for
/// a letter (1 to 26, either case), 0 for anything else (a word starts with a letter or digit).
#[inline(always)]
pub const fn first_class(c: u8) -> u32 {
    // letters have bit 6 set, digits not: all ones or zero, without a branch
    let letter = 0u32.wrapping_sub((c as u32 >> 6) & 1);
    c as u32 & 31 & letter
}

/// The word starts among the 8 bytes at `p` before `stop` (the high bit of each letter or digit
/// that follows none; `carry` is 0x80 when the byte before `p` is a letter or digit of the
/// value), and the carry for the next 8 bytes.
#[inline(always)]
pub fn word_starts(buf: &Scratch, p: usize, stop: usize, carry: u64) -> (u64, u64) {
    let a = alnum(load_near(buf, p)) & low_bytes(stop - p);
    (a & !((a << 8) | carry), (a >> 56) & HIGHS)
}

/// The signature index a bucket slot holds (index + 1; an empty slot's is masked into the
/// table, and [`skip`] rules it out).
#[inline(always)]
const fn index(slot: u8) -> usize {
    (slot as usize).wrapping_sub(1) & (MAX_SIGNATURES - 1)
}

/// Non-zero when bucket slot `slot` (signature index `i` + 1) is empty or its signature is not in
/// `wanted`.
#[inline(always)]
fn skip(slot: u8, wanted: u32, i: usize) -> u64 {
    let empty = (slot as u64).wrapping_sub(1) >> 63;
    let unwanted = ((wanted >> i) & 1) as u64 ^ 1;
    empty | unwanted
}

/// 1 when bucket slot `slot` is empty, else 0, in arithmetic: the compiler would make a
/// compare a branch, and each branch a path of its own for the verifier.
#[inline(always)]
fn is_empty(slot: u8) -> u64 {
    // hidden, or the compiler sees the compare
    (opaque((slot as usize).wrapping_sub(1)) >> 63) as u64
}

/// 1 when `d` is zero, else 0.
#[inline(always)]
const fn is_zero(d: u64) -> u64 {
    ((d | d.wrapping_neg()) >> 63) ^ 1
}
