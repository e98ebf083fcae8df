//! The daemon's periodic tasks: the sweeper (expiries, unanswered challenges, the store's
//! catch-up) each second, housekeeping (failures past findtime, old history) each minute, and
//! the census of rate-limit buckets in use.

use std::time::Duration;

use firewall_common::rate::Bucket;

use super::{events, lock, Shared};
use crate::datapath::shm::{MappedArray, Words};

/// Counts the buckets in use once a minute, reading the bucket array through a mapping made
/// for the count and dropped after it.
pub async fn rate_census(rate: MappedArray, d: Shared) {
    let mut rate = Some(rate);
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let Some(mut r) = rate.take() else { return };
        match tokio::task::spawn_blocking(move || {
            let n = buckets_in_use(&r);
            r.unmap();
            (r, n)
        })
        .await
        {
            Ok((r, n)) => {
                lock(&d).rate_in_use = n;
                rate = Some(r);
            }
            Err(_) => return,
        }
    }
}

/// Slots whose key is set: a bucket is 8 words, the key's family the high half of one.
pub fn buckets_in_use(words: &impl Words) -> usize {
    (0..words.len() / 8).filter(|i| words.load(i * 8 + Bucket::FAMILY_WORD) >> 32 != 0).count()
}

/// History kept at least, for escalation and `sipwall why`.
const HISTORY_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// Once a minute, forgets failures older than their jail's findtime; once a day, history older
/// than the longest escalation window (and at least 30 days).
pub async fn housekeeping(d: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut minutes = 0u64;
    loop {
        tick.tick().await;
        let d = d.clone();
        let purge = minutes.is_multiple_of(24 * 60);
        minutes += 1;
        let _ = tokio::task::spawn_blocking(move || {
            let mut g = lock(&d);
            let now = crate::datapath::clock::unix_ms(std::time::SystemTime::now());
            g.engine.expire(now);
            if purge {
                let keep = g
                    .enforcer
                    .rules()
                    .detection
                    .jails
                    .iter()
                    .filter_map(|j| j.increment.as_ref().map(|i| i.window))
                    .chain([HISTORY_KEPT])
                    .max()
                    .unwrap_or(HISTORY_KEPT);
                match g.store.purge_history(now.saturating_sub(keep.as_millis() as u64)) {
                    Ok(n) if n > 0 => log::info!("forgot {n} bans older than {}", crate::duration::format(Some(keep))),
                    Ok(_) => {}
                    Err(e) => log::warn!("purging the ban history: {e}"),
                }
            }
        })
        .await;
    }
}

/// Lifts expired bans (the kernel already ignores them) and forgets them in the store; turns
/// SIP challenges no success followed into failures.
pub async fn sweeper(d: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = d.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut g = lock(&d);
            g.catch_up_store();
            g.batch(|g| {
                g.sweep();
                events::unanswered(g);
            });
            g.enforcer.let_go();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use firewall_common::rate::{Bucket, RateKey, FAMILY_V6};

    use super::buckets_in_use;

    #[test]
    fn counts_buckets_with_a_key() {
        let b = Bucket { key: RateKey { svc: 3, family: FAMILY_V6, ..RateKey::default() }, ..Bucket::default() };
        // SAFETY: Bucket is plain old data of 8 words.
        let words: [u64; 8] = unsafe { std::mem::transmute(b) };
        let mut table = vec![0u64; 8 * 4];
        table[8..16].copy_from_slice(&words);
        table[24..32].copy_from_slice(&words);
        assert_eq!(buckets_in_use(&table), 2);
    }
}
