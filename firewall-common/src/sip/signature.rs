//! Scanner signatures: a fixed-size table userspace compiles into a map, matched in the kernel
//! with one array read per word of a header value.

use core::fmt;

use super::{Scratch, SCRATCH_LEN, SCRATCH_MASK};

/// Entries in a [`SignatureTable`]; bit `i` of every mask below stands for entry `i`.
pub const MAX_SIGNATURES: usize = 32;
/// Longest signature, in bytes.
pub const SIGNATURE_LEN: usize = 32;
/// Shortest signature: shorter ones would match ordinary words.
pub const MIN_SIGNATURE_LEN: usize = 4;
/// Bytes of a header value (or request URI) in which a signature may start.
pub const VALUE_WINDOW: usize = 128;

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
            // p + n <= end <= INSPECT_LEN keeps the word inside the buffer; the clamp shows it
            let q = (p + lo) & SCRATCH_MASK;
            let q = if q > SCRATCH_LEN - 8 { SCRATCH_LEN - 8 } else { q };
            // SAFETY: q + 8 <= SCRATCH_LEN, and read_unaligned has no alignment requirement.
            let word = u64::from_le(unsafe { core::ptr::read_unaligned(buf.as_ptr().add(q) as *const u64) });
            let mut sig = [0u8; 8];
            sig.copy_from_slice(&self.bytes[lo..lo + 8]);
            let keep = if n - lo >= 8 { u64::MAX } else { (1u64 << (8 * (n - lo))) - 1 };
            diff |= (lower8(word) ^ u64::from_le_bytes(sig)) & keep;
        }
        diff == 0
    }
}

/// [`lower`] on the 8 bytes of a word at once.
#[inline(always)]
const fn lower8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGHS;
    // high bit of each byte: its low 7 bits are >= 'A', and > 'Z'
    let from_a = low7 + (0x80 - b'A' as u64) * ONES;
    let past_z = low7 + (0x80 - b'Z' as u64 - 1) * ONES;
    let upper = (from_a ^ past_z) & !w & HIGHS;
    w | (upper >> 2)
}

/// The signature list in the shape the kernel matches cheaply: per first byte, the set of
/// signatures starting with it, so a word that starts no signature costs one array read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureTable {
    /// Indexed by a lower-case byte: bit `i` set if signature `i` starts with it.
    pub by_first: [u32; 256],
    /// Indexed by [`Field`]: bit `i` set if signature `i` applies to that field.
    pub by_field: [u32; 4],
    pub signatures: [Signature; MAX_SIGNATURES],
    /// Entries used in `signatures`.
    pub count: u32,
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<SignatureTable>() == 2200);

/// Why a signature list does not fit a [`SignatureTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    TooMany { count: usize },
    TooShort { index: usize, len: usize },
    TooLong { index: usize, len: usize },
    NotPrintable { index: usize },
    NoField { index: usize },
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
        }
    }
}

impl SignatureTable {
    pub const EMPTY: SignatureTable = SignatureTable {
        by_first: [0; 256],
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
            t.by_first[lower(s[0]) as usize] |= 1 << i;
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
    /// starting within [`VALUE_WINDOW`] bytes of `start`; a signature may run on to `end`.
    #[inline(always)]
    pub fn find(&self, buf: &Scratch, start: usize, end: usize, field: Field) -> Option<u8> {
        self.run(buf, self.search(start, end, field))
    }

    /// Runs search `s` to its end with a plain loop; its hit.
    #[inline(always)]
    pub fn run(&self, buf: &Scratch, mut s: Search) -> Option<u8> {
        for _ in 0..VALUE_WINDOW {
            if !self.scan(buf, &mut s) {
                break;
            }
        }
        s.hit
    }

    /// A search for [`SignatureTable::find`], advanced one position per [`SignatureTable::scan`]
    /// (the XDP program drives it from a `bpf_loop` callback).
    #[inline(always)]
    pub fn search(&self, start: usize, end: usize, field: Field) -> Search {
        Search { p: start, end, wanted: self.by_field[field as usize & 3], in_word: false, hit: None }
    }

    /// Looks at one position of `s`; `false` once the search is over (a hit, or the end).
    #[inline(always)]
    pub fn scan(&self, buf: &Scratch, s: &mut Search) -> bool {
        if s.wanted == 0 || s.hit.is_some() || s.p >= s.end {
            return false;
        }
        let p = s.p;
        s.p += 1;
        let c = lower(buf[p & SCRATCH_MASK]);
        let word_start = !s.in_word;
        s.in_word = c.is_ascii_alphanumeric();
        if !word_start {
            return true;
        }
        let candidates = self.by_first[c as usize] & s.wanted;
        if candidates != 0 {
            s.hit = self.confirm(buf, p, s.end, candidates);
        }
        s.hit.is_none()
    }

    /// The first signature among `candidates` (a bitmask) that matches at `p`.
    #[inline(always)]
    fn confirm(&self, buf: &Scratch, p: usize, end: usize, candidates: u32) -> Option<u8> {
        for i in 0..MAX_SIGNATURES {
            if candidates & (1 << i) != 0 && self.signatures[i].matches_at(buf, p, end) {
                return Some(i as u8);
            }
        }
        None
    }
}

/// A signature search in progress; plain data, so it can live in a `bpf_loop` context.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    /// Next position.
    pub p: usize,
    pub end: usize,
    /// Signatures that apply to the field.
    pub wanted: u32,
    pub in_word: bool,
    pub hit: Option<u8>,
}

#[cfg(test)]
#[test]
fn lower8_lowers_ascii_letters_only() {
    for b in 0..=255u8 {
        let w = u64::from_le_bytes([b, b'A', b, b'z', b'@', b'[', b, 0xc1]);
        let want = u64::from_le_bytes([lower(b), b'a', lower(b), b'z', b'@', b'[', lower(b), 0xc1]);
        assert_eq!(lower8(w), want, "byte {b:#x}");
    }
}

/// ASCII lower case.
#[inline(always)]
pub(crate) const fn lower(c: u8) -> u8 {
    if c.is_ascii_uppercase() {
        c | 0x20
    } else {
        c
    }
}
