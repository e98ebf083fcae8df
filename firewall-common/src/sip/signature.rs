//! Scanner signatures: a fixed-size table userspace compiles into a map, matched in the kernel
//! with one array read per word start of a header value.

use core::fmt;

use super::{
    word::{alnum, first_byte, keep, load, lower, lower8, HIGHS},
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
    pub bytes: [u8; SIGNATURE_LEN],
    /// Bytes used in `bytes`; 0 marks an unused entry.
    pub len: u8,
    /// [`Field::bit`]s this signature applies to.
    pub fields: u8,
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<Signature>() == 36);

impl Signature {
    pub const EMPTY: Signature = Signature { bytes: [0; SIGNATURE_LEN], len: 0, fields: 0, _pad: [0; 2] };

    /// The signature text (lower-case).
    pub fn text(&self) -> &str {
        let n = (self.len as usize).min(SIGNATURE_LEN);
        core::str::from_utf8(&self.bytes[..n]).unwrap_or("")
    }

    /// Whether the signature occurs at `buf[p..end]`, comparing case-insensitively. Compares 8
    /// bytes at a time without a byte loop, so the verifier sees a few straight-line words.
    #[inline(always)]
    fn matches_at(&self, buf: &Scratch, p: usize, end: usize) -> bool {
        let n = self.len as usize;
        if n == 0 || n > SIGNATURE_LEN || p + n > end {
            return false;
        }
        let mut diff = 0u64;
        for w in 0..SIGNATURE_LEN / 8 {
            let lo = w * 8;
            if lo >= n {
                break;
            }
            let mut sig = [0u8; 8];
            sig.copy_from_slice(&self.bytes[lo..lo + 8]);
            diff |= keep(lower8(load(buf, p + lo)) ^ u64::from_le_bytes(sig), n - lo);
        }
        diff == 0
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
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<SignatureTable>() == 2200);

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
        _pad: 0,
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
                j += 1;
            }
            t.signatures[i].len = s.len() as u8;
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

    /// Finds the first signature for `field` that starts a word in `buf[start..end]`, the word
    /// starting within [`VALUE_WINDOW`] bytes of `start`; a signature may run on to `end`. A word
    /// starts with a letter or digit that follows none.
    pub fn find(&self, buf: &Scratch, start: usize, end: usize, field: Field) -> Option<u8> {
        let stop = if end < start + VALUE_WINDOW { end } else { start + VALUE_WINDOW };
        let (mut p, mut carry) = (start, 0);
        while p < stop {
            let (hit, c) = self.chunk(buf, p, stop, end, carry, field);
            if hit.is_some() {
                return hit;
            }
            (p, carry) = (p + 8, c);
        }
        None
    }

    /// [`SignatureTable::find`] on the 8 bytes at `p` (words starting before `stop`): the hit,
    /// and the carry for the next chunk. `carry` is 0x80 when the byte before `p` is a letter
    /// or digit of the value.
    #[inline(always)]
    pub fn chunk(
        &self,
        buf: &Scratch,
        p: usize,
        stop: usize,
        end: usize,
        carry: u64,
        field: Field,
    ) -> (Option<u8>, u64) {
        let wanted = self.by_field[field as usize & 3];
        let a = keep(alnum(load(buf, p)), stop - p);
        let mut starts = a & !((a << 8) | carry);
        let carry = (a >> 56) & HIGHS;
        if wanted == 0 {
            return (None, carry);
        }
        // a word start needs a byte that is not one before it: at most 4 per 8 bytes
        for _ in 0..4 {
            if starts == 0 {
                break;
            }
            let at = p + first_byte(starts);
            starts &= starts - 1;
            if let Some(hit) = self.match_at(buf, at, end, wanted) {
                return (Some(hit), carry);
            }
        }
        (None, carry)
    }

    /// The first signature in `wanted` (a bitmask) that matches at `p`.
    #[inline(always)]
    fn match_at(&self, buf: &Scratch, p: usize, end: usize, wanted: u32) -> Option<u8> {
        let bucket = &self.by_prefix[prefix_bucket(lower8(load(buf, p)) as u32)];
        for k in 0..BUCKET_LEN {
            let i = bucket[k] as usize;
            if i == 0 {
                return None;
            }
            let i = (i - 1) & (MAX_SIGNATURES - 1);
            if wanted & (1 << i) != 0 && self.signatures[i].matches_at(buf, p, end) {
                return Some(i as u8);
            }
        }
        None
    }
}
