//! Applying rules: the memberships and configuration they give the tables, written in an order
//! that leaves no gap and undone as a whole when the kernel refuses a write midway.

use std::collections::BTreeMap;

use firewall_common::{
    config::Config,
    nets::{class, NetClass, MAX_NET6_LENGTHS},
    rate::rate_slots,
    sip::SignatureTable,
};
use ipnet::IpNet;

use super::{Applied, EnforceError, Enforcer, Hosts};
use crate::{
    datapath::bans::{self, Ban},
    datapath::clock::KernelClock,
    datapath::loader::net_capacity,
    datapath::nets::{prefix::AnyPrefix, Plan},
    datapath::services::{self, Assigned},
    datapath::tables::{kernel::NetSizes, TableError, Tables},
    rules::Rules,
};

/// Memberships the rules give each configured prefix.
pub(super) fn rules_nets(rules: &Rules, ids: &Assigned) -> BTreeMap<AnyPrefix, NetClass> {
    let mut m: BTreeMap<AnyPrefix, NetClass> = BTreeMap::new();
    let mut add = |n: &IpNet, c: NetClass| {
        let e = m.entry(AnyPrefix::from(*n)).or_insert(NetClass::EMPTY);
        *e = e.union(c);
    };
    for n in rules.allowed() {
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
pub(super) fn config_for(rules: &Rules, clock: &KernelClock, base: Config) -> Config {
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
        plan: Plan,
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
    pub(super) fn inspected_for(&self, rules: &Rules, assigned: &Assigned) -> Option<u32> {
        rules.sip.inspect.then(|| assigned.id(firewall_common::service::SIP_SERVICE)).flatten()
    }

    /// Writes the SIP inspector's policy and signatures, then points the `sip` service's
    /// tail-call slot at it (or empties the slot it used).
    pub(super) fn set_sip(
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
}

/// Whether expiry `a` is at least as late as `b` (`None` is forever).
fn later(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x >= y,
    }
}
