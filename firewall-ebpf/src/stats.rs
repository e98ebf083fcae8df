//! Per-CPU packet and byte counters by reason and service.

use aya_ebpf::programs::XdpContext;
use firewall_common::reason::{counter_index, Reason};

use crate::{cursor::frame_len, maps::SW_COUNTERS};

#[inline(always)]
pub fn count(ctx: &XdpContext, reason: Reason, svc: u32) {
    if let Some(c) = SW_COUNTERS.get_ptr_mut(counter_index(reason, svc)) {
        // SAFETY: per-CPU slot, and XDP programs do not preempt each other on one CPU.
        let c = unsafe { &mut *c };
        c.packets += 1;
        c.bytes += frame_len(ctx) as u64;
    }
}
