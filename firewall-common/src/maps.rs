//! Names of the maps of the XDP program: the one place both sides take them from. The kernel
//! side names its statics identically; the loader checks that every name here exists in the
//! object.

/// PerCpuArray<Counter>[COUNTER_SLOTS], index `counter_index(reason, svc)`. Kernel writes.
pub const COUNTERS: &str = "SW_COUNTERS";
/// Array<Config>[1]. Daemon writes.
pub const CONFIG: &str = "SW_CONFIG";
/// Array<ServicePolicy>[SERVICE_SLOTS], index service id. Daemon writes.
pub const SERVICES: &str = "SW_SERVICES";
/// Array<PortGroup>[PORT_GROUPS], index `port_slot(is_udp, port)`. Daemon writes.
pub const PORTS: &str = "SW_PORTS";
/// Hash<u32 (source address, network order), BanEntry>. Daemon writes.
pub const BANS_V4: &str = "SW_BANS_V4";
/// Hash<Addr6 (source masked to `[bans] ipv6_prefix`), BanEntry>. Daemon writes.
pub const BANS_V6: &str = "SW_BANS_V6";
/// Array<NetClass>[65536], index source address >> 16: the IPv4 /16 cells. Daemon writes.
pub const NET4_L16: &str = "SW_NET4_L16";
/// Hash<Net4Key, NetClass>: IPv4 /24 and /32 entries. Daemon writes.
pub const NET4: &str = "SW_NET4";
/// Hash<Net6Key, NetClass>: IPv6 entries. Daemon writes.
pub const NET6: &str = "SW_NET6";
/// Array<Net6Lengths>[2]: distinct lengths in `SW_NET6`, slot chosen by `Config::net6_slot`.
pub const NET6_LENS: &str = "SW_NET6_LENS";
/// LruHash<RateKey, Bucket>: per-source buckets; kept apart so floods never evict bans. Kernel
/// writes.
pub const RATE: &str = "SW_RATE";
/// RingBuf of RateEvent. Kernel writes, daemon reads.
pub const EVENTS: &str = "SW_EVENTS";
/// PerCpuArray<u64>[event_stat::SLOTS]: events sent and lost. Kernel writes.
pub const EVENT_STATS: &str = "SW_EVENT_STATS";

/// Every map, for the loader's presence check.
pub const ALL: [&str; 13] =
    [COUNTERS, CONFIG, SERVICES, PORTS, BANS_V4, BANS_V6, NET4_L16, NET4, NET6, NET6_LENS, RATE, EVENTS, EVENT_STATS];

/// Default capacities (entries); the rules file and the loader may change the resizable ones.
pub mod capacity {
    pub const BANS: u32 = 1_000_000;
    pub const NETS: u32 = 1_000_000;
    pub const RATE: u32 = 262_144;
    /// Ring buffer bytes (a power of two, a multiple of the page size).
    pub const EVENTS_BYTES: u32 = 256 * 1024;
}
