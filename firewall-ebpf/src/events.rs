//! Reports to the daemon through the `SW_EVENTS` ring buffer, counted as sent or lost.

use firewall_common::rate::{event_stat, RateEvent};

use crate::maps::{SW_EVENTS, SW_EVENT_STATS};

/// Sends `ev`; `true` if it fit in the ring buffer.
#[inline(always)]
pub fn send(ev: &RateEvent) -> bool {
    let sent = SW_EVENTS.output::<RateEvent>(ev, 0).is_ok();
    count(sent);
    sent
}

/// Counts a record as sent or lost (the ring buffer was full).
#[inline(always)]
pub fn count(sent: bool) {
    let slot = if sent { event_stat::SENT } else { event_stat::LOST };
    if let Some(c) = SW_EVENT_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot.
        unsafe { *c += 1 };
    }
}
