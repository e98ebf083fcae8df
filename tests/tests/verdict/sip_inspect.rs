//! The SIP inspector in the kernel, through BPF_PROG_TEST_RUN: the frames captured from the real
//! tools (tests/fixtures/sip) as they were on the wire, hand-made edge cases, the `[sip]`
//! policy (methods, stealth OPTIONS, per-method limits), the reports, and agreement with the
//! userspace classifier on mutated messages.

#[path = "../../../firewall-common/src/sip/pcap.rs"]
mod pcap;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use firewall_common::{
    rate::{event, RateEvent},
    reason::Reason::{self, *},
    sip::{classify, policy::split_key, Field, Kind, Method, MethodSet, Scratch, SCRATCH_LEN},
};
use pcap::{load, Packet};
use sipwall::{
    datapath::features::Feature,
    rules::{Limit, Rules},
};
use sipwall_tests::{
    frames::from_port,
    harness::{rules, Harness, XDP_DROP},
    require_kernel, require_root,
    rng::Rng,
};

/// The tools ran at 10.77.0.1 against Kamailio at 10.77.0.2 (tests/fixtures/sip/capture.sh).
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));

const RULES: &str = r#"
[services.sip]
ports = ["5060/udp", "5060/tcp"]
"#;

fn requests(file: &str) -> Vec<Packet> {
    let pkts: Vec<Packet> = load(file).into_iter().filter(|p| p.src == CLIENT && p.dst_port == 5060).collect();
    assert!(!pkts.is_empty(), "{file} holds no request");
    pkts
}

fn harness(edit: impl FnOnce(&mut Rules)) -> Harness {
    let mut r = rules(RULES);
    edit(&mut r);
    Harness::with_rules(r)
}

/// The reason of every request of `file`.
fn reasons(h: &mut Harness, file: &str) -> Vec<Reason> {
    requests(file).iter().map(|p| h.why(&p.frame)).inspect(|(_, svc)| assert_eq!(*svc, "sip")).map(|v| v.0).collect()
}

#[test]
fn every_scanner_packet_is_dropped() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = harness(|_| {});
    for file in [
        "svmap.pcap",
        "svwar.pcap",
        "svcrack.pcap",
        "nmap-sip-methods.pcap",
        "nmap-sip-enum-users.pcap",
        "nmap-sip-brute.pcap",
    ] {
        let got = reasons(&mut h, file);
        assert!(got.iter().all(|r| *r == SipScanner), "{file}: {got:?}");
    }
    // nmap -sV: its SIP probe gives itself away in From; its NTP probe to the port is not SIP
    assert_eq!(reasons(&mut h, "nmap-sv.pcap"), [SipScanner, SipNotSip]);
}

#[test]
fn legitimate_traffic_passes() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = harness(|_| {});
    for file in ["sipp-register.pcap", "sipp-tcp.pcap", "sipp-invite.pcap"] {
        // the first request of each source in full, its next ones remembered
        let got = reasons(&mut h, file);
        assert!(got.iter().all(|r| matches!(r, Accepted | SipRemembered)), "{file}: {got:?}");
        assert!(got.contains(&SipRemembered), "{file}: {got:?}");
    }
    // the 3.8 KB MESSAGEs over TCP, in the 1,460-byte segments a 1,500-byte MTU makes: the
    // first starts the message, the others continue it
    for p in requests("sipp-large.pcap") {
        let segs = segments(&p, 1460);
        assert_eq!(segs.len(), 3);
        for s in &segs {
            assert!(matches!(h.why(s), (Accepted | SipRemembered, "sip")));
        }
    }
    let invite = &requests("sipp-invite.pcap")[0];
    assert!(String::from_utf8_lossy(&invite.payload).contains("\r\n\r\nv=0\r\n"), "the INVITE carries SDP");
    assert!(requests("sipp-large.pcap")[0].payload.len() > 3000, "the MESSAGE is larger than the inspected bytes");
    assert!(h.drain_events().is_empty(), "nothing legitimate is reported");
}

