//! Known-good sources (`SW_SIP_GOOD`): they authenticated, so forged packets with their address
//! must not use up their rate-limit buckets. Asked only once a bucket is empty, and through a
//! one-bit filter first: a flood of other sources pays an array read, not a hash lookup.

use firewall_common::{addr::Addr6, clock::before, proof::GoodKey};

use crate::maps::{SW_SIP_GOOD, SW_SIP_GOOD_FILTER};

/// Whether the source (`addr` as its rate-limit key holds it) is known good at `now`.
#[inline(always)]
pub fn known(addr: Addr6, family: u32, now: u64) -> bool {
    let key = GoodKey { addr, family, _pad: 0 };
    let (word, bit) = key.filter_bit();
    if SW_SIP_GOOD_FILTER.get(word).is_none_or(|w| *w & (1 << bit) == 0) {
        return false;
    }
    // SAFETY: a plain read of a hash value; the daemon replaces, never frees, it under us.
    match unsafe { SW_SIP_GOOD.get(key) } {
        Some(until) => before(now, *until),
        None => false,
    }
}
