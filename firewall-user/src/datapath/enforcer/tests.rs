//! Enforcer against the in-memory tables: rules, bans, re-keying and sweeping end up in the
//! right maps.

use std::path::Path;

use firewall_common::{addr::Addr6, nets::class, FOREVER};

use crate::datapath::bans::Ban;

use super::*;
use crate::{
    datapath::clock::{self, KernelClock},
    datapath::tables::fake::FakeTables,
    rules::ports::Proto,
};

mod feeds;

fn rules(text: &str) -> Rules {
    Rules::parse("t", text, Path::new("/")).unwrap().0
}

fn example() -> Rules {
    rules(include_str!("../../../../rules/example.toml"))
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

fn banned4(t: &FakeTables, a: &str) -> Option<u64> {
    let c = t.classify_v4(v4(a));
    (c.flags & class::BAN != 0).then_some(c.ban_expires)
}

fn banned6(t: &FakeTables, a: &str) -> Option<u64> {
    let c = t.classify_v6(v6(a));
    (c.flags & class::BAN != 0).then_some(c.ban_expires)
}

#[test]
fn example_rules_land_in_the_maps() {
    let e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    let t = &e.tables;
    assert_ne!(t.classify_v4(v4("51.5.6.77")).flags & class::ALLOW, 0);
    assert_ne!(t.classify_v4(v4("203.0.113.9")).flags & class::BLOCK, 0);
    assert_eq!(t.classify_v4(v4("198.51.100.1")).flags & class::MEMBERSHIP, 0);
    assert_ne!(t.classify_v6(v6("2001:db8:bad:1::1")).flags & class::BLOCK, 0);
    assert_ne!(t.classify_v6(v6("::1")).flags & class::ALLOW, 0);
    let ssh = e.services().id("ssh").unwrap();
    assert_ne!(t.classify_v4(v4("188.10.11.12")).allow_from & (1 << ssh), 0);
    assert_eq!(e.services().service_of(Proto::Tcp, 22), ssh);
    assert_eq!(t.services[ssh as usize].rate, 20 * 1_000_000, "20 tokens a second: 0.02 token a jiffy at 1000 Hz");
    assert_eq!(t.config.event_interval, 1000, "one second at 1000 Hz");
    assert_eq!(t.config.net4_buckets, firewall_common::nets::slot_buckets(2_000_000));
    assert_eq!(t.config.rate_mask, 262_143);
}

#[test]
fn bans_of_every_shape_land_in_the_network_tables() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    let (_, c) = e.ban(net("198.51.100.7/32"), None, "test", "manual").unwrap();
    assert_eq!(c, BanChange::Added);
    let (b, c) = e.ban(net("198.51.100.7/32"), Some(u64::MAX / 2), "again", "manual").unwrap();
    assert_eq!((c, b.reason.as_str()), (BanChange::Updated, "again"));
    e.ban(net("2001:db8:1:2:3:4:5:6/128"), None, "v6", "manual").unwrap();
    e.ban(net("192.0.2.0/24"), None, "net", "manual").unwrap();
    let t = &e.tables;
    assert!(banned4(t, "198.51.100.7").is_some());
    assert_eq!(banned4(t, "198.51.100.8"), None);
    assert_eq!(banned6(t, "2001:db8:1:2:ffff::1"), Some(FOREVER), "the whole /64");
    assert_eq!(banned6(t, "2001:db8:1:3::1"), None);
    assert_eq!(banned4(t, "192.0.2.55"), Some(FOREVER));
    assert_eq!(e.ban_count(), 3);

    assert!(e.unban(net("2001:db8:1:2::99/128")).unwrap().is_some(), "any address of the /64 names the ban");
    assert!(e.unban(net("192.0.2.0/24")).unwrap().is_some());
    assert!(e.unban(net("192.0.2.1/32")).unwrap().is_none());
    assert_eq!(banned6(&e.tables, "2001:db8:1:2::1"), None);
    assert_eq!(banned4(&e.tables, "192.0.2.55"), None);
    assert!(banned4(&e.tables, "198.51.100.7").is_some());
}

