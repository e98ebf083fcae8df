//! Bans as the daemon keeps them: what is banned, until when, why and by whom. In the kernel a
//! ban is an entry of the network tables (see `nets`); IPv6 bans cover `[bans] ipv6_prefix`.

use std::net::IpAddr;

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

/// Normalises a ban target: an IPv6 address or any prefix at least as long as the ban prefix
/// becomes that prefix, since sipwall bans whole ban-prefix blocks.
pub fn normalize(net: IpNet, v6_prefix: u8) -> IpNet {
    match net {
        IpNet::V6(n) if n.prefix_len() >= v6_prefix => {
            IpNet::new(IpAddr::V6(n.network()), v6_prefix).expect("valid").trunc()
        }
        other => other.trunc(),
    }
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
}
