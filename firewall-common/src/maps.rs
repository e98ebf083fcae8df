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
/// Array<NetClass>[65536], mmapable, index source address >> 16: the IPv4 /16 cells. Daemon
/// writes through a shared mapping.
pub const NET4_L16: &str = "SW_NET4_L16";
/// Array<u64>[NET4_BIT_WORDS], mmapable: two bits per /24, which entries `SW_NET4` has for
/// it. Daemon writes through a shared mapping.
pub const NET4_BITS: &str = "SW_NET4_BITS";
/// Array<Slot4>[buckets × SLOTS_PER_BUCKET], mmapable: IPv4 /24 and /32 entries (bans
/// included). Daemon writes through a shared mapping.
pub const NET4: &str = "SW_NET4";
/// Hash<u64 (net4_key), NetClass>: IPv4 entries whose two buckets were full. Daemon writes.
pub const NET4_OVER: &str = "SW_NET4_OVER";
/// Array<u64>[buckets], mmapable: bucket meta words of `SW_NET4` (slot fingerprints and the
/// overflow bit). Daemon writes through a shared mapping.
pub const NET4_META: &str = "SW_NET4_META";
/// Array<Slot6>[buckets × SLOTS_PER_BUCKET], mmapable: IPv6 entries (bans included). Daemon
/// writes through a shared mapping.
pub const NET6: &str = "SW_NET6";
/// Hash<Net6Key, NetClass>: IPv6 entries whose two buckets were full. Daemon writes.
pub const NET6_OVER: &str = "SW_NET6_OVER";
/// Array<u64>[buckets], mmapable: bucket meta words of `SW_NET6`.
pub const NET6_META: &str = "SW_NET6_META";
/// Array<u64>[NET6_FILTER_WORDS], mmapable: probe filter, one bit per `net6_filter_bit`.
/// Daemon writes through a shared mapping.
pub const NET6_FILTER: &str = "SW_NET6_FILTER";
/// Array<Net6Lengths>[2]: distinct lengths in `SW_NET6`, slot chosen by `Config::net6_slot`.
pub const NET6_LENS: &str = "SW_NET6_LENS";
/// Array<Bucket>[rate_slots(capacity)]: per-source buckets, 2-way set-associative; apart from
/// the bans so floods never evict them. Kernel writes.
pub const RATE: &str = "SW_RATE";
/// RingBuf of RateEvent. Kernel writes, daemon reads.
pub const EVENTS: &str = "SW_EVENTS";
/// PerCpuArray<u64>[event_stat::SLOTS]: events sent and lost. Kernel writes.
pub const EVENT_STATS: &str = "SW_EVENT_STATS";
/// Array<ClockSample>[2]. Slot 0: written by the `sipwall_clock` program when the daemon runs it,
/// to relate kernel jiffies to CLOCK_MONOTONIC. Slot `CLOCK_TEST`: the jiffies the programs read
/// instead of the kernel's when loaded with the test clock (tests only; 0 follows the kernel).
pub const CLOCK: &str = "SW_CLOCK";
/// Slot of `SW_CLOCK` holding the test clock's jiffies.
pub const CLOCK_TEST: u32 = 1;

/// Array<SipPolicy>[1]: what the SIP inspector enforces. Daemon writes.
pub const SIP: &str = "SW_SIP";
/// Array<SignatureTable>[1]: the scanner signatures. Daemon writes.
pub const SIP_SIGNATURES: &str = "SW_SIP_SIGNATURES";
/// PerCpuArray<SipScratch>[1]: the payload copy and classifier state of the packet being
/// inspected. Kernel only.
pub const SIP_SCRATCH: &str = "SW_SIP_SCRATCH";
/// Array<sip::clean::Clean>[capacity::SIP_CLEAN], index a hash of the source: sources whose
/// last request passed the full inspection, and when (see `[sip] reinspect`). Kernel writes.
pub const SIP_CLEAN: &str = "SW_SIP_CLEAN";
/// ProgramArray[SERVICE_SLOTS], index service id: the program the XDP program tail-calls for
/// the traffic it accepted for that service. The daemon puts `sipwall_sip` in the slot of the
/// `sip` service when `[sip] inspect` is on; the other slots stay empty.
pub const TAIL: &str = "SW_TAIL";
/// ProgramArray[1]: the SIP inspector's second stage, `sipwall_sip_full` at index
/// `SIP_STAGE_FULL`, which `sipwall_sip` tail-calls for the requests it does not pass on its
/// own. The daemon fills it when both stages loaded, before the inspector goes into `SW_TAIL`.
pub const SIP_STAGES: &str = "SW_SIP_STAGES";
/// Index of the full inspection in `SW_SIP_STAGES`.
pub const SIP_STAGE_FULL: u32 = 0;

/// LruHash<RateKey, u64>: destinations the egress classifier challenged (401, 407) and has not
/// yet seen succeed; a success to one of them is reported. Kernel writes.
pub const CHALLENGED: &str = "SW_CHALLENGED";

/// LruHash<sip::clean::Source, u64>: the sources (address, port) the host sent a challenge or a
/// failure to, with the jiffies of the last one; for `Config::proof_wait` after it, their
/// requests are inspected in full and sent to the daemon (see `proof`). Kernel writes.
pub const SIP_AWAIT: &str = "SW_SIP_AWAIT";
/// Hash<proof::GoodKey, u64>: known-good sources (they authenticated) and when (jiffies) they
/// stop being known good; never dropped by a rate limit. Daemon writes.
pub const SIP_GOOD: &str = "SW_SIP_GOOD";

/// Array<u64>[proof::GOOD_FILTER_WORDS]: a bit per hash of each `SW_SIP_GOOD` key, asked before
/// the hash. Daemon writes.
pub const SIP_GOOD_FILTER: &str = "SW_SIP_GOOD_FILTER";

/// Every map, for the loader's presence check.
pub const ALL: [&str; 28] = [
    COUNTERS,
    CONFIG,
    SERVICES,
    PORTS,
    NET4_L16,
    NET4_BITS,
    NET4,
    NET4_OVER,
    NET4_META,
    NET6,
    NET6_OVER,
    NET6_META,
    NET6_LENS,
    NET6_FILTER,
    RATE,
    EVENTS,
    EVENT_STATS,
    CLOCK,
    SIP,
    SIP_SIGNATURES,
    SIP_SCRATCH,
    SIP_CLEAN,
    TAIL,
    SIP_STAGES,
    CHALLENGED,
    SIP_AWAIT,
    SIP_GOOD,
    SIP_GOOD_FILTER,
];

/// Default capacities (entries); the rules file and the loader may change the resizable ones.
pub mod capacity {
    /// Bans (each family); they share the network tables with the blocked prefixes.
    pub const BANS: u32 = 1_000_000;
    /// Blocked-prefix and allow-list entries (each family).
    pub const NETS: u32 = 1_000_000;
    /// Rate-limit buckets (rounded up to a power of two).
    pub const RATE: u32 = 262_144;
    /// Ring buffer bytes (a power of two, a multiple of the page size).
    pub const EVENTS_BYTES: u32 = 1024 * 1024;
    /// Challenged destinations tracked at once (least recently used evicted first).
    pub const CHALLENGED: u32 = 65_536;
    /// Sources awaited for a proof at once (least recently answered evicted first).
    pub const SIP_AWAIT: u32 = 65_536;
    /// Known-good sources.
    pub const SIP_GOOD: u32 = 65_536;
    /// Slots for sources remembered as inspected clean (a power of two; a source whose slot
    /// another took over is inspected in full again).
    pub const SIP_CLEAN: u32 = 131_072;
}
