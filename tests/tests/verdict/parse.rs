//! Verdicts through BPF_PROG_TEST_RUN: parsing of L2, L3 and L4, and the reason each outcome is
//! counted under.

use firewall_common::{programs::TRAFFIC, reason::Reason::*};
use sipwall_tests::{
    frames::*,
    harness::{rules, Harness, EXAMPLE},
    require_root,
};

const UDP: u8 = 17;
const TCP: u8 = 6;

/// Every check added to a program costs verifier work; past its limit (1,000,000 instructions)
/// the program no longer loads. Half the limit leaves room for the kernels whose pruning is less
/// effective. The kernel-matrix tier (`cargo xtask test --kernels`) runs this on each kernel and
/// collects the counts from `SIPWALL_REPORT_DIR`. The programs are loaded as the daemon loads
/// them, without the test clock.
#[test]
fn the_verifier_accepts_every_program_with_room_to_spare() {
    require_root!();
    let mut h = Harness::on_kernel_time(rules(EXAMPLE), sipwall::BPF_OBJECT);
    let release = sipwall::datapath::features::release();
    let work: Vec<(&str, u32)> = TRAFFIC.iter().map(|p| (*p, h.verifier_work_of(p))).collect();
    eprintln!("verifier work on Linux {release}: {work:?}");
    if let Some(dir) = std::env::var_os("SIPWALL_REPORT_DIR") {
        let counts: serde_json::Map<String, serde_json::Value> =
            work.iter().map(|(p, n)| (p.to_string(), (*n).into())).collect();
        let report = serde_json::json!({ "kernel": release, "verifier_instructions": counts });
        std::fs::write(std::path::Path::new(&dir).join("verifier.json"), report.to_string()).expect("write the report");
    }
    for (program, n) in work {
        assert!(n < 500_000, "the verifier processed {n} instructions of {program}, half of its limit is 500,000");
    }
}

#[test]
fn non_ip_passes_and_is_counted() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    assert_eq!(h.why(&arp()), (NonIp, ""));
}

#[test]
fn vlan_tags_are_parsed_up_to_two() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    for vlans in [&[][..], &[10][..], &[100, 10][..]] {
        assert_eq!(h.why(&udp_vlan("203.0.113.5", 5060, vlans)), (Blocked, "sip"), "{vlans:?}");
        // the SIP inspector reads the same source through every tag stack: the first request
        // is inspected in full, the next ones find their source remembered
        let passed = if vlans.is_empty() { Accepted } else { SipRemembered };
        assert_eq!(h.why(&udp_vlan("198.51.100.5", 5060, vlans)), (passed, "sip"), "{vlans:?}");
        assert_eq!(h.why(&udp_vlan("2001:db8:bad::5", 5060, vlans)), (Blocked, "sip"), "{vlans:?}");
    }
    let ip = &udp("203.0.113.5", 5060)[14..];
    assert_eq!(h.why(&wrap(ip, &[1, 2, 3])), (VlanDepth, ""));
    let mut cut = eth_header(0x8100);
    cut.extend_from_slice(&[0, 10]);
    assert_eq!(h.why(&cut), (TruncatedL2, ""));
}

#[test]
fn ipv4_headers_options_and_errors() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    for ihl in [5u8, 6, 15] {
        let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, None));
        p.ihl = ihl;
        assert_eq!(h.why(&p.frame()), (Accepted, "sip"), "ihl {ihl}");
        p.src = "203.0.113.1".parse().unwrap();
        assert_eq!(h.why(&p.frame()), (Blocked, "sip"), "ihl {ihl}");
    }
    let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, None));
    p.ihl = 4;
    assert_eq!(h.why(&p.frame()), (InvalidL3, ""));
    let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, None));
    p.version = 6;
    assert_eq!(h.why(&p.frame()), (InvalidL3, ""));
    let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, None));
    p.total = Some(19);
    assert_eq!(h.why(&p.frame()), (InvalidL3, ""));
    let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, None));
    p.total = Some(200);
    assert_eq!(h.why(&p.frame()), (TruncatedL3, ""), "total length beyond the frame");
    let f = V4::new("198.51.100.9", UDP, udp_l4(5060, None)).frame();
    assert_eq!(h.why(&f[..14 + 19]), (TruncatedL3, ""));
    // Ethernet padding after a short packet is fine
    let mut padded = f.clone();
    padded.extend_from_slice(&[0; 18]);
    assert_eq!(h.why(&padded), (Accepted, "sip"));
}

