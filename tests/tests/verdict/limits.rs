//! Verdicts through BPF_PROG_TEST_RUN: per-source token buckets, their refill and events, and
//! behaviour with full tables.

use std::time::Duration;

use firewall_common::{
    rate::{event, FAMILY_V4, FAMILY_V6},
    reason::Reason::*,
};
use sipwall::{datapath::enforcer::EnforceError, datapath::tables::TableError};
use sipwall_tests::{
    frames::*,
    harness::{rules, Harness},
    require_root,
};

const LIMITED: &str = "[services.sip]\nports = [\"5060/udp\", \"5060/tcp\"]\nrate = 10\nburst = 5\n[services.ssh]\nports = [\"22/tcp\"]\nrate = 1\nburst = 2\n[services.web]\nports = [\"8080/tcp\"]\nrate = 1\nburst = 2\nlimit_tcp = \"all\"\n[rate_limit]\nreport_interval = \"400ms\"\n";

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

/// Sends `n` frames, returns how many were accepted (the SIP ones after the first read only
/// as far as their method: their source was inspected clean).
fn accepted(h: &mut Harness, frame: &[u8], n: usize) -> usize {
    (0..n).filter(|_| matches!(h.why(frame).0, Accepted | SipRemembered)).count()
}

#[test]
fn burst_then_limit_per_source() {
    require_root!();
    let mut h = Harness::new(LIMITED);
    assert_eq!(accepted(&mut h, &udp("198.51.100.1", 5060), 8), 5);
    assert_eq!(h.why(&udp("198.51.100.1", 5060)), (RateLimited, "sip"));
    // another source has its own bucket
    assert_eq!(accepted(&mut h, &udp("198.51.100.2", 5060), 5), 5);
    // IPv6 sources share one bucket per /64
    assert_eq!(accepted(&mut h, &udp("2001:db8:5:1::1", 5060), 3), 3);
    assert_eq!(accepted(&mut h, &udp("2001:db8:5:1:ffff::9", 5060), 3), 2);
    assert_eq!(accepted(&mut h, &udp("2001:db8:5:2::1", 5060), 1), 1);
}

#[test]
fn buckets_refill_over_time() {
    require_root!();
    let mut h = Harness::new(LIMITED);
    let f = udp("198.51.100.3", 5060);
    assert_eq!(accepted(&mut h, &f, 10), 5);
    h.advance(Duration::from_millis(350));
    // 10/s for 0.35 s (rounded up to whole jiffies): three whole tokens
    assert_eq!(accepted(&mut h, &f, 10), 3, "refilled");
    h.advance(Duration::from_millis(1200));
    assert_eq!(accepted(&mut h, &f, 10), 5, "never more than the burst");
}

#[test]
fn tcp_counts_connection_attempts_unless_told_otherwise() {
    require_root!();
    let mut h = Harness::new(LIMITED);
    assert_eq!(accepted(&mut h, &syn("198.51.100.4", 22), 5), 2);
    for _ in 0..50 {
        assert_eq!(h.why(&tcp("198.51.100.4", 22, 0x10)), (Accepted, "ssh"), "open sessions are not throttled");
    }
    assert_eq!(h.why(&tcp("198.51.100.4", 22, 0x12)), (Accepted, "ssh"), "SYN-ACK is not an attempt");
    assert_eq!(accepted(&mut h, &tcp("198.51.100.4", 8080, 0x10), 5), 2, "limit_tcp = all");
}

#[test]
fn over_limit_sources_are_reported_sampled() {
    require_root!();
    let mut h = Harness::new(LIMITED);
    let _ = h.drain_events();
    let mut drops = 0;
    for _ in 0..30 {
        drops += usize::from(h.why(&udp("198.51.100.5", 5060)).0 == RateLimited);
        h.why(&udp("2001:db8:6:1::7", 5060));
    }
    assert_eq!(drops, 25, "five pass, as the burst allows");
    let ev = h.drain_events();
    assert_eq!(ev.len(), 2, "one event per source per interval: {ev:?}");
    let sip = h.enforcer.services().id("sip").unwrap();
    let v4 = ev.iter().find(|e| e.family == FAMILY_V4).unwrap();
    assert_eq!((v4.kind, v4.svc, v4.dropped), (event::RATE_LIMITED, sip, 1));
    assert_eq!(v4.addr.lo, u32::from(std::net::Ipv4Addr::new(198, 51, 100, 5)) as u64);
    let v6 = ev.iter().find(|e| e.family == FAMILY_V6).unwrap();
    assert_eq!((v6.addr.hi, v6.addr.lo), (0x2001_0db8_0006_0001, 0), "reported per /64");
    h.advance(Duration::from_millis(450));
    // the bucket refilled four tokens; the first drop after the interval reports again
    for _ in 0..10 {
        h.why(&udp("198.51.100.5", 5060));
    }
    let ev = h.drain_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    // every drop is accounted for: those after the first report, plus the one reporting now
    assert_eq!(ev[0].dropped as usize, drops - 1 + 1, "{ev:?}");
}

