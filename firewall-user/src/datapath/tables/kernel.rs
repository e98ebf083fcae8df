//! [`Tables`] over the maps of a loaded XDP program: the network tables through shared
//! mappings, the rest with map syscalls.

use std::sync::Arc;

use aya::{
    maps::{Array, HashMap, Map, MapData, MapError, ProgramArray},
    programs::{ProgramFd, Xdp},
    Ebpf, Pod,
};
use firewall_common::{
    config::Config,
    maps,
    nets::{
        net4_place, slot_buckets, Net6Key, Net6Lengths, NetClass, Place, NET4_BIT_WORDS, NET6_FAST_ENTRIES,
        NET6_FILTER_WORDS, SLOTS_PER_BUCKET,
    },
    programs,
    service::{PortGroup, ServicePolicy, PORT_GROUPS, SERVICE_SLOTS},
    sip::{SignatureTable, SipPolicy},
};
use nix::errno::Errno;

use super::{Snapshot, TableError, Tables};
use crate::{
    datapath::shm::{MappedArray, Residency, Words, PARTS},
    datapath::slots::{store_class, Key4, OverflowMap, SlotTable},
};

/// An overflow hash of the XDP program.
pub struct OverflowHash<K: Pod> {
    map: HashMap<MapData, K, NetClass>,
    name: &'static str,
    capacity: u32,
}

impl<K: Pod> OverflowMap<K> for OverflowHash<K> {
    fn put(&mut self, k: &K, c: &NetClass) -> Result<(), TableError> {
        self.map.insert(k, c, 0).map_err(|source| {
            if is_errno(&source, Errno::E2BIG) || is_errno(&source, Errno::ENOMEM) {
                TableError::Full { map: self.name, capacity: self.capacity }
            } else {
                TableError::Map { map: self.name, source }
            }
        })
    }
    fn del(&mut self, k: &K) -> Result<(), TableError> {
        match self.map.remove(k) {
            Err(e) if !is_errno(&e, Errno::ENOENT) => Err(TableError::Map { map: self.name, source: e }),
            _ => Ok(()),
        }
    }
    fn entries(&self) -> Result<Vec<(K, NetClass)>, TableError> {
        self.map.iter().collect::<Result<_, _>>().map_err(|source| TableError::Map { map: self.name, source })
    }
}

impl OverflowMap<Key4> for OverflowHash<u64> {
    fn put(&mut self, k: &Key4, c: &NetClass) -> Result<(), TableError> {
        OverflowMap::<u64>::put(self, &k.0, c)
    }
    fn del(&mut self, k: &Key4) -> Result<(), TableError> {
        OverflowMap::<u64>::del(self, &k.0)
    }
    fn entries(&self) -> Result<Vec<(Key4, NetClass)>, TableError> {
        Ok(OverflowMap::<u64>::entries(self)?.into_iter().map(|(k, v)| (Key4(k), v)).collect())
    }
}

pub struct KernelTables {
    config: Array<MapData, Config>,
    services: Array<MapData, ServicePolicy>,
    ports: Array<MapData, PortGroup>,
    net4_l16: MappedArray,
    net4_bits: MappedArray,
    net4: SlotTable<MappedArray, MappedArray, Key4, OverflowHash<u64>>,
    net6: SlotTable<MappedArray, MappedArray, Net6Key, OverflowHash<Net6Key>>,
    net6_lens: Array<MapData, Net6Lengths>,
    net6_filter: MappedArray,
    sip: Array<MapData, SipPolicy>,
    sip_signatures: Array<MapData, SignatureTable>,
    tail: ProgramArray<MapData>,
    /// The SIP inspector, for `tail` (`None`: the kernel refused it, nothing is inspected).
    inspector: Option<ProgramFd>,
    /// Shared by every mapped array of the tables.
    residency: Arc<Residency>,
    net4_buckets: u32,
    /// IPv4 entry puts held back during a batch (see `Tables::begin_batch`).
    held: Option<Vec<(u64, NetClass)>>,
}

/// Regions of the IPv4 slot table (by bucket) that a batch groups its puts by.
const REGIONS: u32 = 32;
/// Regions kept mapped together while the puts between them, then between them and each later
/// region in turn, are made: at most `BLOCK + 1` regions are mapped at once.
const BLOCK: u32 = 4;

