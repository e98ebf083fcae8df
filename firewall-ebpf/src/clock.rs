//! The programs' time: kernel jiffies (a plain load; a nanosecond clock costs a clock read per
//! packet, and jiffies are precise enough for bans and buckets), or a clock the tests set.
//! Also the `sipwall_clock` program's body: one sample of jiffies and CLOCK_MONOTONIC.

use aya_ebpf::{
    helpers::{bpf_jiffies64, bpf_ktime_get_ns},
    Global,
};
use firewall_common::{clock::ClockSample, maps::CLOCK_TEST};

use crate::maps::SW_CLOCK;

/// Set to 1 by the loader for tests only: the programs then read the time from slot
/// `CLOCK_TEST` of `SW_CLOCK` while it is not 0. A load-time constant: off, the verifier removes
/// the branch.
#[unsafe(no_mangle)]
static SIPWALL_TEST_CLOCK: Global<u32> = Global::new(0);

/// Jiffies now.
#[inline(always)]
pub fn now() -> u64 {
    if SIPWALL_TEST_CLOCK.load() != 0 {
        if let Some(t) = SW_CLOCK.get(CLOCK_TEST) {
            if t.jiffies != 0 {
                return t.jiffies;
            }
        }
    }
    // SAFETY: no preconditions.
    unsafe { bpf_jiffies64() }
}

#[inline(always)]
pub fn sample() {
    if let Some(s) = SW_CLOCK.get_ptr_mut(0) {
        // SAFETY: the first slot of an array map; only this program writes it.
        unsafe { *s = ClockSample { jiffies: bpf_jiffies64(), mono_ns: bpf_ktime_get_ns() } };
    }
}
