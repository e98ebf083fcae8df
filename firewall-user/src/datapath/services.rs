//! Services compiled into `SW_SERVICES` (policy per id) and `SW_PORTS` (id per port).
//!
//! Ids stay attached to a service name across reloads, so counters and buckets keep meaning the
//! same service.

use std::{
    collections::{hash_map::DefaultHasher, BTreeMap},
    hash::{Hash, Hasher},
};

use firewall_common::{
    service::{policy, port_slot, PortGroup, ServicePolicy, MAX_SERVICES, PORTS_PER_GROUP, PORT_GROUPS, SERVICE_SLOTS},
    sip::{sip_flag, SipPolicy},
    NANO_TOKENS,
};

use crate::{
    datapath::clock::KernelClock,
    datapath::tables::{TableError, Tables},
    rules::{ports::Proto, sip::SipRules, Limit, Service, TcpLimit},
};

/// The kernel policy of a service; rates are per jiffy of `clock`.
pub fn policy_of(s: &Service, clock: &KernelClock) -> ServicePolicy {
    let mut p = ServicePolicy::default();
    if s.name == firewall_common::service::SIP_SERVICE {
        p.flags |= policy::SIP;
    }
    if s.allow_from.is_some() {
        p.flags |= policy::ALLOW_FROM;
    }
    if let Some(l) = s.limit {
        p = ServicePolicy { flags: p.flags | policy::LIMIT, ..bucket(l, clock) };
        if s.limit_tcp == TcpLimit::All {
            p.flags |= policy::LIMIT_ALL_TCP;
        }
    }
    p
}

/// A token bucket for `l` (flags left empty); rates are per jiffy of `clock`.
pub fn bucket(l: Limit, clock: &KernelClock) -> ServicePolicy {
    // nano-tokens per jiffy: rate per second × ns per jiffy
    let rate = l.rate as u64 * clock.ns_per_jiffy();
    let capacity = l.burst as u64 * NANO_TOKENS;
    ServicePolicy { flags: 0, _pad: 0, rate, capacity, fill: capacity.div_ceil(rate) }
}

/// The SIP inspector's kernel policy; rates are per jiffy of `clock`.
pub fn sip_policy(s: &SipRules, clock: &KernelClock) -> SipPolicy {
    let mut p = SipPolicy {
        allowed: s.allowed_methods,
        epoch: signatures_epoch(s),
        reinspect: clock.jiffies_in(s.reinspect),
        ..SipPolicy::default()
    };
    if s.inspect {
        p.flags |= sip_flag::INSPECT;
    }
    if s.stealth_options {
        p.flags |= sip_flag::STEALTH_OPTIONS;
    }
    for (m, l) in &s.method_limits {
        p.limited |= m.bit();
        p.limits[*m as usize] = ServicePolicy { flags: policy::LIMIT, ..bucket(*l, clock) };
    }
    p
}

/// A fingerprint of the signature lists: the kernel forgets the sources it inspected clean
/// when it changes, and only then.
fn signatures_epoch(s: &SipRules) -> u32 {
    let mut h = DefaultHasher::new();
    (&s.scanner_user_agents, &s.scanner_uris).hash(&mut h);
    h.finish() as u32
}

/// What the kernel's service tables hold, and the name ↔ id assignment.
pub struct ServiceTables {
    ids: BTreeMap<String, u32>,
    policies: Vec<ServicePolicy>,
    ports: Vec<PortGroup>,
}

impl Default for ServiceTables {
    fn default() -> Self {
        Self {
            ids: BTreeMap::new(),
            policies: vec![ServicePolicy::default(); SERVICE_SLOTS as usize],
            ports: vec![PortGroup::default(); PORT_GROUPS as usize],
        }
    }
}

/// A service set with ids assigned, ready to write.
pub struct Assigned {
    pub ids: BTreeMap<String, u32>,
    policies: Vec<ServicePolicy>,
    ports: Vec<PortGroup>,
}

impl Assigned {
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }
}

