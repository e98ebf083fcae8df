//! IPv6 classification image: one entry per configured prefix whose answer differs from its
//! nearest configured ancestor, probed by the kernel longest length first, each probe guarded
//! by a filter bit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use firewall_common::{
    addr::Addr6,
    nets::{net6_filter_bit, Net6Key, Net6Lengths, NetClass, COARSE_LEN, COARSE_PREFIX, NET6_FILTER_WORDS},
};

use super::prefix::{Bits, Layer, Prefix};

/// What the kernel holds.
pub struct Mirror6 {
    pub entries: BTreeMap<Prefix<u128>, NetClass>,
    /// Lengths in the active `SW_NET6_LENS` slot, longest first.
    pub active: Vec<u8>,
    pub slot: u32,
    pub filter: Vec<u64>,
    /// Entries behind each set filter bit.
    pub filter_uses: HashMap<u32, u32>,
}

impl Default for Mirror6 {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            active: Vec::new(),
            slot: 0,
            filter: vec![0; NET6_FILTER_WORDS as usize],
            filter_uses: HashMap::new(),
        }
    }
}

impl Mirror6 {
    /// Distinct lengths among the entries, longest first.
    pub fn lengths(&self) -> Vec<u8> {
        let mut seen = [false; 129];
        for p in self.entries.keys() {
            seen[p.len as usize] = true;
        }
        (0..=128u8).rev().filter(|l| seen[*l as usize]).collect()
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
        let hi = Prefix { addr: d.addr.last(d.len), len: 128 };
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

pub fn addr6(p: &Prefix<u128>) -> Addr6 {
    Addr6 { hi: (p.addr >> 64) as u64, lo: p.addr as u64 }
}

pub fn key(p: &Prefix<u128>) -> Net6Key {
    Net6Key { len: p.len as u32, _pad: 0, addr: addr6(p) }
}

/// The filter bits an entry sets: its own, and the coarse bit of its /32 when it is that long.
pub fn filter_bits(p: &Prefix<u128>) -> impl Iterator<Item = u32> {
    let own = net6_filter_bit(p.len as u32, addr6(p));
    let coarse = (p.len as u32 >= COARSE_PREFIX).then(|| net6_filter_bit(COARSE_LEN, addr6(p).masked(COARSE_PREFIX)));
    std::iter::once(own).chain(coarse)
}

pub fn lengths_value(lens: &[u8]) -> Net6Lengths {
    let mut v = Net6Lengths { count: lens.len() as u32, ..Net6Lengths::default() };
    v.lens[..lens.len()].copy_from_slice(lens);
    v
}
