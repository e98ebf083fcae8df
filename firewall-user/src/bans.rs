//! Bans as the daemon keeps them: what is banned, until when, why and by whom. Exact addresses
//! go to the ban hashes; IPv6 bans cover `[bans] ipv6_prefix`; wider CIDR bans go to the network
//! tables.

use std::net::IpAddr;

use firewall_common::addr::Addr6;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// Normalised: IPv4 /32, IPv6 at the ban prefix, or a wider CIDR.
    pub target: IpNet,
    /// Unix ms; `None` is forever.
    pub expires_unix_ms: Option<u64>,
    pub created_unix_ms: u64,
    pub reason: String,
    /// Who banned: `manual` for the CLI, or a jail's name.
    pub source: String,
}

/// Where a ban lives in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// `SW_BANS_V4`, source address in network order.
    V4(u32),
    /// `SW_BANS_V6`, source masked to the ban prefix.
    V6(Addr6),
    /// The network tables (a CIDR ban wider than one source).
    Net,
}

/// Normalises a ban target: an IPv6 address or any prefix at least as long as the ban prefix
/// becomes that prefix, since the kernel bans whole ban-prefix blocks.
pub fn normalize(net: IpNet, v6_prefix: u8) -> IpNet {
    match net {
        IpNet::V6(n) if n.prefix_len() >= v6_prefix => {
            IpNet::new(IpAddr::V6(n.network()), v6_prefix).expect("valid").trunc()
        }
        other => other.trunc(),
    }
}

pub fn slot(target: &IpNet, v6_prefix: u8) -> Slot {
    match target {
        IpNet::V4(n) if n.prefix_len() == 32 => Slot::V4(u32::from(n.network()).to_be()),
        IpNet::V6(n) if n.prefix_len() == v6_prefix => Slot::V6(Addr6::from_be_bytes(n.network().octets())),
        _ => Slot::Net,
    }
}

/// The `Addr6` mask of a ban prefix, for `Config::ban6_mask`.
pub fn v6_mask(prefix: u8) -> Addr6 {
    Addr6 { hi: u64::MAX, lo: u64::MAX }.masked(prefix as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_bans_cover_the_ban_prefix() {
        assert_eq!(normalize(n("2001:db8:1:2:3:4:5:6/128"), 64), n("2001:db8:1:2::/64"));
        assert_eq!(normalize(n("2001:db8:1:2::/80"), 64), n("2001:db8:1:2::/64"));
        assert_eq!(normalize(n("2001:db8::/48"), 64), n("2001:db8::/48"));
        assert_eq!(normalize(n("198.51.100.7/32"), 64), n("198.51.100.7/32"));
        assert_eq!(normalize(n("198.51.100.7/24"), 64), n("198.51.100.0/24"));
    }

    #[test]
    fn slots() {
        assert_eq!(slot(&n("1.2.3.4/32"), 64), Slot::V4(u32::from_ne_bytes([1, 2, 3, 4])));
        assert_eq!(slot(&n("1.2.3.0/24"), 64), Slot::Net);
        assert_eq!(slot(&n("2001:db8::/64"), 64), Slot::V6(Addr6 { hi: 0x2001_0db8_0000_0000, lo: 0 }));
        assert_eq!(slot(&n("2001:db8::/48"), 64), Slot::Net);
        assert_eq!(v6_mask(64), Addr6 { hi: u64::MAX, lo: 0 });
        assert_eq!(v6_mask(128), Addr6 { hi: u64::MAX, lo: u64::MAX });
    }
}