#[test]
fn a_full_ban_table_refuses_more_and_keeps_dropping() {
    require_root!();
    let mut h = Harness::new("[bans]\ncapacity = 1024\n[block]\ncapacity = 1024\n");
    for i in 0..2048u32 {
        let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        h.enforcer.ban(ipnet::IpNet::from(std::net::IpAddr::V4(a)), None, "fill", "test").unwrap();
    }
    match h.enforcer.ban(net("10.9.9.9/32"), None, "one more", "test") {
        Err(EnforceError::Table(TableError::Full { capacity: 2048, .. })) => {}
        other => panic!("expected a full table, got {other:?}"),
    }
    for i in [0u32, 1023, 2047] {
        let a = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        assert_eq!(h.why(&udp(&a, 1)), (Banned, ""), "{a}");
    }
    assert_eq!(h.why(&udp("10.9.9.9", 1)), (UnprotectedPort, ""));
    // IPv6 has its own table
    h.enforcer.ban(net("2001:db8::1/128"), None, "v6", "test").unwrap();
    assert_eq!(h.why(&udp("2001:db8::77", 1)), (Banned, ""));
}

#[test]
fn spoofed_floods_never_evict_bans_or_allow_entries() {
    require_root!();
    let mut h = Harness::new("[allow]\nsources = [\"51.5.6.0/24\"]\n[rate_limit]\ncapacity = 1024\n[services.sip]\nports = [\"5060/udp\"]\nrate = 1\nburst = 1\n");
    h.enforcer.ban(net("198.51.100.9/32"), None, "t", "test").unwrap();
    // 5,000 sources, each new: the bucket table (1,024) churns
    for i in 0..5000u32 {
        let a = std::net::Ipv4Addr::from(0x6440_0000 + i).to_string();
        assert_eq!(h.action(&udp(&a, 5060)), sipwall_tests::harness::XDP_PASS);
    }
    assert_eq!(h.why(&udp("198.51.100.9", 5060)), (Banned, "sip"));
    assert_eq!(h.why(&udp("51.5.6.1", 5060)), (Allowlisted, "sip"));
    // and the limit still works for a source seen after the flood
    assert_eq!(h.why(&udp("198.51.100.10", 5060)), (Accepted, "sip"));
    assert_eq!(h.why(&udp("198.51.100.10", 5060)), (RateLimited, "sip"));
}

#[test]
fn rules_that_overflow_the_network_tables_are_refused_and_the_old_ones_stay() {
    require_root!();
    let mut h = Harness::new("[bans]\ncapacity = 1024\n[block]\ncapacity = 1024\nsources = [\"203.0.113.0/24\"]\n");
    let mut text = String::from("[bans]\ncapacity = 1024\n[block]\ncapacity = 1024\nsources = [");
    for i in 0..2500u32 {
        text.push_str(&format!("\"{}\",", std::net::Ipv4Addr::from(0x6440_0000 + i * 2)));
    }
    text.push_str("]\n");
    match h.enforcer.apply_rules(rules(&text)) {
        Err(EnforceError::Table(TableError::Full { .. })) => {}
        other => panic!("expected a full table, got {other:?}"),
    }
    assert_eq!(h.why(&udp("203.0.113.1", 1)), (Blocked, ""));
    assert_eq!(h.why(&udp("100.64.0.0", 1)), (UnprotectedPort, ""));
}

#[test]
fn entries_that_overflow_their_buckets_are_still_found() {
    require_root!();
    use firewall_common::nets::{net4_key, net4_place, slot_buckets};
    let mut h = Harness::new("[bans]\ncapacity = 1024\n[block]\ncapacity = 1024\n");
    let buckets = slot_buckets(2048);
    // addresses whose two buckets are the same pair: the ninth and later cannot get a slot
    let mut pair = None;
    let mut crowd = Vec::new();
    for i in 0..50_000_000u32 {
        let a = 0x0a00_0000 + i;
        let place = net4_place(net4_key(32, a), buckets);
        let p = (place.b1.min(place.b2), place.b1.max(place.b2));
        match pair {
            None => pair = Some(p),
            Some(q) if q == p => crowd.push(a),
            _ => {}
        }
        if crowd.len() == 12 {
            break;
        }
    }
    assert_eq!(crowd.len(), 12, "found colliding addresses");
    for a in &crowd {
        let net = ipnet::IpNet::from(std::net::IpAddr::V4((*a).into()));
        h.enforcer.ban(net, None, "crowd", "test").unwrap();
    }
    assert_eq!(h.enforcer.tables.overflowed().0, 4, "8 slots in two buckets, 4 in the overflow hash");
    for a in &crowd {
        let s = std::net::Ipv4Addr::from(*a).to_string();
        assert_eq!(h.why(&udp(&s, 1)), (Banned, ""), "{s}");
    }
    for a in &crowd[..6] {
        h.enforcer.unban(ipnet::IpNet::from(std::net::IpAddr::V4((*a).into()))).unwrap();
    }
    for (i, a) in crowd.iter().enumerate() {
        let s = std::net::Ipv4Addr::from(*a).to_string();
        let want = if i < 6 { UnprotectedPort } else { Banned };
        assert_eq!(h.why(&udp(&s, 1)).0, want, "{s}");
    }
}
