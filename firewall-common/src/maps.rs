//! Names of the maps of the XDP program: the one place both sides take them from. The kernel
//! side names its statics identically; a test reads the built object and
//! checks that its maps are exactly these (`firewall-user/src/contract.rs`).

/// The map name constants, each with its documentation, and `ALL`, the list of them.
macro_rules! maps {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)+) => {
        $($(#[$doc])* pub const $name: &str = $value;)+
        /// Every map of the object.
        pub const ALL: &[&str] = &[$($name),+];
    };
}

maps! {
    /// PerCpuArray<Counter>[COUNTER_SLOTS], index `counter_index(reason, svc)`. Kernel writes.
    COUNTERS = "SW_COUNTERS";
    /// Array<Config>[1]. Daemon writes.
    CONFIG = "SW_CONFIG";
    /// Array<ServicePolicy>[SERVICE_SLOTS], index service id. Daemon writes.
    SERVICES = "SW_SERVICES";
    /// Array<PortGroup>[PORT_GROUPS], index `port_slot(is_udp, port)`. Daemon writes.
    PORTS = "SW_PORTS";
    /// Array<NetClass>[65536], mmapable, index source address >> 16: the IPv4 /16 cells. Daemon
    /// writes through a shared mapping.
    NET4_L16 = "SW_NET4_L16";
    /// Array<u64>[NET4_BIT_WORDS], mmapable: two bits per /24, which entries `SW_NET4` has for
    /// it. Daemon writes through a shared mapping.
    NET4_BITS = "SW_NET4_BITS";
    /// Array<Slot4>[buckets × SLOTS_PER_BUCKET], mmapable: IPv4 /24 and /32 entries (bans
    /// included). Daemon writes through a shared mapping.
    NET4 = "SW_NET4";
    /// Hash<u64 (net4_key), NetClass>: IPv4 entries whose two buckets were full. Daemon writes.
    NET4_OVER = "SW_NET4_OVER";
    /// Array<u64>[buckets], mmapable: bucket meta words of `SW_NET4` (slot fingerprints and the
    /// overflow bit). Daemon writes through a shared mapping.
    NET4_META = "SW_NET4_META";
    /// Array<Slot6>[buckets × SLOTS_PER_BUCKET], mmapable: IPv6 entries (bans included). Daemon
    /// writes through a shared mapping.
    NET6 = "SW_NET6";
    /// Hash<Net6Key, NetClass>: IPv6 entries whose two buckets were full. Daemon writes.
    NET6_OVER = "SW_NET6_OVER";
    /// Array<u64>[buckets], mmapable: bucket meta words of `SW_NET6`.
    NET6_META = "SW_NET6_META";
    /// Array<u64>[NET6_FILTER_WORDS], mmapable: probe filter, one bit per `net6_filter_bit`.
    /// Daemon writes through a shared mapping.
    NET6_FILTER = "SW_NET6_FILTER";
    /// Array<Net6Lengths>[2]: distinct lengths in `SW_NET6`, slot chosen by `Config::net6_slot`.
    NET6_LENS = "SW_NET6_LENS";
    /// Array<Bucket>[rate_slots(capacity)]: per-source buckets, 2-way set-associative; apart from
    /// the bans so floods never evict them. Kernel writes.
    RATE = "SW_RATE";
    /// RingBuf of RateEvent. Kernel writes, daemon reads.
    EVENTS = "SW_EVENTS";
    /// PerCpuArray<u64>[event_stat::SLOTS]: events sent and lost. Kernel writes.
    EVENT_STATS = "SW_EVENT_STATS";
    /// Array<ClockSample>[2]. Slot 0: written by the `sipwall_clock` program when the daemon runs it,
    /// to relate kernel jiffies to CLOCK_MONOTONIC. Slot `CLOCK_TEST`: the jiffies the programs read
    /// instead of the kernel's when loaded with the test clock (tests only; 0 follows the kernel).
    CLOCK = "SW_CLOCK";
    /// Array<SipPolicy>[1]: what the SIP inspector enforces. Daemon writes.
    SIP = "SW_SIP";
    /// Array<SignatureTable>[1]: the scanner signatures. Daemon writes.
    SIP_SIGNATURES = "SW_SIP_SIGNATURES";
    /// PerCpuArray<SipScratch>[1]: the payload copy and classifier state of the packet being
    /// inspected. Kernel only.
    SIP_SCRATCH = "SW_SIP_SCRATCH";
    /// Array<sip::clean::Clean>[capacity::SIP_CLEAN], index a hash of the source: sources whose
    /// last request passed the full inspection, and when (see `[sip] reinspect`). Kernel writes.
    SIP_CLEAN = "SW_SIP_CLEAN";
    /// ProgramArray[SERVICE_SLOTS], index service id: the program the XDP program tail-calls for
    /// the traffic it accepted for that service. The daemon puts `sipwall_sip` in the slot of the
    /// `sip` service when `[sip] inspect` is on; the other slots stay empty.
    TAIL = "SW_TAIL";
    /// ProgramArray[1]: the SIP inspector's second stage, `sipwall_sip_full` at index
    /// `SIP_STAGE_FULL`, which `sipwall_sip` tail-calls for the requests it does not pass on its
    /// own. The daemon fills it when both stages loaded, before the inspector goes into `SW_TAIL`.
    SIP_STAGES = "SW_SIP_STAGES";
    /// LruHash<RateKey, u64>: destinations the egress classifier challenged (401, 407) and has not
    /// yet seen succeed; a success to one of them is reported. Kernel writes.
    CHALLENGED = "SW_CHALLENGED";
    /// LruHash<sip::clean::Source, u64>: the sources (address, port) the host sent a challenge or a
    /// failure to, with the jiffies of the last one; for `Config::proof_wait` after it, their
    /// requests are inspected in full and sent to the daemon (see `proof`). Kernel writes.
    SIP_AWAIT = "SW_SIP_AWAIT";
    /// Hash<proof::GoodKey, u64>: known-good sources (they authenticated) and when (jiffies) they
    /// stop being known good; never dropped by a rate limit. Daemon writes.
    SIP_GOOD = "SW_SIP_GOOD";
    /// Array<u64>[proof::GOOD_FILTER_WORDS]: a bit per hash of each `SW_SIP_GOOD` key, asked before
    /// the hash. Daemon writes.
    SIP_GOOD_FILTER = "SW_SIP_GOOD_FILTER";
}

/// Slot of `SW_CLOCK` holding the test clock's jiffies.
pub const CLOCK_TEST: u32 = 1;
/// Index of the full inspection in `SW_SIP_STAGES`.
pub const SIP_STAGE_FULL: u32 = 0;

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
