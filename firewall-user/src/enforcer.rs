//! The enforcement state: rules, bans, and the kernel tables that carry them. Every change to
//! the XDP program's maps is made here, in an order that never lets a source through that both
//! the old and the new state drop.

use std::collections::BTreeMap;

use firewall_common::{
    config::Config,
    nets::{class, NetClass},
    rate::rate_slots,
};
use ipnet::IpNet;

use crate::{
    bans::{self, Ban, BanSet},
    clock::{self, KernelClock},
    loader::net_capacity,
    nets::{prefix::AnyPrefix, FlushStats, NetTables},
    rules::Rules,
    services::{Assigned, ServiceTables},
    tables::{kernel::NetSizes, TableError, Tables},
};

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(
        "{target} is in the allow list ({origin}): allow-listed sources are never banned; remove it from [allow] first"
    )]
    AllowListed { target: IpNet, origin: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanChange {
    Added,
    /// Already banned: expiry and reason replaced.
    Updated,
}

/// What applying rules changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    pub nets: FlushStats,
    pub service_writes: usize,
}

pub struct Enforcer<T: Tables> {
    pub tables: T,
    cfg: Config,
    nets: NetTables,
    services: ServiceTables,
    bans: BanSet,
    rules: Option<Rules>,
    clock: KernelClock,
}

/// Memberships the rules give each configured prefix.
pub fn rules_nets(rules: &Rules, ids: &Assigned) -> BTreeMap<AnyPrefix, NetClass> {
    let mut m: BTreeMap<AnyPrefix, NetClass> = BTreeMap::new();
    let mut add = |n: &IpNet, c: NetClass| {
        let e = m.entry(AnyPrefix::from(*n)).or_insert(NetClass::EMPTY);
        *e = e.union(c);
    };
    for n in &rules.allow {
        add(n, NetClass { flags: class::ALLOW, ..NetClass::EMPTY });
    }
    for n in rules.blocked() {
        add(n, NetClass { flags: class::BLOCK, ..NetClass::EMPTY });
    }
    for s in &rules.services {
        let bit = 1u32 << ids.id(&s.name).expect("assigned");
        for n in s.allow_from.iter().flatten() {
            add(n, NetClass { allow_from: bit, ..NetClass::EMPTY });
        }
    }
    m
}

impl<T: Tables> Enforcer<T> {
    /// Takes over freshly created (empty) tables and applies `rules`.
    /// `clock` relates kernel jiffies to this host's clocks (see `loader::calibrate`).
    pub fn new(tables: T, rules: Rules, clock: KernelClock) -> Result<Self, EnforceError> {
        let mut e = Self {
            tables,
            cfg: Config::default(),
            nets: NetTables::new(net_capacity(&rules)),
            services: ServiceTables::default(),
            bans: BanSet::default(),
            rules: None,
            clock,
        };
        e.apply_rules(rules)?;
        Ok(e)
    }

    pub fn clock(&self) -> &KernelClock {
        &self.clock
    }

    pub fn rules(&self) -> &Rules {
        self.rules.as_ref().expect("rules applied in new()")
    }

    pub fn nets(&self) -> &NetTables {
        &self.nets
    }

    pub fn services(&self) -> &ServiceTables {
        &self.services
    }

    pub fn bans(&self) -> impl Iterator<Item = &Ban> {
        self.bans.iter()
    }

    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    fn v6_prefix(&self) -> u8 {
        self.rules.as_ref().map_or(64, |r| r.bans.ipv6_prefix)
    }

    /// Applies new rules incrementally. On error the previous rules stay recorded as current and
    /// the daemon can retry; the tables are never left with a gap (see `nets`).
    pub fn apply_rules(&mut self, rules: Rules) -> Result<Applied, EnforceError> {
        let mut out = Applied::default();
        let assigned = self.services.assign(&rules.services, &self.clock);
        let cfg = Config {
            event_interval: self.clock.jiffies_in(rules.rate_limit.report_interval),
            rate_mask: rate_slots(rules.rate_limit.capacity) - 1,
            net4_buckets: NetSizes::new(net_capacity(&rules)).net4_buckets,
            net6_buckets: NetSizes::new(net_capacity(&rules)).net6_buckets,
            ..self.cfg
        };
        if cfg != self.cfg {
            self.tables.set_config(&cfg)?;
            self.cfg = cfg;
        }
        // Bans re-keyed to a new IPv6 ban prefix go through the same ordered update as the rules.
        let rekeyed = (self.rules.is_some() && self.v6_prefix() != rules.bans.ipv6_prefix)
            .then(|| self.rekey(rules.bans.ipv6_prefix));
        if let Some(next) = &rekeyed {
            for old in self.bans.iter() {
                self.nets.set_ban(AnyPrefix::from(old.target), None);
            }
            for b in next.iter() {
                self.nets.set_ban(AnyPrefix::from(b.target), Some(self.clock.deadline(b.expires_unix_ms)));
            }
        }
        out.service_writes += self.services.write_relaxed(&assigned, &mut self.tables)?;
        self.nets.set_rules(rules_nets(&rules, &assigned));
        out.nets = self.nets.flush(&mut self.cfg, &mut self.tables)?;
        out.service_writes += self.services.write_final(assigned, &mut self.tables)?;
        if let Some(next) = rekeyed {
            self.bans = next;
        }
        self.rules = Some(rules);
        Ok(out)
    }