#[test]
fn a_scanner_is_reported_with_its_source_and_signature() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = harness(|_| {});
    let r = rules(RULES);
    let svwar = &requests("svwar.pcap")[0];
    assert_eq!(h.action(&svwar.frame), XDP_DROP);
    let nmap = &requests("nmap-sv.pcap")[0];
    assert_eq!(h.action(&nmap.frame), XDP_DROP);
    let evs = h.drain_events();
    assert_eq!(evs.len(), 2, "{evs:?}");
    let sig = |ev: &RateEvent| {
        (r.sip.signature((ev.detail & 0xff) as usize).unwrap().to_owned(), Field::from_id(ev.detail >> 8))
    };
    for ev in &evs {
        assert_eq!((ev.kind, ev.status, ev.family), (event::SIP_DROPPED, SipScanner as u32, 4));
        assert_eq!(Ipv4Addr::from(ev.addr.lo as u32), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(h.enforcer.services().name(ev.svc), Some("sip"));
    }
    assert_eq!(sig(&evs[0]), ("friendly-scanner".to_owned(), Field::UserAgent));
    assert_eq!(sig(&evs[1]), ("sip:nm@nm".to_owned(), Field::From));
}

/// The IPv4 TCP segment `p` cut into segments of at most `mss` payload bytes (IP lengths
/// fixed; checksums are not checked on this path).
fn segments(p: &Packet, mss: usize) -> Vec<Vec<u8>> {
    assert!(p.tcp);
    let head = p.frame.len() - p.payload.len();
    p.payload
        .chunks(mss)
        .map(|chunk| {
            let mut f = p.frame[..head].to_vec();
            let total = (head - 14 + chunk.len()) as u16;
            f[16..18].copy_from_slice(&total.to_be_bytes());
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

/// A UDP datagram from `src` to 5060 carrying `payload`.
fn datagram(src: &str, payload: &[u8]) -> Vec<u8> {
    sipwall_tests::frames::l4_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        src.parse().unwrap(),
        if src.contains(':') { "2001:db8::2".parse().unwrap() } else { "192.0.2.2".parse().unwrap() },
        5060,
        false,
        payload,
    )
}

fn request(method: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} sip:100@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1\r\n\
         From: <sip:100@192.0.2.2>;tag=1\r\nTo: <sip:100@192.0.2.2>\r\nCall-ID: 1@198.51.100.7\r\n\
         CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn payloads_that_are_not_sip_are_dropped_on_udp_only() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = harness(|_| {});
    for junk in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], b"\x16\x03\x01\x00\xf1\x01", b"OPTIONS sip:a@b SIP/2.0"] {
        assert_eq!(h.why(&datagram("198.51.100.7", junk)), (SipNotSip, "sip"), "{junk:?}");
        assert_eq!(h.why(&datagram("2001:db8:1::7", junk)), (SipNotSip, "sip"), "{junk:?}");
    }
    // keep-alives, STUN and answers are what a SIP port also receives
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    for ok in [&b"\r\n\r\n"[..], b"\r\n", &stun, b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"] {
        assert_eq!(h.why(&datagram("198.51.100.7", ok)), (Accepted, "sip"), "{ok:?}");
    }
    // a TCP segment that does not start a message continues one
    let pkts = load("sipp-tcp.pcap");
    let mut seg = pkts.iter().find(|p| p.src == CLIENT).unwrap().frame.clone();
    let payload_at = seg.len() - requests("sipp-tcp.pcap")[0].payload.len();
    seg[payload_at..payload_at + 8].copy_from_slice(b"a=rtpmap");
    assert_eq!(h.why(&seg), (Accepted, "sip"));
}