/// Where a batch makes the put of an entry placed at `p`: (block of its lower region, 0 if its
/// other region is in that block too, else that region + 1).
fn group(p: &Place, buckets: u32) -> (u32, u32) {
    let region = |b: u32| (u64::from(b) * u64::from(REGIONS) / u64::from(buckets.max(1))) as u32;
    let (r1, r2) = (region(p.b1), region(p.b2));
    let (lo, hi) = (r1.min(r2), r1.max(r2));
    let block = lo / BLOCK;
    (block, if hi / BLOCK == block { 0 } else { hi + 1 })
}

/// The [`Residency`] parts of the regions of `block`.
fn block_parts(block: u32) -> u64 {
    let per = PARTS / REGIONS;
    let (lo, hi) = (block * BLOCK * per, ((block + 1) * BLOCK).min(REGIONS) * per);
    (lo..hi).fold(0, |m, p| m | 1 << p)
}

pub(crate) fn take<T: TryFrom<Map, Error = MapError>>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, TableError> {
    let map = ebpf.take_map(name).ok_or(TableError::Missing(name))?;
    T::try_from(map).map_err(|source| TableError::Map { map: name, source })
}

pub(crate) fn mapped(
    ebpf: &mut Ebpf,
    name: &'static str,
    value_size: usize,
    entries: u32,
) -> Result<MappedArray, TableError> {
    let Some(Map::Array(data)) = ebpf.take_map(name) else { return Err(TableError::Missing(name)) };
    MappedArray::new(data, value_size, entries).map_err(|source| TableError::Mmap { map: name, source })
}

fn is_errno(e: &MapError, errno: Errno) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(errno as i32))
}

/// Sizes of the network tables for a capacity (entries per family).
pub struct NetSizes {
    pub capacity: u32,
    pub net4_buckets: u32,
    pub net6_buckets: u32,
}

impl NetSizes {
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            net4_buckets: slot_buckets(capacity),
            net6_buckets: slot_buckets(NET6_FAST_ENTRIES.min(capacity)),
        }
    }
}

impl KernelTables {
    /// Takes the writable maps out of a loaded program: new, empty maps, or (`adopt`) maps an
    /// earlier daemon filled and pinned.
    pub fn take(ebpf: &mut Ebpf, sizes: &NetSizes, adopt: bool) -> Result<Self, TableError> {
        let (b4, b6, cap) = (sizes.net4_buckets, sizes.net6_buckets, sizes.capacity);
        let residency = Arc::new(Residency::default());
        let mut shared = |name, value_size, entries| {
            mapped(ebpf, name, value_size, entries).map(|a| a.with_residency(residency.clone()))
        };
        let (s4, m4) = (shared(maps::NET4, 24, b4 * SLOTS_PER_BUCKET)?, shared(maps::NET4_META, 8, b4)?);
        let (s6, m6) = (shared(maps::NET6, 40, b6 * SLOTS_PER_BUCKET)?, shared(maps::NET6_META, 8, b6)?);
        let net4_l16 = shared(maps::NET4_L16, 16, 65536)?;
        let net4_bits = shared(maps::NET4_BITS, 8, NET4_BIT_WORDS)?;
        let net6_filter = shared(maps::NET6_FILTER, 8, NET6_FILTER_WORDS)?;
        let over4 = OverflowHash { map: take(ebpf, maps::NET4_OVER)?, name: maps::NET4_OVER, capacity: cap };
        let over6 = OverflowHash { map: take(ebpf, maps::NET6_OVER)?, name: maps::NET6_OVER, capacity: cap };
        let (net4, net6) = if adopt {
            // read through in order, a window at a time
            residency.scan(true);
            let adopted = SlotTable::adopt(s4, m4, b4, over4, cap, maps::NET4)
                .and_then(|net4| Ok((net4, SlotTable::adopt(s6, m6, b6, over6, cap, maps::NET6)?)));
            residency.scan(false);
            adopted?
        } else {
            (SlotTable::new(s4, m4, b4, over4, cap, maps::NET4), SlotTable::new(s6, m6, b6, over6, cap, maps::NET6))
        };
        let inspector = ebpf
            .program(programs::SIP)
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .and_then(|p| p.fd().ok())
            .and_then(|fd| fd.try_clone().ok());
        Ok(Self {
            sip: take(ebpf, maps::SIP)?,
            sip_signatures: take(ebpf, maps::SIP_SIGNATURES)?,
            tail: take(ebpf, maps::TAIL)?,
            inspector,
            config: take(ebpf, maps::CONFIG)?,
            services: take(ebpf, maps::SERVICES)?,
            ports: take(ebpf, maps::PORTS)?,
            net4_l16,
            net4_bits,
            net4,
            net6,
            net6_lens: take(ebpf, maps::NET6_LENS)?,
            net6_filter,
            residency,
            net4_buckets: b4,
            held: None,
        })
    }

