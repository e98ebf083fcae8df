//! Per-source token buckets and the sampled over-limit events.

use aya_ebpf::bindings::BPF_NOEXIST;
use firewall_common::{
    rate::{event, event_stat, Bucket, RateEvent, RateKey},
    service::ServicePolicy,
    NANO_TOKENS,
};

use crate::maps::{SW_CONFIG, SW_EVENTS, SW_EVENT_STATS, SW_RATE};

/// Takes one token from the source's bucket; `false` means over the limit.
#[inline(always)]
pub fn take(key: &RateKey, policy: &ServicePolicy, now: u64) -> bool {
    let Some(b) = SW_RATE.get_ptr_mut(key) else {
        // First packet of this source: a full bucket minus this packet. If the insert fails the
        // packet still passes; the next one retries.
        let fresh = Bucket { tokens: policy.capacity.saturating_sub(NANO_TOKENS), last_ns: now, ..Bucket::default() };
        let _ = SW_RATE.insert(key, &fresh, BPF_NOEXIST as u64);
        return true;
    };
    // SAFETY: the pointer comes from a successful lookup; concurrent CPUs may race on the same
    // bucket, which can only cost a token's precision, never memory safety.
    let b = unsafe { &mut *b };
    let elapsed = now.saturating_sub(b.last_ns);
    let tokens = if elapsed >= policy.fill_ns {
        policy.capacity
    } else {
        let t = b.tokens + elapsed * policy.rate;
        if t > policy.capacity {
            policy.capacity
        } else {
            t
        }
    };
    b.last_ns = now;
    if tokens >= NANO_TOKENS {
        b.tokens = tokens - NANO_TOKENS;
        return true;
    }
    b.tokens = tokens;
    b.dropped = b.dropped.saturating_add(1);
    report(key, b, now);
    false
}

/// Sends at most one event per source and service per `event_interval_ns`.
#[inline(always)]
fn report(key: &RateKey, b: &mut Bucket, now: u64) {
    let interval = SW_CONFIG.get(0).map(|c| c.event_interval_ns).unwrap_or(1_000_000_000);
    if b.reported_ns != 0 && now.saturating_sub(b.reported_ns) < interval {
        return;
    }
    let ev = RateEvent {
        kind: event::RATE_LIMITED,
        svc: key.svc,
        family: key.family,
        dropped: b.dropped,
        ts_ns: now,
        _pad: 0,
        addr: key.addr,
    };
    let slot = match SW_EVENTS.output::<RateEvent>(&ev, 0) {
        Ok(()) => {
            b.reported_ns = now;
            b.dropped = 0;
            event_stat::SENT
        }
        Err(_) => event_stat::LOST,
    };
    if let Some(c) = SW_EVENT_STATS.get_ptr_mut(slot) {
        unsafe { *c += 1 };
    }
}
