//! IPv6 classification image: one entry per configured prefix whose answer differs from its
//! nearest configured ancestor, probed by the kernel longest length first.

use std::collections::{BTreeMap, BTreeSet};

use firewall_common::{
    addr::Addr6,
    nets::{Net6Key, Net6Lengths, NetClass, MAX_NET6_LENGTHS},
};

use super::prefix::{Layer, Prefix};

/// What the kernel holds.
#[derive(Default)]
pub struct Mirror6 {
    pub entries: BTreeMap<Prefix<u128>, NetClass>,
    /// Lengths in the active `SW_NET6_LENS` slot, longest first.
    pub active: Vec<u8>,
    pub slot: u32,
}

impl Mirror6 {
    /// Distinct lengths among the entries, longest first.
    pub fn lengths(&self) -> Vec<u8> {
        let mut seen = [false; MAX_NET6_LENGTHS];
        for p in self.entries.keys() {
            seen[p.len as usize] = true;
        }
        (0..MAX_NET6_LENGTHS as u8).rev().filter(|l| seen[*l as usize]).collect()
    }
}

/// The kernel entry a configured prefix needs, if any.
pub fn compute(model: &Layer<u128>, p: &Prefix<u128>) -> Option<NetClass> {
    model.get(p)?;
    let v = model.covering(p, true);
    (v != model.covering(p, false)).then_some(v)
}

#[derive(Default)]
pub struct Plan6 {
    pub put: Vec<(Prefix<u128>, NetClass)>,
    pub del: Vec<Prefix<u128>>,
}

impl Plan6 {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.del.is_empty()
    }

    pub fn new_keys(&self, m: &Mirror6) -> usize {
        self.put.iter().filter(|(k, _)| !m.entries.contains_key(k)).count()
    }
}

/// Entries to write (longest first) and delete (shortest first) for the prefixes in `dirty`
/// and everything below them.
pub fn plan(mirror: &Mirror6, model: &Layer<u128>, dirty: &BTreeSet<Prefix<u128>>) -> Plan6 {
    let mut keys = BTreeSet::new();
    for d in dirty {
        keys.insert(*d);
        keys.extend(model.within(*d).map(|(q, _)| *q));
        let hi = Prefix { addr: super::prefix::Bits::last(d.addr, d.len), len: 128 };
        keys.extend(mirror.entries.range(*d..=hi).map(|(q, _)| *q).filter(|q| q.len >= d.len));
    }
    let mut p = Plan6::default();
    for k in keys {
        match (compute(model, &k), mirror.entries.get(&k)) {
            (Some(v), Some(old)) if v == *old => {}
            (Some(v), _) => p.put.push((k, v)),
            (None, Some(_)) => p.del.push(k),
            (None, None) => {}
        }
    }
    p.put.sort_by_key(|(k, _)| std::cmp::Reverse(k.len));
    p.del.sort_by_key(|k| k.len);
    p
}

pub fn key(p: &Prefix<u128>) -> Net6Key {
    Net6Key { len: p.len as u32, _pad: 0, addr: Addr6 { hi: (p.addr >> 64) as u64, lo: p.addr as u64 } }
}

pub fn lengths_value(lens: &[u8]) -> Net6Lengths {
    let mut v = Net6Lengths { count: lens.len() as u32, ..Net6Lengths::default() };
    v.lens[..lens.len()].copy_from_slice(lens);
    v
}
