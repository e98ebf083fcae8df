//! Per-source token buckets and the events the kernel reports about them.

use crate::addr::Addr6;

pub const FAMILY_V4: u32 = 4;
pub const FAMILY_V6: u32 = 6;

/// Key of `SW_RATE`: one bucket per (service, source). IPv4 sources sit in `addr.lo` (host
/// order); IPv6 sources are masked to /64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub addr: Addr6,
    pub svc: u32,
    pub family: u32,
}
const _: () = assert!(core::mem::size_of::<RateKey>() == 24);

/// Value of `SW_RATE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Nano-tokens available at `last_ns`.
    pub tokens: u64,
    pub last_ns: u64,
    /// When this source was last reported over its limit.
    pub reported_ns: u64,
    /// Drops since that report.
    pub dropped: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<Bucket>() == 32);

/// `RateEvent::kind` values.
pub mod event {
    /// A source went over a service's rate limit.
    pub const RATE_LIMITED: u32 = 1;
}

/// Record in the `SW_EVENTS` ring buffer. At most one per source and service per
/// `Config::event_interval_ns`; `dropped` counts the drops it stands for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEvent {
    pub kind: u32,
    pub svc: u32,
    pub family: u32,
    pub dropped: u32,
    pub ts_ns: u64,
    pub _pad: u64,
    pub addr: Addr6,
}
const _: () = assert!(core::mem::size_of::<RateEvent>() == 48);

/// `SW_EVENT_STATS` indices.
pub mod event_stat {
    pub const SENT: u32 = 0;
    /// The ring buffer was full; the daemon is not keeping up.
    pub const LOST: u32 = 1;
    pub const SLOTS: u32 = 2;
}