#[test]
fn methods_outside_the_allowed_set_are_dropped() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = harness(|_| {});
    assert_eq!(h.why(&datagram("198.51.100.7", &request("FOO", ""))), (SipMethod, "sip"));
    // the first request of the source is inspected in full, the others read to the method
    for (i, m) in Method::ALL[1..].iter().enumerate() {
        let want = if i == 0 { Accepted } else { SipRemembered };
        assert_eq!(h.why(&datagram("198.51.100.7", &request(m.name(), ""))), (want, "sip"), "{m:?}");
    }
    let mut h = harness(|r| {
        r.sip.allowed_methods = MethodSet(Method::Register.bit() | Method::Invite.bit() | Method::Ack.bit());
    });
    assert_eq!(h.why(&datagram("198.51.100.7", &request("MESSAGE", ""))), (SipMethod, "sip"));
    assert_eq!(h.why(&datagram("198.51.100.7", &request("REGISTER", ""))), (SipRemembered, "sip"));
    // drops that ban nobody are reported at most once per jiffy on a CPU
    h.advance(Duration::from_millis(20));
    let large = &requests("sipp-large.pcap")[0];
    let segs = segments(large, 1460);
    assert_eq!(h.why(&segs[0]), (SipMethod, "sip"));
    assert_eq!(h.why(&segs[1]), (Accepted, "sip"), "a continuation is not judged");
    let ev = h.drain_events();
    assert_eq!(
        ev.iter().map(|e| (e.status, e.detail)).collect::<Vec<_>>(),
        [(SipMethod as u32, 11), (SipMethod as u32, 11)]
    );
}

#[test]
fn stealth_drops_options_from_sources_no_allow_list_covers() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let options = request("OPTIONS", "");
    let mut h = harness(|_| {});
    assert_eq!(h.why(&datagram("198.51.100.7", &options)), (Accepted, "sip"), "stealth is off by default");
    let mut h = harness(|r| r.sip.stealth_options = true);
    assert_eq!(h.why(&datagram("198.51.100.7", &options)), (SipStealthOptions, "sip"));
    assert_eq!(h.why(&datagram("2001:db8:1::7", &options)), (SipStealthOptions, "sip"));
    assert_eq!(h.why(&datagram("198.51.100.7", &options)), (SipStealthOptions, "sip"), "remembered");
    assert_eq!(h.why(&datagram("198.51.100.7", &request("REGISTER", ""))), (SipRemembered, "sip"));
    // svmap finds nothing: its OPTIONS is dropped (as a scanner before stealth)
    assert_eq!(h.why(&requests("svmap.pcap")[0].frame), (SipScanner, "sip"));
    // the global allow list never reaches the inspector; a service allow list lets OPTIONS in
    let mut h = Harness::with_rules({
        let mut r = rules(
            "[allow]\nsources = [\"192.0.2.0/24\"]\n[services.sip]\nports = [\"5060/udp\"]\nallow_from = [\"198.51.100.0/24\"]\n",
        );
        r.sip.stealth_options = true;
        r
    });
    assert_eq!(h.why(&datagram("198.51.100.7", &options)), (Accepted, "sip"));
    assert_eq!(h.why(&datagram("192.0.2.9", &options)).0, Allowlisted);
}

#[test]
fn per_method_limits_apply_per_source() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut h = harness(|r| r.sip.method_limits = vec![(Method::Register, Limit { rate: 1, burst: 3 })]);
    let register = request("REGISTER", "");
    let got: Vec<Reason> = (0..5).map(|_| h.why(&datagram("198.51.100.7", &register)).0).collect();
    // the limit holds whether a request is inspected in full (the first) or read to its method
    assert_eq!(got, [Accepted, SipRemembered, SipRemembered, SipMethodLimited, SipMethodLimited]);
    // another method, another source: their own budgets
    assert_eq!(h.why(&datagram("198.51.100.7", &request("INVITE", ""))).0, SipRemembered);
    assert_eq!(h.why(&datagram("198.51.100.8", &register)).0, Accepted);
    let evs = h.drain_events();
    assert_eq!(evs.len(), 1, "one report per source and interval: {evs:?}");
    assert_eq!(evs[0].kind, event::RATE_LIMITED);
    let (svc, method) = split_key(evs[0].svc);
    assert_eq!((h.enforcer.services().name(svc), Method::from_id(method)), (Some("sip"), Method::Register));
}

