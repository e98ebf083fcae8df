//! Verdicts through BPF_PROG_TEST_RUN: allow list, bans, blocked networks, services and
//! `allow_from`, for IPv4 and IPv6, in the order docs/architecture.md gives.

use std::time::Duration;

use firewall_common::reason::Reason::*;
use sipwall::datapath::clock;
use sipwall_tests::{
    frames::*,
    harness::{Harness, EXAMPLE},
    require_root,
    rng::Rng,
};

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

#[test]
fn allow_list_beats_everything_for_both_families() {
    require_root!();
    let mut h = Harness::new(&format!("{EXAMPLE}\n[rate_limit]\ncapacity = 4096\n"));
    for src in ["51.5.6.200", "188.10.11.12", "127.0.0.1", "::1"] {
        assert_eq!(h.why(&syn(src, 22)), (Allowlisted, "ssh"), "{src} to ssh");
        for _ in 0..300 {
            assert_eq!(h.why(&udp(src, 5060)), (Allowlisted, "sip"), "{src} is never limited");
        }
    }
    // an allow-listed source inside a blocked or banned network still passes
    let mut h = Harness::new("[allow]\nsources = [\"203.0.113.7/32\", \"2001:db8:bad::7/128\"]\n[block]\nsources = [\"203.0.113.0/24\", \"2001:db8:bad::/48\"]\n");
    h.enforcer.ban(net("203.0.0.0/16"), None, "t", "test").unwrap();
    assert_eq!(h.why(&udp("203.0.113.7", 9)), (Allowlisted, ""));
    assert_eq!(h.why(&udp("203.0.113.8", 9)), (Banned, ""));
    assert_eq!(h.why(&udp("2001:db8:bad::7", 9)), (Allowlisted, ""));
    assert_eq!(h.why(&udp("2001:db8:bad::8", 9)), (Blocked, ""));
}

#[test]
fn bans_drop_every_port_and_protocol() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    h.enforcer.ban(net("198.51.100.66/32"), None, "t", "test").unwrap();
    h.enforcer.ban(net("2001:db8:66:1::1/128"), None, "t", "test").unwrap();
    for src in ["198.51.100.66", "2001:db8:66:1::1", "2001:db8:66:1:ffff::2"] {
        assert_eq!(h.why(&udp(src, 5060)), (Banned, "sip"), "{src}");
        assert_eq!(h.why(&udp(src, 15000)), (Banned, "rtp"), "{src}");
        assert_eq!(h.why(&udp(src, 9999)), (Banned, ""), "{src} on an unprotected port");
        assert_eq!(h.why(&syn(src, 443)), (Banned, ""), "{src}");
        assert_eq!(h.why(&icmp(src)), (Banned, ""), "{src}");
    }
    // neighbours are not banned: the next IPv4 address, the next IPv6 /64
    assert_eq!(h.why(&udp("198.51.100.67", 5060)), (Accepted, "sip"));
    assert_eq!(h.why(&udp("2001:db8:66:2::1", 5060)), (Accepted, "sip"));
    // unban lets traffic through again
    h.enforcer.unban(net("198.51.100.66/32")).unwrap().unwrap();
    assert_eq!(h.why(&udp("198.51.100.66", 5060)), (Accepted, "sip"));
}

#[test]
fn ipv6_ban_prefix_is_configurable() {
    require_root!();
    let mut h = Harness::new("[bans]\nipv6_prefix = 48\n");
    h.enforcer.ban(net("2001:db8:77:1::1/128"), None, "t", "test").unwrap();
    assert_eq!(h.why(&udp("2001:db8:77:ffff::1", 1)), (Banned, ""));
    assert_eq!(h.why(&udp("2001:db8:78::1", 1)), (UnprotectedPort, ""));
}

#[test]
fn cidr_bans() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    h.enforcer.ban(net("192.0.2.0/24"), None, "t", "test").unwrap();
    h.enforcer.ban(net("2001:db8:99::/48"), None, "t", "test").unwrap();
    assert_eq!(h.why(&udp("192.0.2.200", 5060)), (Banned, "sip"));
    assert_eq!(h.why(&udp("192.0.3.1", 5060)), (Accepted, "sip"));
    assert_eq!(h.why(&udp("2001:db8:99:5::1", 5060)), (Banned, "sip"));
}

