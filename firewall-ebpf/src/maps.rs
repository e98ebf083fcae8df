//! The program's maps. Names, keys and values come from `firewall_common::maps`; each static is
//! named exactly like its constant there.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use firewall_common::{
    clock::ClockSample,
    config::Config,
    maps::capacity,
    nets::{
        slot_buckets, Net6Key, Net6Lengths, NetClass, Slot4, Slot6, NET4_BIT_WORDS, NET6_FAST_ENTRIES,
        NET6_FILTER_WORDS, SLOTS_PER_BUCKET,
    },
    proof::{GoodKey, GOOD_FILTER_WORDS},
    rate::{event_stat, rate_slots, Bucket, RateKey},
    reason::{Counter, COUNTER_SLOTS},
    service::{PortGroup, ServicePolicy, PORT_GROUPS, SERVICE_SLOTS},
    sip::{
        clean::{Clean, Source},
        SignatureTable, SipPolicy, SipScratch,
    },
};

#[map]
pub static SW_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

#[map]
pub static SW_CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
pub static SW_SERVICES: Array<ServicePolicy> = Array::with_max_entries(SERVICE_SLOTS, 0);

#[map]
pub static SW_PORTS: Array<PortGroup> = Array::with_max_entries(PORT_GROUPS, 0);

// The IPv4 tables are written by the daemon through shared mappings (BPF_F_MMAPABLE).
#[map]
pub static SW_NET4_L16: Array<NetClass> = Array::with_max_entries(65536, BPF_F_MMAPABLE);

#[map]
pub static SW_NET4_BITS: Array<u64> = Array::with_max_entries(NET4_BIT_WORDS, BPF_F_MMAPABLE);

#[map]
pub static SW_NET4: Array<Slot4> =
    Array::with_max_entries(slot_buckets(capacity::NETS + capacity::BANS) * SLOTS_PER_BUCKET, BPF_F_MMAPABLE);

#[map]
pub static SW_NET4_META: Array<u64> =
    Array::with_max_entries(slot_buckets(capacity::NETS + capacity::BANS), BPF_F_MMAPABLE);

#[map]
pub static SW_NET6: Array<Slot6> =
    Array::with_max_entries(slot_buckets(NET6_FAST_ENTRIES) * SLOTS_PER_BUCKET, BPF_F_MMAPABLE);

#[map]
pub static SW_NET6_META: Array<u64> = Array::with_max_entries(slot_buckets(NET6_FAST_ENTRIES), BPF_F_MMAPABLE);

// The overflow hashes allocate on insert: memory follows use, not capacity.
#[map]
pub static SW_NET4_OVER: HashMap<u64, NetClass> =
    HashMap::with_max_entries(capacity::NETS + capacity::BANS, BPF_F_NO_PREALLOC);

#[map]
pub static SW_NET6_OVER: HashMap<Net6Key, NetClass> =
    HashMap::with_max_entries(capacity::NETS + capacity::BANS, BPF_F_NO_PREALLOC);

#[map]
pub static SW_NET6_LENS: Array<Net6Lengths> = Array::with_max_entries(2, 0);

#[map]
pub static SW_NET6_FILTER: Array<u64> = Array::with_max_entries(NET6_FILTER_WORDS, BPF_F_MMAPABLE);

#[map]
pub static SW_RATE: Array<Bucket> = Array::with_max_entries(rate_slots(capacity::RATE), BPF_F_MMAPABLE);

#[map]
pub static SW_EVENTS: RingBuf = RingBuf::with_byte_size(capacity::EVENTS_BYTES, 0);

#[map]
pub static SW_EVENT_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(event_stat::SLOTS, 0);

#[map]
pub static SW_CLOCK: Array<ClockSample> = Array::with_max_entries(2, 0);

#[map]
pub static SW_SIP: Array<SipPolicy> = Array::with_max_entries(1, 0);

#[map]
pub static SW_SIP_SIGNATURES: Array<SignatureTable> = Array::with_max_entries(1, 0);

#[map]
pub static SW_SIP_SCRATCH: PerCpuArray<SipScratch> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static SW_SIP_CLEAN: Array<Clean> = Array::with_max_entries(capacity::SIP_CLEAN, 0);

#[map]
pub static SW_TAIL: ProgramArray = ProgramArray::with_max_entries(SERVICE_SLOTS, 0);

#[map]
pub static SW_SIP_STAGES: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[map]
pub static SW_CHALLENGED: LruHashMap<RateKey, u64> = LruHashMap::with_max_entries(capacity::CHALLENGED, 0);

#[map]
pub static SW_SIP_AWAIT: LruHashMap<Source, u64> = LruHashMap::with_max_entries(capacity::SIP_AWAIT, 0);

#[map]
pub static SW_SIP_GOOD: HashMap<GoodKey, u64> = HashMap::with_max_entries(capacity::SIP_GOOD, 0);

#[map]
pub static SW_SIP_GOOD_FILTER: Array<u64> = Array::with_max_entries(GOOD_FILTER_WORDS, 0);
