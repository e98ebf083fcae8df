//! The compiled tables answer like the rules, and stay right during every single write of an
//! incremental update.

use std::{cell::RefCell, collections::BTreeMap, net::IpAddr, rc::Rc};

use firewall_common::{
    addr::Addr6,
    config::Config,
    nets::{class, NetClass},
};

use super::{prefix::AnyPrefix, NetTables, NoHosts};
use crate::datapath::tables::{fake::FakeTables, TableError};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Rules = Vec<(ipnet::IpNet, NetClass)>;

fn cls(flags: u32, allow_from: u32) -> NetClass {
    NetClass { flags, allow_from, ban_expires: 0 }
}

fn to_map(r: &Rules) -> BTreeMap<AnyPrefix, NetClass> {
    let mut m: BTreeMap<AnyPrefix, NetClass> = BTreeMap::new();
    for (n, c) in r {
        let e = m.entry(AnyPrefix::from(*n)).or_insert(NetClass::EMPTY);
        *e = e.union(*c);
    }
    m
}

/// What the data path acts on: an allow-listed source is only that, whatever else covers it.
fn verdict(c: NetClass) -> NetClass {
    if c.flags & class::ALLOW != 0 {
        cls(class::ALLOW, 0)
    } else {
        NetClass { flags: c.flags & class::MEMBERSHIP, ..c }
    }
}

/// The answer straight from the rules: the union over every prefix containing the address.
fn truth(r: &Rules, a: IpAddr) -> NetClass {
    verdict(r.iter().filter(|(n, _)| n.contains(&a)).fold(NetClass::EMPTY, |acc, (_, c)| acc.union(*c)))
}

fn kernel(t: &FakeTables, a: IpAddr) -> NetClass {
    verdict(match a {
        IpAddr::V4(a) => t.classify_v4(u32::from(a)),
        IpAddr::V6(a) => t.classify_v6(Addr6::from_be_bytes(a.octets())),
    })
}

/// `wide`: IPv4 prefixes may be /0 or /8 (65,536 or 256 cells to write).
fn random_rules(rng: &mut Rng, n: usize, v6: bool, wide: bool) -> Rules {
    let mut r = Vec::new();
    for _ in 0..n {
        let flags = [class::ALLOW, class::BLOCK, 0][rng.below(3) as usize];
        let allow_from = if flags == 0 { 1 << (1 + rng.below(3)) } else { 0 };
        let net: ipnet::IpNet = if v6 {
            // a small universe so prefixes nest and collide
            let len = [0u8, 16, 32, 33, 47, 48, 64, 100, 128][rng.below(9) as usize];
            let addr = (0x2001_0db8u128 << 96)
                | ((rng.below(4) as u128) << 80)
                | ((rng.below(4) as u128) << 60)
                | rng.below(8) as u128;
            ipnet::IpNet::new(std::net::Ipv6Addr::from(addr).into(), len).unwrap().trunc()
        } else {
            let lens: &[u8] = if wide {
                &[0, 8, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32]
            } else {
                &[12, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32]
            };
            let len = lens[rng.below(lens.len() as u64) as usize];
            let addr =
                (10u32 << 24) | ((rng.below(3) as u32) << 16) | ((rng.below(3) as u32) << 8) | rng.below(8) as u32;
            ipnet::IpNet::new(std::net::Ipv4Addr::from(addr).into(), len).unwrap().trunc()
        };
        r.push((net, cls(flags, allow_from)));
    }
    r
}

