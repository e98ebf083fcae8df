//! The SIP challenges (401, 407) the host answered, waiting for the success that shows the
//! client knew its password. A phone answers its challenge within milliseconds; a password
//! guesser collects challenges and never succeeds. A challenge that no success to its
//! destination followed within [`WAIT_MS`] counts as a failure for the `sip-wire` jail, proven
//! if its transaction was (see [`crate::detection::proof`]).

use std::{collections::HashMap, net::IpAddr};

use firewall_common::rate::RateEvent;

use crate::detection::proof::Call;

/// How long a challenge waits for a success before it counts as a failure: as long as a
/// request may take to prove its transaction.
pub const WAIT_MS: u64 = crate::detection::proof::WAIT_MS;

/// A challenge the host answered, and its transaction if its text was read.
pub type Challenge = (RateEvent, Option<Call>);
/// Destinations waited for at once; challenges to others are not tracked until room is made.
const CAPACITY: usize = 65_536;
/// Challenges kept per destination: more are counted as one more failure each, not stored.
const PER_DESTINATION: usize = 64;

/// Challenges not yet followed by a success, by destination.
#[derive(Default)]
pub struct Challenges {
    pending: HashMap<IpAddr, Pending>,
}

struct Pending {
    /// When the oldest challenge was answered (unix ms).
    since: u64,
    /// The challenges, as the kernel reported them.
    events: Vec<Challenge>,
}

impl Challenges {
    /// The host challenged `host` (`ev`). `false` when the table is full and it was not kept.
    pub fn challenged(&mut self, host: IpAddr, ev: Challenge, now: u64) -> bool {
        if !self.pending.contains_key(&host) && self.pending.len() >= CAPACITY {
            return false;
        }
        let p = self.pending.entry(host).or_insert_with(|| Pending { since: now, events: Vec::new() });
        if p.events.len() < PER_DESTINATION {
            p.events.push(ev);
        }
        true
    }

    /// The host answered `host` with a success: its challenges were answered.
    pub fn succeeded(&mut self, host: IpAddr) {
        self.pending.remove(&host);
    }

    /// The challenges that waited [`WAIT_MS`] without a success, now failures; they are
    /// forgotten here.
    pub fn unanswered(&mut self, now: u64) -> Vec<Challenge> {
        let due: Vec<IpAddr> =
            self.pending.iter().filter(|(_, p)| now.saturating_sub(p.since) >= WAIT_MS).map(|(h, _)| *h).collect();
        due.into_iter().filter_map(|h| self.pending.remove(&h)).flat_map(|p| p.events).collect()
    }

    /// Destinations waited for.
    pub fn destinations(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use firewall_common::{
        addr::Addr6,
        rate::{event, FAMILY_V4},
    };

    use super::*;

    fn challenge(last: u8, status: u32) -> (IpAddr, Challenge) {
        let host = IpAddr::from([198, 51, 100, last]);
        let addr = Addr6 { hi: 0, lo: u32::from_be_bytes([198, 51, 100, last]) as u64 };
        (
            host,
            (RateEvent { kind: event::SIP_CHALLENGE, status, family: FAMILY_V4, addr, ..RateEvent::default() }, None),
        )
    }

    #[test]
    fn a_challenge_followed_by_success_is_forgotten() {
        let mut c = Challenges::default();
        let (phone, ev) = challenge(7, 401);
        // a phone subscribing to many extensions at boot: a burst of challenges, then successes
        for _ in 0..20 {
            assert!(c.challenged(phone, ev, 1_000));
        }
        c.succeeded(phone);
        assert!(c.unanswered(1_000 + WAIT_MS).is_empty());
        assert_eq!(c.destinations(), 0);
    }

    #[test]
    fn challenges_without_success_become_failures_after_the_wait() {
        let mut c = Challenges::default();
        let (guesser, ev) = challenge(9, 401);
        let (caller, ev2) = challenge(10, 407);
        for i in 0..5 {
            c.challenged(guesser, ev, 1_000 + i * 100);
        }
        c.challenged(caller, ev2, 20_000);
        assert!(c.unanswered(1_000 + WAIT_MS - 1).is_empty(), "not before the wait");
        let due = c.unanswered(1_000 + WAIT_MS);
        assert_eq!(due.len(), 5);
        assert!(due.iter().all(|e| e.0.status == 401));
        // counted once: forgotten once due
        assert!(c.unanswered(1_000 + WAIT_MS).is_empty());
        // a later success to another destination does not touch this one's
        c.succeeded(guesser);
        assert_eq!(c.unanswered(20_000 + WAIT_MS).iter().map(|e| e.0.status).collect::<Vec<_>>(), [407]);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut c = Challenges::default();
        let (host, ev) = challenge(1, 401);
        for _ in 0..PER_DESTINATION + 10 {
            c.challenged(host, ev, 0);
        }
        assert_eq!(c.unanswered(WAIT_MS).len(), PER_DESTINATION);
        for i in 0..CAPACITY as u32 {
            assert!(c.challenged(IpAddr::from(i.to_be_bytes()), ev, 0));
        }
        assert!(!c.challenged(IpAddr::from([255, 255, 255, 255]), ev, 0), "full");
        assert!(c.challenged(IpAddr::from(0u32.to_be_bytes()), ev, 0), "a known destination still counts");
    }
}
