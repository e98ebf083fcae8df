//! The enforcement state: rules, bans, and the kernel tables that carry them. Every change to
//! the XDP program's maps is made here, in an order that never lets a source through that both
//! the old and the new state drop.

use std::collections::BTreeMap;

use firewall_common::{
    config::Config,
    nets::{class, BanEntry, NetClass},
};
use ipnet::IpNet;

use crate::{
    bans::{self, Ban, Slot},
    clock,
    nets::{prefix::AnyPrefix, FlushStats, NetTables},
    rules::Rules,
    services::{Assigned, ServiceTables},
    tables::{TableError, Tables},
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
    bans: BTreeMap<IpNet, Ban>,
    /// Exact bans per family (IPv4, IPv6), against the ban tables' capacity.
    exact: [usize; 2],
    rules: Option<Rules>,
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
    pub fn new(tables: T, rules: Rules) -> Result<Self, EnforceError> {
        let mut e = Self {
            tables,
            cfg: Config::default(),
            nets: NetTables::new(rules.block_capacity),
            services: ServiceTables::default(),
            bans: BTreeMap::new(),
            exact: [0, 0],
            rules: None,
        };
        e.apply_rules(rules)?;
        Ok(e)
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
        self.bans.values()
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
        let assigned = self.services.assign(&rules.services);
        let old_prefix = self.v6_prefix();
        let new_prefix = rules.bans.ipv6_prefix;

        // Bans re-keyed to a new IPv6 ban prefix: new entries first, old ones after the switch.
        let rekeyed = (old_prefix != new_prefix).then(|| self.rekey(new_prefix));
        if let Some(next) = &rekeyed {
            for b in next.values() {
                self.install(b, new_prefix)?;
            }
        }
        let cfg = Config {
            ban6_mask: bans::v6_mask(new_prefix),
            event_interval_ns: rules.rate_limit.report_interval.as_nanos() as u64,
            ..self.cfg
        };
        if cfg != self.cfg {
            self.tables.set_config(&cfg)?;
            self.cfg = cfg;
        }
        out.service_writes += self.services.write_relaxed(&assigned, &mut self.tables)?;
        self.nets.set_rules(rules_nets(&rules, &assigned));
        if let Some(next) = &rekeyed {
            for old in self.bans.values() {
                if bans::slot(&old.target, old_prefix) == Slot::Net && !next.contains_key(&old.target) {
                    self.nets.set_ban(AnyPrefix::from(old.target), None);
                }
            }
        }
        out.nets = self.nets.flush(&mut self.cfg, &mut self.tables)?;
        out.service_writes += self.services.write_final(assigned, &mut self.tables)?;
        if let Some(next) = rekeyed {
            let old = std::mem::replace(&mut self.bans, next);
            let kept: std::collections::HashSet<Slot> = self.bans.keys().map(|t| bans::slot(t, new_prefix)).collect();
            for b in old.values() {
                let s = bans::slot(&b.target, old_prefix);
                if s != Slot::Net && !kept.contains(&s) {
                    self.remove_exact(s)?;
                }
            }
        }
        self.rules = Some(rules);
        self.recount();
        Ok(out)
    }

    /// The ban set under a new IPv6 ban prefix (bans that merge keep the latest expiry).
    fn rekey(&self, prefix: u8) -> BTreeMap<IpNet, Ban> {
        let mut next: BTreeMap<IpNet, Ban> = BTreeMap::new();
        for b in self.bans.values() {
            let target = bans::normalize(b.target, prefix);
            let nb = Ban { target, ..b.clone() };
            match next.get(&target) {
                Some(o) if later(o.expires_unix_ms, nb.expires_unix_ms) => {}
                _ => {
                    next.insert(target, nb);
                }
            }
        }
        next
    }

    fn install(&mut self, b: &Ban, prefix: u8) -> Result<(), EnforceError> {
        let entry = BanEntry { expires_ns: clock::kernel_deadline(b.expires_unix_ms) };
        let cap = self.rules.as_ref().map_or(u32::MAX, |r| r.bans.capacity);
        let fresh = !self.bans.contains_key(&b.target);
        match bans::slot(&b.target, prefix) {
            Slot::V4(k) => {
                if fresh && self.exact[0] >= cap as usize {
                    return Err(TableError::Full { map: firewall_common::maps::BANS_V4, capacity: cap }.into());
                }
                self.tables.put_ban4(k, &entry)?
            }
            Slot::V6(k) => {
                if fresh && self.exact[1] >= cap as usize {
                    return Err(TableError::Full { map: firewall_common::maps::BANS_V6, capacity: cap }.into());
                }
                self.tables.put_ban6(&k, &entry)?
            }
            Slot::Net => {
                self.nets.set_ban(AnyPrefix::from(b.target), Some(entry.expires_ns));
                self.nets.flush(&mut self.cfg, &mut self.tables)?;
            }
        }
        Ok(())
    }

    /// Recounts exact bans after the ban set was replaced.
    fn recount(&mut self) {
        let prefix = self.v6_prefix();
        self.exact = [0, 0];
        for t in self.bans.keys() {
            match bans::slot(t, prefix) {
                Slot::V4(_) => self.exact[0] += 1,
                Slot::V6(_) => self.exact[1] += 1,
                Slot::Net => {}
            }
        }
    }

    fn record(&mut self, b: Ban) -> Option<Ban> {
        let slot = bans::slot(&b.target, self.v6_prefix());
        let old = self.bans.insert(b.target, b);
        if old.is_none() {
            match slot {
                Slot::V4(_) => self.exact[0] += 1,
                Slot::V6(_) => self.exact[1] += 1,
                Slot::Net => {}
            }
        }
        old
    }

    fn forget(&mut self, target: &IpNet) -> Option<Ban> {
        let old = self.bans.remove(target)?;
        match bans::slot(target, self.v6_prefix()) {
            Slot::V4(_) => self.exact[0] -= 1,
            Slot::V6(_) => self.exact[1] -= 1,
            Slot::Net => {}
        }
        Some(old)
    }

    fn remove_exact(&mut self, s: Slot) -> Result<(), TableError> {
        match s {
            Slot::V4(k) => self.tables.del_ban4(k),
            Slot::V6(k) => self.tables.del_ban6(&k),
            Slot::Net => Ok(()),
        }
    }

    fn uninstall(&mut self, target: &IpNet) -> Result<(), EnforceError> {
        match bans::slot(target, self.v6_prefix()) {
            Slot::Net => {
                self.nets.set_ban(AnyPrefix::from(*target), None);
                self.nets.flush(&mut self.cfg, &mut self.tables)?;
            }
            s => self.remove_exact(s)?,
        }
        Ok(())
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
        self.install(&ban, self.v6_prefix())?;
        let change = if self.record(ban.clone()).is_some() { BanChange::Updated } else { BanChange::Added };
        Ok((ban, change))
    }

    /// Lifts the ban on exactly this target (after normalisation).
    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, EnforceError> {
        let target = bans::normalize(net, self.v6_prefix());
        if !self.bans.contains_key(&target) {
            return Ok(None);
        }
        self.uninstall(&target)?;
        Ok(self.forget(&target))
    }

    /// Bans covering an address or network (exact or wider).
    pub fn bans_covering(&self, net: &IpNet) -> Vec<&Ban> {
        self.bans.values().filter(|b| b.target.contains(net) || b.target == *net).collect()
    }

    /// Removes bans whose time is over; returns them.
    pub fn sweep(&mut self, now_unix_ms: u64) -> Result<Vec<Ban>, EnforceError> {
        let expired: Vec<IpNet> = self
            .bans
            .values()
            .filter(|b| b.expires_unix_ms.is_some_and(|e| e <= now_unix_ms))
            .map(|b| b.target)
            .collect();
        let mut out = Vec::new();
        for t in expired {
            self.uninstall(&t)?;
            out.extend(self.forget(&t));
        }
        Ok(out)
    }

    /// Soonest ban expiry, to schedule the next sweep.
    pub fn next_expiry(&self) -> Option<u64> {
        self.bans.values().filter_map(|b| b.expires_unix_ms).min()
    }

    /// Restores bans (from the store) without recording them as new.
    pub fn restore(&mut self, list: Vec<Ban>) -> Result<usize, EnforceError> {
        let mut n = 0;
        let prefix = self.v6_prefix();
        for b in list {
            let target = bans::normalize(b.target, prefix);
            if self.allow_listed(&target).is_some() {
                continue;
            }
            let b = Ban { target, ..b };
            self.install(&b, prefix)?;
            self.record(b);
            n += 1;
        }
        Ok(n)
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