    /// Makes the puts held back so far, grouped by the regions of the slot table they touch
    /// (the entry's two candidate buckets), with only the regions of the current group mapped.
    fn write_held(&mut self) -> Result<(), TableError> {
        let Some(held) = self.held.as_mut().filter(|h| !h.is_empty()) else { return Ok(()) };
        let mut held = std::mem::take(held);
        let buckets = self.net4_buckets;
        held.sort_unstable_by_key(|(k, _)| group(&net4_place(*k, buckets), buckets));
        let mut current = None;
        let mut done = Ok(());
        for (k, v) in &held {
            let g = group(&net4_place(*k, buckets), buckets);
            if current != Some(g) {
                // keeps the block's regions, lets go of the region paired with them before
                self.residency.keep(block_parts(g.0));
                self.net4.unmap();
                current = Some(g);
            }
            if let Err(e) = self.net4.put(&Key4(*k), v) {
                done = Err(e);
                break;
            }
        }
        self.residency.keep(0);
        self.net4.unmap();
        held.clear();
        self.held = Some(held);
        done
    }

    /// Entries that overflowed their slot table, IPv4 and IPv6.
    pub fn overflowed(&self) -> (usize, usize) {
        (self.net4.overflowed(), self.net6.overflowed())
    }
}

fn set<V: Pod>(a: &mut Array<MapData, V>, name: &'static str, idx: u32, v: &V) -> Result<(), TableError> {
    a.set(idx, v, 0).map_err(|source| TableError::Map { map: name, source })
}

fn get<V: Pod>(a: &Array<MapData, V>, name: &'static str, idx: u32) -> Result<V, TableError> {
    a.get(&idx, 0).map_err(|source| TableError::Map { map: name, source })
}

impl KernelTables {
    fn read_all(&self) -> Result<Snapshot, TableError> {
        let words = |w: &MappedArray| (0..w.len()).map(|i| w.load(i)).collect::<Vec<u64>>();
        let cells = (0..65536usize)
            .map(|i| NetClass::from_words([self.net4_l16.load(2 * i), self.net4_l16.load(2 * i + 1)]))
            .collect();
        Ok(Snapshot {
            config: get(&self.config, maps::CONFIG, 0)?,
            services: (0..SERVICE_SLOTS).map(|i| get(&self.services, maps::SERVICES, i)).collect::<Result<_, _>>()?,
            ports: (0..PORT_GROUPS).map(|i| get(&self.ports, maps::PORTS, i)).collect::<Result<_, _>>()?,
            cells,
            bits: words(&self.net4_bits),
            net4: self.net4.entries()?.into_iter().map(|(k, v)| (k.0, v)).collect(),
            net6: self.net6.entries()?,
            net6_lens: [get(&self.net6_lens, maps::NET6_LENS, 0)?, get(&self.net6_lens, maps::NET6_LENS, 1)?],
            filter: words(&self.net6_filter),
            sip: get(&self.sip, maps::SIP, 0)?,
            signatures: get(&self.sip_signatures, maps::SIP_SIGNATURES, 0)?,
            inspected: self
                .tail
                .indices()
                .collect::<Result<_, _>>()
                .map_err(|source| TableError::Map { map: maps::TAIL, source })?,
        })
    }
}

impl Tables for KernelTables {
    fn idle(&mut self) {
        self.net4_l16.unmap();
        self.net4_bits.unmap();
        self.net6_filter.unmap();
        self.net4.unmap();
        self.net6.unmap();
    }

    fn begin_batch(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }

    fn end_batch(&mut self) -> Result<(), TableError> {
        let done = self.write_held();
        self.held = None;
        done
    }

    fn snapshot(&self) -> Result<Snapshot, TableError> {
        debug_assert!(self.held.as_ref().is_none_or(Vec::is_empty), "a snapshot misses held puts");
        // read through in order, a window at a time
        self.residency.scan(true);
        let snap = self.read_all();
        self.residency.scan(false);
        snap
    }