#[test]
fn a_ban_inside_a_blocked_network_keeps_both() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    e.ban(net("203.0.113.9/32"), None, "t", "manual").unwrap();
    let c = e.tables.classify_v4(v4("203.0.113.9"));
    assert_eq!(c.flags & class::MEMBERSHIP, class::BAN | class::BLOCK);
    e.unban(net("203.0.113.9/32")).unwrap();
    assert_eq!(e.tables.classify_v4(v4("203.0.113.9")).flags & class::MEMBERSHIP, class::BLOCK);
}

#[test]
fn allow_listed_sources_are_never_banned() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    let err = e.ban(net("51.5.6.9/32"), None, "x", "manual").unwrap_err();
    assert!(err.to_string().contains("51.5.6.0/24"), "{err}");
    assert_eq!(banned4(&e.tables, "51.5.6.9"), None);
    assert_eq!(e.ban_count(), 0);
}

#[test]
fn sweeping_removes_expired_bans_only() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    let now = clock::unix_ms(std::time::SystemTime::now());
    e.ban(net("198.51.100.1/32"), Some(now - 1), "old", "manual").unwrap();
    e.ban(net("198.51.100.2/32"), Some(now + 60_000), "new", "manual").unwrap();
    e.ban(net("192.0.2.0/24"), Some(now - 1), "old net", "manual").unwrap();
    let next = e.next_expiry().unwrap();
    assert!((now - 1..now + 1000).contains(&next), "the soonest expiry, to the second: {next} vs {now}");
    let gone = e.sweep(now).unwrap();
    assert_eq!(gone.len(), 2);
    assert_eq!(banned4(&e.tables, "198.51.100.1"), None);
    assert!(banned4(&e.tables, "198.51.100.2").is_some());
    assert_eq!(banned4(&e.tables, "192.0.2.1"), None);
    assert_eq!(e.ban_count(), 1);
}

#[test]
fn full_tables_refuse_bans_with_a_clear_error_and_lose_nothing() {
    let mut r = example();
    r.block_capacity = 0;
    r.bans.capacity = 8;
    let mut e = Enforcer::new(FakeTables::default(), r, KernelClock::synthetic(1000)).unwrap();
    // the example's allow and block lists hold 3 of the 8 IPv4 entries
    assert_eq!(e.nets().entries().0, 3);
    for i in 1..=5 {
        e.ban(net(&format!("198.51.100.{i}/32")), None, "", "manual").unwrap();
    }
    e.ban(net("198.51.100.5/32"), None, "re-ban fits", "manual").unwrap();
    let err = e.ban(net("198.51.100.99/32"), None, "", "manual").unwrap_err();
    assert!(err.to_string().contains("SW_NET4 is full (8 entries)"), "{err}");
    assert_eq!(e.ban_count(), 5);
    assert_eq!(banned4(&e.tables, "198.51.100.99"), None);
    assert!(banned4(&e.tables, "198.51.100.1").is_some());
    // the model did not keep the refused ban: a later ban of room-sized fits
    e.unban(net("198.51.100.1/32")).unwrap();
    e.ban(net("198.51.100.99/32"), None, "", "manual").unwrap();
}

#[test]
fn changing_the_ipv6_ban_prefix_rekeys_without_a_gap() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    e.ban(net("2001:db8:1:2::1/128"), None, "a", "manual").unwrap();
    e.ban(net("2001:db8:1:3::1/128"), Some(u64::MAX - 5), "b", "manual").unwrap();
    // after every write, the source must still be banned
    e.tables.after_write = Some(Box::new(move |t: &FakeTables| {
        assert!(banned6(t, "2001:db8:1:2::abcd").is_some(), "gap at write {}", t.writes);
    }));
    let mut r = example();
    r.bans.ipv6_prefix = 48;
    e.apply_rules(r).unwrap();
    e.tables.after_write = None;
    let b: Vec<_> = e.bans().collect();
    assert_eq!(b.len(), 1, "both /64 bans merged into one /48");
    assert_eq!(b[0].target, net("2001:db8:1::/48"));
    assert_eq!(b[0].expires_unix_ms, None, "the merge keeps the later expiry");
    assert!(banned6(&e.tables, "2001:db8:1:ff::1").is_some());
    assert_eq!(e.nets().entries().1, 3, "the /48 ban, ::1/128 and the blocked /48: no stale /64s");
}

