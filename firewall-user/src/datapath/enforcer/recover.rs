//! Bans found in tables taken over that the store does not have (the earlier daemon stopped
//! before saving them).

use firewall_common::nets::{class, NetClass};
use ipnet::IpNet;

use crate::{
    datapath::bans::{Ban, BanSet},
    datapath::clock::{self, KernelClock},
    datapath::nets::{
        prefix::{AnyPrefix, Prefix},
        v4::unkey,
    },
    datapath::tables::Snapshot,
};

/// Bans in the tables (`snap`) that `wanted` does not cover: added to `wanted` and returned, to
/// be saved. Expired and allow-listed ones are left out. Wider bans go first, so one inside a
/// recovered network is not counted twice (a network shows as every /16 cell it covers).
pub(super) fn recover(
    snap: &Snapshot,
    wanted: &mut BanSet,
    clock: &KernelClock,
    v6_prefix: u8,
    allowed: &dyn Fn(&IpNet) -> bool,
) -> Vec<Ban> {
    let now_j = clock.jiffies_at(clock::monotonic_ns());
    let banned = |v: &NetClass| v.flags & class::BAN != 0;
    let host_len = |n: &IpNet| if n.addr().is_ipv4() { 32 } else { v6_prefix };
    // everything but IPv4 addresses: few, taken widest first
    let mut found: Vec<(IpNet, u64)> = Vec::new();
    for (c, v) in snap.cells.iter().enumerate().filter(|(_, v)| banned(v)) {
        found.push((IpNet::from(AnyPrefix::V4(Prefix::new((c as u32) << 16, 16))), v.ban_expires));
    }
    for (k, v) in snap.net4.iter().filter(|(k, v)| banned(v) && unkey(*k).1 != 32) {
        let (addr, len) = unkey(*k);
        found.push((IpNet::from(AnyPrefix::V4(Prefix::new(addr, len))), v.ban_expires));
    }
    for (k, v) in snap.net6.iter().filter(|(_, v)| banned(v)) {
        let p = Prefix::new((k.addr.hi as u128) << 64 | k.addr.lo as u128, k.len as u8);
        found.push((IpNet::from(AnyPrefix::V6(p)), v.ban_expires));
    }
    found.sort_by_key(|(n, _)| n.prefix_len());
    let addresses = snap.net4.iter().filter(|(k, v)| banned(v) && unkey(*k).1 == 32).map(|(k, v)| {
        let (addr, _) = unkey(*k);
        (IpNet::from(AnyPrefix::V4(Prefix::new(addr, 32))), v.ban_expires)
    });
    let mut wide: Vec<IpNet> = wanted.networks().map(|(t, _)| *t).filter(|t| t.prefix_len() < host_len(t)).collect();
    let mut recovered = Vec::new();
    let created = clock::unix_ms(std::time::SystemTime::now());
    for (net, deadline) in found.into_iter().chain(addresses) {
        if !firewall_common::clock::before(now_j, deadline) || allowed(&net) {
            continue;
        }
        if wanted.contains(&net) || wide.iter().any(|w| w.contains(&net)) {
            continue;
        }
        if net.prefix_len() < host_len(&net) {
            wide.push(net);
        }
        let b = Ban {
            target: net,
            expires_unix_ms: clock.unix_ms_of(deadline),
            created_unix_ms: created,
            reason: "found in the kernel tables but not in the store (the daemon stopped before saving it)".into(),
            source: "recovered".into(),
        };
        wanted.insert(b.clone());
        recovered.push(b);
    }
    recovered
}