/// Addresses at the edges of every prefix, and a little outside them.
fn probes(rules: &[&Rules]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for r in rules {
        for (n, _) in r.iter() {
            for a in [n.network(), n.broadcast()] {
                out.push(a);
                match a {
                    IpAddr::V4(x) => {
                        let x = u32::from(x);
                        out.push(std::net::Ipv4Addr::from(x.wrapping_add(1)).into());
                        out.push(std::net::Ipv4Addr::from(x.wrapping_sub(1)).into());
                    }
                    IpAddr::V6(x) => {
                        let x = u128::from(x);
                        out.push(std::net::Ipv6Addr::from(x.wrapping_add(1)).into());
                        out.push(std::net::Ipv6Addr::from(x.wrapping_sub(1)).into());
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn flush(nt: &mut NetTables, cfg: &mut Config, t: &mut FakeTables) {
    nt.flush(cfg, t, &NoHosts).expect("flush");
}

/// Tables holding `rules`, flushed into fake kernel tables.
fn flushed(rules: &Rules) -> (NetTables, FakeTables) {
    let mut nt = NetTables::new(1 << 20);
    let (mut cfg, mut t) = (Config::default(), FakeTables::default());
    nt.set_rules(to_map(rules));
    flush(&mut nt, &mut cfg, &mut t);
    (nt, t)
}

#[test]
fn answers_match_the_rules_for_both_families() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..40 {
        let rules: Rules = random_rules(&mut rng, 12, round % 2 == 1, true);
        let mut nt = NetTables::new(1 << 20);
        let (mut cfg, mut t) = (Config::default(), FakeTables::default());
        nt.set_rules(to_map(&rules));
        flush(&mut nt, &mut cfg, &mut t);
        for a in probes(&[&rules]) {
            assert_eq!(kernel(&t, a), truth(&rules, a), "round {round} addr {a} rules {rules:?}");
            assert_eq!(verdict(nt.lookup(a)).flags, truth(&rules, a).flags, "mirror {a}");
        }
        assert!(!nt.is_dirty());
    }
}

#[test]
fn no_write_ever_drops_a_membership_held_before_and_after() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..60 {
        let v6 = round % 2 == 1;
        let old = random_rules(&mut rng, 10, v6, false);
        let new = random_rules(&mut rng, 10, v6, false);
        let mut nt = NetTables::new(1 << 20);
        let (mut cfg, mut t) = (Config::default(), FakeTables::default());
        nt.set_rules(to_map(&old));
        flush(&mut nt, &mut cfg, &mut t);

        let addrs = probes(&[&old, &new]);
        let both: Vec<(IpAddr, NetClass)> = addrs
            .iter()
            .map(|a| {
                let (o, n) = (truth(&old, *a), truth(&new, *a));
                (*a, NetClass { flags: o.flags & n.flags, allow_from: o.allow_from & n.allow_from, ban_expires: 0 })
            })
            .collect();
        let failures = Rc::new(RefCell::new(Vec::new()));
        let f = failures.clone();
        t.after_write = Some(Box::new(move |t: &FakeTables| {
            for (a, need) in &both {
                let got = kernel(t, *a);
                if got.flags & need.flags != need.flags || got.allow_from & need.allow_from != need.allow_from {
                    f.borrow_mut().push(format!("after write {}: {a} has {got:?}, needs {need:?}", t.writes));
                }
            }
        }));
        nt.set_rules(to_map(&new));
        flush(&mut nt, &mut cfg, &mut t);
        let failures = failures.borrow();
        assert!(
            failures.is_empty(),
            "round {round}: {} failures, first {:?}\nold {old:?}\nnew {new:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
        t.after_write = None;
        for a in &addrs {
            assert_eq!(kernel(&t, *a), truth(&new, *a), "round {round} final {a}");
        }
    }
}

#[test]
fn redundant_prefixes_cost_no_entries() {
    let rules: Rules = vec![
        ("10.0.0.0/8".parse().unwrap(), cls(class::BLOCK, 0)),
        ("10.1.16.0/20".parse().unwrap(), cls(class::BLOCK, 0)),
        ("10.1.2.3/32".parse().unwrap(), cls(class::BLOCK, 0)),
        ("2001:db8::/32".parse().unwrap(), cls(class::BLOCK, 0)),
        ("2001:db8:1::/48".parse().unwrap(), cls(class::BLOCK, 0)),
    ];
    let (nt, t) = flushed(&rules);
    assert_eq!(nt.entries(), (0, 1));
    assert_eq!(t.net4.len(), 0);
    assert_eq!(t.cells.iter().filter(|c| c.flags & class::BLOCK != 0).count(), 256);
}

#[test]
fn expansion_counts() {
    // a /20 is 16 /24 entries, a /30 is 4 /32 entries, a /32 inside a listed /24 one more
    let rules: Rules = vec![
        ("192.0.16.0/20".parse().unwrap(), cls(class::BLOCK, 0)),
        ("198.51.100.0/30".parse().unwrap(), cls(class::BLOCK, 0)),
        ("192.0.17.9/32".parse().unwrap(), cls(class::ALLOW, 0)),
    ];
    let (nt, t) = flushed(&rules);
    assert_eq!(nt.entries().0, 16 + 4 + 1);
    let v = t.classify_v4(u32::from(std::net::Ipv4Addr::new(192, 0, 17, 9)));
    assert_eq!(v.flags & class::MEMBERSHIP, class::BLOCK | class::ALLOW);
}

#[test]
fn nothing_is_written_under_an_allow_listed_entry() {
    // the office /24 is allow-listed: a blocked /32 or a ban inside it changes no verdict
    let rules: Rules = vec![
        ("51.5.6.0/24".parse().unwrap(), cls(class::ALLOW, 0)),
        ("51.5.6.9/32".parse().unwrap(), cls(class::BLOCK, 0)),
        ("51.5.6.10/31".parse().unwrap(), cls(class::BAN, 0)),
        ("10.0.0.0/16".parse().unwrap(), cls(class::ALLOW, 0)),
        ("10.0.7.0/24".parse().unwrap(), cls(class::BLOCK, 0)),
        ("10.0.8.1/32".parse().unwrap(), cls(0, 1 << 2)),
    ];
    let (nt, t) = flushed(&rules);
    assert_eq!(nt.entries().0, 1, "only the allow-listed /24 itself");
    for a in ["51.5.6.9", "51.5.6.10", "51.5.6.11", "10.0.7.1", "10.0.8.1"] {
        let v = t.classify_v4(u32::from(a.parse::<std::net::Ipv4Addr>().unwrap()));
        assert_eq!(v.flags & class::MEMBERSHIP, class::ALLOW, "{a}");
    }
}

#[test]
fn unchanged_rules_write_nothing() {
    let mut rng = Rng(77);
    let rules = random_rules(&mut rng, 30, false, true);
    let mut nt = NetTables::new(1 << 20);
    let (mut cfg, mut t) = (Config::default(), FakeTables::default());
    nt.set_rules(to_map(&rules));
    flush(&mut nt, &mut cfg, &mut t);
    let before = t.writes;
    nt.set_rules(to_map(&rules));
    assert!(!nt.is_dirty());
    flush(&mut nt, &mut cfg, &mut t);
    assert_eq!(t.writes, before);
}

#[test]
fn cidr_bans_carry_their_expiry_and_lift() {
    let mut nt = NetTables::new(1 << 20);
    let (mut cfg, mut t) = (Config::default(), FakeTables::default());
    let p = AnyPrefix::from("203.0.113.0/24".parse::<ipnet::IpNet>().unwrap());
    let q = AnyPrefix::from("2001:db8:bad::/48".parse::<ipnet::IpNet>().unwrap());
    nt.set_ban(p, Some(5_000));
    nt.set_ban(q, Some(u64::MAX));
    flush(&mut nt, &mut cfg, &mut t);
    let v = t.classify_v4(0xcb00_7109);
    assert_eq!((v.flags & class::MEMBERSHIP, v.ban_expires), (class::BAN, 5_000));
    let a6 = Addr6::from_be_bytes("2001:db8:bad:1::9".parse::<std::net::Ipv6Addr>().unwrap().octets());
    assert_eq!(t.classify_v6(a6).ban_expires, u64::MAX);
    nt.set_ban(p, None);
    nt.set_ban(q, None);
    flush(&mut nt, &mut cfg, &mut t);
    assert_eq!(t.classify_v4(0xcb00_7109), NetClass::EMPTY);
    assert_eq!(t.classify_v6(a6), NetClass::EMPTY);
    assert_eq!(nt.entries(), (0, 0));
    assert_eq!(t.net6_lens[cfg.net6_slot as usize].count, 0);
}

#[test]
fn over_capacity_is_refused_before_any_write() {
    let mut nt = NetTables::new(8);
    let (mut cfg, mut t) = (Config::default(), FakeTables::default());
    let rules: Rules = vec![("198.51.100.0/28".parse().unwrap(), cls(class::BLOCK, 0))];
    nt.set_rules(to_map(&rules));
    match nt.flush(&mut cfg, &mut t, &NoHosts) {
        Err(TableError::Full { capacity: 8, .. }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(t.writes, 0);
    assert!(nt.is_dirty(), "the change stays pending");
}

#[test]
fn a_failed_write_leaves_the_work_pending() {
    let mut nt = NetTables::new(1 << 20);
    let (mut cfg, mut t) = (Config::default(), FakeTables::default());
    t.capacity = 3; // the kernel map is smaller than the daemon believes
    let rules: Rules = vec![("198.51.100.0/29".parse().unwrap(), cls(class::BLOCK, 0))];
    nt.set_rules(to_map(&rules));
    assert!(nt.flush(&mut cfg, &mut t, &NoHosts).is_err());
    assert!(nt.is_dirty());
    assert_eq!(nt.entries().0, 3, "the mirror holds exactly what was written");
    t.capacity = u32::MAX;
    flush(&mut nt, &mut cfg, &mut t);
    assert_eq!(t.net4.len(), 8);
    for i in 0..8 {
        assert_eq!(t.classify_v4(0xc633_6400 + i).flags & class::MEMBERSHIP, class::BLOCK);
    }
}

#[test]
fn too_many_ipv6_lengths_are_refused_before_any_write() {
    let mut nt = NetTables::new(1 << 20);
    let (mut cfg, mut t) = (Config::default(), FakeTables::default());
    // disjoint prefixes of 39 lengths: none is redundant
    let rules: Rules = (90..=128u8)
        .map(|len| {
            let addr = std::net::Ipv6Addr::from((0x2001_0000u128 + len as u128) << 96);
            (ipnet::IpNet::new(addr.into(), len).unwrap(), cls(class::BLOCK, 0))
        })
        .collect();
    nt.set_rules(to_map(&rules));
    match nt.flush(&mut cfg, &mut t, &NoHosts) {
        Err(TableError::TooManyLengths { count: 39, max: 32 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(t.writes, 0);
    nt.set_rules(to_map(&rules[..32].to_vec()));
    nt.flush(&mut cfg, &mut t, &NoHosts).unwrap();
}

/// Address bans kept apart from the model, as the enforcer keeps them.
#[derive(Default)]
struct Hosts(BTreeMap<u32, NetClass>);

impl super::HostBans for Hosts {
    fn range(&self, first: u32, last: u32, out: &mut Vec<(u32, NetClass)>) {
        out.extend(self.0.range(first..=last).map(|(a, c)| (*a, *c)));
    }
}

/// Address bans rewrite only their /24: the kernel then answers as if their whole /16 cells had
/// been recomputed, holds the same entries and presence bits, and no write on the way drops a
/// membership an address holds before and after.
#[test]
fn address_bans_rewrite_their_block_as_a_whole_cell_would() {
    let mut rng = Rng(0x5eed_b10c_4a11_0001);
    for round in 0..40 {
        let rules = random_rules(&mut rng, 10, false, false);
        let mut nt = NetTables::new(1 << 20);
        let (mut cfg, mut t) = (Config::default(), FakeTables::default());
        nt.set_rules(to_map(&rules));
        let mut hosts = Hosts::default();
        nt.flush(&mut cfg, &mut t, &hosts).unwrap();
        for step in 0..30 {
            // a few bans and unbans at once, in blocks that nest with the rules' prefixes
            let before = hosts.0.clone();
            for _ in 0..1 + rng.below(4) {
                let a =
                    (10u32 << 24) | ((rng.below(3) as u32) << 16) | ((rng.below(3) as u32) << 8) | rng.below(8) as u32;
                if hosts.0.remove(&a).is_none() {
                    hosts.0.insert(a, NetClass { flags: class::BAN, allow_from: 0, ban_expires: 1 + step });
                }
                nt.touch_host(a);
            }
            let with = |h: &BTreeMap<u32, NetClass>| -> Rules {
                let mut r = rules.clone();
                r.extend(h.iter().map(|(a, c)| (ipnet::IpNet::from(IpAddr::V4((*a).into())), *c)));
                r
            };
            let (old, new) = (with(&before), with(&hosts.0));
            let addrs = probes(&[&old, &new]);
            let both: Vec<(IpAddr, u32)> =
                addrs.iter().map(|a| (*a, truth(&old, *a).flags & truth(&new, *a).flags)).collect();
            let failures = Rc::new(RefCell::new(Vec::new()));
            let f = failures.clone();
            t.after_write = Some(Box::new(move |t: &FakeTables| {
                for (a, need) in &both {
                    if kernel(t, *a).flags & need != *need {
                        f.borrow_mut().push(format!("after write {}: {a} lost {need:#x}", t.writes));
                    }
                }
            }));
            nt.flush(&mut cfg, &mut t, &hosts).unwrap();
            t.after_write = None;
            assert!(failures.borrow().is_empty(), "round {round} step {step}: {:?}", failures.borrow());
            for a in &addrs {
                assert_eq!(kernel(&t, *a).flags, truth(&new, *a).flags, "round {round} step {step} {a}");
            }
            // the same bans written by recomputing whole cells
            let mut whole = NetTables::new(1 << 20);
            let (mut cfg2, mut t2) = (Config::default(), FakeTables::default());
            whole.set_rules(to_map(&rules));
            for c in (10u32 << 8)..(10u32 << 8) + 3 {
                whole.touch_cell(c);
            }
            whole.flush(&mut cfg2, &mut t2, &hosts).unwrap();
            assert_eq!(t.net4, t2.net4, "round {round} step {step}: entries");
            assert_eq!(t.bits, t2.bits, "round {round} step {step}: presence bits");
            assert_eq!(t.cells, t2.cells, "round {round} step {step}: cells");
        }
    }
}