#[test]
fn reloading_rules_keeps_bans_and_moves_allow_from() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    e.ban(net("198.51.100.7/32"), None, "", "manual").unwrap();
    let r = rules(
        "[allow]\nsources = [\"127.0.0.0/8\"]\n[services.ssh]\nports = [\"22/tcp\"]\nallow_from = [\"10.9.0.0/16\"]\n",
    );
    e.apply_rules(r).unwrap();
    let t = &e.tables;
    assert!(banned4(t, "198.51.100.7").is_some());
    let ssh = e.services().id("ssh").unwrap();
    assert_eq!(t.classify_v4(v4("188.10.11.12")).allow_from, 0);
    assert_ne!(t.classify_v4(v4("10.9.3.4")).allow_from & (1 << ssh), 0);
    assert_eq!(t.classify_v4(v4("203.0.113.9")).flags & class::BLOCK, 0, "block list gone");
    assert_eq!(e.services().service_of(Proto::Udp, 5060), 0, "sip service gone");
}

#[test]
fn restoring_many_bans_is_one_update() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    let list: Vec<Ban> = (0..5000u32)
        .map(|i| Ban {
            target: IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x6440_0000 + i * 3))),
            expires_unix_ms: None,
            created_unix_ms: 0,
            reason: String::new(),
            source: "store".into(),
        })
        .chain(std::iter::once(Ban {
            target: net("51.5.6.1/32"),
            expires_unix_ms: None,
            created_unix_ms: 0,
            reason: String::new(),
            source: "store".into(),
        }))
        .collect();
    let (n, skipped) = e.restore(list).unwrap();
    assert_eq!((n, skipped.len()), (5000, 1), "the allow-listed one is skipped");
    assert!(banned4(&e.tables, "100.64.0.3").is_some());
    assert_eq!(banned4(&e.tables, "100.64.0.4"), None);
}

fn ban_of(t: &str) -> Ban {
    Ban { target: net(t), expires_unix_ms: None, created_unix_ms: 0, reason: "r".into(), source: "manual".into() }
}

/// Addresses across everything the example rules and the bans below touch.
const PROBES4: [&str; 8] = [
    "198.51.100.7",
    "198.51.100.8",
    "198.51.100.9",
    "192.0.2.5",
    "51.5.6.77",
    "203.0.113.9",
    "188.10.11.12",
    "10.9.3.4",
];
const PROBES6: [&str; 4] = ["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:bad:1::1", "::1"];

