//! SIP on the wire: tells SIP requests and responses from anything else and finds scanner
//! signatures, over a fixed-size copy of a UDP payload or the first TCP segment of a message.
//!
//! # What it answers
//!
//! [`classify`] reads at most [`INSPECT_LEN`] bytes and returns a [`Classification`]:
//! - [`Kind::Request`] with the [`Method`] when the first line is `METHOD SP URI SP SIP/2.0`,
//!   [`Kind::Response`] with the status code for `SIP/2.0 SP 3DIGIT`, both ended by CR LF or LF;
//! - [`Kind::Keepalive`] (CR/LF pings) and [`Kind::Stun`] (RFC 5626 keep-alives), which a SIP port
//!   legitimately receives and which are not SIP messages;
//! - [`Kind::NotSip`] for everything else, including a start line cut off by the end of the data.
//!
//! For requests, [`Classification::scanner`] names the first [`SignatureTable`] entry found at the
//! start of a word in the Request-URI, the `User-Agent` value or the `From` (`f`) value, folded
//! continuation lines included. Header names are case-insensitive; compact forms are recognised
//! ([`header::Header`]). Responses are not searched: they echo the request's `From`.
//!
//! # Why this shape: the verifier
//!
//! The XDP program copies the payload into a per-CPU scratch buffer ([`Scratch`], a power of
//! two so every index is masked with [`SCRATCH_MASK`] and provably in bounds) with
//! `bpf_xdp_load_bytes`, then runs this code on it. Every loop has a constant bound. The
//! verifier walks a bounded loop once per iteration and every path through its body, so the
//! costs multiply: a byte loop over 1,500 bytes with a 32-signature inner loop would be ~48,000
//! body walks, past the 1,000,000-instruction budget once the body has a few branches (see
//! "Loops in BPF" on docs.ebpf.io and the `bpf_loop` helper's merge message, Linux commit
//! b98057ef730a). Hence:
//! - The outer loop is per *line*, not per byte: [`Classifier::step`] reads one line. The XDP
//!   program drives it with `bpf_loop(MAX_LINES, …)` (Linux 5.17; inlined by the verifier when the
//!   callback is a constant and flags are 0), so the callback body is verified once whatever
//!   the number of lines. [`classify`] drives the same steps with a plain loop, for userspace and
//!   tests.
//! - The line end is found 8 bytes at a time (a zero-byte bit trick on `word ^ 0x0a0a…`): a
//!   200-iteration bound with a tiny body, and an eighth of the work at run time.
//! - Signatures are matched at word starts only, through [`SignatureTable::by_first`]: a word
//!   whose first byte starts no signature costs one array read; only candidates are compared
//!   byte by byte (at most [`signature::SIGNATURE_LEN`] bytes). Word starts also keep "smap" from matching
//!   inside an unrelated word. Only the first [`signature::VALUE_WINDOW`] bytes of a value are
//!   searched; scanners announce themselves at the start.
//! - Headers are searched until both `User-Agent` and `From` were seen, a signature matched or
//!   the headers ended, so a message body (SDP) is never read.
//!
//! The heaviest piece for the verifier is the signature search: the table is map data, so the
//! verifier assumes every word may have 32 candidates. [`Signature`] compares 8 bytes at a time
//! with no byte loop, and the search advances one position per [`SignatureTable::scan`] (state
//! in a [`Search`]), so [`Classifier::step_with`] can run it from a `bpf_loop` of its own.
//!
//! Measured on Linux 6.18 (see issue 4): since Linux 6.7 the verifier checks a `bpf_loop`
//! callback once per iteration whose state differs, so a callback whose state (a line start, a
//! search position) lives on the stack is walked once per position, and the candidate loop hits
//! the 8,192-jump limit. With that state in the per-CPU map instead (values the verifier does not
//! track) the callbacks are checked once, but a whole line step with unknown bounds then takes
//! more than the 1,000,000-instruction budget (the Request-URI check and the line-end search
//! walk every bound). What is left: smaller steps per callback (one word of the line-end search,
//! one byte of the Request-URI) before this verifies.

pub mod header;
pub mod method;
pub mod policy;
mod scan;
pub mod signature;
mod start;
pub mod word;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod pcap;
#[cfg(test)]
mod tests;

pub use method::{Method, MethodSet};
pub use policy::{sip_flag, SipPolicy};
pub use scan::{Classifier, Step, MAX_LINES, MAX_SEARCH_STEPS};
pub use signature::{
    Field, Signature, SignatureError, SignatureTable, DEFAULT_SCANNER_USER_AGENTS, DEFAULT_SIGNATURES, NMAP_PROBE_URI,
};

/// Indexes into the scratch buffer are masked with this: a power of two minus one, above
/// [`INSPECT_LEN`].
pub const SCRATCH_MASK: usize = 2047;
/// Bytes past `SCRATCH_MASK` that a read at a masked index may touch (up to a 32-byte signature
/// compare, rounded up).
pub const SCRATCH_SLACK: usize = 64;
/// Size of the scratch buffer the payload is copied into.
pub const SCRATCH_LEN: usize = SCRATCH_MASK + 1 + SCRATCH_SLACK;
/// Payload bytes inspected at most (an Ethernet MTU's worth).
pub const INSPECT_LEN: usize = 1500;

const _: () = assert!((SCRATCH_MASK + 1).is_power_of_two() && SCRATCH_MASK >= INSPECT_LEN + 8);

/// The buffer the classifier reads; bytes past the payload length are ignored, whatever they hold.
pub type Scratch = [u8; SCRATCH_LEN];

/// Value of `SW_SIP_SCRATCH` (per CPU): the payload being inspected and the classifier's state,
/// which the kernel's `bpf_loop` callback finds here.
#[repr(C)]
pub struct SipScratch {
    pub state: Classifier,
    pub buf: Scratch,
}
const _: () = assert!(core::mem::size_of::<SipScratch>() == 72 + SCRATCH_LEN);

/// What the payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    NotSip,
    /// Only CR and LF bytes (at most four): a keep-alive ping.
    Keepalive,
    /// A STUN message.
    Stun,
    Request(Method),
    /// A response, with its status code (100–699).
    Response(u16),
}

/// A scanner signature found in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`SignatureTable::signatures`].
    pub signature: u8,
    pub field: Field,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    pub scanner: Option<Hit>,
}

/// Classifies the `len`-byte payload at the start of `buf` (only the first [`INSPECT_LEN`]
/// bytes are read), looking for the signatures in `table`.
pub fn classify(buf: &Scratch, len: usize, table: &SignatureTable) -> Classification {
    let mut c = Classifier::new(len);
    c.run(buf, table);
    c.result()
}
