//! Source-address tables: the network classification (allow list, blocked networks, per-service
//! `allow_from`, CIDR bans) and the exact-address ban tables.
//!
//! The classification answers "which sets does this source belong to" with a bounded number of
//! lookups whatever the table size (see docs/architecture.md):
//! - IPv4: prefixes are expanded to the strides /16, /24 and /32. /16 cells live in a 65,536-entry
//!   array that also says whether longer entries exist below the cell; /24 and /32 entries live in
//!   one hash. At most one array read and two hash lookups per packet.
//! - IPv6: one hash keyed by (length, masked address), probed longest length first over the
//!   distinct lengths in use (`Net6Lengths`), stopping at the first hit.
//!
//! Every entry carries the union of the sets of all configured prefixes that cover it, so the
//! longest match alone gives the answer.

/// Membership flags of a `NetClass`.
pub mod class {
    /// In the global allow list: never dropped, limited or banned.
    pub const ALLOW: u32 = 1 << 0;
    /// In a blocked network: dropped on every port.
    pub const BLOCK: u32 = 1 << 1;
    /// Covered by a CIDR ban; `ban_expires_ns` tells until when.
    pub const BAN: u32 = 1 << 2;
    /// IPv4 /16 cell only: entries at /24 exist below this cell.
    pub const HAS_24: u32 = 1 << 8;
    /// IPv4 /16 cell only: entries at /32 exist below this cell.
    pub const HAS_32: u32 = 1 << 9;
    /// The bits that are memberships (as opposed to lookup markers).
    pub const MEMBERSHIP: u32 = ALLOW | BLOCK | BAN;
}

/// Value of every classification entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetClass {
    /// `class::*` bits.
    pub flags: u32,
    /// Bit `n` set: the source is in the `allow_from` list of service `n`.
    pub allow_from: u32,
    /// CLOCK_MONOTONIC ns until which the `BAN` membership holds (`FOREVER` for permanent).
    pub ban_expires_ns: u64,
}
const _: () = assert!(core::mem::size_of::<NetClass>() == 16);

impl NetClass {
    pub const EMPTY: Self = Self { flags: 0, allow_from: 0, ban_expires_ns: 0 };

    /// Union of two memberships (markers are not merged).
    pub const fn union(self, other: Self) -> Self {
        Self {
            flags: (self.flags | other.flags) & class::MEMBERSHIP,
            allow_from: self.allow_from | other.allow_from,
            ban_expires_ns: if self.ban_expires_ns > other.ban_expires_ns {
                self.ban_expires_ns
            } else {
                other.ban_expires_ns
            },
        }
    }

    pub const fn is_empty(&self) -> bool {
        self.flags & class::MEMBERSHIP == 0 && self.allow_from == 0
    }
}

/// Key of the IPv4 hash (`SW_NET4`): a /24 or /32 entry. `addr_h` is host order, masked to `len`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Net4Key {
    pub len: u32,
    pub addr_h: u32,
}
const _: () = assert!(core::mem::size_of::<Net4Key>() == 8);

/// Key of the IPv6 hash (`SW_NET6`): `addr` masked to `len`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Net6Key {
    pub len: u32,
    pub _pad: u32,
    pub addr: crate::addr::Addr6,
}
const _: () = assert!(core::mem::size_of::<Net6Key>() == 24);

/// Most distinct IPv6 prefix lengths probed per packet: every length 0..=128.
pub const MAX_NET6_LENGTHS: usize = 129;

/// The distinct IPv6 prefix lengths in `SW_NET6`, longest first. Two slots exist; the daemon
/// fills the inactive one and then flips `Config::net6_slot`, so a packet never sees a torn list.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net6Lengths {
    pub count: u32,
    pub lens: [u8; 132],
}
const _: () = assert!(core::mem::size_of::<Net6Lengths>() == 136);

impl Default for Net6Lengths {
    fn default() -> Self {
        Self { count: 0, lens: [0; 132] }
    }
}

/// Value of the exact-address ban tables.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanEntry {
    /// CLOCK_MONOTONIC ns at which the ban ends (`FOREVER`: never). The kernel ignores expired
    /// entries; the daemon deletes them.
    pub expires_ns: u64,
}
const _: () = assert!(core::mem::size_of::<BanEntry>() == 8);
