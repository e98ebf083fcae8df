//! Source-address tables: the network classification, which holds the allow list, blocked
//! networks, per-service `allow_from` lists and every ban (exact or CIDR).
//!
//! Lookups cost a bounded number of steps whatever the table size, and a source that no entry
//! covers costs only inlined array reads (see docs/architecture.md):
//! - IPv4: prefixes are expanded to the strides /16, /24 and /32. /16 cells live in a 65,536-entry
//!   array; a 2-bit-per-/24 bitmap says whether /24 or /32 entries exist for that /24; those
//!   entries live in a slot table in an array (`Slot4`). Inlined array reads only, whatever the
//!   size, except for the rare entry that overflowed into a hash.
//! - IPv6: entries keyed by (length, masked address) in a slot table (`Slot6`) with the same
//!   overflow hash scheme, probed longest length first over the distinct lengths in use
//!   (`Net6Lengths`), each probe guarded by a bit in a filter bitmap hashed from (length, masked
//!   address), so sources that match nothing probe nothing.
//!
//! Every entry carries the union of the sets of all configured prefixes covering it, so the
//! longest match alone gives the answer.

use crate::addr::Addr6;

/// Membership flags of a `NetClass`.
pub mod class {
    /// In the global allow list: never dropped, limited or banned.
    pub const ALLOW: u32 = 1 << 0;
    /// In a blocked network: dropped on every port.
    pub const BLOCK: u32 = 1 << 1;
    /// Banned (an exact address, an IPv6 ban prefix, or a CIDR); `ban_expires` tells until
    /// when.
    pub const BAN: u32 = 1 << 2;
    pub const MEMBERSHIP: u32 = ALLOW | BLOCK | BAN;
}

/// Value of every classification entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetClass {
    /// `class::*` bits.
    pub flags: u32,
    /// Bit `n` set: the source is in the `allow_from` list of service `n`.
    pub allow_from: u32,
    /// Kernel jiffies until which the `BAN` membership holds (`FOREVER` for permanent). The
    /// kernel ignores a ban past its expiry; the daemon removes it.
    pub ban_expires: u64,
}
const _: () = assert!(size_of::<NetClass>() == 16);
// the daemon writes and reads a class as the two words of `to_words`
const _: () = assert!(
    core::mem::offset_of!(NetClass, flags) == 0
        && core::mem::offset_of!(NetClass, allow_from) == 4
        && core::mem::offset_of!(NetClass, ban_expires) == 8
);

impl NetClass {
    /// The class as the two little-endian words the tables hold it in: `flags` in the low half
    /// of the first, `allow_from` in its high half, then `ban_expires`.
    #[inline(always)]
    pub const fn to_words(&self) -> [u64; 2] {
        [self.flags as u64 | (self.allow_from as u64) << 32, self.ban_expires]
    }

    /// The class of two words written by `to_words`.
    #[inline(always)]
    pub const fn from_words(w: [u64; 2]) -> NetClass {
        NetClass { flags: w[0] as u32, allow_from: (w[0] >> 32) as u32, ban_expires: w[1] }
    }
}

impl NetClass {
    pub const EMPTY: Self = Self { flags: 0, allow_from: 0, ban_expires: 0 };

    /// Union of two memberships.
    pub const fn union(self, other: Self) -> Self {
        Self {
            flags: (self.flags | other.flags) & class::MEMBERSHIP,
            allow_from: self.allow_from | other.allow_from,
            ban_expires: if self.ban_expires > other.ban_expires { self.ban_expires } else { other.ban_expires },
        }
    }

    pub const fn is_empty(&self) -> bool {
        self.flags & class::MEMBERSHIP == 0 && self.allow_from == 0
    }
}

/// An entry of the IPv4 slot table (`SW_NET4`): a /24 or /32 and its class.
///
/// The slot tables are 2-choice hash tables of 4-slot buckets in arrays the daemon writes
/// through a shared mapping; entries never move. The daemon stores an entry's class words
/// before its key, a ban's expiry before its flag, and the reader loads the key again after the
/// class, so it never returns a class that belongs to another key. An entry that finds both
/// buckets full goes to the overflow hash, and both buckets get their overflow bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot4 {
    /// `net4_key(len, addr_h)`; 0 is an empty slot.
    pub key: u64,
    pub class: NetClass,
}
const _: () = assert!(size_of::<Slot4>() == 24);
// the daemon's slot tables: the key word, then the class words
const _: () = assert!(core::mem::offset_of!(Slot4, key) == 0 && core::mem::offset_of!(Slot4, class) == 8);

