//! Bans as the daemon keeps them: what is banned, until when, why and by whom. In the kernel a
//! ban is an entry of the network tables (see `nets`); IPv6 bans cover `[bans] ipv6_prefix`.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use self::texts::Texts;

mod texts;

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

/// What the ban set keeps of a ban: 16 bytes; the texts are shared (`Texts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    /// Unix ms; `NEVER` for forever.
    expires: u64,
    created_s: u32,
    texts: u32,
}

const NEVER: u64 = u64::MAX;

impl Rec {
    fn expiry(&self) -> Option<u64> {
        (self.expires != NEVER).then_some(self.expires)
    }
}

/// Targets due at one second of the expiry wheel (may hold bans since lifted or moved).
#[derive(Default, Debug, Clone)]
struct Due {
    hosts: Vec<u32>,
    nets: Vec<IpNet>,
}

/// The bans in force, by target, compact enough for millions: IPv4 addresses apart from the
/// rest, texts shared, and an expiry wheel (by second) so the sweeper finds what expired
/// without scanning them all.
#[derive(Default, Debug, Clone)]
pub struct BanSet {
    hosts: BTreeMap<u32, Rec>,
    nets: BTreeMap<IpNet, Rec>,
    texts: Texts,
    wheel: BTreeMap<u64, Due>,
}

fn host(t: &IpNet) -> Option<u32> {
    match t {
        IpNet::V4(n) if n.prefix_len() == 32 => Some(u32::from(n.addr())),
        _ => None,
    }
}