    /// The ban set under a new IPv6 ban prefix (bans that merge keep the latest expiry).
    fn rekey(&self, prefix: u8) -> BanSet {
        let mut next = BanSet::default();
        for b in self.bans.iter() {
            let target = bans::normalize(b.target, prefix);
            let nb = Ban { target, ..b.clone() };
            match next.get(&target) {
                Some(o) if later(o.expires_unix_ms, nb.expires_unix_ms) => {}
                _ => {
                    next.insert(nb);
                }
            }
        }
        next
    }

    /// The allow-list prefix covering `net`, if any.
    pub fn allow_listed(&self, net: &IpNet) -> Option<IpNet> {
        self.rules().allow.iter().find(|a| a.contains(net)).copied()
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
        let previous = self.nets.ban_expiry(&AnyPrefix::from(target));
        self.nets.set_ban(AnyPrefix::from(target), Some(self.clock.deadline(expires_unix_ms)));
        if let Err(e) = self.nets.flush(&mut self.cfg, &mut self.tables) {
            // leave the model as the kernel has it
            self.nets.set_ban(AnyPrefix::from(target), previous);
            let _ = self.nets.flush(&mut self.cfg, &mut self.tables);
            return Err(e.into());
        }
        let change = if self.bans.insert(ban.clone()).is_some() { BanChange::Updated } else { BanChange::Added };
        Ok((ban, change))
    }

    /// Lifts the ban on exactly this target (after normalisation).
    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, EnforceError> {
        let target = bans::normalize(net, self.v6_prefix());
        if !self.bans.contains(&target) {
            return Ok(None);
        }
        self.nets.set_ban(AnyPrefix::from(target), None);
        self.nets.flush(&mut self.cfg, &mut self.tables)?;
        Ok(self.bans.remove(&target))
    }

    /// Whether packets from `addr` are dropped as banned right now (by any ban covering it).
    pub fn is_banned(&self, addr: std::net::IpAddr) -> bool {
        let c = self.nets.lookup(addr);
        c.flags & firewall_common::nets::class::BAN != 0
            && c.flags & firewall_common::nets::class::ALLOW == 0
            && firewall_common::clock::before(self.clock.jiffies_at(clock::monotonic_ns()), c.ban_expires)
    }

    /// The ban on exactly `target` (after normalisation), if any.
    pub fn bans_exact(&self, target: &IpNet) -> Option<&Ban> {
        self.bans.get(&bans::normalize(*target, self.v6_prefix()))
    }

    /// Bans covering an address or network (exact or wider).
    pub fn bans_covering(&self, net: &IpNet) -> Vec<&Ban> {
        self.bans.iter().filter(|b| b.target.contains(net) || b.target == *net).collect()
    }

    /// Removes bans whose time is over (one table update for all of them); returns them.
    pub fn sweep(&mut self, now_unix_ms: u64) -> Result<Vec<Ban>, EnforceError> {
        let expired = self.bans.expired(now_unix_ms);
        for t in &expired {
            self.nets.set_ban(AnyPrefix::from(*t), None);
        }
        self.nets.flush(&mut self.cfg, &mut self.tables)?;
        Ok(expired.iter().filter_map(|t| self.bans.remove(t)).collect())
    }

    /// Soonest ban expiry, to schedule the next sweep.
    pub fn next_expiry(&self) -> Option<u64> {
        self.bans.next_expiry()
    }

    /// Restores bans (from the store) in one table update. Bans on allow-listed sources are
    /// skipped and returned, so the caller can drop them from the store.
    pub fn restore(&mut self, list: Vec<Ban>) -> Result<(usize, Vec<Ban>), EnforceError> {
        let prefix = self.v6_prefix();
        let mut skipped = Vec::new();
        let mut n = 0;
        for b in list {
            let target = bans::normalize(b.target, prefix);
            if self.allow_listed(&target).is_some() {
                skipped.push(b);
                continue;
            }
            let b = Ban { target, ..b };
            self.nets.set_ban(AnyPrefix::from(target), Some(self.clock.deadline(b.expires_unix_ms)));
            self.bans.insert(b);
            n += 1;
        }
        self.nets.flush(&mut self.cfg, &mut self.tables)?;
        Ok((n, skipped))
    }
}

/// Whether expiry `a` is at least as late as `b` (`None` is forever).
fn later(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x >= y,
    }
}

#[cfg(test)]
mod tests;