#[test]
fn taking_over_tables_keeps_every_ban_and_writes_only_the_difference() {
    let clock = KernelClock::synthetic(1000);
    let mut old = Enforcer::new(FakeTables::default(), example(), clock).unwrap();
    for t in ["198.51.100.7/32", "198.51.100.8/32", "2001:db8:1:2::1/128", "192.0.2.0/24"] {
        old.ban(net(t), None, "r", "manual").unwrap();
    }
    let ids: BTreeMap<String, u32> = old.services().names().map(|(n, i)| (n.to_owned(), i)).collect();
    // the store missed two of them (the daemon was killed between the kernel and the disk)
    let stored = vec![ban_of("198.51.100.7/32"), ban_of("2001:db8:1:2::/64")];
    let mut tables = std::mem::take(&mut old.tables);
    tables.after_write = Some(Box::new(|t: &FakeTables| {
        for a in ["198.51.100.7", "198.51.100.8", "192.0.2.5"] {
            assert!(banned4(t, a).is_some(), "{a} unbanned at write {}", t.writes);
        }
        assert!(banned6(t, "2001:db8:1:2::99").is_some(), "v6 ban lost at write {}", t.writes);
    }));
    // the new daemon's rules differ: the office leaves allow_from, a network is blocked
    let edited = rules(
        &include_str!("../../../../rules/example.toml")
            .replace("allow_from = [\"188.10.11.12/32\"]", "allow_from = [\"10.9.0.0/16\"]")
            .replace("\"203.0.113.0/24\",", "\"203.0.113.0/24\", \"198.51.100.9/32\","),
    );
    let (new, recovered, skipped) = Enforcer::adopt(tables, edited.clone(), clock, ids, stored).unwrap();
    let mut got: Vec<String> = recovered.iter().map(|b| b.target.to_string()).collect();
    got.sort();
    assert_eq!(got, ["192.0.2.0/24", "198.51.100.8/32"]);
    assert!(recovered.iter().all(|b| b.source == "recovered" && b.expires_unix_ms.is_none()));
    assert!(skipped.is_empty());
    assert_eq!(new.ban_count(), 4);

    // the tables answer as if built afresh with those rules and bans
    let mut fresh = Enforcer::new(FakeTables::default(), edited.clone(), clock).unwrap();
    fresh.restore(new.bans()).unwrap();
    for a in PROBES4 {
        assert_eq!(new.tables.classify_v4(v4(a)), fresh.tables.classify_v4(v4(a)), "{a}");
    }
    for a in PROBES6 {
        assert_eq!(new.tables.classify_v6(v6(a)), fresh.tables.classify_v6(v6(a)), "{a}");
    }
    assert_eq!(new.tables.net4, fresh.tables.net4, "no stale IPv4 entries");
    assert_eq!(new.tables.net6, fresh.tables.net6, "no stale IPv6 entries");
    assert_ne!(new.tables.classify_v4(v4("198.51.100.9")).flags & class::BLOCK, 0);

    // taking over again with nothing changed writes nothing
    let ids: BTreeMap<String, u32> = new.services().names().map(|(n, i)| (n.to_owned(), i)).collect();
    let all: Vec<Ban> = new.bans().collect();
    let mut new = new;
    let mut tables = std::mem::take(&mut new.tables);
    tables.after_write = None;
    let before = tables.writes;
    let (again, recovered, _) = Enforcer::adopt(tables, edited, clock, ids, all).unwrap();
    assert!(recovered.is_empty());
    // but the SIP inspector's slot: the program in it is the new daemon's
    assert_eq!(again.tables.writes, before + 1, "an unchanged takeover writes nothing else");
}

#[test]
fn taking_over_tables_drops_what_no_longer_belongs() {
    let clock = KernelClock::synthetic(1000);
    let mut old = Enforcer::new(FakeTables::default(), example(), clock).unwrap();
    old.ban(net("198.51.100.7/32"), Some(1), "expired long ago", "manual").unwrap();
    let tables = std::mem::take(&mut old.tables);
    // new rules allow-list the banned address; the stored ban has expired
    let r = rules("[allow]\nsources = [\"198.51.100.0/24\"]\n");
    let (e, recovered, skipped) =
        Enforcer::adopt(tables, r.clone(), clock, BTreeMap::new(), vec![ban_of("198.51.100.7/32")]).unwrap();
    assert!(recovered.is_empty(), "expired kernel bans are not recovered");
    assert_eq!(skipped.len(), 1, "allow-listed stored bans are skipped");
    assert_eq!(e.ban_count(), 0);
    let fresh = Enforcer::new(FakeTables::default(), r, clock).unwrap();
    assert_eq!(e.tables.net4, fresh.tables.net4);
    assert_eq!(e.tables.net6, fresh.tables.net6);
    assert_eq!(e.tables.cells, fresh.tables.cells);
    assert_eq!(e.tables.bits, fresh.tables.bits);
    assert_eq!(e.tables.filter, fresh.tables.filter);
    assert_eq!(e.services().service_of(Proto::Udp, 5060), 0);
    assert_eq!(e.tables.ports, fresh.tables.ports);
}

#[test]
fn restoring_in_rounds_builds_the_tables_one_ban_at_a_time_would() {
    let clock = KernelClock::synthetic(1000);
    // one address in each of 3000 /16 cells: three rounds of 1000 in tests
    let list: Vec<Ban> = (0..3000u32)
        .map(|i| Ban {
            target: IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x5000_0000 + i * 65_537))),
            expires_unix_ms: Some(10_000_000 + u64::from(i) * 1000),
            created_unix_ms: 0,
            reason: "r".into(),
            source: "store".into(),
        })
        .collect();
    let mut restored = Enforcer::new(FakeTables::default(), example(), clock).unwrap();
    assert_eq!(restored.restore(list.clone()).unwrap().0, 3000);
    let mut one = Enforcer::new(FakeTables::default(), example(), clock).unwrap();
    for b in &list {
        one.ban(b.target, b.expires_unix_ms, &b.reason, &b.source).unwrap();
    }
    assert_eq!(restored.ban_count(), 3000);
    assert_eq!(restored.tables.net4, one.tables.net4);
    assert_eq!(restored.tables.cells, one.tables.cells);
    assert_eq!(restored.tables.bits, one.tables.bits);
    assert!(banned4(&restored.tables, "80.0.0.0").is_some() && banned4(&restored.tables, "91.183.11.183").is_some());
}

