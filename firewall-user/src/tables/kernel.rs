//! [`Tables`] over the maps of a loaded XDP program.

use aya::{
    maps::{Array, HashMap, Map, MapData, MapError},
    Ebpf, Pod,
};
use firewall_common::{
    addr::Addr6,
    config::Config,
    maps,
    nets::{BanEntry, Net4Key, Net6Key, Net6Lengths, NetClass},
    service::{PortGroup, ServicePolicy},
};

use super::{TableError, Tables};

pub struct KernelTables {
    config: Array<MapData, Config>,
    services: Array<MapData, ServicePolicy>,
    ports: Array<MapData, PortGroup>,
    net4_l16: Array<MapData, NetClass>,
    net4: HashMap<MapData, Net4Key, NetClass>,
    net6: HashMap<MapData, Net6Key, NetClass>,
    net6_lens: Array<MapData, Net6Lengths>,
    bans4: HashMap<MapData, u32, BanEntry>,
    bans6: HashMap<MapData, Addr6, BanEntry>,
    /// Capacity of the network hashes and of the ban hashes, for "full" errors.
    nets_capacity: u32,
    bans_capacity: u32,
}

pub(crate) fn take<T: TryFrom<Map, Error = MapError>>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, TableError> {
    let map = ebpf.take_map(name).ok_or(TableError::Missing(name))?;
    T::try_from(map).map_err(|source| TableError::Map { map: name, source })
}

fn is_errno(e: &MapError, errno: i32) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(errno))
}

impl KernelTables {
    /// Takes the writable maps out of a loaded program.
    pub fn take(ebpf: &mut Ebpf, nets_capacity: u32, bans_capacity: u32) -> Result<Self, TableError> {
        Ok(Self {
            config: take(ebpf, maps::CONFIG)?,
            services: take(ebpf, maps::SERVICES)?,
            ports: take(ebpf, maps::PORTS)?,
            net4_l16: take(ebpf, maps::NET4_L16)?,
            net4: take(ebpf, maps::NET4)?,
            net6: take(ebpf, maps::NET6)?,
            net6_lens: take(ebpf, maps::NET6_LENS)?,
            bans4: take(ebpf, maps::BANS_V4)?,
            bans6: take(ebpf, maps::BANS_V6)?,
            nets_capacity,
            bans_capacity,
        })
    }
}

fn set<V: Pod>(a: &mut Array<MapData, V>, name: &'static str, idx: u32, v: &V) -> Result<(), TableError> {
    a.set(idx, v, 0).map_err(|source| TableError::Map { map: name, source })
}

fn put<K: Pod, V: Pod>(
    m: &mut HashMap<MapData, K, V>,
    name: &'static str,
    cap: u32,
    k: &K,
    v: &V,
) -> Result<(), TableError> {
    m.insert(k, v, 0).map_err(|source| {
        if is_errno(&source, libc::E2BIG) || is_errno(&source, libc::ENOMEM) {
            TableError::Full { map: name, capacity: cap }
        } else {
            TableError::Map { map: name, source }
        }
    })
}

fn del<K: Pod, V: Pod>(m: &mut HashMap<MapData, K, V>, name: &'static str, k: &K) -> Result<(), TableError> {
    match m.remove(k) {
        Err(e) if !is_errno(&e, libc::ENOENT) => Err(TableError::Map { map: name, source: e }),
        _ => Ok(()),
    }
}

impl Tables for KernelTables {
    fn set_config(&mut self, c: &Config) -> Result<(), TableError> {
        set(&mut self.config, maps::CONFIG, 0, c)
    }
    fn set_service(&mut self, id: u32, p: &ServicePolicy) -> Result<(), TableError> {
        set(&mut self.services, maps::SERVICES, id, p)
    }
    fn set_port_group(&mut self, idx: u32, g: &PortGroup) -> Result<(), TableError> {
        set(&mut self.ports, maps::PORTS, idx, g)
    }
    fn set_net4_cell(&mut self, idx: u32, v: &NetClass) -> Result<(), TableError> {
        set(&mut self.net4_l16, maps::NET4_L16, idx, v)
    }
    fn put_net4(&mut self, k: &Net4Key, v: &NetClass) -> Result<(), TableError> {
        put(&mut self.net4, maps::NET4, self.nets_capacity, k, v)
    }
    fn del_net4(&mut self, k: &Net4Key) -> Result<(), TableError> {
        del(&mut self.net4, maps::NET4, k)
    }
    fn put_net6(&mut self, k: &Net6Key, v: &NetClass) -> Result<(), TableError> {
        put(&mut self.net6, maps::NET6, self.nets_capacity, k, v)
    }
    fn del_net6(&mut self, k: &Net6Key) -> Result<(), TableError> {
        del(&mut self.net6, maps::NET6, k)
    }
    fn set_net6_lens(&mut self, slot: u32, l: &Net6Lengths) -> Result<(), TableError> {
        set(&mut self.net6_lens, maps::NET6_LENS, slot, l)
    }
    fn put_ban4(&mut self, addr_be: u32, e: &BanEntry) -> Result<(), TableError> {
        put(&mut self.bans4, maps::BANS_V4, self.bans_capacity, &addr_be, e)
    }
    fn del_ban4(&mut self, addr_be: u32) -> Result<(), TableError> {
        del(&mut self.bans4, maps::BANS_V4, &addr_be)
    }
    fn put_ban6(&mut self, key: &Addr6, e: &BanEntry) -> Result<(), TableError> {
        put(&mut self.bans6, maps::BANS_V6, self.bans_capacity, key, e)
    }
    fn del_ban6(&mut self, key: &Addr6) -> Result<(), TableError> {
        del(&mut self.bans6, maps::BANS_V6, key)
    }
}
