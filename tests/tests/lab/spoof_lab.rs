//! Bans a forger cannot aim, with real peers: Kamailio as a registrar (user 1000, password
//! `secret`) and sshd in the protected namespace behind sipwall, a phone (SIPp) registering
//! with digest authentication once a second, and a forger in the peer namespace that sends
//! frames with other people's source addresses: the phone's, and a stranger's that never sent
//! anything. The forgeries: scanner User-Agents over UDP and over TCP without a handshake,
//! REGISTERs and INVITEs that draw 401, 403 and 404 answers, a SIP flood and a SYN flood on SSH.
//! Neither victim is banned, the phone keeps registering and is never rate-limited, the stranger
//! reaches SSH. Then a real two-way password guesser with a phone's User-Agent is banned after
//! maxretry guesses.

use std::{net::IpAddr, time::Duration};

use etherparse::PacketBuilder;
use sipwall::datapath::features::Feature;
use sipwall_tests::{
    daemon::DaemonProc,
    frames::l4_frame,
    kamailio::Registrar,
    netns::{wait_for, Lab},
    require_kernel, require_root,
    sipp::RegisterLoop,
    sipvicious::Attacker,
    sshd::{attempt_from, Sshd, SshdLog},
    traffic::send_all,
};

/// Failures `sip-wire` counts before it bans.
const MAXRETRY: u64 = 3;

fn rules() -> String {
    format!(
        r#"
[services.sip]
ports = ["5060/udp", "5060/tcp"]
rate = 50
burst = 200

[services.ssh]
ports = ["22/tcp"]
rate = 5
burst = 20

[jails.sip-wire]
maxretry = {MAXRETRY}

[jails.asterisk]
enabled = false

[jails.sshd]
enabled = false
"#
    )
}

/// A UDP datagram from `src` (port 40000) to the host's SIP port.
fn udp(lab: &Lab, src: &str, payload: &[u8]) -> Vec<u8> {
    let dst: IpAddr = lab.host_ip4().parse().unwrap();
    l4_frame(lab.peer_mac, lab.host_mac, src.parse().unwrap(), dst, 5060, false, payload)
}

