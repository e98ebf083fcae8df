//! Source classification; see `firewall_common::nets` for the table layout.

use core::{ffi::c_void, ptr::read_volatile};

use aya_ebpf::{helpers::bpf_loop, maps::Array};
use firewall_common::{
    addr::Addr6,
    config::Config,
    nets::{
        net4_bits_slot, net4_key, net4_place, net6_filter_bit, net6_place, net6_tag, Net6Key, Net6Lengths, NetClass,
        Place, BITS_HAS_24, BITS_HAS_32, COARSE_LEN, COARSE_PREFIX, MAX_NET6_LENGTHS, META_OVERFLOW, SLOTS_PER_BUCKET,
    },
};

use crate::maps::{
    SW_NET4, SW_NET4_BITS, SW_NET4_L16, SW_NET4_META, SW_NET4_OVER, SW_NET6, SW_NET6_FILTER, SW_NET6_LENS,
    SW_NET6_META, SW_NET6_OVER,
};

/// Reads a class that the daemon may be rewriting; each word is read once.
#[inline(always)]
fn read_class(c: *const NetClass) -> NetClass {
    // SAFETY: `c` points into a live array map value.
    unsafe { read_volatile(c) }
}

/// A bucket's meta word (0 if out of range).
#[inline(always)]
fn meta(words: &Array<u64>, bucket: u32) -> u64 {
    match words.get_ptr(bucket) {
        // SAFETY: pointer into a live array map value.
        Some(w) => unsafe { read_volatile(w) },
        None => 0,
    }
}

/// Runs `probe` on the slots of `place` whose fingerprint matches, first bucket first; then
/// says whether the overflow hash may hold the key.
#[inline(always)]
fn scan<T>(place: Place, metas: &Array<u64>, mut probe: impl FnMut(u32) -> Option<T>) -> Result<T, bool> {
    let m1 = meta(metas, place.b1);
    for i in 0..SLOTS_PER_BUCKET {
        if (m1 >> (i * 8)) & 0xff == place.fp {
            if let Some(v) = probe(place.b1 * SLOTS_PER_BUCKET + i) {
                return Ok(v);
            }
        }
    }
    let m2 = meta(metas, place.b2);
    for i in 0..SLOTS_PER_BUCKET {
        if (m2 >> (i * 8)) & 0xff == place.fp {
            if let Some(v) = probe(place.b2 * SLOTS_PER_BUCKET + i) {
                return Ok(v);
            }
        }
    }
    Err((m1 | m2) & META_OVERFLOW != 0)
}

/// The class of IPv4 key `key`.
#[inline(always)]
fn net4_entry(key: u64, cfg: &Config) -> Option<NetClass> {
    let found = scan(net4_place(key, cfg.net4_buckets), &SW_NET4_META, |i| {
        let s = SW_NET4.get_ptr(i)?;
        // SAFETY: pointer into the array map; the key is read again after the class, so a slot
        // rewritten meanwhile for another key is not taken for this one.
        unsafe {
            if read_volatile(&(*s).key) != key {
                return None;
            }
            let class = read_class(&(*s).class);
            (read_volatile(&(*s).key) == key).then_some(class)
        }
    });
    match found {
        Ok(c) => Some(c),
        // SAFETY: the value is copied out at once, and a hash map entry the daemon deletes stays
        // readable until the program returns (RCU).
        Err(true) => unsafe { SW_NET4_OVER.get(key) }.copied(),
        Err(false) => None,
    }
}

/// Longest-match class of an IPv4 source: inlined array reads, and slot probes only for /24s
/// that have entries.
#[inline(always)]
pub fn classify_v4(addr_be: u32, cfg: &Config) -> NetClass {
    let a = u32::from_be(addr_be);
    let (word, shift) = net4_bits_slot(a);
    let bits = SW_NET4_BITS.get(word).map_or(0, |w| (*w >> shift) & 3);
    if bits & BITS_HAS_32 != 0 {
        if let Some(v) = net4_entry(net4_key(32, a), cfg) {
            return v;
        }
    }
    if bits & BITS_HAS_24 != 0 {
        if let Some(v) = net4_entry(net4_key(24, a & 0xffff_ff00), cfg) {
            return v;
        }
    }
    match SW_NET4_L16.get_ptr(a >> 16) {
        Some(cell) => read_class(cell),
        None => NetClass::EMPTY,
    }
}

