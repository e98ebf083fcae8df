//! Bans and unbans one at a time, the sweep of expired bans, and the restore of stored bans in
//! rounds of whole /16 cells.

use firewall_common::nets::class;
use ipnet::IpNet;

use super::{host, BanChange, EnforceError, Enforcer, Hosts};
use crate::{
    datapath::bans::{self, Ban},
    datapath::clock,
    datapath::tables::{TableError, Tables},
};

impl<T: Tables> Enforcer<T> {
    /// The allow-list prefix covering `net`, if any.
    pub fn allow_listed(&self, net: &IpNet) -> Option<IpNet> {
        self.rules().allowed().find(|a| a.contains(net)).copied()
    }

    /// Bans (or re-bans) a source or network.
    pub fn ban(
        &mut self,
        net: IpNet,
        expires_unix_ms: Option<u64>,
        reason: &str,
        source: &str,
    ) -> Result<(Ban, BanChange), EnforceError> {
        let target = bans::normalize(net, self.v6_prefix());
        if let Some(a) = self.allow_listed(&target) {
            return Err(EnforceError::AllowListed { target, origin: a.to_string() });
        }
        let ban = Ban {
            target,
            expires_unix_ms,
            created_unix_ms: clock::unix_ms(std::time::SystemTime::now()),
            reason: reason.to_owned(),
            source: source.to_owned(),
        };
        let previous = self.model_ban(ban.clone());
        if let Err(e) = self.flush() {
            // leave the model as the kernel has it
            self.model_unban(&target);
            if let Some(p) = previous {
                self.model_ban(p);
            }
            let _ = self.flush();
            return Err(e.into());
        }
        let change = if previous.is_some() { BanChange::Updated } else { BanChange::Added };
        Ok((ban, change))
    }

    /// Lifts the ban on exactly this target (after normalisation).
    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, EnforceError> {
        let target = bans::normalize(net, self.v6_prefix());
        let Some(b) = self.model_unban(&target) else { return Ok(None) };
        if let Err(e) = self.flush() {
            self.model_ban(b);
            let _ = self.flush();
            return Err(e.into());
        }
        Ok(Some(b))
    }

    /// Whether packets from `addr` are dropped as banned right now (by any ban covering it).
    pub fn is_banned(&self, addr: std::net::IpAddr) -> bool {
        let c = self.nets.lookup(addr);
        c.flags & class::BAN != 0
            && c.flags & class::ALLOW == 0
            && firewall_common::clock::before(self.clock.jiffies_at(clock::monotonic_ns()), c.ban_expires)
    }

    /// The ban on exactly `target` (after normalisation), if any.
    pub fn bans_exact(&self, target: &IpNet) -> Option<Ban> {
        self.bans.get(&bans::normalize(*target, self.v6_prefix()))
    }

    /// Bans covering an address or network (exact or wider).
    pub fn bans_covering(&self, net: &IpNet) -> Vec<Ban> {
        let exact = bans::normalize(*net, self.v6_prefix());
        let mut out: Vec<Ban> = self.bans.get(&exact).into_iter().collect();
        for (t, _) in self.bans.networks() {
            if *t != exact && t.contains(net) {
                out.extend(self.bans.get(t));
            }
        }
        out
    }

    /// Removes bans whose time is over (one table update for all of them); returns them.
    pub fn sweep(&mut self, now_unix_ms: u64) -> Result<Vec<Ban>, EnforceError> {
        let expired = self.bans.take_expired(now_unix_ms);
        let gone: Vec<Ban> = expired.iter().filter_map(|t| self.model_unban(t)).collect();
        if let Err(e) = self.flush() {
            for b in gone {
                self.model_ban(b);
            }
            let _ = self.flush();
            return Err(e.into());
        }
        Ok(gone)
    }

    /// Soonest ban expiry, to schedule the next sweep.
    pub fn next_expiry(&self) -> Option<u64> {
        self.bans.next_expiry()
    }

    /// Restores bans (from the store), read one at a time. Bans on allow-listed sources are
    /// skipped and returned, so the caller can drop them from the store.
    ///
    /// The address bans go into the tables in rounds of whole /16 cells, each a batch (see
    /// `Tables::begin_batch`), so neither the plan of a million writes nor all of the slot
    /// table is in memory at once. An error leaves the tables part-written: give up the start.
    pub fn restore(&mut self, list: impl IntoIterator<Item = Ban>) -> Result<(usize, Vec<Ban>), EnforceError> {
        let prefix = self.v6_prefix();
        let allow: Vec<IpNet> = self.rules.as_ref().expect("rules applied in new()").allowed().copied().collect();
        let (mut skipped, mut networks, mut n) = (Vec::new(), Vec::new(), 0);
        self.bans.insert_many(list.into_iter().filter_map(|b| {
            let target = bans::normalize(b.target, prefix);
            if allow.iter().any(|a| a.contains(&target)) {
                skipped.push(b);
                return None;
            }
            n += 1;
            let b = Ban { target, ..b };
            if host(&target).is_some() {
                return Some(b);
            }
            networks.push(b);
            None
        }));
        for b in networks {
            self.model_ban(b);
        }
        self.flush_in_rounds()?;
        Ok((n, skipped))
    }

    /// Writes every address ban's /16 cell (and whatever else is dirty), about `ROUND` bans at a
    /// time.
    fn flush_in_rounds(&mut self) -> Result<(), TableError> {
        // the last cell of each round
        let mut ends = Vec::new();
        let (mut count, mut last) = (0usize, 0u32);
        for (a, _) in self.bans.hosts_in(0, u32::MAX) {
            if count >= ROUND && a >> 16 != last {
                ends.push(last);
                count = 0;
            }
            count += 1;
            last = a >> 16;
        }
        ends.push(0xffff);
        let mut first = 0u32;
        for end in ends {
            let mut touched = None;
            for (a, _) in self.bans.hosts_in(first << 16, (end << 16) | 0xffff) {
                if touched != Some(a >> 16) {
                    self.nets.touch_cell(a >> 16);
                    touched = Some(a >> 16);
                }
            }
            first = end + 1;
            self.tables.begin_batch();
            let hosts = Hosts { bans: &self.bans, clock: &self.clock };
            let written = self.nets.flush(&mut self.cfg, &mut self.tables, &hosts);
            let held = self.tables.end_batch();
            self.tables.idle();
            written?;
            held?;
        }
        Ok(())
    }
}

/// Address bans a round of `Enforcer::restore` writes (about): the plan of a round and the
/// writes held for its batch cost 48 bytes a ban.
const ROUND: usize = if cfg!(test) { 1000 } else { 200_000 };
