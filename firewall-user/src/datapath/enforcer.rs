//! The enforcement state: rules, bans, and the kernel tables that carry them. Every change to
//! the XDP program's maps is made here, in an order that never lets a source through that both
//! the old and the new state drop.

use std::collections::BTreeMap;

use firewall_common::{
    config::Config,
    nets::{class, NetClass, MAX_NET6_LENGTHS},
    rate::rate_slots,
    sip::{SignatureTable, SipPolicy},
};
use ipnet::IpNet;

use crate::{
    datapath::bans::{self, Ban, BanSet},
    datapath::clock::{self, KernelClock},
    datapath::loader::net_capacity,
    datapath::nets::{prefix::AnyPrefix, FlushStats, HostBans, NetTables},
    datapath::services::{self, Assigned, ServiceTables},
    datapath::tables::{kernel::NetSizes, Snapshot, TableError, Tables},
    rules::Rules,
};

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(
        "{target} is in the allow list ({origin}): allow-listed sources are never banned; remove it from [allow] first"
    )]
    AllowListed { target: IpNet, origin: String },
    #[error("the [sip] scanner signatures do not fit the kernel's table: {0}")]
    Sip(#[from] firewall_common::sip::SignatureError),
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
    /// The service whose tail-call slot holds the SIP inspector.
    inspected: Option<u32>,
    /// The SIP policy and signatures in the kernel.
    sip: Option<(SipPolicy, SignatureTable)>,
    /// Inside a group of bans ([`Enforcer::hold_mappings`]): the tables' shared mappings stay
    /// until [`Enforcer::let_go`].
    holding: bool,
}

/// The ban set's IPv4 address bans, as the network tables take them.
struct Hosts<'a> {
    bans: &'a BanSet,
    clock: &'a KernelClock,
}

impl HostBans for Hosts<'_> {
    fn range(&self, first: u32, last: u32, out: &mut Vec<(u32, NetClass)>) {
        for (a, e) in self.bans.hosts_in(first, last) {
            out.push((a, NetClass { flags: class::BAN, allow_from: 0, ban_expires: self.clock.deadline(e) }));
        }
    }
}

