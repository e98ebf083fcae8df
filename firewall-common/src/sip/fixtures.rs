//! The classifier against packets captured from the real tools (tests/fixtures/sip/README.md).

use std::net::{IpAddr, Ipv4Addr};

use super::{
    pcap::{load, Packet},
    tests::run,
    Field, Kind, Method, DEFAULT_SIGNATURES, INSPECT_LEN, NMAP_PROBE_URI,
};

/// The tools ran here; Kamailio at 10.77.0.2 (capture.sh).
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));

fn requests(pkts: &[Packet]) -> impl Iterator<Item = &Packet> {
    pkts.iter().filter(|p| p.src == CLIENT).inspect(|p| {
        assert_eq!(p.dst_port, 5060, "requests go to the SIP port");
        assert!(p.frame.ends_with(&p.payload), "the frame carries the payload last");
    })
}

fn responses(pkts: &[Packet]) -> impl Iterator<Item = &Packet> {
    pkts.iter().filter(|p| p.src != CLIENT)
}

/// Every request in `file` is `method` and hits `signature` in `field`; returns the statuses
/// of the responses.
fn scanner(file: &str, method: Method, signature: &str, field: Field) -> Vec<u16> {
    let pkts = load(file);
    let mut n = 0;
    for (i, p) in requests(&pkts).enumerate() {
        let c = run(&p.payload);
        assert_eq!(c.kind, Kind::Request(method), "{file} request {i}");
        let hit = c.scanner.unwrap_or_else(|| panic!("{file} request {i}: no scanner signature found"));
        assert_eq!(DEFAULT_SIGNATURES.get(hit.signature).unwrap().text(), signature, "{file} request {i}");
        assert_eq!(hit.field, field, "{file} request {i}");
        n += 1;
    }
    assert!(n > 0, "{file} holds no request");
    statuses(file, &pkts)
}

/// The status of every response in `file`, none of them a scanner hit.
fn statuses(file: &str, pkts: &[Packet]) -> Vec<u16> {
    responses(pkts)
        .map(|p| {
            let c = run(&p.payload);
            assert_eq!(c.scanner, None, "{file}: a response is never a scanner hit");
            match c.kind {
                Kind::Response(s) => s,
                k => panic!("{file}: response classified as {k:?}"),
            }
        })
        .collect()
}

/// `file` is exactly `expected`: requests by method, responses by status, in order.
fn legitimate(file: &str, expected: &[Kind]) -> Vec<Packet> {
    let pkts = load(file);
    let got: Vec<Kind> = pkts
        .iter()
        .map(|p| {
            let c = run(&p.payload);
            assert_eq!(c.scanner, None, "{file}: a legitimate packet matched a scanner signature");
            c.kind
        })
        .collect();
    assert_eq!(got, expected, "{file}");
    pkts
}

#[test]
fn svmap_options_are_scanner_hits() {
    assert_eq!(scanner("svmap.pcap", Method::Options, "friendly-scanner", Field::UserAgent), [200]);
}

#[test]
fn svwar_registers_are_scanner_hits() {
    let statuses = scanner("svwar.pcap", Method::Register, "friendly-scanner", Field::UserAgent);
    // a first probe for a made-up extension, then 995 to 1005: only 1000 exists (401)
    assert_eq!(statuses.len(), 12);
    assert_eq!(statuses.iter().filter(|&&s| s == 404).count(), 11);
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 1);
}

#[test]
fn svcrack_registers_are_scanner_hits() {
    let statuses = scanner("svcrack.pcap", Method::Register, "friendly-scanner", Field::UserAgent);
    assert!(statuses.contains(&401) && statuses.contains(&403), "{statuses:?}");
}

#[test]
fn nmap_scripts_are_scanner_hits() {
    assert_eq!(scanner("nmap-sip-methods.pcap", Method::Options, "nmap nse", Field::UserAgent), [200]);
    let users = scanner("nmap-sip-enum-users.pcap", Method::Register, "nmap nse", Field::UserAgent);
    assert!(users.contains(&401) && users.contains(&404), "{users:?}");
    let brute = scanner("nmap-sip-brute.pcap", Method::Register, "nmap nse", Field::UserAgent);
    assert!(brute.contains(&401) && brute.contains(&404), "{brute:?}");
}

#[test]
fn nmap_service_probe_is_a_scanner_hit() {
    let pkts = load("nmap-sv.pcap");
    let probes: Vec<_> = requests(&pkts).map(|p| run(&p.payload)).collect();
    // the SIPOptions probe carries no User-Agent: `sip:nm@nm` in From gives it away
    let sip = probes[0];
    assert_eq!(sip.kind, Kind::Request(Method::Options));
    let hit = sip.scanner.expect("the SIPOptions probe is a scanner hit");
    assert_eq!((DEFAULT_SIGNATURES.get(hit.signature).unwrap().text(), hit.field), (NMAP_PROBE_URI, Field::From));
    // -sV also sends its other UDP probes to the port (here NTPRequest): not SIP
    assert_eq!(probes.len(), 2);
    assert_eq!(probes[1].kind, Kind::NotSip);
    assert_eq!(statuses("nmap-sv.pcap", &pkts), [200]);
}

#[test]
fn sipp_register_with_digest_auth_is_sip() {
    use Kind::*;
    let pkts = legitimate(
        "sipp-register.pcap",
        &[Request(Method::Register), Response(401), Request(Method::Register), Response(200)],
    );
    assert!(pkts.iter().all(|p| !p.tcp));
}

#[test]
fn sipp_register_over_tcp_is_sip() {
    use Kind::*;
    let pkts = legitimate(
        "sipp-tcp.pcap",
        &[Request(Method::Register), Response(401), Request(Method::Register), Response(200)],
    );
    assert!(pkts.iter().all(|p| p.tcp));
}

#[test]
fn sipp_invite_with_sdp_is_sip() {
    use Kind::*;
    let (inv, ack, bye) = (Request(Method::Invite), Request(Method::Ack), Request(Method::Bye));
    let pkts = legitimate("sipp-invite.pcap", &[inv, Response(407), ack, inv, Response(200), ack, bye, Response(200)]);
    assert!(String::from_utf8_lossy(&pkts[0].payload).contains("\r\n\r\nv=0\r\n"), "the INVITE carries SDP");
}

#[test]
fn sipp_large_message_over_tcp_is_sip() {
    use Kind::*;
    let m = Request(Method::Message);
    let pkts = legitimate("sipp-large.pcap", &[m, Response(407), m, Response(200)]);
    // its User-Agent lies past the inspected bytes, so a scanner there would go unseen too
    let ua = find(&pkts[0].payload, b"User-Agent:").expect("the MESSAGE has a User-Agent");
    assert!(pkts[0].tcp && ua > INSPECT_LEN, "User-Agent at byte {ua}");
}

#[test]
fn kamailio_answers_svwar_with_404_and_401() {
    // the responses the egress accounting will count, as Kamailio sends them
    let pkts = load("svwar.pcap");
    let statuses = statuses("svwar.pcap", &pkts);
    assert!(statuses.contains(&404) && statuses.contains(&401));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
