//! Flushing: the writes the dirty regions need, checked against the tables' limits before any
//! is made, then made in an order that never lets a source fall out of a set it stays in.

use std::collections::{BTreeMap, BTreeSet};

use firewall_common::{config::Config, maps, nets::MAX_NET6_LENGTHS};

use super::{prefix::Prefix, v4, v6, FlushStats, HostBans, NetTables};
use crate::datapath::tables::{TableError, Tables};

/// The writes of one flush, checked against the tables' limits.
pub struct Plan {
    p4: v4::Plan4,
    p6: v6::Plan6,
    /// The IPv6 lengths in use while the update runs.
    union: BTreeSet<u8>,
}

impl Plan {
    /// The IPv6 prefix lengths `t`'s table uses once this plan is written.
    pub fn v6_lengths_after(&self, t: &NetTables) -> BTreeSet<u8> {
        let gone: BTreeSet<&Prefix<u128>> = self.p6.del.iter().collect();
        let mut lens: BTreeSet<u8> = t.mirror6.entries.keys().filter(|k| !gone.contains(k)).map(|k| k.len).collect();
        lens.extend(self.p6.put.iter().map(|(k, _)| k.len));
        lens
    }
}

impl NetTables {
    /// Writes the dirty regions. On error the mirror still matches the kernel and the regions
    /// stay dirty, so a later flush completes the work.
    pub fn flush(
        &mut self,
        cfg: &mut Config,
        t: &mut dyn Tables,
        hosts: &dyn HostBans,
    ) -> Result<FlushStats, TableError> {
        let plan = self.prepare(hosts)?;
        self.write(plan, cfg, t)
    }

    /// The writes the dirty regions need, refused before any is made when the tables cannot
    /// take them (capacity, IPv6 lengths).
    pub fn prepare(&self, hosts: &dyn HostBans) -> Result<Plan, TableError> {
        let blocks = self.dirty_blocks.iter().copied().filter(|b| !self.dirty4.contains(&(b >> 8)));
        let p4 = v4::plan(&self.mirror4, &self.model4, self.dirty4.iter().copied(), blocks, hosts);
        let p6 = v6::plan(&self.mirror6, &self.model6, &self.dirty6);
        if self.mirror4.entries.len() + p4.new_keys(&self.mirror4) > self.capacity as usize {
            return Err(TableError::Full { map: maps::NET4, capacity: self.capacity });
        }
        if self.mirror6.entries.len() + p6.new_keys(&self.mirror6) > self.capacity as usize {
            return Err(TableError::Full { map: maps::NET6, capacity: self.capacity });
        }
        let mut union: BTreeSet<u8> = self.mirror6.active.iter().copied().collect();
        union.extend(p6.put.iter().map(|(k, _)| k.len));
        if union.len() > MAX_NET6_LENGTHS {
            return Err(TableError::TooManyLengths { count: union.len(), max: MAX_NET6_LENGTHS });
        }
        Ok(Plan { p4, p6, union })
    }