#[test]
fn l4_headers_and_errors() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    let f = V4::new("198.51.100.9", UDP, udp_l4(5060, None)).frame();
    assert_eq!(h.why(&f[..14 + 20 + 7]), (TruncatedL3, ""), "cut inside UDP: total length lies");
    let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, None)[..7].to_vec());
    assert_eq!(h.why(&p.frame()), (TruncatedL4, ""));
    p.l4 = udp_l4(5060, Some(7));
    assert_eq!(h.why(&p.frame()), (InvalidL4, ""));
    let p = V4::new("198.51.100.9", TCP, tcp_l4(5060, 5, 0x02)[..19].to_vec());
    assert_eq!(h.why(&p.frame()), (TruncatedL4, ""));
    let p = V4::new("198.51.100.9", TCP, tcp_l4(5060, 4, 0x02));
    assert_eq!(h.why(&p.frame()), (InvalidL4, ""));
    let p = V4::new("198.51.100.9", TCP, tcp_l4(5060, 8, 0x02));
    assert_eq!(h.why(&p.frame()), (TruncatedL4, ""), "options past the end");
    let mut l4 = tcp_l4(5060, 8, 0x02);
    l4.extend_from_slice(&[1; 12]);
    let p = V4::new("198.51.100.9", TCP, l4);
    assert_eq!(h.why(&p.frame()), (Accepted, "sip"));
    assert_eq!(h.why(&icmp("198.51.100.9")), (OtherProtocol, ""));
    assert_eq!(h.why(&icmp("2001:db8:1::9")), (OtherProtocol, ""));
}

#[test]
fn ipv4_fragments_get_address_checks_only() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    h.enforcer.ban("198.51.100.66/32".parse().unwrap(), None, "t", "test").unwrap();
    let later = |src: &str| {
        let mut p = V4::new(src, UDP, vec![0xab; 24]);
        p.frag = 185; // offset 1480 bytes
        p.frame()
    };
    assert_eq!(h.why(&later("198.51.100.9")), (Fragment, ""));
    assert_eq!(h.why(&later("198.51.100.66")), (Banned, ""));
    assert_eq!(h.why(&later("203.0.113.7")), (Blocked, ""));
    assert_eq!(h.why(&later("51.5.6.7")), (Allowlisted, ""));
    // first fragment (MF set, offset 0) carries the ports
    let mut p = V4::new("198.51.100.9", UDP, udp_l4(5060, Some(1000)));
    p.frag = 0x2000;
    assert_eq!(h.why(&p.frame()), (Accepted, "sip"));
    // a tiny first fragment cannot hide the ports
    let mut p = V4::new("198.51.100.9", TCP, tcp_l4(22, 5, 0x02)[..8].to_vec());
    p.frag = 0x2000;
    assert_eq!(h.why(&p.frame()), (TruncatedL4, ""));
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    let l4 = udp_l4(5060, None);
    let chain = [(0u8, ext8()), (60, ext8()), (43, ext8()), (44, frag6(0, true)), (60, ext8())];
    assert_eq!(h.why(&v6("2001:db8:1::9", &chain, UDP, &l4, None)), (Accepted, "sip"));
    assert_eq!(h.why(&v6("2001:db8:bad::9", &chain, UDP, &l4, None)), (Blocked, "sip"));
    let tcp = tcp_l4(22, 5, 0x02);
    assert_eq!(h.why(&v6("2001:db8:1::9", &[(0, ext8())], TCP, &tcp, None)), (NotAllowed, "ssh"));
    // non-first fragment: address checks only
    let frag = [(44u8, frag6(10, false))];
    assert_eq!(h.why(&v6("2001:db8:1::9", &frag, UDP, &[0; 16], None)), (Fragment, ""));
    assert_eq!(h.why(&v6("2001:db8:bad::1", &frag, UDP, &[0; 16], None)), (Blocked, ""));
    // a chain longer than the parser follows, or cut off
    let long: Vec<(u8, Vec<u8>)> = (0..7).map(|_| (60u8, ext8())).collect();
    assert_eq!(h.why(&v6("2001:db8:1::9", &long, UDP, &l4, None)), (Ipv6Extensions, ""));
    let f = v6("2001:db8:1::9", &[(0, ext8())], UDP, &[], None);
    assert_eq!(h.why(&f[..f.len() - 7]), (TruncatedL3, ""), "payload length beyond the frame");
    let f = v6("2001:db8:1::9", &[(0, ext8())], UDP, &[], Some(1));
    assert_eq!(h.why(&f[..14 + 40 + 1]), (Ipv6Extensions, ""));
}

#[test]
fn ipv6_header_errors() {
    require_root!();
    let mut h = Harness::new(EXAMPLE);
    let f = v6("2001:db8:1::9", &[], UDP, &udp_l4(5060, None), None);
    assert_eq!(h.why(&f[..14 + 39]), (TruncatedL3, ""));
    let mut bad = f.clone();
    bad[14] = 0x40;
    assert_eq!(h.why(&bad), (InvalidL3, ""));
    assert_eq!(h.why(&v6("2001:db8:1::9", &[], UDP, &udp_l4(5060, None)[..6], None)), (TruncatedL4, ""));
}