    fn set_config(&mut self, c: &Config) -> Result<(), TableError> {
        self.write_held()?;
        set(&mut self.config, maps::CONFIG, 0, c)
    }
    fn set_sip(&mut self, p: &SipPolicy, signatures: &SignatureTable) -> Result<(), TableError> {
        self.write_held()?;
        set(&mut self.sip_signatures, maps::SIP_SIGNATURES, 0, signatures)?;
        set(&mut self.sip, maps::SIP, 0, p)
    }
    fn set_inspected(&mut self, svc: u32, on: bool) -> Result<(), TableError> {
        self.write_held()?;
        let done = match (&self.inspector, on) {
            (Some(fd), true) => self.tail.set(svc, fd, 0),
            // nothing to put in the slot: the packets pass on uninspected
            (None, true) => return Ok(()),
            (_, false) => self.tail.clear_index(&svc),
        };
        match done {
            // clearing an empty slot
            Err(MapError::SyscallError(e)) if !on && e.io_error.raw_os_error() == Some(Errno::ENOENT as i32) => Ok(()),
            r => r.map_err(|source| TableError::Map { map: maps::TAIL, source }),
        }
    }
    fn set_service(&mut self, id: u32, p: &ServicePolicy) -> Result<(), TableError> {
        self.write_held()?;
        set(&mut self.services, maps::SERVICES, id, p)
    }
    fn set_port_group(&mut self, idx: u32, g: &PortGroup) -> Result<(), TableError> {
        self.write_held()?;
        set(&mut self.ports, maps::PORTS, idx, g)
    }
    fn set_net4_cell(&mut self, idx: u32, v: &NetClass) -> Result<(), TableError> {
        self.write_held()?;
        store_class(&mut self.net4_l16, idx as usize * 2, v);
        Ok(())
    }
    fn set_net4_bits(&mut self, word: u32, bits: u64) -> Result<(), TableError> {
        self.write_held()?;
        self.net4_bits.store(word as usize, bits);
        Ok(())
    }
    fn put_net4(&mut self, key: u64, v: &NetClass) -> Result<(), TableError> {
        if self.held.as_ref().is_some_and(|h| h.last().is_some_and(|(k, _)| k >> 32 != key >> 32)) {
            self.write_held()?;
        }
        match self.held.as_mut() {
            Some(h) => {
                h.push((key, *v));
                Ok(())
            }
            None => self.net4.put(&Key4(key), v),
        }
    }
    fn del_net4(&mut self, key: u64) -> Result<(), TableError> {
        self.write_held()?;
        self.net4.remove(&Key4(key)).map(|_| ())
    }
    fn put_net6(&mut self, k: &Net6Key, v: &NetClass) -> Result<(), TableError> {
        self.write_held()?;
        self.net6.put(k, v)
    }
    fn del_net6(&mut self, k: &Net6Key) -> Result<(), TableError> {
        self.write_held()?;
        self.net6.remove(k).map(|_| ())
    }
    fn set_net6_lens(&mut self, slot: u32, l: &Net6Lengths) -> Result<(), TableError> {
        self.write_held()?;
        set(&mut self.net6_lens, maps::NET6_LENS, slot, l)
    }
    fn set_net6_filter(&mut self, word: u32, bits: u64) -> Result<(), TableError> {
        self.write_held()?;
        self.net6_filter.store(word as usize, bits);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_group_maps_only_its_block_and_one_more_region() {
        let buckets = 357_509;
        let region = |b: u32| (u64::from(b) * u64::from(REGIONS) / u64::from(buckets)) as u32;
        let mut groups = std::collections::BTreeSet::new();
        for i in 0..100_000u64 {
            let key = firewall_common::nets::net4_key(32, (i as u32).wrapping_mul(2_654_435_761));
            let p = net4_place(key, buckets);
            let (block, other) = group(&p, buckets);
            let kept = block_parts(block);
            for r in [region(p.b1), region(p.b2)] {
                let in_block = kept >> (r * (PARTS / REGIONS)) & 1 != 0;
                assert!(in_block || other == r + 1, "key {key:#x}: region {r} outside group ({block}, {other})");
            }
            groups.insert((block, other));
        }
        // every block, and each with every later region
        assert_eq!(
            groups.len() as u32,
            (0..REGIONS.div_ceil(BLOCK)).map(|b| 1 + REGIONS.saturating_sub((b + 1) * BLOCK)).sum::<u32>()
        );
        assert_eq!(block_parts(0).count_ones(), BLOCK * PARTS / REGIONS);
        assert_eq!((0..REGIONS.div_ceil(BLOCK)).fold(0, |m, b| m | block_parts(b)), u64::MAX);
    }
}