/// The IPv4 address of a single-address ban.
fn host(t: &IpNet) -> Option<u32> {
    match t {
        IpNet::V4(n) if n.prefix_len() == 32 => Some(u32::from(n.addr())),
        _ => None,
    }
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

/// The program's configuration for `rules` and `clock`, on top of `base`.
fn config_for(rules: &Rules, clock: &KernelClock, base: Config) -> Config {
    let sizes = NetSizes::new(net_capacity(rules));
    Config {
        event_interval: clock.jiffies_in(rules.rate_limit.report_interval),
        rate_mask: rate_slots(rules.rate_limit.capacity) - 1,
        net4_buckets: sizes.net4_buckets,
        net6_buckets: sizes.net6_buckets,
        layout: firewall_common::config::LAYOUT,
        clock_jiffies: clock.anchor.jiffies,
        clock_mono_ns: clock.anchor.mono_ns,
        wall_offset_ms: clock.wall_offset_ms,
        proof_wait: clock.jiffies_in(std::time::Duration::from_millis(firewall_common::proof::WAIT_MS)),
        ..base
    }
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
            inspected: None,
            sip: None,
            holding: false,
        };
        e.apply_rules(rules)?;
        Ok(e)
    }

    /// Takes over tables an earlier daemon filled (pinned maps), without a moment where they
    /// hold less than both the old and the new state: the rules, the stored bans, and bans
    /// found only in the tables (the earlier daemon stopped before saving them) go into the
    /// model first, then one flush writes the difference.
    ///
    /// `ids` are the service ids the earlier daemon used. Returns the bans found only in the
    /// tables (now in force and to be saved) and the stored bans skipped (allow-listed).
    ///
    /// Memory: the tables are read through a window at a time, the stored bans one at a time
    /// into the compact ban set, and the copy of the tables is let go once the model has it.
    pub fn adopt(
        mut tables: T,
        rules: Rules,
        clock: KernelClock,
        ids: BTreeMap<String, u32>,
        stored: impl IntoIterator<Item = Ban>,
    ) -> Result<(Self, Vec<Ban>, Vec<Ban>), EnforceError> {
        // what taking the tables over mapped is not needed from here on
        tables.idle();
        let snap = tables.snapshot()?;
        tables.idle();
        // deadlines come out as the earlier daemon wrote them
        let anchor = firewall_common::clock::ClockSample {
            jiffies: snap.config.clock_jiffies,
            mono_ns: snap.config.clock_mono_ns,
        };
        let clock = clock.resume(anchor, snap.config.wall_offset_ms);
        let prefix = rules.bans.ipv6_prefix;
        let allowed = |t: &IpNet| rules.allow.iter().any(|a| a.contains(t));
        let mut skipped = Vec::new();
        let mut wanted = BanSet::default();
        wanted.insert_many(stored.into_iter().filter_map(|b| {
            let target = bans::normalize(b.target, prefix);
            if allowed(&target) {
                skipped.push(b);
                return None;
            }
            Some(Ban { target, ..b })
        }));
        let recovered = recover::recover(&snap, &mut wanted, &clock, prefix, &allowed);
        let nets = NetTables::adopt(net_capacity(&rules), &snap);
        let Snapshot { config, services, ports, cells, bits, net4, net6, filter, sip, signatures, inspected, .. } =
            snap;
        drop((cells, bits, net4, net6, filter));
        let services = ServiceTables::adopt(ids, services, ports);
        let mut e = Self {
            tables,
            cfg: config,
            nets,
            services,
            bans: BanSet::default(),
            rules: None,
            clock,
            inspected: None,
            sip: Some((sip, signatures)),
            holding: false,
        };
        let slots = inspected;
        let assigned = e.services.assign(&rules.services, &e.clock);
        let cfg = config_for(&rules, &e.clock, e.cfg);
        if cfg != e.cfg {
            e.tables.set_config(&cfg)?;
            e.cfg = cfg;
        }
        e.services.write_relaxed(&assigned, &mut e.tables)?;
        e.nets.set_rules(rules_nets(&rules, &assigned));
        for (t, exp) in wanted.networks() {
            e.nets.set_ban(AnyPrefix::from(*t), Some(e.clock.deadline(exp)));
        }
        e.bans = wanted;
        e.flush()?;
        let inspected = e.inspected_for(&rules, &assigned);
        e.services.write_final(assigned, &mut e.tables)?;
        // the earlier daemon's inspector goes: this daemon's takes the slot (written even when
        // the slot is the same: the program is another)
        for svc in slots.into_iter().filter(|s| Some(*s) != inspected) {
            e.tables.set_inspected(svc, false)?;
        }
        let signatures = rules.sip.signatures()?;
        e.set_sip(&rules, inspected, signatures)?;
        e.tables.idle();
        e.rules = Some(rules);
        Ok((e, recovered, skipped))
    }

    pub fn clock(&self) -> &KernelClock {
        &self.clock
    }

    /// Writes what changed in the model, address bans read from the ban set.
    fn flush(&mut self) -> Result<FlushStats, TableError> {
        let hosts = Hosts { bans: &self.bans, clock: &self.clock };
        let st = self.nets.flush(&mut self.cfg, &mut self.tables, &hosts);
        if !self.holding {
            self.tables.idle();
        }
        st
    }

    /// With `true`, the bans and unbans that follow form a group: the parts of the tables they
    /// write stay mapped from one to the next, and after the group, until [`Enforcer::let_go`],
    /// rather than being mapped and let go for each ban (a ban storm would map a window of the
    /// tables per ban). `false` ends the group.
    pub fn hold_mappings(&mut self, on: bool) {
        self.holding = on;
    }

    /// Lets go of the tables' shared mappings (the daemon does once a second), so that what a
    /// ban storm mapped does not stay counted as the daemon's memory.
    pub fn let_go(&mut self) {
        self.tables.idle();
    }

    /// Puts a ban into the model (the ban set for addresses, the network tables' model for the
    /// rest); returns the ban it replaced.
    fn model_ban(&mut self, b: Ban) -> Option<Ban> {
        match host(&b.target) {
            Some(a) => self.nets.touch_host(a),
            None => self.nets.set_ban(AnyPrefix::from(b.target), Some(self.clock.deadline(b.expires_unix_ms))),
        }
        self.bans.insert(b)
    }

    /// Takes a ban out of the model.
    fn model_unban(&mut self, target: &IpNet) -> Option<Ban> {
        match host(target) {
            Some(a) => self.nets.touch_host(a),
            None => self.nets.set_ban(AnyPrefix::from(*target), None),
        }
        self.bans.remove(target)
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

    /// Every ban, built on the fly (for listing).
    pub fn bans(&self) -> impl Iterator<Item = Ban> + '_ {
        self.bans.iter()
    }

    /// How many bans each source (jail, `manual`, …) holds.
    pub fn bans_by_source(&self) -> std::collections::HashMap<String, usize> {
        self.bans.count_by_source()
    }

    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    fn v6_prefix(&self) -> u8 {
        self.rules.as_ref().map_or(64, |r| r.bans.ipv6_prefix)
    }

    /// Applies new rules incrementally, all or nothing. What the tables cannot take (capacity,
    /// IPv6 lengths, scanner signatures) is refused before anything is written; a write the
    /// kernel refuses midway is undone. Either way the enforcer is left as it was (rules, model
    /// and tables), so bans, unbans and expiries go on working. The tables are never left with
    /// a gap (see `nets`).
    pub fn apply_rules(&mut self, rules: Rules) -> Result<Applied, EnforceError> {
        let signatures = rules.sip.signatures()?;
        let assigned = self.services.assign(&rules.services, &self.clock);
        // Bans re-keyed to a new IPv6 ban prefix go through the same ordered update as the rules.
        let rekeyed = (self.rules.is_some() && self.v6_prefix() != rules.bans.ipv6_prefix)
            .then(|| self.rekey(rules.bans.ipv6_prefix));
        let old_nets = self.nets.set_rules(rules_nets(&rules, &assigned));
        self.stage_rekey(rekeyed.as_ref());
        let plan = self.nets.prepare(&Hosts { bans: &self.bans, clock: &self.clock }).and_then(|p| {
            // rules that take every IPv6 length would leave none for the bans
            let lens = p.v6_lengths_after(&self.nets);
            let ban = rules.bans.ipv6_prefix;
            if !lens.contains(&ban) && lens.len() >= MAX_NET6_LENGTHS {
                return Err(TableError::NoLengthForBans { used: lens.len(), prefix: ban, max: MAX_NET6_LENGTHS });
            }
            Ok(p)
        });
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                // nothing was written: the model goes back to what the tables hold
                self.nets.set_rules(old_nets);
                self.unstage_rekey(rekeyed.as_ref());
                return Err(e.into());
            }
        };
        let cfg_before = self.cfg;
        match self.write_rules(&rules, assigned, plan, signatures) {
            Ok(out) => {
                if let Some((old, next)) = rekeyed {
                    for t in &old {
                        self.bans.remove(t);
                    }
                    for b in next {
                        self.bans.insert(b);
                    }
                }
                self.rules = Some(rules);
                Ok(out)
            }
            Err(e) => {
                self.nets.set_rules(old_nets);
                self.unstage_rekey(rekeyed.as_ref());
                if let Err(undo) = self.roll_back(cfg_before) {
                    log::error!("undoing a partly applied rules change: {undo}; the next change retries");
                }
                Err(e)
            }
        }
    }

    /// The writes of a rules change whose network update `plan` was checked.
    fn write_rules(
        &mut self,
        rules: &Rules,
        assigned: Assigned,
        plan: crate::datapath::nets::Plan,
        signatures: SignatureTable,
    ) -> Result<Applied, EnforceError> {
        let mut out = Applied::default();
        let cfg = config_for(rules, &self.clock, self.cfg);
        if cfg != self.cfg {
            self.tables.set_config(&cfg)?;
            self.cfg = cfg;
        }
        out.service_writes += self.services.write_relaxed(&assigned, &mut self.tables)?;
        out.nets = self.nets.write(plan, &mut self.cfg, &mut self.tables)?;
        self.tables.idle();
        let inspected = self.inspected_for(rules, &assigned);
        out.service_writes += self.services.write_final(assigned, &mut self.tables)?;
        self.set_sip(rules, inspected, signatures)?;
        self.tables.idle();
        Ok(out)
    }

    /// Puts the tables back to the rules in force after a change failed midway (the model is
    /// already back): networks, configuration, services and the SIP inspector.
    fn roll_back(&mut self, cfg_before: Config) -> Result<(), EnforceError> {
        self.flush()?;
        // the IPv6 lengths slot is the one the flush left in force
        let cfg = Config { net6_slot: self.cfg.net6_slot, ..cfg_before };
        if cfg != self.cfg {
            self.tables.set_config(&cfg)?;
            self.cfg = cfg;
        }
        let Some(rules) = self.rules.take() else { return Ok(()) };
        let assigned = self.services.assign(&rules.services, &self.clock);
        let res = (|| {
            self.services.write_relaxed(&assigned, &mut self.tables)?;
            let inspected = self.inspected_for(&rules, &assigned);
            self.services.write_final(assigned, &mut self.tables)?;
            let signatures = rules.sip.signatures()?;
            self.set_sip(&rules, inspected, signatures)
        })();
        self.rules = Some(rules);
        res
    }

    /// Re-keyed IPv6 bans into the model: the old targets out, the new in.
    fn stage_rekey(&mut self, rekeyed: Option<&(Vec<IpNet>, Vec<Ban>)>) {
        let Some((old, next)) = rekeyed else { return };
        for t in old {
            self.nets.set_ban(AnyPrefix::from(*t), None);
        }
        for b in next {
            self.nets.set_ban(AnyPrefix::from(b.target), Some(self.clock.deadline(b.expires_unix_ms)));
        }
    }

    /// Undoes `stage_rekey`: the model holds the ban set's IPv6 bans again.
    fn unstage_rekey(&mut self, rekeyed: Option<&(Vec<IpNet>, Vec<Ban>)>) {
        let Some((old, next)) = rekeyed else { return };
        for b in next {
            self.nets.set_ban(AnyPrefix::from(b.target), None);
        }
        for t in old {
            let expires = self.bans.get(t).map(|b| b.expires_unix_ms);
            if let Some(e) = expires {
                self.nets.set_ban(AnyPrefix::from(*t), Some(self.clock.deadline(e)));
            }
        }
    }

    /// The service whose accepted traffic the SIP inspector reads under `rules`, if any.
    fn inspected_for(&self, rules: &Rules, assigned: &Assigned) -> Option<u32> {
        rules.sip.inspect.then(|| assigned.id(firewall_common::service::SIP_SERVICE)).flatten()
    }

    /// Writes the SIP inspector's policy and signatures, then points the `sip` service's
    /// tail-call slot at it (or empties the slot it used).
    fn set_sip(
        &mut self,
        rules: &Rules,
        inspected: Option<u32>,
        signatures: SignatureTable,
    ) -> Result<(), EnforceError> {
        let policy = services::sip_policy(&rules.sip, &self.clock);
        if self.sip != Some((policy, signatures)) {
            self.tables.set_sip(&policy, &signatures)?;
            self.sip = Some((policy, signatures));
        }
        if let Some(old) = self.inspected.filter(|o| Some(*o) != inspected) {
            self.tables.set_inspected(old, false)?;
        }
        if let Some(svc) = inspected.filter(|s| self.inspected != Some(*s)) {
            self.tables.set_inspected(svc, true)?;
        }
        self.inspected = inspected;
        Ok(())
    }

    /// The IPv6 bans under a new ban prefix: (targets now, bans after). Bans that merge keep
    /// the latest expiry; IPv4 bans are not affected.
    fn rekey(&self, prefix: u8) -> (Vec<IpNet>, Vec<Ban>) {
        let old: Vec<IpNet> = self.bans.networks().map(|(t, _)| *t).filter(|t| t.addr().is_ipv6()).collect();
        let mut next: BTreeMap<IpNet, Ban> = BTreeMap::new();
        for t in &old {
            let b = self.bans.get(t).expect("listed above");
            let target = bans::normalize(b.target, prefix);
            let nb = Ban { target, ..b };
            match next.get(&target) {
                Some(o) if later(o.expires_unix_ms, nb.expires_unix_ms) => {}
                _ => {
                    next.insert(target, nb);
                }
            }
        }
        (old, next.into_values().collect())
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
        let allow = &self.rules.as_ref().expect("rules applied in new()").allow;
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

/// Whether expiry `a` is at least as late as `b` (`None` is forever).
fn later(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x >= y,
    }
}

mod recover;
#[cfg(test)]
mod tests;
