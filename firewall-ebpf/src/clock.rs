//! The `sipwall_clock` program's body: one sample of jiffies and CLOCK_MONOTONIC.

use aya_ebpf::helpers::{bpf_jiffies64, bpf_ktime_get_ns};
use firewall_common::clock::ClockSample;

use crate::maps::SW_CLOCK;

#[inline(always)]
pub fn sample() {
    if let Some(s) = SW_CLOCK.get_ptr_mut(0) {
        // SAFETY: the one slot of an array map; only this program writes it.
        unsafe { *s = ClockSample { jiffies: bpf_jiffies64(), mono_ns: bpf_ktime_get_ns() } };
    }
}
