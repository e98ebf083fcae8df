//! What the kernel shows the daemon so that it can tell evidence a forger can produce from
//! evidence that needed the host's own packets (docs/rules.md, "Proven and unproven evidence").
//!
//! A forger can send anything from any address but never sees what the host answers to it.
//! The SIP answers that carry something only their receiver learns (the nonce of a 401 or 407,
//! the To-tag of any final answer) are sent to the daemon with their text ([`SipAnswer`]), and
//! the answered address is awaited for a while (`SW_SIP_AWAIT`): its requests go through the
//! full inspection, which sends each to the daemon as its whole scratch record
//! ([`crate::sip::SipScratch`]). A request that carries the nonce or the To-tag the host sent to
//! its address and port proves the address. Known-good sources (`SW_SIP_GOOD`), those that
//! authenticated, are never dropped by a rate limit: forged packets with their address cannot
//! use up their bucket.
//!
//! The ring buffer's records are told apart by their size: [`RateEvent`], [`SipAnswer`] and
//! [`crate::sip::SipScratch`] differ.

use crate::{addr::Addr6, rate::RateEvent, sip::SipScratch};

/// How long after an answer a request may prove it, and a failure waits for that; the kernel
/// shows the daemon the requests of an answered source for as long (`Config::proof_wait`).
pub const WAIT_MS: u64 = 32_000;

/// Bytes of an answer's text kept at most (its header block: the nonce and To-tag are there).
pub const ANSWER_LEN: usize = 2048;
/// Mask of a copy length into the answer buffer (`ANSWER_LEN` is a power of two).
pub const ANSWER_MASK: usize = ANSWER_LEN - 1;

/// An answer the egress classifier read: `ev` as for any SIP event (kind `SIP_FAILURE`,
/// `SIP_CHALLENGE` or `SIP_SUCCESS`, status), then the peer's port and the first `len` bytes of
/// the UDP payload.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SipAnswer {
    pub ev: RateEvent,
    /// The peer's address (as in `ev.addr`).
    pub peer: Addr6,
    pub peer_port: u16,
    pub len: u16,
    pub _pad: u32,
    pub text: [u8; ANSWER_LEN],
}
const _: () = assert!(size_of::<SipAnswer>() == 72 + ANSWER_LEN);

// The daemon tells records apart by size.
const _: () = assert!(size_of::<SipAnswer>() != size_of::<SipScratch>());
const _: () = assert!(size_of::<SipAnswer>() != size_of::<RateEvent>());
const _: () = assert!(size_of::<SipScratch>() != size_of::<RateEvent>());

/// Set in a scanner drop's `RateEvent::detail` when the request came over a TCP connection
/// whose handshake completed: the sender receives the host's packets.
pub const SCANNER_PROVEN: u32 = 1 << 31;

/// Key of `SW_SIP_GOOD`: a source address (IPv6: its /64, as the rate limiter counts it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GoodKey {
    pub addr: Addr6,
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<GoodKey>() == 24);

/// Words of `SW_SIP_GOOD_FILTER`: one bit per hash of a known-good key, so that a packet over its
/// rate limit pays the hash lookup in `SW_SIP_GOOD` only when its source may be known good (a
/// flood of forged sources almost never does).
pub const GOOD_FILTER_WORDS: u32 = 16_384;

impl GoodKey {
    /// The bit of `SW_SIP_GOOD_FILTER` this key sets: (word, bit in the word).
    #[inline(always)]
    pub const fn filter_bit(&self) -> (u32, u32) {
        let h = (self.addr.lo ^ self.addr.hi.rotate_left(29) ^ (self.family as u64) << 56)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bit = (h >> 40) as u32 & (GOOD_FILTER_WORDS * 64 - 1);
        (bit / 64, bit % 64)
    }
}
