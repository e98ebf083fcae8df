//! Runtime settings the daemon writes into `SW_CONFIG[0]`.

use crate::addr::Addr6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// IPv6 bans cover this prefix of the source (`[bans] ipv6_prefix`).
    pub ban6_mask: Addr6,
    /// Minimum ns between two rate-limit events for the same source and service.
    pub event_interval_ns: u64,
    /// Active slot of `SW_NET6_LENS` (0 or 1).
    pub net6_slot: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 32);

/// Rate-limit buckets of IPv6 sources cover this prefix.
pub const RATE6_PREFIX: u32 = 64;