/// A TCP segment with data from `src` to the host's SIP port, of no connection.
fn stray_segment(lab: &Lab, src: &str, payload: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (src.parse().unwrap(), lab.host_ip4().parse().unwrap());
    let b = PacketBuilder::ethernet2(lab.peer_mac, lab.host_mac)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(40001, 5060, 7_000_000, 64240)
        .ack(123_456_789)
        .psh();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// A SYN from `src` to port 22, from source port `sport`.
fn syn(lab: &Lab, src: &str, sport: u16) -> Vec<u8> {
    let (s, d): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (src.parse().unwrap(), lab.host_ip4().parse().unwrap());
    let b = PacketBuilder::ethernet2(lab.peer_mac, lab.host_mac).ipv4(s.octets(), d.octets(), 64).tcp(
        sport,
        22,
        u32::from(sport),
        64240,
    );
    let mut out = Vec::new();
    b.syn().write(&mut out, &[]).unwrap();
    out
}

fn request(method: &str, user: &str, call: &str, extra: &str, host: &str) -> Vec<u8> {
    format!(
        "{method} sip:{user}@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:40000;branch=z9hG4bK-{call}\r\n\
         From: <sip:{user}@{host}>;tag={call}\r\nTo: <sip:{user}@{host}>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Every forgery, with `src` as the source address.
fn forgeries(lab: &Lab, src: &str) -> Vec<Vec<u8>> {
    let host = lab.host_ip4();
    let tag = src.replace('.', "-");
    let scanner = "User-Agent: friendly-scanner\r\n";
    let mut v = Vec::new();
    for i in 0..5 {
        let call = |what: &str| format!("forged-{tag}-{what}-{i}");
        v.push(udp(lab, src, &request("OPTIONS", "100", &call("scan"), scanner, &host)));
        v.push(stray_segment(lab, src, &request("OPTIONS", "100", &call("tcp"), scanner, &host)));
        // 404: unknown users
        v.push(udp(lab, src, &request("REGISTER", "nosuchuser", &call("reg404"), "", &host)));
        v.push(udp(lab, src, &request("INVITE", "nosuchuser", &call("inv404"), "", &host)));
        // 401: the registrar's user, no credentials
        v.push(udp(lab, src, &request("REGISTER", "1000", &call("reg401"), "", &host)));
        // 403: credentials with a nonce the forger made up
        let auth = format!(
            "Authorization: Digest username=\"1000\", realm=\"{host}\", nonce=\"made-up\", uri=\"sip:{host}\", \
             response=\"00000000000000000000000000000000\"\r\n"
        );
        v.push(udp(lab, src, &request("REGISTER", "1000", &call("reg403"), &auth, &host)));
    }
    v
}

/// A flood over the SIP and SSH rate limits.
fn floods(lab: &Lab, src: &str) -> Vec<Vec<u8>> {
    let host = lab.host_ip4();
    let mut v: Vec<Vec<u8>> =
        (0..1000).map(|i| udp(lab, src, &request("OPTIONS", "100", &format!("flood-{src}-{i}"), "", &host))).collect();
    v.extend((0..200u16).map(|i| syn(lab, src, 20_000 + i)));
    v
}

#[test]
fn forged_evidence_bans_no_one_and_a_real_guesser_is_banned() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let lab = Lab::new();
    let dir = lab.scratch_dir("spooflab");
    let kamailio = Registrar::start(&lab, &dir);
    let _sshd = Sshd::start(&lab, &dir, SshdLog::File);
    let d = DaemonProc::start(&lab, &rules());
    let phone = lab.peer_ip4();
    let stranger = Attacker::new(&lab, 77, &dir).addr;
    let sipp_dir = dir.join("phone");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    let mut sipp = RegisterLoop::start(&lab, &phone, &sipp_dir);
    let bans = || d.cli_ok(&["list", "--json"]);
    let unproven =
        |jail: &str| d.metric("sipwall_failures_skipped_total", &format!(r#"jail="{jail}",reason="unproven""#));

    // the phone registers (401, then 200 to its answer) and becomes known good
    assert!(
        sipp.wait_successes(2, Duration::from_secs(120)),
        "the phone does not register: {:?}\n{}\n{}",
        sipp.counts(),
        sipp.error_text(),
        kamailio.log_text()
    );
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_known_good_sources", "") == 1),
        "the phone is not known good\n{}",
        d.metrics()
    );
    assert!(d.cli_ok(&["why", &phone]).contains("known good: authenticated with REGISTER"));

    // the forgeries, from both victims' addresses
    let before = sipp.counts();
    for src in [phone.as_str(), stranger.as_str()] {
        send_all(&lab, forgeries(&lab, src));
        send_all(&lab, floods(&lab, src));
    }
    // every kind of forged evidence reached the daemon and was set aside
    assert!(
        wait_for(Duration::from_secs(60), || unproven("scanner") >= 5 && unproven("flood") >= 2),
        "{}",
        d.metrics()
    );
    // 404s and 403s wait 32 s for a proof, the 401s as long for a success: then they are judged
    assert!(
        wait_for(Duration::from_secs(120), || unproven("sip-wire") >= 3 * 5),
        "the answers to the forged requests were not judged unproven\n{}",
        d.metrics()
    );
    let answered = d.metric("sipwall_sip_failures_answered_total", "");
    assert!(answered >= 3 * 5, "Kamailio answered the stranger's forgeries: {answered}\n{}", d.metrics());
    // known good: the phone's unproven failures are not even set aside, and no rate limit
    // dropped the forged flood with its address
    assert!(d.metric("sipwall_failures_skipped_total", r#"reason="known_good""#) > 0, "{}", d.metrics());

    // nobody is banned
    assert_eq!(bans().trim(), "[]", "forged evidence banned someone:\n{}", d.log_text());
    assert_eq!(d.metric("sipwall_bans_total", ""), 0);
    let why = d.cli_ok(&["why", &stranger]);
    assert!(why.contains("not counted: scanner") && why.contains("not counted: sip-wire"), "{why}");

    // the phone registers again right after, never failing
    assert!(sipp.wait_successes(before.successful + 3, Duration::from_secs(60)), "{:?}", sipp.counts());
    assert_eq!(sipp.counts().failed, 0, "{}", sipp.error_text());
    // the stranger reaches SSH (its SYN flood was throttled only while it lasted)
    let said = attempt_from(&lab, Some(&stranger), 20);
    assert!(said.contains("Permission denied"), "the stranger did not reach sshd: {said}");

    // a real password guesser that looks like a phone: it answers each challenge with the
    // host's nonce and a wrong password, so Kamailio's 403s to it are proven
    let cracker = Attacker::new(&lab, 66, &dir).addr;
    let crack_dir = dir.join("cracker");
    std::fs::create_dir_all(&crack_dir).unwrap();
    let _guesser = RegisterLoop::start_with(&lab, &cracker, &crack_dir, "crack.xml", "not-the-password");
    let banned = || bans().contains(&format!("\"{cracker}/32\""));
    assert!(wait_for(Duration::from_secs(120), banned), "the guesser was not banned\n{}", d.log_text());
    let why = d.cli_ok(&["why", &cracker]);
    assert!(why.contains("sip-wire") && why.contains("SIP/2.0 403 answered"), "{why}");
    assert!(!why.contains("unproven (trust_unproven)"), "{why}");

    let list = bans();
    assert!(!list.contains(&phone) && !list.contains(&stranger), "{list}");
    let (end, _) = sipp.stop();
    assert_eq!(end.failed, 0, "the phone failed to register: {}", sipp.error_text());
}
