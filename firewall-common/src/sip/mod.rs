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
//! The XDP program copies the payload into a per-CPU scratch buffer ([`SipScratch`]) with
//! `bpf_xdp_load_bytes` and runs this code on it; every index is masked with [`SCRATCH_MASK`], so
//! it is provably in bounds. The verifier walks a bounded loop once per iteration and path, and
//! the work multiplies with every loop nested in it, so:
//! - The classifier is a state machine in plain 32-bit fields ([`Classifier`]) that lives in the
//!   map value next to the buffer: [`Classifier::first`] reads the start line,
//!   [`Classifier::headers`] looks through up to 128 bytes of the header block per call for
//!   the next line it must read (one starting with `u`, `f`, CR or LF, or any line while a
//!   value is open) and reads that one line, [`Classifier::search`] a searched value per call,
//!   up to its first word start that may begin a signature. The kernel calls the last two from
//!   `bpf_loop` callbacks, which the verifier checks once whatever the number of calls, because
//!   their state is map memory it does not track. Each call costs about 6 ns on its own (a call
//!   and a return through the kernel's return thunk), so the steps are large.
//!   [`classify`] runs the same steps with plain loops, for userspace and tests.
//! - Bytes are found 8 at a time ([`word`]): line ends, the colon of a header name, word starts
//!   (letters and digits not preceded by one), leading CR/LF, all without a branch per byte.
//! - Signatures are filed by a hash of their first four letters ([`SignatureTable::by_prefix`]):
//!   a word start whose first letter starts a signature ([`SignatureTable::first`]) costs one
//!   array read, and its first 8 bytes are compared with the bucket's first signature; only
//!   where they agree (or the bucket holds more) are the bucket's (at most four) signatures
//!   compared in full, 8 bytes at a time. Only the first [`signature::VALUE_WINDOW`] bytes of a
//!   value are searched; scanners announce themselves at the start.
//! - Values whose range would differ at each exit of a loop are read back from the state (the
//!   start line's end) or masked after [`word::opaque`], so the verifier sees one state where it
//!   would otherwise see one per exit, and the compiler cannot drop a mask the verifier needs.
//!   In the search loop, minimums and tests are arithmetic behind [`word::opaque`], where the
//!   compiler would branch: each branch there made paths that the verifier walked once per turn.
//! - Only the lines that may be `User-Agent`, `From` or `f` are read, found 8 bytes at a time
//!   by the byte after each LF; the others are passed over unread. A value's line end is looked
//!   for right away, within the bytes the search reads. At most [`MAX_READ_LINES`] lines are
//!   read in a message.
//! - Headers are read until both `User-Agent` and `From` were seen or the headers ended, so a
//!   message body (SDP) is never read.

use crate::addr::Addr6;

pub mod clean;
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
pub use scan::{Classifier, Step, MAX_HEADER_STEPS, MAX_READ_LINES, MAX_SEARCH_STEPS};
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

/// Value of `SW_SIP_SCRATCH` (per CPU): the payload being inspected, what the inspector's first
/// stage hands the second, and the classifier's state, which the kernel's `bpf_loop` callbacks
/// find here. A request from a source the host awaits a proof from (`SW_SIP_AWAIT`) is sent to
/// the daemon as this whole record (see [`crate::proof`]).
#[repr(C)]
pub struct SipScratch {
    pub state: Classifier,
    /// Jiffies of this CPU's last report of a drop that bans nobody (not SIP, method,
    /// stealth): at most one per jiffy and CPU, so a flood of junk cannot crowd the scanner
    /// reports out of the ring buffer.
    pub reported: u64,
    pub handoff: Handoff,
    pub buf: Scratch,
}
const _: () = assert!(size_of::<SipScratch>() == 128 + SCRATCH_LEN);

/// What the inspector's first stage (`sipwall_sip`) hands the full inspection
/// (`sipwall_sip_full`) besides the payload: who sent the request, to which service, its
/// source's `SW_SIP_CLEAN` slot and the time. The second stage reads it from map memory, so the
/// verifier checks it once, not once per path of the first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handoff {
    /// The sender (IPv4 in `lo`, host order).
    pub peer: Addr6,
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u32,
    pub svc: u32,
    /// 1 for TCP.
    pub tcp: u8,
    /// 1 for a TCP segment of a connection whose handshake completed (its sender received the
    /// host's SYN-ACK): a scanner hit in it is proven.
    pub established: u8,
    /// The sender's port.
    pub port: u16,
    /// Index of the sender's slot in `SW_SIP_CLEAN`.
    pub slot: u32,
    /// Jiffies when the packet arrived.
    pub now: u64,
}
const _: () = assert!(size_of::<Handoff>() == 40);

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
/// bytes are read), looking for the signatures in `table`. Works on a sealed copy of `buf`.
pub fn classify(buf: &Scratch, len: usize, table: &SignatureTable) -> Classification {
    let mut copy = *buf;
    let mut c = Classifier::new(len);
    c.run(&mut copy, table);
    c.result()
}

/// What [`seal`] writes after the payload: an empty line, which ends the header block.
pub const END_MARK: [u8; 4] = *b"\r\n\r\n";

/// Writes [`END_MARK`] right after the `len` bytes [`Classifier`] reads (at most
/// [`INSPECT_LEN`]), so that the header walk stops there without comparing its position with
/// the length at every word. The kernel seals the copy it makes; [`Classifier::run`] seals the
/// buffer it is given.
#[inline(always)]
pub fn seal(buf: &mut Scratch, len: usize) {
    let at = if len < INSPECT_LEN { len } else { INSPECT_LEN };
    // SAFETY: at <= INSPECT_LEN and the buffer holds INSPECT_LEN + 4 bytes and more
    // (SCRATCH_MASK >= INSPECT_LEN + 8); the write has no alignment requirement.
    unsafe { core::ptr::write_unaligned(buf.as_mut_ptr().add(at & SCRATCH_MASK).cast::<[u8; 4]>(), END_MARK) };
}
