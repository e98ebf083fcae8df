//! Bans as the daemon keeps them: what is banned, until when, why and by whom. In the kernel a
//! ban is an entry of the network tables (see `nets`); IPv6 bans cover `[bans] ipv6_prefix`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

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

/// The bans in force, by target, with an index by expiry so the sweeper finds what expired
/// without scanning them all.
#[derive(Default, Debug, Clone)]
pub struct BanSet {
    by_target: BTreeMap<IpNet, Ban>,
    by_expiry: BTreeSet<(u64, IpNet)>,
}

impl BanSet {
    pub fn len(&self) -> usize {
        self.by_target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_target.is_empty()
    }

    pub fn get(&self, target: &IpNet) -> Option<&Ban> {
        self.by_target.get(target)
    }

    pub fn contains(&self, target: &IpNet) -> bool {
        self.by_target.contains_key(target)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Ban> {
        self.by_target.values()
    }

    /// Inserts or replaces; returns the ban replaced.
    pub fn insert(&mut self, b: Ban) -> Option<Ban> {
        if let Some(e) = b.expires_unix_ms {
            self.by_expiry.insert((e, b.target));
        }
        let old = self.by_target.insert(b.target, b);
        if let Some(Ban { expires_unix_ms: Some(e), target, .. }) = &old {
            if self.by_target[target].expires_unix_ms != Some(*e) {
                self.by_expiry.remove(&(*e, *target));
            }
        }
        old
    }

    pub fn remove(&mut self, target: &IpNet) -> Option<Ban> {
        let b = self.by_target.remove(target)?;
        if let Some(e) = b.expires_unix_ms {
            self.by_expiry.remove(&(e, *target));
        }
        Some(b)
    }

    /// Soonest expiry.
    pub fn next_expiry(&self) -> Option<u64> {
        self.by_expiry.first().map(|(e, _)| *e)
    }

    /// Targets whose expiry is at or before `now`.
    pub fn expired(&self, now_unix_ms: u64) -> Vec<IpNet> {
        // the greatest IpNet in the ordering closes the range
        let last = IpNet::new(IpAddr::V6(u128::MAX.into()), 128).expect("valid");
        self.by_expiry.range(..=(now_unix_ms, last)).map(|(_, t)| *t).collect()
    }
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

    fn ban(t: &str, e: Option<u64>) -> Ban {
        Ban { target: n(t), expires_unix_ms: e, created_unix_ms: 0, reason: String::new(), source: String::new() }
    }

    #[test]
    fn the_expiry_index_follows_every_change() {
        let mut s = BanSet::default();
        s.insert(ban("10.0.0.1/32", Some(50)));
        s.insert(ban("10.0.0.2/32", Some(20)));
        s.insert(ban("2001:db8::/64", None));
        s.insert(ban("10.0.0.3/32", Some(20)));
        assert_eq!(s.next_expiry(), Some(20));
        assert_eq!(s.expired(20), [n("10.0.0.2/32"), n("10.0.0.3/32")]);
        // a re-ban moves the expiry
        s.insert(ban("10.0.0.2/32", Some(90)));
        assert_eq!(s.expired(60), [n("10.0.0.3/32"), n("10.0.0.1/32")]);
        s.insert(ban("10.0.0.3/32", None));
        s.remove(&n("10.0.0.1/32"));
        assert_eq!(s.expired(1000), [n("10.0.0.2/32")]);
        assert_eq!(s.len(), 3);
        s.remove(&n("10.0.0.2/32"));
        assert_eq!(s.next_expiry(), None);
        assert!(s.get(&n("2001:db8::/64")).is_some());
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
