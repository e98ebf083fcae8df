//! What the kernel shows the daemon for proofs, through BPF_PROG_TEST_RUN: the SIP answers the
//! egress classifier reads come with their text; the requests of a source the host challenged
//! or answered a failure come whole, from that address and port only and only for the proof
//! wait, whether or not the source was remembered as inspected clean; known-good sources pass
//! over their rate limits.

use std::{net::IpAddr, time::Duration};

use firewall_common::{
    rate::event,
    reason::Reason::{self, Accepted, RateLimited, SipMethodLimited, SipRemembered},
};
use sipwall::{datapath::features::Feature, detection::proof::WAIT_MS, rules::Limit};
use sipwall_tests::{
    frames::{answer, from_port, l4_frame},
    harness::{rules, Harness, Record},
    require_kernel, require_root,
};

const RULES: &str = r#"
[services.sip]
ports = ["5060/udp"]
rate = 1
burst = 3
"#;

const PHONE: &str = "198.51.100.7";

/// A datagram from `src`, port 40000 (where `answer` sends), to the host's SIP port.
fn datagram(src: &str, payload: &[u8]) -> Vec<u8> {
    let dst: IpAddr = if src.contains(':') { "2001:db8::2".parse().unwrap() } else { "192.0.2.2".parse().unwrap() };
    l4_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], src.parse().unwrap(), dst, 5060, false, payload)
}

fn register(call: &str, nonce: Option<&str>) -> Vec<u8> {
    let auth = nonce.map(|n| format!("Authorization: Digest username=\"alice\",nonce=\"{n}\",response=\"0\"\r\n"));
    format!(
        "REGISTER sip:192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bK-1\r\n\
         From: <sip:alice@192.0.2.2>;tag=1\r\nTo: <sip:alice@192.0.2.2>\r\nCall-ID: {call}\r\n\
         CSeq: 1 REGISTER\r\n{}Content-Length: 0\r\n\r\n",
        auth.unwrap_or_default()
    )
    .into_bytes()
}

const CHALLENGE: &[u8] = b"SIP/2.0 401 Unauthorized\r\nCall-ID: reg-1\r\nTo: <sip:alice@192.0.2.2>;tag=as01\r\n\
CSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"asterisk\",nonce=\"4b1d\"\r\nContent-Length: 0\r\n\r\n";

fn requests(h: &mut Harness) -> Vec<(IpAddr, u16, Vec<u8>)> {
    h.drain_records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Request(peer, port, text) => Some((peer, port, text)),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_carry_their_text_and_destination_port() {
    require_root!();
    require_kernel!(Feature::EgressClassifier);
    let mut h = Harness::new(RULES);
    for dst in [PHONE, "2001:db8:77::9"] {
        assert_eq!(h.egress(&answer(dst, 5060, CHALLENGE)), 0);
        match h.drain_records().as_slice() {
            [Record::Answer(ev, peer, port, text)] => {
                assert_eq!((ev.kind, ev.status), (event::SIP_CHALLENGE, 401));
                assert_eq!((peer.to_string().as_str(), *port), (dst, 40000));
                assert_eq!(text.as_slice(), CHALLENGE, "the whole answer");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_answered_source_shows_its_requests_for_the_proof_wait() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = Harness::new(RULES);
    // before any answer: nothing is shown
    assert_eq!(h.why(&datagram(PHONE, &register("reg-1", None))).0, Accepted);
    assert!(requests(&mut h).is_empty());
    // remembered as inspected clean now: the challenge makes it inspected, and shown, again
    h.egress(&answer(PHONE, 5060, CHALLENGE));
    h.drain_records();
    let reply = register("reg-1", Some("4b1d"));
    assert_eq!(h.why(&datagram(PHONE, &reply)).0, Accepted);
    let shown = requests(&mut h);
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].0.to_string().as_str(), shown[0].1), (PHONE, 40000));
    assert_eq!(shown[0].2, reply);
    // another port of the same address is another source
    h.why(&from_port(datagram(PHONE, &reply), 40001));
    assert!(requests(&mut h).is_empty());
    // past the wait, nothing more
    h.advance(Duration::from_millis(WAIT_MS + 1_000));
    h.egress(&answer(PHONE, 5060, CHALLENGE));
    h.drain_records();
    h.advance(Duration::from_millis(WAIT_MS + 1_000));
    h.why(&datagram(PHONE, &register("reg-2", None)));
    assert!(requests(&mut h).is_empty());
}

#[test]
fn failures_make_their_destination_awaited_and_successes_do_not() {
    require_root!();
    require_kernel!(Feature::EgressClassifier);
    let mut h = Harness::new(RULES);
    let not_found = b"SIP/2.0 404 Not Found\r\nCall-ID: inv-1\r\nTo: <sip:900@h>;tag=as9\r\nCSeq: 1 INVITE\r\n\r\n";
    h.egress(&answer("198.51.100.8", 5060, not_found));
    h.egress(&answer("198.51.100.9", 5060, b"SIP/2.0 200 OK\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\n\r\n"));
    h.drain_records();
    let ack = b"ACK sip:900@h SIP/2.0\r\nCall-ID: inv-1\r\nTo: <sip:900@h>;tag=as9\r\nCSeq: 1 ACK\r\n\r\n";
    h.why(&datagram("198.51.100.8", ack));
    h.why(&datagram("198.51.100.9", ack));
    let shown = requests(&mut h);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].0.to_string(), "198.51.100.8");
}

