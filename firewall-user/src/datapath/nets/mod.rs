//! The network classification tables (allow list, blocked networks, `allow_from`, CIDR bans):
//! configured prefixes in, ordered incremental kernel writes out.
//!
//! Changes are marked dirty (IPv4 by /16 cell, IPv6 by prefix) and `flush` recomputes only those
//! regions, diffs them against a mirror of the kernel, and writes in an order that never lets a
//! source fall out of a set it belongs to before and after the change (see v4.rs).

mod flush;
pub mod prefix;
pub mod v4;
pub mod v6;

use std::collections::{BTreeMap, BTreeSet};

use firewall_common::nets::{class, NetClass, MAX_NET6_LENGTHS};

pub use self::flush::Plan;
use self::{
    prefix::{AnyPrefix, Layer, Prefix},
    v4::Mirror4,
    v6::Mirror6,
};
use crate::datapath::tables::Snapshot;

/// Bans of single IPv4 addresses, kept by their owner (the ban set) rather than copied into the
/// model: millions of them cost one map, not three.
pub trait HostBans {
    /// The banned addresses from `first` to `last` with their classes (`BAN` and its deadline),
    /// in order.
    fn range(&self, first: u32, last: u32, out: &mut Vec<(u32, NetClass)>);
}

/// No address bans.
pub struct NoHosts;

impl HostBans for NoHosts {
    fn range(&self, _: u32, _: u32, _: &mut Vec<(u32, NetClass)>) {}
}

pub struct NetTables {
    rules: BTreeMap<AnyPrefix, NetClass>,
    /// CIDR bans: prefix → expiry (CLOCK_MONOTONIC ns).
    bans: BTreeMap<AnyPrefix, u64>,
    model4: Layer<u32>,
    model6: Layer<u128>,
    mirror4: Mirror4,
    mirror6: Mirror6,
    dirty4: BTreeSet<u32>,
    /// /24 blocks whose address bans changed, in cells not otherwise dirty: rewritten on their
    /// own, so a ban costs the bans of its /24, not those of its /16.
    dirty_blocks: BTreeSet<u32>,
    dirty6: BTreeSet<Prefix<u128>>,
    capacity: u32,
    /// IPv6 filter bits found set with no entry behind them (after taking over tables).
    stray_filter: Vec<u32>,
}

/// What a flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub writes: usize,
    pub deletes: usize,
}

impl NetTables {
    /// `capacity`: entries each of `SW_NET4` and `SW_NET6` holds.
    pub fn new(capacity: u32) -> Self {
        Self {
            rules: BTreeMap::new(),
            bans: BTreeMap::new(),
            model4: Layer::new(),
            model6: Layer::new(),
            mirror4: Mirror4::default(),
            mirror6: Mirror6::default(),
            dirty4: BTreeSet::new(),
            dirty_blocks: BTreeSet::new(),
            dirty6: BTreeSet::new(),
            capacity,
            stray_filter: Vec::new(),
        }
    }

    /// Starts from what existing tables hold (see `Tables::snapshot`): the mirrors are the
    /// snapshot, the model is empty, and every region the tables use is dirty, so the first
    /// flush after the rules and bans are set writes exactly the difference.
    pub fn adopt(capacity: u32, snap: &Snapshot) -> Self {
        let mut t = Self::new(capacity);
        t.mirror4.cells = snap.cells.clone();
        t.mirror4.bits = snap.bits.clone();
        for (k, v) in &snap.net4 {
            let (addr, len) = v4::unkey(*k);
            t.mirror4.entries.insert((addr, len), *v);
        }
        for (c, v) in snap.cells.iter().enumerate() {
            if *v != NetClass::EMPTY {
                t.dirty4.insert(c as u32);
            }
        }
        for (w, bits) in snap.bits.iter().enumerate() {
            if *bits != 0 {
                // a bit word covers part of one /16 cell
                t.dirty4.insert((w / v4::WORDS_PER_CELL) as u32);
            }
        }
        for (addr, _) in t.mirror4.entries.keys() {
            t.dirty4.insert(addr >> 16);
        }
        let m6 = &mut t.mirror6;
        m6.slot = snap.config.net6_slot & 1;
        let lens = snap.net6_lens[m6.slot as usize];
        m6.active = lens.lens[..(lens.count as usize).min(MAX_NET6_LENGTHS)].to_vec();
        m6.filter = snap.filter.clone();
        for (k, v) in &snap.net6 {
            let p = Prefix::new((k.addr.hi as u128) << 64 | k.addr.lo as u128, k.len as u8);
            if m6.entries.insert(p, *v).is_none() {
                for b in v6::filter_bits(&p) {
                    *m6.filter_uses.entry(b).or_default() += 1;
                }
            }
            t.dirty6.insert(p);
        }
        // filter bits no entry needs are cleared by the first flush
        t.stray_filter = (0..m6.filter.len() as u32 * 64)
            .filter(|b| m6.filter[(*b / 64) as usize] >> (b % 64) & 1 != 0 && !m6.filter_uses.contains_key(b))
            .collect();
        t
    }