/// Everything the kernel's tables hold.
fn kernel_state(t: &FakeTables) -> String {
    let mut net4: Vec<_> = t.net4.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    let mut net6: Vec<_> = t.net6.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect();
    net4.sort();
    net6.sort();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {net4:?} {net6:?} {:?} {:?} {:?} {:?} {:?}",
        t.config, t.services, t.ports, t.cells, t.bits, t.net6_lens, t.filter, t.sip, t.signatures, t.inspected
    )
}

#[test]
fn a_reload_the_tables_cannot_take_changes_nothing_and_bans_go_on_working() {
    let mut e = Enforcer::new(FakeTables::default(), example(), KernelClock::synthetic(1000)).unwrap();
    e.ban(net("198.51.100.7/32"), None, "", "manual").unwrap();
    let (before, rules_before) = (kernel_state(&e.tables), e.rules().clone());

    // 33 IPv6 lengths: refused before any write
    let mut r = example();
    r.block.extend((33..=65u32).map(|len| net(&format!("2001:{len:x}00::/{len}"))));
    let writes = e.tables.writes;
    let err = e.apply_rules(r).unwrap_err();
    assert!(err.to_string().contains("different lengths"), "{err}");
    assert_eq!(e.tables.writes, writes, "nothing written");
    assert_eq!(kernel_state(&e.tables), before);
    assert_eq!(e.rules(), &rules_before);

    // 32 lengths leave none for the /64 bans: refused too
    let mut fresh = Enforcer::new(FakeTables::default(), rules(""), KernelClock::synthetic(1000)).unwrap();
    let empty = kernel_state(&fresh.tables);
    let mut r = rules("");
    r.block.extend((33..=63u32).chain([96]).map(|len| net(&format!("2001:{len:x}00::/{len}"))));
    let err = fresh.apply_rules(r).unwrap_err();
    assert!(err.to_string().contains("would need one more"), "{err}");
    assert_eq!(kernel_state(&fresh.tables), empty);
    fresh.ban(net("2001:db8::1/128"), None, "", "manual").unwrap();

    // a write the kernel refuses midway (its hash map is smaller than the model thinks) is undone
    let mut r = example();
    r.block.extend((0..64u32).map(|i| net(&format!("100.64.{i}.0/24"))));
    r.services.retain(|s| s.name != "ssh");
    e.tables.capacity = e.nets().entries().0 as u32 + 10;
    let err = e.apply_rules(r).unwrap_err();
    assert!(err.to_string().contains("is full"), "{err}");
    assert_eq!(kernel_state(&e.tables), before, "every write of the refused change undone");
    assert_eq!(e.rules(), &rules_before);
    e.tables.capacity = u32::MAX;

    // bans, unbans and expiry go on working on the rules in force
    e.ban(net("198.51.100.8/32"), Some(1), "", "manual").unwrap();
    e.ban(net("2001:db8:77::1/128"), None, "", "manual").unwrap();
    assert!(banned6(&e.tables, "2001:db8:77::2").is_some());
    assert!(e.unban(net("198.51.100.7/32")).unwrap().is_some());
    assert_eq!(e.sweep(2).unwrap().len(), 1);
    assert_eq!(banned4(&e.tables, "198.51.100.8"), None);
    // and the rules, once fixed, apply
    let mut r = example();
    r.block.push(net("2001:4100::/65"));
    e.apply_rules(r).unwrap();
    assert_ne!(e.tables.classify_v6(v6("2001:4100::1")).flags & class::BLOCK, 0);
}