#[test]
fn bans_expire_in_the_kernel_without_the_sweeper() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    let soon = clock::unix_ms(std::time::SystemTime::now()) + 300;
    h.enforcer.ban(net("198.51.100.70/32"), Some(soon), "t", "test").unwrap();
    h.enforcer.ban(net("2001:db8:70::1/128"), Some(soon), "t", "test").unwrap();
    h.enforcer.ban(net("192.0.2.0/24"), Some(soon), "t", "test").unwrap();
    assert_eq!(h.why(&udp("198.51.100.70", 5060)), (Banned, "sip"));
    assert_eq!(h.why(&udp("2001:db8:70::1", 5060)), (Banned, "sip"));
    assert_eq!(h.why(&udp("192.0.2.1", 5060)), (Banned, "sip"));
    h.advance(Duration::from_secs(2));
    assert_eq!(h.enforcer.ban_count(), 3, "still in the tables: only the kernel's clock decides");
    assert_eq!(h.why(&udp("198.51.100.70", 5060)), (Accepted, "sip"));
    assert_eq!(h.why(&udp("2001:db8:70::1", 5060)), (Accepted, "sip"));
    assert_eq!(h.why(&udp("192.0.2.1", 5060)), (Accepted, "sip"));
    let swept = h.enforcer.sweep(clock::unix_ms(std::time::SystemTime::now()) + 2_000).unwrap();
    assert_eq!(swept.len(), 3);
}

