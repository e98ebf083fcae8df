//! Source classification and ban lookups; see `firewall_common::nets` for the table layout.

use firewall_common::{
    addr::Addr6,
    config::Config,
    nets::{class, Net4Key, Net6Key, NetClass, MAX_NET6_LENGTHS},
};

use crate::maps::{SW_BANS_V4, SW_BANS_V6, SW_NET4, SW_NET4_L16, SW_NET6, SW_NET6_LENS};

/// Longest-match class of an IPv4 source: one array read, at most two hash lookups.
#[inline(always)]
pub fn classify_v4(addr_be: u32) -> NetClass {
    let a = u32::from_be(addr_be);
    let Some(cell) = SW_NET4_L16.get(a >> 16) else {
        return NetClass::EMPTY;
    };
    if cell.flags & class::HAS_32 != 0 {
        if let Some(v) = unsafe { SW_NET4.get(Net4Key { len: 32, addr_h: a }) } {
            return *v;
        }
    }
    if cell.flags & class::HAS_24 != 0 {
        if let Some(v) = unsafe { SW_NET4.get(Net4Key { len: 24, addr_h: a & 0xffff_ff00 }) } {
            return *v;
        }
    }
    *cell
}

/// Longest-match class of an IPv6 source: one hash probe per distinct length in use, longest
/// first, stopping at the first hit.
#[inline(always)]
pub fn classify_v6(addr: Addr6, cfg: &Config) -> NetClass {
    let Some(lens) = SW_NET6_LENS.get(cfg.net6_slot & 1) else {
        return NetClass::EMPTY;
    };
    let n = lens.count as usize;
    for i in 0..MAX_NET6_LENGTHS {
        if i >= n {
            break;
        }
        let len = lens.lens[i] as u32;
        let key = Net6Key { len, _pad: 0, addr: addr.masked(len) };
        if let Some(v) = unsafe { SW_NET6.get(key) } {
            return *v;
        }
    }
    NetClass::EMPTY
}

/// Expiry of an exact IPv4 ban, if any.
#[inline(always)]
pub fn ban_v4(addr_be: u32) -> Option<u64> {
    unsafe { SW_BANS_V4.get(addr_be) }.map(|b| b.expires_ns)
}

/// Expiry of a ban on the IPv6 source's ban prefix, if any.
#[inline(always)]
pub fn ban_v6(addr: Addr6, cfg: &Config) -> Option<u64> {
    let key = Addr6 { hi: addr.hi & cfg.ban6_mask.hi, lo: addr.lo & cfg.ban6_mask.lo };
    unsafe { SW_BANS_V6.get(key) }.map(|b| b.expires_ns)
}