#[test]
fn known_good_sources_pass_over_their_rate_limits() {
    require_root!();
    let mut r = rules(RULES);
    r.sip.method_limits = vec![(firewall_common::sip::Method::Register, Limit { rate: 1, burst: 2 })];
    let mut h = Harness::with_rules(r);
    let (phone, other) = ("198.51.100.7", "198.51.100.70");
    let until = h.deadline_in(Duration::from_secs(3600));
    h.good.put(phone.parse().unwrap(), until).unwrap();
    // a flood with both addresses: the unknown one is limited, the known-good one never
    let options = b"OPTIONS sip:h SIP/2.0\r\nCall-ID: f\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let passes = |r: Reason| matches!(r, Accepted | SipRemembered);
    for _ in 0..10 {
        let r = h.why(&datagram(phone, options)).0;
        assert!(passes(r), "{r:?}");
        h.why(&datagram(other, options));
    }
    assert_eq!(h.why(&datagram(other, options)).0, RateLimited);
    h.advance(Duration::from_secs(10));
    for _ in 0..5 {
        let r = h.why(&datagram(phone, &register("r", None))).0;
        assert!(passes(r), "{r:?}");
    }
    let got: Vec<_> = (0..3).map(|_| h.why(&datagram(other, &register("r", None))).0).collect();
    assert!(passes(got[0]) && passes(got[1]) && got[2] == SipMethodLimited, "{got:?}");
    // once its time is over, it is limited like anyone
    h.advance(Duration::from_secs(3600));
    let got: Vec<_> = (0..10).map(|_| h.why(&datagram(phone, options)).0).collect();
    assert!(got.contains(&RateLimited), "{got:?}");
}

#[test]
fn a_scanner_request_in_a_segment_of_no_connection_is_dropped_unproven() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = Harness::new("[services.sip]\nports = [\"5060/tcp\"]\n");
    let payload = b"OPTIONS sip:100@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/TCP 198.51.100.7:40001;branch=z9hG4bK-1\r\n\
From: <sip:100@192.0.2.2>;tag=1\r\nTo: <sip:100@192.0.2.2>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\n\
User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n";
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 51, 100, 7], [192, 0, 2, 2], 64)
        .tcp(40001, 5060, 7_000_000, 64240)
        .ack(123_456_789)
        .psh();
    let mut frame = Vec::new();
    b.write(&mut frame, payload).unwrap();
    assert_eq!(h.why(&frame).0, Reason::SipScanner);
    match h.drain_events().as_slice() {
        [ev] => {
            assert_eq!(ev.kind, event::SIP_DROPPED);
            assert_eq!(ev.detail & firewall_common::proof::SCANNER_PROVEN, 0, "no socket holds this connection");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_scanner_request_on_an_established_connection_is_proven() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    // a real connection on loopback, whose segment the program is then shown
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let sport = client.local_addr().unwrap().port();
    let mut h = Harness::new(&format!("[services.sip]\nports = [\"{port}/tcp\"]\n"));
    let payload = b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nCall-ID: t2\r\nCSeq: 1 OPTIONS\r\n\
User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n";
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
        .tcp(sport, port, 1, 64240)
        .ack(1)
        .psh();
    let mut frame = Vec::new();
    b.write(&mut frame, payload).unwrap();
    assert_eq!(h.why(&frame).0, Reason::SipScanner);
    match h.drain_events().as_slice() {
        [ev] => assert_ne!(ev.detail & firewall_common::proof::SCANNER_PROVEN, 0, "the connection is established"),
        other => panic!("{other:?}"),
    }
}
