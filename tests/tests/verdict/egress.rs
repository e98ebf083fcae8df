//! The egress classifier through BPF_PROG_TEST_RUN: the SIP failures the host answers from a
//! port of the `sip` service are reported with their destination; nothing else is, and nothing
//! is ever dropped.

use firewall_common::rate::{event, FAMILY_V4, FAMILY_V6};
use sipwall::datapath::features::Feature;
use sipwall_tests::{
    frames::answer,
    harness::{Harness, EXAMPLE},
    require_kernel, require_root,
};

/// TC_ACT_OK: the packet goes on.
const TC_ACT_OK: i32 = 0;

#[test]
fn forbidden_and_not_found_answers_are_reported_with_their_destination() {
    require_root!();
    require_kernel!(Feature::EgressClassifier);
    let mut h = Harness::new(EXAMPLE);
    let cases: [(&str, &[u8], Option<u32>); 8] = [
        ("198.51.100.7", b"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP x\r\n\r\n", Some(404)),
        ("198.51.100.8", b"SIP/2.0 403 Forbidden\r\n\r\n", Some(403)),
        ("2001:db8:77::9", b"SIP/2.0 404 Not Found\r\n\r\n", Some(404)),
        // a success to a destination not challenged, another failure, a request and too short
        // a payload: nothing
        ("198.51.100.9", b"SIP/2.0 200 OK\r\n\r\n", None),
        ("198.51.100.9", b"SIP/2.0 486 Busy Here\r\n\r\n", None),
        ("198.51.100.9", b"NOTIFY sip:x SIP/2.0\r\n\r\n", None),
        ("198.51.100.9", b"SIP/2.0 404", None),
        ("198.51.100.9", b"SIP/2.0 4040 x\r\n", None),
    ];
    for (dst, payload, want) in cases {
        assert_eq!(h.egress(&answer(dst, 5060, payload)), TC_ACT_OK, "{dst}");
        let got = h.drain_events();
        match want {
            None => assert!(got.is_empty(), "{dst} {:?}: {got:?}", String::from_utf8_lossy(payload)),
            Some(status) => {
                assert_eq!(got.len(), 1, "{dst}");
                let ev = got[0];
                assert_eq!((ev.kind, ev.status), (event::SIP_FAILURE, status));
                let addr: std::net::IpAddr = if ev.family == FAMILY_V4 {
                    std::net::Ipv4Addr::from(ev.addr.lo as u32).into()
                } else {
                    assert_eq!(ev.family, FAMILY_V6);
                    std::net::Ipv6Addr::from(ev.addr.to_be_bytes()).into()
                };
                assert_eq!(addr.to_string(), dst);
                assert_eq!(h.enforcer.services().name(ev.svc), Some("sip"));
            }
        }
    }
}

#[test]
fn answers_from_other_services_are_not_read() {
    require_root!();
    require_kernel!(Feature::EgressClassifier);
    let mut h = Harness::new(EXAMPLE);
    // 22/tcp is ssh, 5070 is no service; the RTP range is a service but not `sip`
    for port in [22, 5070, 10000] {
        assert_eq!(h.egress(&answer("198.51.100.7", port, b"SIP/2.0 404 Not Found\r\n\r\n")), TC_ACT_OK);
        assert!(h.drain_events().is_empty(), "port {port}");
    }
}

/// The answer events for `payload` sent to `dst`: (kind, status).
fn reported(h: &mut Harness, dst: &str, payload: &[u8]) -> Vec<(u32, u32)> {
    assert_eq!(h.egress(&answer(dst, 5060, payload)), TC_ACT_OK);
    h.drain_events().iter().map(|e| (e.kind, e.status)).collect()
}

#[test]
fn challenges_and_the_first_success_after_them_are_reported() {
    require_root!();
    require_kernel!(Feature::EgressClassifier);
    let mut h = Harness::new(EXAMPLE);
    let (unauthorized, proxy) =
        (b"SIP/2.0 401 Unauthorized\r\n\r\n", b"SIP/2.0 407 Proxy Authentication Required\r\n\r\n");
    let ok = b"SIP/2.0 200 OK\r\n\r\n";
    // a phone: challenged, then registered; its later successes are of no interest
    assert_eq!(reported(&mut h, "198.51.100.7", unauthorized), [(event::SIP_CHALLENGE, 401)]);
    assert_eq!(reported(&mut h, "198.51.100.7", ok), [(event::SIP_SUCCESS, 200)]);
    assert_eq!(reported(&mut h, "198.51.100.7", ok), []);
    assert_eq!(reported(&mut h, "198.51.100.7", b"SIP/2.0 202 Accepted\r\n\r\n"), []);
    // a caller asked for proxy credentials, IPv6; any 2xx is a success
    assert_eq!(reported(&mut h, "2001:db8:77::9", proxy), [(event::SIP_CHALLENGE, 407)]);
    assert_eq!(reported(&mut h, "2001:db8:77::9", b"SIP/2.0 202 Accepted\r\n\r\n"), [(event::SIP_SUCCESS, 202)]);
    // a guesser: challenges only, every one reported; a success elsewhere changes nothing
    for _ in 0..3 {
        assert_eq!(reported(&mut h, "198.51.100.66", unauthorized), [(event::SIP_CHALLENGE, 401)]);
    }
    assert_eq!(reported(&mut h, "198.51.100.67", ok), []);
    // 100 Trying and 180 Ringing are no success
    assert_eq!(reported(&mut h, "198.51.100.66", b"SIP/2.0 100 Trying\r\n\r\n"), []);
    assert_eq!(reported(&mut h, "198.51.100.66", b"SIP/2.0 180 Ringing\r\n\r\n"), []);
}