    /// The IPv6 prefix lengths the kernel's table uses, longest first.
    pub fn v6_lengths(&self) -> &[u8] {
        &self.mirror6.active
    }

    /// Replaces the memberships that come from the rules file; returns the ones replaced.
    pub fn set_rules(&mut self, rules: BTreeMap<AnyPrefix, NetClass>) -> BTreeMap<AnyPrefix, NetClass> {
        let old = std::mem::replace(&mut self.rules, rules);
        let mut changed = Vec::new();
        let (mut a, mut b) = (old.iter().peekable(), self.rules.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((k, _)), None) => {
                    changed.push(**k);
                    a.next();
                }
                (None, Some((k, _))) => {
                    changed.push(**k);
                    b.next();
                }
                (Some((ka, va)), Some((kb, vb))) => {
                    if ka < kb {
                        changed.push(**ka);
                        a.next();
                    } else if kb < ka {
                        changed.push(**kb);
                        b.next();
                    } else {
                        if va != vb {
                            changed.push(**ka);
                        }
                        a.next();
                        b.next();
                    }
                }
            }
        }
        for p in changed {
            self.refresh(p);
        }
        old
    }

    /// An address ban (held by the caller's `HostBans`) changed: its /24 is written at the
    /// next flush.
    pub fn touch_host(&mut self, addr: u32) {
        self.dirty_blocks.insert(addr >> 8);
    }

    /// Address bans of /16 cell `c` changed, many at once: the cell is written at the next
    /// flush.
    pub fn touch_cell(&mut self, c: u32) {
        self.dirty4.insert(c);
    }

    /// Adds, extends or (with `None`) lifts a ban of a network or an IPv6 prefix (single IPv4
    /// addresses go through `touch_host`).
    pub fn set_ban(&mut self, p: AnyPrefix, expires_ns: Option<u64>) {
        let changed = match expires_ns {
            Some(e) => self.bans.insert(p, e) != Some(e),
            None => self.bans.remove(&p).is_some(),
        };
        if changed {
            self.refresh(p);
        }
    }

    pub fn ban_expiry(&self, p: &AnyPrefix) -> Option<u64> {
        self.bans.get(p).copied()
    }

    /// Recomputes a prefix's combined membership and marks its region dirty.
    fn refresh(&mut self, p: AnyPrefix) {
        let mut v = self.rules.get(&p).copied().unwrap_or(NetClass::EMPTY);
        if let Some(&e) = self.bans.get(&p) {
            v = v.union(NetClass { flags: class::BAN, allow_from: 0, ban_expires: e });
        }
        match p {
            AnyPrefix::V4(q) => {
                self.model4.set(q, v);
                self.dirty4.extend(v4::cells_of(&q));
            }
            AnyPrefix::V6(q) => {
                self.model6.set(q, v);
                self.dirty6.insert(q);
            }
        }
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty4.is_empty() || !self.dirty_blocks.is_empty() || !self.dirty6.is_empty()
    }

    /// Configured prefixes (rules and CIDR bans), per family.
    pub fn configured(&self) -> (usize, usize) {
        (self.model4.len(), self.model6.len())
    }

    /// Kernel entries: IPv4 /24+/32 hash entries and IPv6 entries.
    pub fn entries(&self) -> (usize, usize) {
        (self.mirror4.entries.len(), self.mirror6.entries.len())
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The class the kernel answers for an address (from the mirror).
    pub fn lookup(&self, addr: std::net::IpAddr) -> NetClass {
        match addr {
            std::net::IpAddr::V4(a) => {
                let a = u32::from(a);
                for k in [(a, 32u8), (a & 0xffff_ff00, 24)] {
                    if let Some(v) = self.mirror4.entries.get(&k) {
                        return *v;
                    }
                }
                self.mirror4.cells[(a >> 16) as usize]
            }
            std::net::IpAddr::V6(a) => {
                let a = u128::from(a);
                for &len in &self.mirror6.active {
                    if let Some(v) = self.mirror6.entries.get(&Prefix::new(a, len)) {
                        return *v;
                    }
                }
                NetClass::EMPTY
            }
        }
    }
}

#[cfg(test)]
mod tests;