/// An entry of the IPv6 slot table (`SW_NET6_SLOTS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot6 {
    /// `net6_tag(len)`; 0 is an empty slot.
    pub tag: u64,
    /// The prefix, masked to its length.
    pub addr: Addr6,
    pub class: NetClass,
}
const _: () = assert!(size_of::<Slot6>() == 40);
// the daemon's slot tables: the three key words (tag, address), then the class words
const _: () = assert!(
    core::mem::offset_of!(Slot6, tag) == 0
        && core::mem::offset_of!(Slot6, addr) == 8
        && core::mem::offset_of!(Slot6, class) == 24
);

/// Slots per bucket of the slot tables.
pub const SLOTS_PER_BUCKET: u32 = 4;

/// The key word of a /24 or /32 entry (`addr_h` host order, masked to `len`). Never 0.
#[inline(always)]
pub const fn net4_key(len: u32, addr_h: u32) -> u64 {
    ((len as u64) << 32) | addr_h as u64
}

/// The first word of an IPv6 slot: its prefix length, marked so that it is never 0.
#[inline(always)]
pub const fn net6_tag(len: u32) -> u64 {
    (1 << 63) | len as u64
}

#[inline(always)]
const fn mix(mut h: u64) -> u64 {
    h = (h ^ (h >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Maps the two halves of a hash onto two buckets out of `buckets` (multiply-shift: no
/// division).
#[inline(always)]
const fn two_buckets(h: u64, buckets: u32) -> (u32, u32) {
    let b1 = ((h as u32 as u64 * buckets as u64) >> 32) as u32;
    let b2 = (((h >> 32) as u32 as u64 * buckets as u64) >> 32) as u32;
    (b1, b2)
}

/// Where an entry may live: its two buckets and its fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub b1: u32,
    pub b2: u32,
    pub fp: u64,
}

#[inline(always)]
const fn place(h: u64, buckets: u32) -> Place {
    let (b1, b2) = two_buckets(h, buckets);
    Place { b1, b2, fp: fingerprint(mix(h)) }
}

/// Where an IPv4 key may live.
#[inline(always)]
pub const fn net4_place(key: u64, buckets: u32) -> Place {
    place(mix(key), buckets)
}

/// Where an IPv6 prefix may live.
#[inline(always)]
pub const fn net6_place(len: u32, addr: Addr6, buckets: u32) -> Place {
    place(mix(addr.hi ^ mix(addr.lo ^ len as u64)), buckets)
}

/// Bucket meta word (`SW_NET4_META`, `SW_NET6_META`, one u64 per bucket): byte `i` is the
/// fingerprint of slot `i` (0: empty), bit `META_OVERFLOW` says an entry hashing to this
/// bucket lives in the overflow hash. A lookup reads the slots whose fingerprint matches, so a
/// miss costs two word reads.
pub const META_OVERFLOW: u64 = 1 << 32;

/// Fingerprint of a key's hash, never 0.
#[inline(always)]
pub const fn fingerprint(h: u64) -> u64 {
    1 + (h >> 56) % 255
}

/// Load at which the slot tables are sized: below it, under 0.3 % of entries overflow.
pub const SLOT_LOAD_PERCENT: u64 = 70;

/// Buckets for `entries` entries at `SLOT_LOAD_PERCENT` load.
pub const fn slot_buckets(entries: u32) -> u32 {
    let slots = (entries as u64 * 100).div_ceil(SLOT_LOAD_PERCENT);
    let b = slots.div_ceil(SLOTS_PER_BUCKET as u64);
    if b < 64 {
        64
    } else {
        b as u32
    }
}

/// Entries the IPv6 slot table is sized for by default; more go to the overflow hash.
pub const NET6_FAST_ENTRIES: u32 = 131_072;

/// `SW_NET4_BITS` bit pair of a /24: entries at /32 exist for addresses in it.
pub const BITS_HAS_32: u64 = 1;
/// `SW_NET4_BITS` bit pair of a /24: an entry for the /24 itself exists.
pub const BITS_HAS_24: u64 = 2;
/// /24s per `SW_NET4_BITS` word (two bits each).
pub const BITS_PER_WORD: u32 = 32;
/// Words in `SW_NET4_BITS` (2^24 /24s).
pub const NET4_BIT_WORDS: u32 = (1 << 24) / BITS_PER_WORD;

/// Word index and shift of a host-order address's /24 in `SW_NET4_BITS`.
#[inline(always)]
pub const fn net4_bits_slot(addr_h: u32) -> (u32, u32) {
    (addr_h >> 13, ((addr_h >> 8) & (BITS_PER_WORD - 1)) * 2)
}

/// Key of the IPv6 hash (`SW_NET6`): `addr` masked to `len`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Net6Key {
    pub len: u32,
    pub _pad: u32,
    pub addr: Addr6,
}
const _: () = assert!(size_of::<Net6Key>() == 24);

/// Most distinct IPv6 prefix lengths in use at once: the probe loop's bound, sized so the
/// verifier's work stays well under its limit (about a third of it here).
pub const MAX_NET6_LENGTHS: usize = 32;

/// The distinct IPv6 prefix lengths in `SW_NET6`, longest first. Two slots exist; the daemon
/// fills the inactive one and then flips `Config::net6_slot`, so a packet never sees a torn list.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Net6Lengths {
    pub count: u32,
    pub lens: [u8; MAX_NET6_LENGTHS],
}
const _: () = assert!(size_of::<Net6Lengths>() == 36);

/// Bits in the IPv6 probe filter (`SW_NET6_FILTER`, 2 MiB).
pub const NET6_FILTER_BITS: u32 = 1 << 24;
/// Words (u64) in `SW_NET6_FILTER`.
pub const NET6_FILTER_WORDS: u32 = NET6_FILTER_BITS / 64;

/// Length code of the coarse filter bits: set for the /32 holding any entry of length 32 or
/// more, so a source whose /32 has no such entry skips those lengths altogether.
pub const COARSE_LEN: u32 = 255;
/// Length of the coarse filter's prefix.
pub const COARSE_PREFIX: u32 = 32;

/// Filter bit of an IPv6 entry (length, masked address): the kernel probes `SW_NET6` at a
/// length only if this bit is set. The same function runs on both sides.
#[inline(always)]
pub const fn net6_filter_bit(len: u32, masked: Addr6) -> u32 {
    let h =
        (masked.hi ^ masked.lo.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (len as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
            .wrapping_mul(0x1656_67b1_9e37_79f9);
    (h >> 40) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_slots_cover_every_24_once() {
        assert_eq!(net4_bits_slot(0), (0, 0));
        assert_eq!(net4_bits_slot(0x0000_01ff), (0, 2));
        assert_eq!(net4_bits_slot(0x0000_1f00), (0, 62));
        assert_eq!(net4_bits_slot(0x0000_2000), (1, 0));
        assert_eq!(net4_bits_slot(u32::MAX), (NET4_BIT_WORDS - 1, 62));
    }

    #[test]
    fn places_stay_in_range_and_spread() {
        let n = slot_buckets(2_000_000);
        assert_eq!(n, 714_286);
        let mut same = 0;
        let mut fps = [0u32; 256];
        for a in 0..100_000u32 {
            let p = net4_place(net4_key(32, a.wrapping_mul(2_654_435_761)), n);
            assert!(p.b1 < n && p.b2 < n);
            assert!((1..=255).contains(&p.fp));
            fps[p.fp as usize] += 1;
            same += usize::from(p.b1 == p.b2);
        }
        assert!(same < 10, "{same}");
        assert!(fps[1..].iter().all(|c| *c > 250), "fingerprints spread over 1..=255");
        assert_ne!(net4_key(24, 0), 0);
        assert_ne!(net6_tag(0), 0);
        let p = net6_place(48, Addr6 { hi: 0x2001_0db8_0001_0000, lo: 0 }, n);
        assert!(p.b1 < n && p.b2 < n && p.b1 != p.b2);
    }

    #[test]
    fn filter_bits_spread_and_stay_in_range() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            let b = net6_filter_bit(48, Addr6 { hi: 0x2001_0db8_0000_0000 | (i << 16), lo: 0 });
            assert!(b < NET6_FILTER_BITS);
            seen.insert(b);
        }
        assert!(seen.len() > 9_990, "{}", seen.len());
        let a = Addr6 { hi: 1, lo: 2 };
        assert_ne!(net6_filter_bit(48, a), net6_filter_bit(64, a));
    }
}
