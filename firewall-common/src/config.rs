//! Runtime settings the daemon writes into `SW_CONFIG[0]`.

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Minimum jiffies between two rate-limit events for the same source and service.
    pub event_interval: u64,
    /// Active slot of `SW_NET6_LENS` (0 or 1).
    pub net6_slot: u32,
    /// Slots in `SW_RATE` minus one (a power of two minus one).
    pub rate_mask: u32,
    /// Buckets in `SW_NET4`.
    pub net4_buckets: u32,
    /// Buckets in `SW_NET6`.
    pub net6_buckets: u32,
    /// `LAYOUT` of the daemon that filled the maps (0: not yet filled). A daemon taking over
    /// pinned maps with another layout builds new ones instead.
    pub layout: u64,
    /// The clock anchor (jiffies and CLOCK_MONOTONIC ns) and wall-clock offset (ms) the
    /// deadlines in the tables were computed with; the XDP program does not read them.
    pub clock_jiffies: u64,
    pub clock_mono_ns: u64,
    pub wall_offset_ms: i64,
    /// Jiffies after the host's last challenge or failure to a source during which its requests
    /// are sent to the daemon, to be checked for a proof (`SW_SIP_AWAIT`).
    pub proof_wait: u64,
}

/// The meaning of the maps' contents; changed whenever a layout change keeps the sizes.
pub const LAYOUT: u64 = 2;
const _: () = assert!(size_of::<Config>() == 64);

/// Rate-limit buckets of IPv6 sources cover this prefix.
pub const RATE6_PREFIX: u32 = 64;