/// The class of IPv6 prefix (`len`, `addr`), `addr` already masked.
#[inline(always)]
fn net6_entry(len: u32, addr: Addr6, cfg: &Config) -> Option<NetClass> {
    let tag = net6_tag(len);
    let found = scan(net6_place(len, addr, cfg.net6_buckets), &SW_NET6_META, |i| {
        let s = SW_NET6.get_ptr(i)?;
        // SAFETY: as for IPv4; the tag is read again after the address and class.
        unsafe {
            if read_volatile(&(*s).tag) != tag {
                return None;
            }
            let a: Addr6 = read_volatile(&(*s).addr);
            let class = read_class(&(*s).class);
            (a == addr && read_volatile(&(*s).tag) == tag).then_some(class)
        }
    });
    match found {
        Ok(c) => Some(c),
        // SAFETY: as for IPv4, the value is copied out at once.
        Err(true) => unsafe { SW_NET6_OVER.get(Net6Key { len, _pad: 0, addr }) }.copied(),
        Err(false) => None,
    }
}

#[inline(always)]
fn filter_hit(len: u32, masked: Addr6) -> bool {
    let bit = net6_filter_bit(len, masked);
    SW_NET6_FILTER.get(bit / 64).is_some_and(|w| (*w >> (bit % 64)) & 1 != 0)
}

/// Lengths probed inline, before the rest go to a `bpf_loop` callback.
const INLINE_LENGTHS: usize = 4;

/// Longest-match class of an IPv6 source: over the distinct lengths in use, longest first, a
/// filter bit (inlined array read) says whether a probe at that length can hit; a coarse bit for
/// the source's /32 skips every length from 32 up when nothing there can match.
///
/// The first [`INLINE_LENGTHS`] lengths are probed inline, the others one per call of a
/// `bpf_loop` callback. A loop unrolled over all 32 lengths made the verifier walk every probe
/// of every length (95 % of the program's verifier work, over 600,000 instructions on Linux
/// 6.1); the callback is checked once. Inline, the common tables (a few lengths) pay no call:
/// with the kernel's return-thunk mitigations a call and its return cost as much as a probe.
#[inline(always)]
pub fn classify_v6(addr: Addr6, cfg: &Config) -> NetClass {
    let Some(lens) = SW_NET6_LENS.get_ptr(cfg.net6_slot & 1) else {
        return NetClass::EMPTY;
    };
    // SAFETY: a live array map value.
    let n = unsafe { read_volatile(&(*lens).count) } as usize;
    if n == 0 {
        return NetClass::EMPTY;
    }
    let mut search = Search6 {
        addr,
        cfg,
        lens,
        coarse: filter_hit(COARSE_LEN, addr.masked(COARSE_PREFIX)) as u64,
        found: NetClass::EMPTY,
    };
    for i in 0..INLINE_LENGTHS {
        if i >= n {
            return NetClass::EMPTY;
        }
        if let Some(v) = search.probe(i) {
            return v;
        }
    }
    let n = if n > MAX_NET6_LENGTHS { MAX_NET6_LENGTHS } else { n };
    if n > INLINE_LENGTHS {
        // SAFETY: `search` outlives the call; the callback reads it only through its context.
        unsafe {
            bpf_loop((n - INLINE_LENGTHS) as u32, probe_length as *mut c_void, (&raw mut search).cast::<c_void>(), 0)
        };
    }
    search.found
}

/// The IPv6 lookup's state, shared with its callback.
#[repr(C)]
struct Search6 {
    addr: Addr6,
    cfg: *const Config,
    lens: *const Net6Lengths,
    /// Whether a probe at lengths from `COARSE_PREFIX` up can hit (0 or 1).
    coarse: u64,
    found: NetClass,
}

impl Search6 {
    /// Probes the `i`-th longest length in use.
    #[inline(always)]
    fn probe(&self, i: usize) -> Option<NetClass> {
        // SAFETY: the pointers are into map values that outlive the program's run.
        let (cfg, lens) = unsafe { (&*self.cfg, &*self.lens) };
        let len = lens.lens[i & (MAX_NET6_LENGTHS - 1)] as u32;
        if len >= COARSE_PREFIX && self.coarse == 0 {
            return None;
        }
        let masked = self.addr.masked(len);
        if !filter_hit(len, masked) {
            return None;
        }
        net6_entry(len, masked, cfg)
    }
}

/// Probes the length [`INLINE_LENGTHS`] + `i`; 1 (stop) on a hit.
extern "C" fn probe_length(i: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: `classify_v6` passes its live `Search6`.
    let s = unsafe { &mut *(ctx as *mut Search6) };
    match s.probe(INLINE_LENGTHS + i as usize) {
        Some(v) => {
            s.found = v;
            1
        }
        None => 0,
    }
}
