//! CrowdSec decisions put in force: a pull's changes become bans of source `crowdsec`, in the
//! kernel and in the store like every ban, and are lifted when their last decision goes.

use std::{collections::HashMap, time::SystemTime};

use ipnet::IpNet;

use super::Daemon;
use crate::{
    crowdsec::{
        book::{Change, Filter},
        decisions::{Skip, Stream},
        SOURCE,
    },
    datapath::{clock, enforcer::EnforceError},
    rules::crowdsec::SCENARIO_PREFIX,
    store::Store,
};

/// Slack between the end of a ban this host pushed and the end of its decision as the stream
/// reports it (the decision never outlasts the ban; the pull's clock reads a little later).
const OWN_SLACK_MS: u64 = 5_000;

/// Whether a decision is a ban this host made and pushed: its scenario names a jail of this
/// host, and the history holds a ban of the target by that jail lasting at least as long. The
/// history survives restarts, so a ban lifted here with `sipwall unban` does not come back
/// through the stream.
fn own(store: &Store, target: &IpNet, until_ms: u64, scenario: &str) -> bool {
    let Some(jail) = scenario.strip_prefix(SCENARIO_PREFIX) else { return false };
    match store.history(target, 32) {
        Ok(h) => h.iter().any(|e| e.jail == jail && e.expires_unix_ms.is_none_or(|x| x + OWN_SLACK_MS >= until_ms)),
        Err(e) => {
            log::warn!("reading the ban history: {e}; the decision on {target} is taken as another host's");
            false
        }
    }
}

/// A decision's end read again in a later full pull differs by the pull's own delay: within
/// this, the ban in force is the same decision's, and is left as it is.
const SAME_END_MS: u64 = 5_000;

/// What one pull did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    pub enforced: usize,
    pub lifted: usize,
    pub skipped: usize,
}

impl Daemon {
    /// Takes one answer of the decision stream (`startup`: every decision in force, so bans of
    /// decisions that are gone are lifted). `None` when the link of `generation` is not the one
    /// running (none is, or a reload replaced it).
    pub fn take_decisions(&mut self, stream: Stream, startup: bool, generation: u64) -> Option<Taken> {
        let now = clock::unix_ms(SystemTime::now());
        let v6_prefix = self.enforcer.rules().bans.ipv6_prefix;
        let link = self.crowdsec.as_mut().filter(|l| l.generation == generation)?;
        let origins = link.config.bouncer.as_ref().map(|b| b.origins.clone()).unwrap_or_default();
        if startup {
            link.book.clear();
        }
        link.book.expire(now);
        let store = &self.store;
        let mut is_own = |t: &IpNet, until: u64, scenario: &str| own(store, t, until, scenario);
        let mut filter = Filter { origins: &origins, v6_prefix, now_ms: now, own: &mut is_own };
        let (changes, skipped) = link.book.take(stream, &mut filter);
        let keep = startup.then(|| link.book.targets());
        let by_origin = link.book.by_origin();
        let m = &self.metrics;
        m.crowdsec_decisions.reset();
        for (origin, n) in by_origin {
            m.crowdsec_decisions.with_label_values(&[&origin]).set(n as i64);
        }
        let mut reasons: HashMap<Skip, usize> = HashMap::new();
        for (why, _) in &skipped {
            *reasons.entry(*why).or_default() += 1;
            m.crowdsec_skipped.with_label_values(&[why.name()]).inc();
        }
        let mut taken = Taken { skipped: skipped.len(), ..Taken::default() };
        self.batch(|d| {
            for c in changes {
                match c {
                    Change::Enforce { target, until_ms, scenario } => match d.enforce(target, until_ms, &scenario) {
                        Ok(true) => taken.enforced += 1,
                        Ok(false) => {}
                        Err(why) => {
                            d.metrics.crowdsec_skipped.with_label_values(&[why.name()]).inc();
                            *reasons.entry(why).or_default() += 1;
                            taken.skipped += 1;
                        }
                    },
                    Change::Lift { target } => taken.lifted += usize::from(d.lift(&target)),
                }
            }
            if let Some(keep) = keep {
                let gone: Vec<IpNet> = d
                    .enforcer
                    .bans()
                    .filter(|b| b.source == SOURCE && !keep.contains(&b.target))
                    .map(|b| b.target)
                    .collect();
                for t in gone {
                    taken.lifted += usize::from(d.lift(&t));
                }
            }
        });
        if taken.enforced + taken.lifted + taken.skipped > 0 {
            let mut why: Vec<String> = reasons.iter().map(|(r, n)| format!("{} {n}", r.name())).collect();
            why.sort();
            log::info!(
                "crowdsec: {} decisions put in force, {} bans lifted, {} decisions skipped{}",
                taken.enforced,
                taken.lifted,
                taken.skipped,
                if why.is_empty() { String::new() } else { format!(" ({})", why.join(", ")) }
            );
        }
        Some(taken)
    }

    /// Bans `target` until `until_ms` for a decision. `Ok(false)`: a ban at least as long is in
    /// force already (this host's own, or the same decision). A shorter ban of this host's
    /// (a jail's, a manual one) is made to last as long, and stays its own: deleting the
    /// decision later never lifts what this host found itself.
    fn enforce(&mut self, target: IpNet, until_ms: u64, scenario: &str) -> Result<bool, Skip> {
        let mut by = (scenario.to_owned(), SOURCE.to_owned());
        if let Some(cur) = self.enforcer.bans_exact(&target) {
            let lasts = cur.expires_unix_ms.is_none_or(|e| e >= until_ms);
            if (cur.source != SOURCE && lasts)
                || (cur.source == SOURCE
                    && cur.expires_unix_ms.is_some_and(|e| e.abs_diff(until_ms) <= SAME_END_MS)
                    && cur.reason == scenario)
            {
                return Ok(false);
            }
            if cur.source != SOURCE {
                by = (cur.reason, cur.source);
            }
        }
        let b = match self.enforcer.ban(target, Some(until_ms), &by.0, &by.1) {
            Ok((b, _)) => b,
            Err(EnforceError::AllowListed { .. }) => return Err(Skip::AllowListed),
            Err(e) => {
                self.refused(SOURCE, &target, &e);
                return Err(Skip::Refused);
            }
        };
        let saved = self.store.put_ban(&b);
        self.stored(saved, || format!("the ban of {} is in force but could not be saved", b.target));
        self.metrics.ban_actions.with_label_values(&["ban", SOURCE]).inc();
        Ok(true)
    }

    /// Lifts the ban of `target` if a decision made it; a ban of this host's jails stays.
    fn lift(&mut self, target: &IpNet) -> bool {
        if self.enforcer.bans_exact(target).is_none_or(|b| b.source != SOURCE) {
            return false;
        }
        match self.enforcer.unban(*target) {
            Ok(Some(b)) => {
                let saved = self.store.delete_ban(&b.target);
                self.stored(saved, || format!("{} is unbanned but the store still lists it", b.target));
                self.metrics.ban_actions.with_label_values(&["unban", SOURCE]).inc();
                true
            }
            Ok(None) => false,
            Err(e) => {
                log::error!("crowdsec: lifting the ban of {target}: {e}");
                false
            }
        }
    }
}