impl ServiceTables {
    /// Starts from tables an earlier daemon wrote, with the ids it gave its services.
    pub fn adopt(ids: BTreeMap<String, u32>, policies: Vec<ServicePolicy>, ports: Vec<PortGroup>) -> Self {
        let ids = ids.into_iter().filter(|(_, id)| (1..SERVICE_SLOTS).contains(id)).collect();
        Self { ids, policies, ports }
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Service name of an id (for metric labels).
    pub fn name(&self, id: u32) -> Option<&str> {
        self.ids.iter().find(|(_, v)| **v == id).map(|(k, _)| k.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = (&str, u32)> {
        self.ids.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Gives each service an id, keeping the ids of services that already had one.
    pub fn assign(&self, services: &[Service], clock: &KernelClock) -> Assigned {
        let mut ids = BTreeMap::new();
        let mut used = [false; SERVICE_SLOTS as usize];
        used[0] = true;
        for s in services {
            if let Some(&id) = self.ids.get(&s.name) {
                ids.insert(s.name.clone(), id);
                used[id as usize] = true;
            }
        }
        for s in services {
            if !ids.contains_key(&s.name) {
                let id = (1..=MAX_SERVICES).find(|i| !used[*i as usize]).expect("validated: at most 31 services");
                used[id as usize] = true;
                ids.insert(s.name.clone(), id);
            }
        }
        let mut policies = vec![ServicePolicy::default(); SERVICE_SLOTS as usize];
        let mut ports = vec![PortGroup::default(); PORT_GROUPS as usize];
        for s in services {
            let id = ids[&s.name];
            policies[id as usize] = policy_of(s, clock);
            for r in &s.ports {
                for port in r.lo..=r.hi {
                    let (idx, byte) = port_slot(r.proto == Proto::Udp, port);
                    ports[idx as usize].svc[byte] = id as u8;
                }
            }
        }
        Assigned { ids, policies, ports }
    }

    /// First half of an update: policies of every service in `next`, with `allow_from` only
    /// where both the old and the new policy have it (restrictions are added after the
    /// network tables carry the new `allow_from` bits, and lifted before they lose them).
    pub fn write_relaxed(&mut self, next: &Assigned, t: &mut dyn Tables) -> Result<usize, TableError> {
        let mut n = 0;
        for id in 1..SERVICE_SLOTS as usize {
            let (old, new) = (self.policies[id], next.policies[id]);
            if next.ids.values().all(|v| *v as usize != id) {
                continue;
            }
            let keep = old.flags & new.flags & policy::ALLOW_FROM;
            let relaxed = ServicePolicy { flags: (new.flags & !policy::ALLOW_FROM) | keep, ..new };
            if relaxed != old {
                t.set_service(id as u32, &relaxed)?;
                self.policies[id] = relaxed;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Second half: final policies, then ports, then clearing services that are gone.
    pub fn write_final(&mut self, next: Assigned, t: &mut dyn Tables) -> Result<usize, TableError> {
        let mut n = 0;
        for &id in next.ids.values() {
            let p = next.policies[id as usize];
            if p != self.policies[id as usize] {
                t.set_service(id, &p)?;
                self.policies[id as usize] = p;
                n += 1;
            }
        }
        for idx in 0..PORT_GROUPS as usize {
            if next.ports[idx] != self.ports[idx] {
                t.set_port_group(idx as u32, &next.ports[idx])?;
                self.ports[idx] = next.ports[idx];
                n += 1;
            }
        }
        for id in 1..SERVICE_SLOTS as usize {
            if next.ids.values().all(|v| *v as usize != id) && self.policies[id] != ServicePolicy::default() {
                t.set_service(id as u32, &ServicePolicy::default())?;
                self.policies[id] = ServicePolicy::default();
                n += 1;
            }
        }
        self.ids = next.ids;
        Ok(n)
    }

    /// Service id of a port, as the kernel resolves it.
    pub fn service_of(&self, proto: Proto, port: u16) -> u32 {
        let (idx, byte) = port_slot(proto == Proto::Udp, port);
        self.ports[idx as usize].svc[byte] as u32
    }
}

const _: () = assert!(PORTS_PER_GROUP == 8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::tables::fake::FakeTables;
    use crate::rules::Rules;

    fn clock() -> KernelClock {
        KernelClock::synthetic(250)
    }

    fn services(text: &str) -> Vec<Service> {
        Rules::parse("t", text, std::path::Path::new("/")).unwrap().0.services
    }

    #[test]
    fn sip_policy_carries_reinspect_in_jiffies_and_the_signatures_epoch() {
        let mut s = SipRules::default();
        let p = sip_policy(&s, &clock());
        assert_eq!(p.reinspect, 300 * 250, "5 minutes at 250 Hz");
        s.reinspect = std::time::Duration::ZERO;
        s.stealth_options = true;
        s.allowed_methods = firewall_common::sip::MethodSet(1 << 5);
        let q = sip_policy(&s, &clock());
        assert_eq!(q.reinspect, 0, "every request inspected in full");
        assert_eq!(q.epoch, p.epoch, "the signatures did not change: the sources stay remembered");
        s.scanner_user_agents.push("x-tool".into());
        assert_ne!(sip_policy(&s, &clock()).epoch, p.epoch, "new signatures forget every source");
        s.scanner_user_agents.pop();
        s.scanner_uris.clear();
        assert_ne!(sip_policy(&s, &clock()).epoch, p.epoch);
    }

    #[test]
    fn ports_resolve_at_range_edges() {
        let s = services(
            "[services.rtp]\nports = [\"10000-20000/udp\"]\n[services.sip]\nports = [\"5060/udp\", \"5061/tcp\"]\n",
        );
        let mut st = ServiceTables::default();
        let mut t = FakeTables::default();
        let a = st.assign(&s, &clock());
        st.write_relaxed(&a, &mut t).unwrap();
        st.write_final(a, &mut t).unwrap();
        let (rtp, sip) = (st.id("rtp").unwrap(), st.id("sip").unwrap());
        for (proto, port, want) in [
            (Proto::Udp, 9999, 0),
            (Proto::Udp, 10000, rtp),
            (Proto::Udp, 20000, rtp),
            (Proto::Udp, 20001, 0),
            (Proto::Tcp, 15000, 0),
            (Proto::Udp, 5060, sip),
            (Proto::Tcp, 5060, 0),
            (Proto::Tcp, 5061, sip),
        ] {
            assert_eq!(st.service_of(proto, port), want, "{port}/{proto:?}");
            let (idx, byte) = port_slot(proto == Proto::Udp, port);
            assert_eq!(t.ports[idx as usize].svc[byte] as u32, want);
        }
    }

    #[test]
    fn ids_survive_reloads_and_removed_services_are_cleared() {
        let mut st = ServiceTables::default();
        let mut t = FakeTables::default();
        let a = st.assign(
            &services("[services.a]\nports=[\"1/udp\"]\nrate = 9\n[services.b]\nports=[\"2/udp\"]\nrate = 5\n"),
            &clock(),
        );
        st.write_relaxed(&a, &mut t).unwrap();
        st.write_final(a, &mut t).unwrap();
        let (a_id, b_id) = (st.id("a").unwrap(), st.id("b").unwrap());
        let next = st.assign(
            &services("[services.c]\nports=[\"3/udp\"]\n[services.b]\nports=[\"2/udp\"]\nrate = 7\n"),
            &clock(),
        );
        assert_eq!(next.id("b"), Some(b_id));
        assert_eq!(next.id("c"), Some(a_id), "the freed id is reused");
        st.write_relaxed(&next, &mut t).unwrap();
        st.write_final(next, &mut t).unwrap();
        assert_eq!(t.services[b_id as usize].rate, 7 * clock().ns_per_jiffy());
        assert_eq!(t.services[a_id as usize], ServicePolicy::default(), "a's limit is gone");
        assert_eq!(st.service_of(Proto::Udp, 1), 0);
        assert_eq!(st.service_of(Proto::Udp, 3), a_id);
        assert_eq!(st.name(a_id), Some("c"));
    }

    #[test]
    fn bucket_arithmetic() {
        let s = &services("[services.s]\nports=[\"1/udp\"]\nrate = 3\nburst = 10\n")[0];
        let p = policy_of(s, &clock());
        assert_eq!(p.flags, policy::LIMIT);
        assert_eq!(p.capacity, 10 * NANO_TOKENS);
        // 3 tokens a second at 250 ticks a second
        assert_eq!(p.rate, 3 * 4_000_000);
        // an empty bucket refills in burst/rate seconds: 3.33 s, 834 ticks
        assert_eq!(p.fill, 834);
    }

    #[test]
    fn allow_from_is_added_late_and_lifted_early() {
        let mut st = ServiceTables::default();
        let mut t = FakeTables::default();
        let open = services("[services.ssh]\nports=[\"22/tcp\"]\n");
        let closed = services("[services.ssh]\nports=[\"22/tcp\"]\nallow_from=[\"10.0.0.0/8\"]\n");
        let a = st.assign(&open, &clock());
        st.write_relaxed(&a, &mut t).unwrap();
        st.write_final(a, &mut t).unwrap();
        let id = st.id("ssh").unwrap() as usize;
        let next = st.assign(&closed, &clock());
        st.write_relaxed(&next, &mut t).unwrap();
        assert_eq!(t.services[id].flags & policy::ALLOW_FROM, 0, "not yet restricted");
        st.write_final(next, &mut t).unwrap();
        assert_ne!(t.services[id].flags & policy::ALLOW_FROM, 0);
        let next = st.assign(&open, &clock());
        st.write_relaxed(&next, &mut t).unwrap();
        assert_eq!(t.services[id].flags & policy::ALLOW_FROM, 0, "lifted first");
    }
}
