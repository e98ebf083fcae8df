//! Per-source token buckets and the events the kernel reports about them.
//!
//! Buckets live in a 2-way set-associative array (`SW_RATE`): a source hashes to a pair of
//! slots; it uses the slot holding its key, or takes over the one least recently used. Lookups
//! are inlined array reads; a flood of spoofed sources can only recycle buckets (giving a
//! source a fresh, full bucket), never touch bans or allow entries, which live elsewhere.

use crate::addr::Addr6;

pub const FAMILY_V4: u32 = 4;
pub const FAMILY_V6: u32 = 6;

/// Who a bucket belongs to. IPv4 sources sit in `addr.lo` (host order); IPv6 sources are masked
/// to /64. `svc` is the service id, with a SIP method id in bits 8..16 for a per-method bucket
/// (`sip::policy::method_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub addr: Addr6,
    pub svc: u32,
    /// `FAMILY_V4` or `FAMILY_V6`; 0 marks an empty slot.
    pub family: u32,
}
const _: () = assert!(size_of::<RateKey>() == 24);

impl RateKey {
    /// Index of the first slot of this key's pair; `mask` is the slot count minus one.
    #[inline(always)]
    pub const fn slot(&self, mask: u32) -> u32 {
        let h = (self.addr.lo ^ self.addr.hi.rotate_left(29) ^ ((self.svc as u64) << 56))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 32) as u32 & mask) & !1
    }
}

/// A slot of `SW_RATE` (one cache line).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub key: RateKey,
    /// Nano-tokens available at `last` (jiffies).
    pub tokens: u64,
    pub last: u64,
    /// When (jiffies) this source was last reported over its limit.
    pub reported: u64,
    /// Drops since that report.
    pub dropped: u32,
    pub _pad: u32,
    pub _pad2: u64,
}
const _: () = assert!(size_of::<Bucket>() == 64);

impl Bucket {
    /// The word of a bucket, read as 8 little-endian words, whose high half is `key.family`:
    /// 0 in a slot no source took.
    pub const FAMILY_WORD: usize = 2;
}
const _: () =
    assert!(core::mem::offset_of!(Bucket, key) + core::mem::offset_of!(RateKey, family) == Bucket::FAMILY_WORD * 8 + 4);

/// `RateEvent::kind` values.
pub mod event {
    /// A source went over a service's rate limit.
    pub const RATE_LIMITED: u32 = 1;
    /// The host answered a SIP request from `addr` with a failure (`status`: 403 or 404),
    /// from a port of service `svc`.
    pub const SIP_FAILURE: u32 = 2;
    /// The SIP inspector dropped a packet from `addr` to service `svc`: `status` is the
    /// `Reason`, `detail` the signature index and field (`SipScanner`: index | field << 8) or the
    /// method id (`SipMethod`, `SipStealthOptions`).
    pub const SIP_DROPPED: u32 = 3;
    /// The host challenged `addr` for credentials (`status` 401 or 407); the daemon waits for
    /// a success to follow.
    pub const SIP_CHALLENGE: u32 = 4;
    /// The host answered `addr`, which it had challenged, with a success (`status` 2xx).
    pub const SIP_SUCCESS: u32 = 5;
}

/// Record in the `SW_EVENTS` ring buffer. At most one per source and service per
/// `Config::event_interval`; `dropped` counts the drops it stands for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEvent {
    pub kind: u32,
    pub svc: u32,
    pub family: u32,
    pub dropped: u32,
    /// Jiffies.
    pub ts: u64,
    /// `SIP_FAILURE`: the SIP status code answered; `SIP_DROPPED`: the reason.
    pub status: u32,
    /// `SIP_DROPPED`: what matched (see there).
    pub detail: u32,
    pub addr: Addr6,
}
const _: () = assert!(size_of::<RateEvent>() == 48);

/// `SW_EVENT_STATS` indices.
pub mod event_stat {
    pub const SENT: u32 = 0;
    /// The ring buffer was full; the daemon is not keeping up.
    pub const LOST: u32 = 1;
    pub const SLOTS: u32 = 2;
}

/// Slots for a requested bucket capacity: a power of two, at least 1,024.
pub const fn rate_slots(capacity: u32) -> u32 {
    let c = if capacity < 1024 { 1024 } else { capacity };
    if c > 1 << 30 {
        1 << 30
    } else {
        c.next_power_of_two()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_even_and_in_range() {
        let mask = rate_slots(262_144) - 1;
        for i in 0..1000u64 {
            let k = RateKey { addr: Addr6 { hi: 0, lo: i }, svc: 1, family: FAMILY_V4 };
            let s = k.slot(mask);
            assert_eq!(s % 2, 0);
            assert!(s < mask);
        }
        assert_eq!(rate_slots(1000), 1024);
        assert_eq!(rate_slots(262_145), 524_288);
    }
}
