//! Per-source token buckets in a 2-way set-associative array, and the sampled over-limit events.

use firewall_common::{
    config::Config,
    rate::{event, Bucket, RateEvent, RateKey},
    service::ServicePolicy,
    NANO_TOKENS,
};

use crate::{events, maps::SW_RATE};

/// The bucket of `key`: the slot of its pair holding it, or the pair's least recently used slot
/// taken over with a full bucket (`None` then means "first packet, passes").
#[inline(always)]
fn bucket(key: &RateKey, policy: &ServicePolicy, cfg: &Config, now: u64) -> Option<&'static mut Bucket> {
    let i = key.slot(cfg.rate_mask);
    let a = SW_RATE.get_ptr_mut(i)?;
    let b = SW_RATE.get_ptr_mut(i + 1)?;
    // SAFETY: pointers into the array map; concurrent CPUs may race on a slot, which can cost a
    // token's precision or a bucket's history, never memory safety.
    let (a, b) = unsafe { (&mut *a, &mut *b) };
    if a.key == *key {
        return Some(a);
    }
    if b.key == *key {
        return Some(b);
    }
    let victim = if a.last.wrapping_sub(b.last) as i64 <= 0 { a } else { b };
    *victim = Bucket { key: *key, tokens: policy.capacity.saturating_sub(NANO_TOKENS), last: now, ..Bucket::default() };
    None
}

/// Takes one token from the source's bucket; `false` means over the limit.
#[inline(always)]
pub fn take(key: &RateKey, policy: &ServicePolicy, cfg: &Config, now: u64) -> bool {
    let Some(b) = bucket(key, policy, cfg, now) else {
        return true;
    };
    let elapsed = now.wrapping_sub(b.last);
    let tokens = if elapsed >= policy.fill {
        policy.capacity
    } else {
        let t = b.tokens + elapsed * policy.rate;
        if t > policy.capacity {
            policy.capacity
        } else {
            t
        }
    };
    b.last = now;
    if tokens >= NANO_TOKENS {
        b.tokens = tokens - NANO_TOKENS;
        return true;
    }
    b.tokens = tokens;
    b.dropped = b.dropped.saturating_add(1);
    report(b, cfg, now);
    false
}

/// Sends at most one event per source and service per `event_interval`.
#[inline(always)]
fn report(b: &mut Bucket, cfg: &Config, now: u64) {
    if b.reported != 0 && now.wrapping_sub(b.reported) < cfg.event_interval {
        return;
    }
    let ev = RateEvent {
        kind: event::RATE_LIMITED,
        svc: b.key.svc,
        family: b.key.family,
        dropped: b.dropped,
        ts: now,
        status: 0,
        detail: 0,
        addr: b.key.addr,
    };
    if events::send(&ev) {
        b.reported = now;
        b.dropped = 0;
    }
}