#[test]
fn inspection_can_be_turned_off_and_back_on() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let junk = datagram("198.51.100.7", b"\x17\x03\x03 not sip");
    let scanner = requests("svmap.pcap").remove(0).frame;
    let mut h = harness(|r| r.sip.inspect = false);
    assert_eq!(h.why(&junk), (Accepted, "sip"));
    assert_eq!(h.why(&scanner), (Accepted, "sip"));
    let mut r = rules(RULES);
    h.enforcer.apply_rules(r.clone()).unwrap();
    assert_eq!(h.why(&junk), (SipNotSip, "sip"));
    assert_eq!(h.why(&scanner), (SipScanner, "sip"));
    r.sip.inspect = false;
    h.enforcer.apply_rules(r).unwrap();
    assert_eq!(h.why(&scanner), (Accepted, "sip"));
    // other services are never inspected
    let mut h = Harness::with_rules(rules(
        "[services.sip]\nports = [\"5060/udp\"]\n[services.rtp]\nports = [\"10000-20000/udp\"]\n",
    ));
    let rtp = sipwall_tests::frames::l4_frame(
        [2; 6],
        [4; 6],
        "198.51.100.7".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
        10000,
        false,
        b"\x80\x00 rtp",
    );
    assert_eq!(h.why(&rtp), (Accepted, "rtp"));
}

fn pick(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

/// What the kernel must decide for a payload the userspace classifier classified as `kind`.
fn expected(kind: Kind, scanner: bool) -> Reason {
    match kind {
        Kind::NotSip => SipNotSip,
        Kind::Request(_) if scanner => SipScanner,
        Kind::Request(m) if !MethodSet::STANDARD.contains(m) => SipMethod,
        _ => Accepted,
    }
}

#[test]
fn the_kernel_agrees_with_the_userspace_classifier_on_mutated_messages() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    // every request inspected in full: the mutations all come from one source
    let mut h = harness(|r| r.sip.reinspect = Duration::ZERO);
    let table = rules(RULES).sip.signatures().unwrap();
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for f in
        ["svmap.pcap", "svwar.pcap", "nmap-sv.pcap", "nmap-sip-methods.pcap", "sipp-register.pcap", "sipp-invite.pcap"]
    {
        seeds.extend(load(f).into_iter().map(|p| p.payload));
    }
    seeds.push(request("REGISTER", "User-Agent: Zoiper rv2.10\r\n"));
    seeds.push(request("OPTIONS", "User-Agent: PBX (smap 0.6)\r\n"));
    seeds.push(request("X-PROBE", "User-Agent: Linphone/5.2 (belle-sip/5.2)\r\n"));
    let alphabet = b"\r\n :<>\"sipSIP/2.0friendly-scannernm@smap\t(";
    let mut rng = Rng(0x5eed_0f51_9700);
    let mut checked = [0usize; 4];
    for i in 0..3000 {
        let mut p = seeds[i % seeds.len()].clone();
        for _ in 0..1 + pick(&mut rng, 4) {
            match pick(&mut rng, 5) {
                0 if !p.is_empty() => {
                    let at = pick(&mut rng, p.len());
                    p[at] = alphabet[pick(&mut rng, alphabet.len())];
                }
                1 if !p.is_empty() => p.truncate(pick(&mut rng, p.len())),
                2 => {
                    let at = pick(&mut rng, p.len() + 1);
                    p.insert(at, alphabet[pick(&mut rng, alphabet.len())]);
                }
                3 if !p.is_empty() => {
                    let at = pick(&mut rng, p.len());
                    p[at] = p[at].to_ascii_uppercase();
                }
                _ if p.len() > 1 => {
                    let at = pick(&mut rng, p.len() - 1);
                    p.remove(at);
                }
                _ => {}
            }
        }
        if p.is_empty() {
            continue;
        }
        let mut buf: Scratch = [0; SCRATCH_LEN];
        let n = p.len().min(SCRATCH_LEN);
        buf[..n].copy_from_slice(&p[..n]);
        let c = classify(&buf, p.len(), &table);
        let want = expected(c.kind, c.scanner.is_some());
        let got = h.why(&datagram("198.51.100.7", &p)).0;
        assert_eq!(got, want, "payload {:?} classified {c:?}", String::from_utf8_lossy(&p));
        checked[match want {
            SipNotSip => 0,
            SipScanner => 1,
            SipMethod => 2,
            _ => 3,
        }] += 1;
    }
    // every outcome was exercised
    assert!(checked.iter().all(|n| *n > 50), "{checked:?}");
}

