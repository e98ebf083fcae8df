//! The program's maps. Names, keys and values come from `firewall_common::maps`; each static is
//! named exactly like its constant there.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use firewall_common::{
    addr::Addr6,
    config::Config,
    maps::capacity,
    nets::{BanEntry, Net4Key, Net6Key, Net6Lengths, NetClass},
    rate::{event_stat, Bucket, RateKey},
    reason::{Counter, COUNTER_SLOTS},
    service::{PortGroup, ServicePolicy, PORT_GROUPS, SERVICE_SLOTS},
};

#[map]
pub static SW_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

#[map]
pub static SW_CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
pub static SW_SERVICES: Array<ServicePolicy> = Array::with_max_entries(SERVICE_SLOTS, 0);

#[map]
pub static SW_PORTS: Array<PortGroup> = Array::with_max_entries(PORT_GROUPS, 0);

// Large tables allocate on insert: memory follows use, not capacity.
#[map]
pub static SW_BANS_V4: HashMap<u32, BanEntry> = HashMap::with_max_entries(capacity::BANS, BPF_F_NO_PREALLOC);

#[map]
pub static SW_BANS_V6: HashMap<Addr6, BanEntry> = HashMap::with_max_entries(capacity::BANS, BPF_F_NO_PREALLOC);

#[map]
pub static SW_NET4_L16: Array<NetClass> = Array::with_max_entries(65536, 0);

#[map]
pub static SW_NET4: HashMap<Net4Key, NetClass> = HashMap::with_max_entries(capacity::NETS, BPF_F_NO_PREALLOC);

#[map]
pub static SW_NET6: HashMap<Net6Key, NetClass> = HashMap::with_max_entries(capacity::NETS, BPF_F_NO_PREALLOC);

#[map]
pub static SW_NET6_LENS: Array<Net6Lengths> = Array::with_max_entries(2, 0);

#[map]
pub static SW_RATE: LruHashMap<RateKey, Bucket> = LruHashMap::with_max_entries(capacity::RATE, 0);

#[map]
pub static SW_EVENTS: RingBuf = RingBuf::with_byte_size(capacity::EVENTS_BYTES, 0);

#[map]
pub static SW_EVENT_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(event_stat::SLOTS, 0);