fn second(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

impl BanSet {
    pub fn len(&self) -> usize {
        self.hosts.len() + self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rec(&self, target: &IpNet) -> Option<&Rec> {
        match host(target) {
            Some(a) => self.hosts.get(&a),
            None => self.nets.get(target),
        }
    }

    fn ban(&self, target: IpNet, r: &Rec) -> Ban {
        let (reason, source) = self.texts.of(r.texts);
        Ban {
            target,
            expires_unix_ms: r.expiry(),
            created_unix_ms: u64::from(r.created_s) * 1000,
            reason: reason.to_owned(),
            source: source.to_owned(),
        }
    }

    pub fn get(&self, target: &IpNet) -> Option<Ban> {
        self.rec(target).map(|r| self.ban(*target, r))
    }

    pub fn contains(&self, target: &IpNet) -> bool {
        self.rec(target).is_some()
    }

    /// Expiry (unix ms, `None` forever) of the ban on exactly `target`.
    pub fn expiry(&self, target: &IpNet) -> Option<Option<u64>> {
        self.rec(target).map(Rec::expiry)
    }

    /// Every ban (built on the fly: for listing, not for hot paths).
    pub fn iter(&self) -> impl Iterator<Item = Ban> + '_ {
        let hosts = self.hosts.iter().map(|(a, r)| self.ban(IpNet::from(IpAddr::V4((*a).into())), r));
        hosts.chain(self.nets.iter().map(|(t, r)| self.ban(*t, r)))
    }

    /// Bans that are not single IPv4 addresses (IPv6 prefixes, CIDR networks).
    pub fn networks(&self) -> impl Iterator<Item = (&IpNet, Option<u64>)> {
        self.nets.iter().map(|(t, r)| (t, r.expiry()))
    }

    /// IPv4 address bans within `lo..=hi` (host order), with their expiries.
    pub fn hosts_in(&self, lo: u32, hi: u32) -> impl Iterator<Item = (u32, Option<u64>)> + '_ {
        self.hosts.range(lo..=hi).map(|(a, r)| (*a, r.expiry()))
    }

    /// How many bans each source (jail, `manual`, …) holds.
    pub fn count_by_source(&self) -> HashMap<String, usize> {
        let mut per_text: HashMap<u32, usize> = HashMap::new();
        for r in self.hosts.values().chain(self.nets.values()) {
            *per_text.entry(r.texts).or_default() += 1;
        }
        let mut out: HashMap<String, usize> = HashMap::new();
        for (id, n) in per_text {
            *out.entry(self.texts.of(id).1.to_owned()).or_default() += n;
        }
        out
    }

    /// Inserts or replaces; returns the ban replaced.
    pub fn insert(&mut self, b: Ban) -> Option<Ban> {
        let old = self.remove(&b.target);
        let r = self.rec_of(&b);
        if let Some(e) = r.expiry() {
            let due = self.wheel.entry(second(e)).or_default();
            match host(&b.target) {
                Some(a) => due.hosts.push(a),
                None => due.nets.push(b.target),
            }
        }
        match host(&b.target) {
            Some(a) => self.hosts.insert(a, r),
            None => self.nets.insert(b.target, r),
        };
        old
    }

    /// Inserts many bans at once (restoring from the store), read one at a time: IPv4 address
    /// bans go into a list of 24-byte records (not whole bans), sorted and merged in one pass,
    /// which is much faster than one insert each and never holds a million `Ban`s.
    pub fn insert_many(&mut self, bans: impl IntoIterator<Item = Ban>) {
        // (address, arrival, record): the arrival breaks ties so the last of equal addresses
        // wins, as with one insert each
        let mut hosts: Vec<(u32, u32, Rec)> = Vec::new();
        for b in bans {
            let Some(a) = host(&b.target) else {
                self.insert(b);
                continue;
            };
            let r = self.rec_of(&b);
            if let Some(e) = r.expiry() {
                self.wheel.entry(second(e)).or_default().hosts.push(a);
            }
            hosts.push((a, hosts.len() as u32, r));
        }
        for due in self.wheel.values_mut() {
            due.hosts.shrink_to_fit();
        }
        hosts.sort_unstable_by_key(|(a, i, _)| (*a, *i));
        let texts = &mut self.texts;
        hosts.dedup_by(|later, earlier| {
            if later.0 != earlier.0 {
                return false;
            }
            texts.put(earlier.2.texts);
            *earlier = *later;
            true
        });
        if self.hosts.is_empty() {
            self.hosts = hosts.into_iter().map(|(a, _, r)| (a, r)).collect();
            return;
        }
        let old = std::mem::take(&mut self.hosts);
        let mut merged: Vec<(u32, Rec)> = Vec::with_capacity(old.len() + hosts.len());
        let mut o = old.into_iter().peekable();
        for (a, _, r) in hosts {
            while let Some((oa, orec)) = o.next_if(|(oa, _)| *oa <= a) {
                if oa == a {
                    self.texts.put(orec.texts);
                } else {
                    merged.push((oa, orec));
                }
            }
            merged.push((a, r));
        }
        merged.extend(o);
        self.hosts = merged.into_iter().collect();
    }

    fn rec_of(&mut self, b: &Ban) -> Rec {
        Rec {
            expires: match b.expires_unix_ms {
                Some(e) => e.min(NEVER - 1),
                None => NEVER,
            },
            created_s: (b.created_unix_ms / 1000).min(u64::from(u32::MAX)) as u32,
            texts: self.texts.get(&b.reason, &b.source),
        }
    }

    /// Removes a ban (its entry in the wheel goes when its second comes).
    pub fn remove(&mut self, target: &IpNet) -> Option<Ban> {
        let r = match host(target) {
            Some(a) => self.hosts.remove(&a)?,
            None => self.nets.remove(target)?,
        };
        let b = self.ban(*target, &r);
        self.texts.put(r.texts);
        Some(b)
    }

    /// Soonest expiry (unix ms, to the second; it may belong to a ban lifted since).
    pub fn next_expiry(&self) -> Option<u64> {
        self.wheel.keys().next().map(|s| s * 1000)
    }

    /// Targets whose expiry is at or before `now`; clears them from the wheel (the caller
    /// removes the bans).
    pub fn take_expired(&mut self, now_unix_ms: u64) -> Vec<IpNet> {
        let mut out = Vec::new();
        let seconds: Vec<u64> = self.wheel.range(..=second(now_unix_ms)).map(|(s, _)| *s).collect();
        for s in seconds {
            let due = self.wheel.remove(&s).expect("listed above");
            let mut later = Due::default();
            for a in due.hosts {
                if let Some(r) = self.hosts.get(&a) {
                    if r.expiry().is_some_and(|e| second(e) == s) {
                        if r.expires <= now_unix_ms {
                            out.push(IpNet::from(IpAddr::V4(a.into())));
                        } else {
                            later.hosts.push(a);
                        }
                    }
                }
            }
            for t in due.nets {
                if let Some(r) = self.nets.get(&t) {
                    if r.expiry().is_some_and(|e| second(e) == s) {
                        if r.expires <= now_unix_ms {
                            out.push(t);
                        } else {
                            later.nets.push(t);
                        }
                    }
                }
            }
            if !later.hosts.is_empty() || !later.nets.is_empty() {
                self.wheel.insert(s, later);
            }
        }
        out.sort();
        out.dedup();
        out
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
    fn many_at_once_is_one_at_a_time() {
        let list: Vec<Ban> = (0..1000u32)
            .map(|i| Ban {
                target: IpNet::from(IpAddr::V4((i * 7919 % 500).into())),
                expires_unix_ms: Some(u64::from(i) * 1000),
                created_unix_ms: 0,
                reason: format!("r{}", i % 3),
                source: "s".into(),
            })
            .chain([ban("2001:db8::/64", None)])
            .collect();
        let (mut one, mut many) = (BanSet::default(), BanSet::default());
        one.insert(ban("0.0.0.1/32", None));
        many.insert(ban("0.0.0.1/32", None));
        for b in list.clone() {
            one.insert(b);
        }
        many.insert_many(list);
        assert_eq!(one.iter().collect::<Vec<_>>(), many.iter().collect::<Vec<_>>());
        assert_eq!(one.len(), 501);
        let (a, b) = (one.take_expired(600_000), many.take_expired(600_000));
        assert_eq!(a, b);
        assert!(!a.is_empty());
        let live = |s: &BanSet| s.texts.uses();
        assert_eq!(live(&one), live(&many));
        assert_eq!(live(&many), 501);
    }

    #[test]
    fn texts_are_shared_and_freed() {
        let mut s = BanSet::default();
        for i in 0..100u32 {
            let t = IpNet::from(IpAddr::V4(i.into()));
            s.insert(Ban {
                target: t,
                expires_unix_ms: None,
                created_unix_ms: 5000,
                reason: "r".into(),
                source: "jail".into(),
            });
        }
        assert_eq!(s.texts.distinct(), 1);
        let b = s.get(&n("0.0.0.7/32")).unwrap();
        assert_eq!((b.reason.as_str(), b.source.as_str(), b.created_unix_ms), ("r", "jail", 5000));
        for i in 0..100u32 {
            s.remove(&IpNet::from(IpAddr::V4(i.into())));
        }
        assert!(s.texts.distinct() == 0 && s.is_empty());
    }

    #[test]
    fn the_expiry_index_follows_every_change() {
        let mut s = BanSet::default();
        s.insert(ban("10.0.0.1/32", Some(50)));
        s.insert(ban("10.0.0.2/32", Some(20)));
        s.insert(ban("2001:db8::/64", None));
        s.insert(ban("10.0.0.3/32", Some(20)));
        assert_eq!(s.next_expiry(), Some(1000), "to the second");
        // a re-ban moves the expiry
        s.insert(ban("10.0.0.2/32", Some(90_000)));
        assert_eq!(s.take_expired(60), [n("10.0.0.1/32"), n("10.0.0.3/32")]);
        for t in ["10.0.0.1/32", "10.0.0.3/32"] {
            s.remove(&n(t));
        }
        s.insert(ban("10.0.0.3/32", None));
        s.insert(ban("10.0.0.4/32", Some(89_500)));
        assert_eq!(s.take_expired(89_400), [], "not yet");
        assert_eq!(s.take_expired(89_500), [n("10.0.0.4/32")]);
        s.remove(&n("10.0.0.4/32"));
        assert_eq!(s.take_expired(100_000), [n("10.0.0.2/32")]);
        assert_eq!(s.len(), 3);
        s.remove(&n("10.0.0.2/32"));
        assert_eq!(s.take_expired(u64::MAX - 1), []);
        assert_eq!(s.next_expiry(), None);
        assert!(s.get(&n("2001:db8::/64")).is_some());
        assert_eq!(s.count_by_source().get(""), Some(&2));
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
