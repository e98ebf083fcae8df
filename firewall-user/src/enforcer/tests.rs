//! Enforcer against the in-memory tables: rules, bans, re-keying and sweeping end up in the
//! right maps.

use std::path::Path;

use firewall_common::{addr::Addr6, nets::class, FOREVER};

use super::*;
use crate::{rules::ports::Proto, tables::fake::FakeTables};

fn rules(text: &str) -> Rules {
    Rules::parse("t", text, Path::new("/")).unwrap().0
}

fn example() -> Rules {
    rules(include_str!("../../../rules/example.toml"))
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> Addr6 {
    Addr6::from_be_bytes(s.parse::<std::net::Ipv6Addr>().unwrap().octets())
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn example_rules_land_in_the_maps() {
    let e = Enforcer::new(FakeTables::default(), example()).unwrap();
    let t = &e.tables;
    assert_ne!(t.classify_v4(v4("51.5.6.77")).flags & class::ALLOW, 0);
    assert_ne!(t.classify_v4(v4("203.0.113.9")).flags & class::BLOCK, 0);
    assert_eq!(t.classify_v4(v4("198.51.100.1")).flags & class::MEMBERSHIP, 0);
    assert_ne!(t.classify_v6(v6("2001:db8:bad:1::1")).flags & class::BLOCK, 0);
    assert_ne!(t.classify_v6(v6("::1")).flags & class::ALLOW, 0);
    let ssh = e.services().id("ssh").unwrap();
    assert_ne!(t.classify_v4(v4("188.10.11.12")).allow_from & (1 << ssh), 0);
    assert_eq!(e.services().service_of(Proto::Tcp, 22), ssh);
    assert_eq!(t.services[ssh as usize].rate, 20);
    assert_eq!(t.config.ban6_mask, Addr6 { hi: u64::MAX, lo: 0 });
    assert_eq!(t.config.event_interval_ns, 1_000_000_000);
}

#[test]
fn bans_go_to_the_exact_tables_or_the_network_tables() {
    let mut e = Enforcer::new(FakeTables::default(), example()).unwrap();
    let (_, c) = e.ban(net("198.51.100.7/32"), None, "test", "manual").unwrap();
    assert_eq!(c, BanChange::Added);
    let (b, c) = e.ban(net("198.51.100.7/32"), Some(u64::MAX / 2), "again", "manual").unwrap();
    assert_eq!((c, b.reason.as_str()), (BanChange::Updated, "again"));
    e.ban(net("2001:db8:1:2:3:4:5:6/128"), None, "v6", "manual").unwrap();
    e.ban(net("192.0.2.0/24"), None, "net", "manual").unwrap();
    let t = &e.tables;
    assert_eq!(t.bans4.len(), 1);
    assert!(t.bans4.contains_key(&v4("198.51.100.7").to_be()));
    assert_eq!(t.bans6[&v6("2001:db8:1:2::")].expires_ns, FOREVER);
    let c = t.classify_v4(v4("192.0.2.55"));
    assert_eq!((c.flags & class::BAN, c.ban_expires_ns), (class::BAN, FOREVER));
    assert_eq!(e.ban_count(), 3);

    assert!(e.unban(net("2001:db8:1:2::99/128")).unwrap().is_some(), "any address of the /64 names the ban");
    assert!(e.unban(net("192.0.2.0/24")).unwrap().is_some());
    assert!(e.unban(net("192.0.2.1/32")).unwrap().is_none());
    assert!(e.tables.bans6.is_empty());
    assert_eq!(e.tables.classify_v4(v4("192.0.2.55")).flags & class::BAN, 0);
}

#[test]
fn allow_listed_sources_are_never_banned() {
    let mut e = Enforcer::new(FakeTables::default(), example()).unwrap();
    let err = e.ban(net("51.5.6.9/32"), None, "x", "manual").unwrap_err();
    assert!(err.to_string().contains("51.5.6.0/24"), "{err}");
    assert!(e.tables.bans4.is_empty());
}

#[test]
fn sweeping_removes_expired_bans_only() {
    let mut e = Enforcer::new(FakeTables::default(), example()).unwrap();
    let now = clock::unix_ms(std::time::SystemTime::now());
    e.ban(net("198.51.100.1/32"), Some(now - 1), "old", "manual").unwrap();
    e.ban(net("198.51.100.2/32"), Some(now + 60_000), "new", "manual").unwrap();
    e.ban(net("192.0.2.0/24"), Some(now - 1), "old net", "manual").unwrap();
    assert_eq!(e.next_expiry(), Some(now - 1));
    let gone = e.sweep(now).unwrap();
    assert_eq!(gone.len(), 2);
    assert_eq!(e.tables.bans4.len(), 1);
    assert!(e.tables.bans4.contains_key(&v4("198.51.100.2").to_be()));
    assert_eq!(e.tables.classify_v4(v4("192.0.2.1")).flags & class::BAN, 0);
}

#[test]
fn ban_capacity_is_enforced_with_a_clear_error() {
    let mut r = example();
    r.bans.capacity = 2;
    let mut e = Enforcer::new(FakeTables::default(), r).unwrap();
    e.ban(net("198.51.100.1/32"), None, "", "manual").unwrap();
    e.ban(net("198.51.100.2/32"), None, "", "manual").unwrap();
    e.ban(net("198.51.100.2/32"), None, "re-ban fits", "manual").unwrap();
    let err = e.ban(net("198.51.100.3/32"), None, "", "manual").unwrap_err();
    assert!(err.to_string().contains("SW_BANS_V4 is full (2 entries)"), "{err}");
    e.ban(net("2001:db8::1/128"), None, "other family has room", "manual").unwrap();
}

#[test]
fn changing_the_ipv6_ban_prefix_rekeys_without_a_gap() {
    let mut e = Enforcer::new(FakeTables::default(), example()).unwrap();
    e.ban(net("2001:db8:1:2::1/128"), None, "a", "manual").unwrap();
    e.ban(net("2001:db8:1:3::1/128"), Some(u64::MAX - 5), "b", "manual").unwrap();
    let probe = v6("2001:db8:1:2::abcd");
    // after every write, the source must still be banned through one of the two keys
    e.tables.after_write = Some(Box::new(move |t: &FakeTables| {
        let key = Addr6 { hi: probe.hi & t.config.ban6_mask.hi, lo: probe.lo & t.config.ban6_mask.lo };
        assert!(t.bans6.contains_key(&key), "gap at write {}", t.writes);
    }));
    let mut r = example();
    r.bans.ipv6_prefix = 48;
    e.apply_rules(r).unwrap();
    e.tables.after_write = None;
    assert_eq!(e.tables.bans6.len(), 1, "both /64 bans merged into one /48");
    assert_eq!(e.tables.config.ban6_mask, Addr6 { hi: 0xffff_ffff_ffff_0000, lo: 0 });
    let b: Vec<_> = e.bans().collect();
    assert_eq!(b[0].target, net("2001:db8:1::/48"));
    assert_eq!(b[0].expires_unix_ms, None, "the merge keeps the later expiry");

    let mut r = example();
    r.bans.ipv6_prefix = 56;
    e.apply_rules(r).unwrap();
    assert!(e.tables.bans6.is_empty(), "a /48 ban is wider than the new prefix: a network ban");
    assert_ne!(e.tables.classify_v6(v6("2001:db8:1:ff::1")).flags & class::BAN, 0);
}

#[test]
fn reloading_rules_keeps_bans_and_moves_allow_from() {
    let mut e = Enforcer::new(FakeTables::default(), example()).unwrap();
    e.ban(net("198.51.100.7/32"), None, "", "manual").unwrap();
    let r = rules(
        "[allow]\nsources = [\"127.0.0.0/8\"]\n[services.ssh]\nports = [\"22/tcp\"]\nallow_from = [\"10.9.0.0/16\"]\n",
    );
    e.apply_rules(r).unwrap();
    let t = &e.tables;
    assert_eq!(t.bans4.len(), 1);
    let ssh = e.services().id("ssh").unwrap();
    assert_eq!(t.classify_v4(v4("188.10.11.12")).allow_from, 0);
    assert_ne!(t.classify_v4(v4("10.9.3.4")).allow_from & (1 << ssh), 0);
    assert_eq!(t.classify_v4(v4("203.0.113.9")).flags & class::BLOCK, 0, "block list gone");
    assert_eq!(e.services().service_of(Proto::Udp, 5060), 0, "sip service gone");
}