#[test]
fn a_source_inspected_clean_has_its_requests_read_to_the_method_for_reinspect() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut r = rules(RULES);
    r.sip.reinspect = Duration::from_secs(1);
    r.sip.allowed_methods = MethodSet(MethodSet::STANDARD.0 & !Method::Message.bit());
    let mut h = Harness::with_rules(r.clone());
    let from =
        |h: &mut Harness, src: &str, port: u16, payload: Vec<u8>| h.why(&from_port(datagram(src, &payload), port)).0;
    let send = |h: &mut Harness, port: u16, payload: Vec<u8>| from(h, "198.51.100.9", port, payload);
    let clean = || request("REGISTER", "User-Agent: Zoiper rv2.10\r\n");
    let scanner = || request("REGISTER", "User-Agent: friendly-scanner\r\n");

    assert_eq!(send(&mut h, 5062, clean()), Accepted);
    // the trade `reinspect` makes: the signature search is skipped for this source and port
    assert_eq!(send(&mut h, 5062, scanner()), SipRemembered);
    // ... and only for them
    assert_eq!(send(&mut h, 5063, scanner()), SipScanner, "another port of the address");
    assert_eq!(from(&mut h, "198.51.100.10", 5062, scanner()), SipScanner, "another address");
    assert_eq!(from(&mut h, "2001:db8:1::9", 5062, clean()), Accepted);
    assert_eq!(from(&mut h, "2001:db8:1::9", 5062, scanner()), SipRemembered, "IPv6 alike");
    assert_eq!(from(&mut h, "2001:db8:1::a", 5062, scanner()), SipScanner, "another IPv6 address of the /64");
    // the method still counts, and what does not start with one is inspected in full
    assert_eq!(send(&mut h, 5062, request("MESSAGE", "")), SipMethod);
    assert_eq!(send(&mut h, 5062, b"REGISTER sip:100@192.0.2.2".to_vec()), SipRemembered, "a start line alone");
    // junk is dropped, and forgets the source
    assert_eq!(send(&mut h, 5062, b"\x17\x03\x03 REGISTER not sip".to_vec()), SipNotSip);
    assert_eq!(send(&mut h, 5062, scanner()), SipScanner);
    assert_eq!(send(&mut h, 5062, clean()), Accepted);
    // a new source whose method name leads no start line is not remembered
    assert_eq!(send(&mut h, 5066, b"REGISTER sip:100@192.0.2.2".to_vec()), SipNotSip);
    assert_eq!(send(&mut h, 5066, scanner()), SipScanner);

    // new signatures forget every source
    r.sip.scanner_user_agents.push("zoiperx".into());
    h.enforcer.apply_rules(r.clone()).unwrap();
    assert_eq!(send(&mut h, 5062, scanner()), SipScanner);
    // a scanner hit forgets the source: its next request is inspected in full too
    assert_eq!(send(&mut h, 5062, scanner()), SipScanner);

    // the window runs from the full inspection
    assert_eq!(send(&mut h, 5064, clean()), Accepted);
    assert_eq!(send(&mut h, 5064, scanner()), SipRemembered);
    h.advance(Duration::from_millis(1100));
    assert_eq!(send(&mut h, 5064, scanner()), SipScanner, "reinspected after the window");

    // reinspect = 0: every request in full
    r.sip.reinspect = Duration::ZERO;
    h.enforcer.apply_rules(r).unwrap();
    assert_eq!(send(&mut h, 5065, clean()), Accepted);
    assert_eq!(send(&mut h, 5065, scanner()), SipScanner);
}
