//! Services: named port sets with an optional `allow_from` list and a per-source rate limit.

/// Service ids are 1..=MAX_SERVICES; 0 means "no service" (an unprotected port).
pub const MAX_SERVICES: u32 = 31;
/// Slots in `SW_SERVICES` (id 0 included).
pub const SERVICE_SLOTS: u32 = MAX_SERVICES + 1;

/// `ServicePolicy::flags` bits.
pub mod policy {
    /// Only sources in this service's `allow_from` list may reach it.
    pub const ALLOW_FROM: u32 = 1 << 0;
    /// A per-source token bucket applies.
    pub const LIMIT: u32 = 1 << 1;
    /// Every TCP segment costs a token, not only connection attempts (SYN without ACK).
    pub const LIMIT_ALL_TCP: u32 = 1 << 2;
    /// The SIP service (named `sip`): the egress classifier reports the failures it answers.
    pub const SIP: u32 = 1 << 3;
}

/// Name of the service whose answers the egress classifier reads as SIP.
pub const SIP_SERVICE: &str = "sip";

/// Value of `SW_SERVICES`, indexed by service id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServicePolicy {
    pub flags: u32,
    pub _pad: u32,
    /// Refill in nano-tokens per jiffy.
    pub rate: u64,
    /// Bucket size in nano-tokens (`burst` × `NANO_TOKENS`).
    pub capacity: u64,
    /// Jiffies an empty bucket takes to fill; beyond it the bucket is simply full.
    pub fill: u64,
}
const _: () = assert!(size_of::<ServicePolicy>() == 32);

/// IP protocol numbers the service table knows.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Ports per `SW_PORTS` entry.
pub const PORTS_PER_GROUP: u32 = 8;
/// Entries in `SW_PORTS`: TCP groups first, then UDP.
pub const PORT_GROUPS: u32 = 2 * 65536 / PORTS_PER_GROUP;

/// Value of `SW_PORTS`: the service id of 8 consecutive ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortGroup {
    pub svc: [u8; 8],
}
const _: () = assert!(size_of::<PortGroup>() == 8);

/// Index into `SW_PORTS` and the byte inside the group, for a host-order port.
#[inline(always)]
pub const fn port_slot(is_udp: bool, port: u16) -> (u32, usize) {
    let base = if is_udp { 65536 / PORTS_PER_GROUP } else { 0 };
    (base + port as u32 / PORTS_PER_GROUP, (port as u32 % PORTS_PER_GROUP) as usize)
}