#[test]
fn blocked_networks_from_rules_and_files() {
    require_root!();
    let dir = std::env::temp_dir().join(format!("sipwall-block-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("drop.netset"), "# list\n100.64.0.0/10\n2001:db8:f00::/40 ; x\n198.18.0.7\n").unwrap();
    let text = "[block]\nsources = [\"203.0.113.0/24\", \"2001:db8:bad::/48\"]\nfiles = [\"drop.netset\"]\n[services.sip]\nports = [\"5060/udp\"]\n";
    let r = sipwall::rules::Rules::parse("t", text, &dir).unwrap().0;
    let mut h = Harness::with_rules(r);
    for src in [
        "203.0.113.0",
        "203.0.113.255",
        "100.64.0.1",
        "100.127.255.255",
        "198.18.0.7",
        "2001:db8:bad::",
        "2001:db8:f00:ff::1",
    ] {
        assert_eq!(h.why(&udp(src, 5060)), (Blocked, "sip"), "{src}");
        assert_eq!(h.why(&icmp(src)), (Blocked, ""), "{src}");
    }
    for src in ["203.0.114.0", "100.128.0.0", "198.18.0.8", "2001:db8:bae::1", "2001:db8:1000::1"] {
        assert_eq!(h.why(&udp(src, 5060)), (Accepted, "sip"), "{src}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn service_ports_resolve_at_range_edges() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    for (port, want) in
        [(9999, ""), (10000, "rtp"), (15000, "rtp"), (20000, "rtp"), (20001, ""), (5060, "sip"), (5061, "")]
    {
        let expect = if want.is_empty() { UnprotectedPort } else { Accepted };
        assert_eq!(h.why(&udp("198.51.100.1", port)), (expect, want), "udp {port}");
    }
    for (port, want) in [(5060, "sip"), (5061, "sip"), (5062, ""), (10000, "")] {
        let expect = if want.is_empty() { UnprotectedPort } else { Accepted };
        assert_eq!(h.why(&syn("198.51.100.1", port)), (expect, want), "tcp {port}");
    }
    assert_eq!(h.why(&udp("2001:db8:1::1", 20000)), (Accepted, "rtp"));
}

#[test]
fn allow_from_restricts_a_service_to_its_sources() {
    require_root!();
    let mut h = Harness::new("[allow]\nsources = []\n[services.ssh]\nports = [\"22/tcp\"]\nallow_from = [\"188.10.11.12/32\", \"2001:db8:0ff::/48\"]\n[services.sip]\nports = [\"5060/udp\"]\nallow_from = [\"51.5.6.0/24\"]\n");
    assert_eq!(h.why(&syn("188.10.11.12", 22)), (Accepted, "ssh"));
    assert_eq!(h.why(&syn("2001:db8:ff:1::1", 22)), (Accepted, "ssh"));
    assert_eq!(h.why(&syn("188.10.11.13", 22)), (NotAllowed, "ssh"));
    assert_eq!(h.why(&syn("2001:db8:100::1", 22)), (NotAllowed, "ssh"));
    assert_eq!(h.why(&tcp("188.10.11.13", 22, 0x10)), (NotAllowed, "ssh"), "every segment, not only SYN");
    // each service has its own list
    assert_eq!(h.why(&udp("51.5.6.9", 5060)), (Accepted, "sip"));
    assert_eq!(h.why(&udp("188.10.11.12", 5060)), (NotAllowed, "sip"));
    assert_eq!(h.why(&syn("51.5.6.9", 22)), (NotAllowed, "ssh"));
    // other ports stay open: sipwall is not a default-deny firewall
    assert_eq!(h.why(&syn("188.10.11.13", 443)), (UnprotectedPort, ""));
}

/// The kernel's longest match against the rules themselves, over random nested allow and block
/// prefixes of many lengths (IPv6 from /16 to /128, so that lengths under /32, several lengths
/// in one /32 and probe filter misses all occur), at the edges of every prefix.
#[test]
fn longest_match_in_the_kernel_agrees_with_the_rules() {
    require_root!();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut next = move |n: u64| rng.below(n);
    for round in 0..8 {
        let (mut allow, mut block) = (Vec::new(), Vec::new());
        for _ in 0..40 {
            let net: ipnet::IpNet = if round % 2 == 0 {
                let len = [16u8, 24, 29, 32, 33, 40, 47, 48, 56, 63, 64, 80, 96, 112, 127, 128][next(16) as usize];
                let addr = (0x2001_0db8u128 << 96)
                    | (u128::from(next(4)) << 80)
                    | (u128::from(next(4)) << 60)
                    | u128::from(next(8));
                ipnet::IpNet::new(std::net::Ipv6Addr::from(addr).into(), len).unwrap().trunc()
            } else {
                let len = [12u8, 16, 20, 24, 25, 28, 31, 32][next(8) as usize];
                let addr = (10u32 << 24) | ((next(3) as u32) << 16) | ((next(3) as u32) << 8) | next(8) as u32;
                ipnet::IpNet::new(std::net::Ipv4Addr::from(addr).into(), len).unwrap().trunc()
            };
            if next(4) == 0 {
                allow.push(net)
            } else {
                block.push(net)
            }
        }
        let list = |v: &[ipnet::IpNet]| v.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        let mut h =
            Harness::new(&format!("[allow]\nsources = [{}]\n[block]\nsources = [{}]\n", list(&allow), list(&block)));
        let mut probes = Vec::new();
        for n in allow.iter().chain(&block) {
            for a in [n.network(), n.broadcast()] {
                probes.push(a);
                match a {
                    std::net::IpAddr::V4(x) => {
                        probes.push(std::net::Ipv4Addr::from(u32::from(x).wrapping_add(1)).into());
                        probes.push(std::net::Ipv4Addr::from(u32::from(x).wrapping_sub(1)).into());
                    }
                    std::net::IpAddr::V6(x) => {
                        probes.push(std::net::Ipv6Addr::from(u128::from(x).wrapping_add(1)).into());
                        probes.push(std::net::Ipv6Addr::from(u128::from(x).wrapping_sub(1)).into());
                    }
                }
            }
        }
        for a in probes {
            let want = if allow.iter().any(|n| n.contains(&a)) {
                Allowlisted
            } else if block.iter().any(|n| n.contains(&a)) {
                Blocked
            } else {
                UnprotectedPort
            };
            assert_eq!(h.why(&udp(&a.to_string(), 9)).0, want, "round {round}: {a}\nallow {allow:?}\nblock {block:?}");
        }
    }
}