    /// Makes the writes of `plan` (from [`Self::prepare`], with the model unchanged since).
    pub fn write(&mut self, plan: Plan, cfg: &mut Config, t: &mut dyn Tables) -> Result<FlushStats, TableError> {
        let Plan { p4, p6, union } = plan;
        let mut st = FlushStats::default();

        // Widen: IPv6 filter bits and lengths for the new entries, IPv4 presence bits.
        let mut fresh_bits: BTreeSet<u32> = BTreeSet::new();
        for (k, _) in &p6.put {
            if !self.mirror6.entries.contains_key(k) {
                fresh_bits.extend(v6::filter_bits(k));
            }
        }
        st.writes += self.write_filter(fresh_bits.iter().map(|b| (*b, true)), t)?;
        let union: Vec<u8> = union.into_iter().rev().collect();
        if union != self.mirror6.active {
            self.set_lengths(union, cfg, t)?;
            st.writes += 2;
        }
        let m4 = &mut self.mirror4;
        for (w, v) in &p4.widen {
            t.set_net4_bits(*w, *v)?;
            m4.bits[*w as usize] = *v;
        }

        // Entries longest first, then the /16 cells.
        for (k, v) in &p4.put {
            t.put_net4(*k, v)?;
            m4.entries.insert(v4::unkey(*k), *v);
        }
        for (k, v) in &p6.put {
            t.put_net6(&v6::key(k), v)?;
            if self.mirror6.entries.insert(*k, *v).is_none() {
                for b in v6::filter_bits(k) {
                    *self.mirror6.filter_uses.entry(b).or_default() += 1;
                }
            }
        }
        for (c, v) in &p4.cells {
            t.set_net4_cell(*c, v)?;
            m4.cells[*c as usize] = *v;
        }

        // Stale entries shortest first, then narrow.
        for k in &p4.del {
            t.del_net4(*k)?;
            m4.entries.remove(&v4::unkey(*k));
        }
        let mut unused_bits = Vec::new();
        for k in &p6.del {
            t.del_net6(&v6::key(k))?;
            if self.mirror6.entries.remove(k).is_some() {
                for b in v6::filter_bits(k) {
                    let uses = self.mirror6.filter_uses.entry(b).or_default();
                    *uses = uses.saturating_sub(1);
                    if *uses == 0 {
                        self.mirror6.filter_uses.remove(&b);
                        unused_bits.push(b);
                    }
                }
            }
        }
        for (w, v) in &p4.narrow {
            t.set_net4_bits(*w, *v)?;
            m4.bits[*w as usize] = *v;
        }
        // bits set above for puts that did not happen are cleared too, and stray ones
        unused_bits.extend(fresh_bits.iter().filter(|b| !self.mirror6.filter_uses.contains_key(b)));
        let stray = std::mem::take(&mut self.stray_filter);
        unused_bits.extend(stray.into_iter().filter(|b| !self.mirror6.filter_uses.contains_key(b)));
        st.writes += self.write_filter(unused_bits.into_iter().map(|b| (b, false)), t)?;
        st.writes += p4.widen.len() + p4.put.len() + p6.put.len() + p4.cells.len() + p4.narrow.len();
        st.deletes += p4.del.len() + p6.del.len();

        let fin = self.mirror6.lengths();
        if fin != self.mirror6.active {
            self.set_lengths(fin, cfg, t)?;
            st.writes += 2;
        }
        self.dirty4.clear();
        self.dirty_blocks.clear();
        self.dirty6.clear();
        Ok(st)
    }

    /// Sets or clears IPv6 filter bits, one write per changed word; returns the writes.
    fn write_filter(
        &mut self,
        bits: impl Iterator<Item = (u32, bool)>,
        t: &mut dyn Tables,
    ) -> Result<usize, TableError> {
        let mut words: BTreeMap<u32, u64> = BTreeMap::new();
        for (b, on) in bits {
            let w = b / 64;
            let cur = words.entry(w).or_insert(self.mirror6.filter[w as usize]);
            if on {
                *cur |= 1 << (b % 64);
            } else {
                *cur &= !(1 << (b % 64));
            }
        }
        let mut n = 0;
        for (w, v) in words {
            if self.mirror6.filter[w as usize] != v {
                t.set_net6_filter(w, v)?;
                self.mirror6.filter[w as usize] = v;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Fills the inactive lengths slot, then flips `Config::net6_slot` to it.
    fn set_lengths(&mut self, lens: Vec<u8>, cfg: &mut Config, t: &mut dyn Tables) -> Result<(), TableError> {
        let slot = 1 - (self.mirror6.slot & 1);
        t.set_net6_lens(slot, &v6::lengths_value(&lens))?;
        let next = Config { net6_slot: slot, ..*cfg };
        t.set_config(&next)?;
        *cfg = next;
        self.mirror6.slot = slot;
        self.mirror6.active = lens;
        Ok(())
    }
}
