//! The enforcement state: rules, bans, and the kernel tables that carry them. Every change to
//! the XDP program's maps is made here, in an order that never lets a source through that both
//! the old and the new state drop.

mod apply;
mod banning;
mod recover;

use std::collections::BTreeMap;

use firewall_common::{
    config::Config,
    nets::{class, NetClass},
    sip::{SignatureTable, SipPolicy},
};
use ipnet::IpNet;

use self::apply::{config_for, rules_nets};
use crate::{
    datapath::bans::{self, Ban, BanSet},
    datapath::clock::KernelClock,
    datapath::loader::net_capacity,
    datapath::nets::{prefix::AnyPrefix, FlushStats, HostBans, NetTables},
    datapath::services::ServiceTables,
    datapath::tables::{Snapshot, TableError, Tables},
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
        let allowed = |t: &IpNet| rules.allowed().any(|a| a.contains(t));
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
}

#[cfg(test)]
mod tests;
