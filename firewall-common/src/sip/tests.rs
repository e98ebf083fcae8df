//! Edge cases of the classifier on hand-written payloads.

use super::{
    classify,
    header::{name_at as header_name, Header},
    Classification, Field, Hit, Kind, Method, MethodSet, Scratch, SignatureError, SignatureTable, DEFAULT_SIGNATURES,
    INSPECT_LEN, NMAP_PROBE_URI, SCRATCH_LEN,
};

/// Classifies `payload` with the default signatures. The rest of the buffer holds a scanner
/// User-Agent, so a read past the payload would show up as a hit.
pub(super) fn run(payload: &[u8]) -> Classification {
    let mut buf: Scratch = [0; SCRATCH_LEN];
    for (b, s) in buf.iter_mut().zip(b"\r\nUser-Agent: sipvicious\r\nFrom: <sip:nm@nm>\r\n".iter().cycle()) {
        *b = *s;
    }
    let n = payload.len().min(SCRATCH_LEN);
    buf[..n].copy_from_slice(&payload[..n]);
    classify(&buf, payload.len(), &DEFAULT_SIGNATURES)
}

fn hit(payload: &str) -> Option<&'static str> {
    run(payload.as_bytes()).scanner.map(|h| DEFAULT_SIGNATURES.get(h.signature).unwrap().text())
}

fn kind(payload: &[u8]) -> Kind {
    run(payload).kind
}

const REGISTER: &str = "REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
    From: <sip:100@10.0.0.1>;tag=1\r\nTo: <sip:100@10.0.0.1>\r\nCall-ID: 1@10.0.0.2\r\nCSeq: 1 REGISTER\r\n";

#[test]
fn every_method_is_recognised() {
    for m in &Method::ALL[1..] {
        let c = run(format!("{} sip:a@b SIP/2.0\r\n\r\n", m.name()).as_bytes());
        assert_eq!(c.kind, Kind::Request(*m));
        assert!(MethodSet::STANDARD.contains(*m));
    }
    assert!(!MethodSet::STANDARD.contains(Method::Unknown));
    // method names are case-sensitive; other tokens are well-formed but unknown
    for unknown in ["register", "SUBSCRIBX", "INVITES", "X-CUSTOM", "FOO.BAR"] {
        assert_eq!(kind(format!("{unknown} sip:a@b SIP/2.0\r\n\r\n").as_bytes()), Kind::Request(Method::Unknown));
    }
}

#[test]
fn status_lines() {
    assert_eq!(kind(b"SIP/2.0 180 Ringing\r\n\r\n"), Kind::Response(180));
    assert_eq!(kind(b"SIP/2.0 404 Not Found\r\n"), Kind::Response(404));
    assert_eq!(kind(b"sip/2.0 200 OK\r\n"), Kind::Response(200));
    assert_eq!(kind(b"SIP/2.0 699\r\n"), Kind::Response(699));
    for bad in
        ["SIP/2.0 99 Low\r\n", "SIP/2.0 700 High\r\n", "SIP/2.0 20 OK\r\n", "SIP/2.0 2000 OK\r\n", "SIP/3.0 200 OK\r\n"]
    {
        assert_eq!(kind(bad.as_bytes()), Kind::NotSip, "{bad:?}");
    }
}

#[test]
fn malformed_request_lines_are_not_sip() {
    for bad in [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "OPTIONS sip:a@b SIP/2.0",
        "OPTIONS sip:a@b\r\n",
        "OPTIONS  SIP/2.0\r\n",
        "OPTIONS nocolon SIP/2.0\r\n",
        " OPTIONS sip:a@b SIP/2.0\r\n",
        "OPT(IONS sip:a@b SIP/2.0\r\n",
        "OPTIONS sip:a@b SIP/2.0 \r\n",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGH sip:a@b SIP/2.0\r\n",
        "",
    ] {
        assert_eq!(kind(bad.as_bytes()), Kind::NotSip, "{bad:?}");
    }
}

#[test]
fn keepalives_and_stun() {
    assert_eq!(kind(b"\r\n\r\n"), Kind::Keepalive);
    assert_eq!(kind(b"\r\n"), Kind::Keepalive);
    // RFC 3261 section 7.5: CRLFs before the start line are skipped
    assert_eq!(kind(b"\r\nOPTIONS sip:a@b SIP/2.0\r\n"), Kind::Request(Method::Options));
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    assert_eq!(kind(&stun), Kind::Stun);
    assert_eq!(kind(&stun[..19]), Kind::NotSip);
}

#[test]
fn non_sip_payloads() {
    // DNS query for example.com, A
    let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    // RTP, PCMU, 160 samples
    let mut rtp = vec![0x80, 0x00, 0x12, 0x34, 0, 0, 0x0a, 0, 0xde, 0xad, 0xbe, 0xef];
    rtp.extend_from_slice(&[0xff; 160]);
    // start of a TLS 1.2 ClientHello record
    let mut tls = vec![0x16, 0x03, 0x01, 0x00, 0xf1, 0x01, 0x00, 0x00, 0xed, 0x03, 0x03];
    tls.extend_from_slice(&[0x5a; 32]);
    let mut random = vec![0u8; 1400];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for (name, p) in [("dns", &dns[..]), ("rtp", &rtp), ("tls", &tls), ("random", &random)] {
        assert_eq!(run(p), Classification { kind: Kind::NotSip, scanner: None }, "{name}");
    }
}

#[test]
fn user_agent_signatures() {
    assert_eq!(hit(&format!("{REGISTER}User-Agent: friendly-scanner\r\n\r\n")), Some("friendly-scanner"));
    assert_eq!(hit(&format!("{REGISTER}User-Agent: VaxSIPUserAgent/3.1\r\n\r\n")), Some("vaxsipuseragent"));
    assert_eq!(hit(&format!("{REGISTER}User-Agent: PBX (smap 0.6)\r\n\r\n")), Some("smap"));
    assert_eq!(hit(&format!("{REGISTER}User-Agent: sipcli/v1.8\r\n\r\n")), Some("sipcli"));
    // only at the start of a word
    assert_eq!(hit(&format!("{REGISTER}User-Agent: Asmapx phone\r\n\r\n")), None);
    assert_eq!(hit(&format!("{REGISTER}User-Agent: Linphone/5.2 (belle-sip/5.2)\r\n\r\n")), None);
    // another header carrying the text does not count
    assert_eq!(hit(&format!("{REGISTER}Subject: friendly-scanner\r\nUser-Agent: Zoiper\r\n\r\n")), None);
    // nor does a body
    assert_eq!(hit(&format!("{REGISTER}Content-Length: 16\r\n\r\nfriendly-scanner")), None);
}

#[test]
fn header_names_any_case_and_compact() {
    assert_eq!(hit(&format!("{REGISTER}user-agent: sipvicious\r\n\r\n")), Some("sipvicious"));
    assert_eq!(hit(&format!("{REGISTER}USER-AGENT:SIPVICIOUS\r\n\r\n")), Some("sipvicious"));
    assert_eq!(hit(&format!("{REGISTER}User-Agent  :  sipsak 0.9\r\n\r\n")), Some("sipsak"));
    assert_eq!(
        hit("OPTIONS sip:x SIP/2.0\r\nv: SIP/2.0/UDP nm\r\nf: <sip:nm@nm>;tag=root\r\n\r\n"),
        Some(NMAP_PROBE_URI)
    );
    assert_eq!(hit("OPTIONS sip:x SIP/2.0\r\nFROM: <SIP:NM@NM>\r\n\r\n"), Some(NMAP_PROBE_URI));
    // `sip:nm@nm` in To or Contact alone does not count; in the Request-URI it does
    assert_eq!(hit("OPTIONS sip:x SIP/2.0\r\nt: <sip:nm@nm>\r\nm: <sip:nm@nm>\r\n\r\n"), None);
    let c = run(b"OPTIONS sip:nm@nm SIP/2.0\r\n\r\n");
    assert_eq!(c.scanner.map(|h| h.field), Some(Field::RequestUri));
    let names = [
        ("v", Header::Via),
        ("Via", Header::Via),
        ("f", Header::From),
        ("From", Header::From),
        ("t", Header::To),
        ("To", Header::To),
        ("i", Header::CallId),
        ("CALL-ID", Header::CallId),
        ("CSeq", Header::CSeq),
        ("m", Header::Contact),
        ("contact", Header::Contact),
        ("l", Header::ContentLength),
        ("Content-Length", Header::ContentLength),
        ("User-Agent", Header::UserAgent),
        ("X", Header::Other),
        ("User-Agents", Header::Other),
        ("X-Very-Long-Header-Name", Header::Other),
    ];
    for (name, want) in names {
        let line = format!("{name} : value");
        let mut buf: Scratch = [0; SCRATCH_LEN];
        buf[..line.len()].copy_from_slice(line.as_bytes());
        assert_eq!(header_name(&buf, 0, line.len()).0, want, "{name}");
    }
}

#[test]
fn lf_line_endings() {
    assert_eq!(hit("REGISTER sip:a SIP/2.0\nFrom: <sip:1@a>\nUser-Agent: iWar\n\n"), Some("iwar"));
    assert_eq!(kind(b"SIP/2.0 200 OK\nVia: x\n\n"), Kind::Response(200));
}

#[test]
fn folded_user_agent() {
    assert_eq!(hit(&format!("{REGISTER}User-Agent: Foo\r\n  sundayddr\r\n\r\n")), Some("sundayddr"));
    assert_eq!(hit(&format!("{REGISTER}User-Agent: Foo\r\n\tbar\r\n SIVuS 1.0\r\n\r\n")), Some("sivus"));
    // a folded line belongs to its own header
    assert_eq!(hit(&format!("{REGISTER}Subject: x\r\n sipvicious\r\nUser-Agent: Foo\r\n\r\n")), None);
}

#[test]
fn responses_are_not_searched() {
    let c = run(b"SIP/2.0 200 OK\r\nFrom: <sip:nm@nm>;tag=root\r\nUser-Agent: friendly-scanner\r\n\r\n");
    assert_eq!(c, Classification { kind: Kind::Response(200), scanner: None });
}

#[test]
fn truncation_at_the_end_of_the_data() {
    let full = format!("{REGISTER}User-Agent: friendly-scanner\r\n\r\n");
    let ua_end = full.find("friendly-scanner").unwrap() + "friendly-scanner".len();
    // cut right after the signature: still found; cut inside it: not
    assert_eq!(hit(&full[..ua_end]), Some("friendly-scanner"));
    assert_eq!(hit(&full[..ua_end - 1]), None);
    assert_eq!(kind(&full.as_bytes()[..ua_end - 1]), Kind::Request(Method::Register));
    // a start line cut off is not SIP
    assert_eq!(kind(&full.as_bytes()[..20]), Kind::NotSip);
}

#[test]
fn user_agent_beyond_the_inspected_bytes() {
    let padding = format!("X-Padding: {}\r\n", "p".repeat(1400));
    let msg = format!("{REGISTER}{padding}User-Agent: friendly-scanner\r\n\r\n");
    assert!(msg.len() > INSPECT_LEN && msg.find("User-Agent").unwrap() > INSPECT_LEN - 20);
    let mut buf: Scratch = [0; SCRATCH_LEN];
    buf[..msg.len()].copy_from_slice(msg.as_bytes());
    let c = classify(&buf, msg.len(), &DEFAULT_SIGNATURES);
    assert_eq!(c, Classification { kind: Kind::Request(Method::Register), scanner: None });
    // the same message with less padding is caught
    let short = format!("{REGISTER}X-Padding: p\r\nUser-Agent: friendly-scanner\r\n\r\n");
    assert_eq!(hit(&short), Some("friendly-scanner"));
}

#[test]
fn many_short_lines_do_not_hide_a_user_agent() {
    let lines = "a:\r\n".repeat(300);
    assert_eq!(hit(&format!("{REGISTER}{lines}User-Agent: pplsip\r\n\r\n")), Some("pplsip"));
}

#[test]
fn signature_beyond_the_value_window() {
    let far = format!("{REGISTER}User-Agent: {} sipcli\r\n\r\n", "x".repeat(200));
    assert_eq!(hit(&far), None);
}

#[test]
fn default_table() {
    let t = &DEFAULT_SIGNATURES;
    assert_eq!(t.count, 14);
    let texts: Vec<&str> = (0..t.count as u8).map(|i| t.get(i).unwrap().text()).collect();
    for ua in super::DEFAULT_SCANNER_USER_AGENTS {
        assert!(texts.contains(&ua.to_ascii_lowercase().as_str()), "{ua}");
    }
    assert_eq!(texts[13], NMAP_PROBE_URI);
    // every signature filed once, in the bucket of its first four bytes
    let filed: usize = t.by_prefix.iter().map(|b| b.iter().filter(|&&i| i != 0).count()).sum();
    assert_eq!(filed, 14);
    assert!(t.get(14).is_none());
}

#[test]
fn custom_table_and_errors() {
    let ua = Field::UserAgent.bit();
    let t = SignatureTable::build(&[("Evil Dialer", ua)]).unwrap();
    let mut buf: Scratch = [0; SCRATCH_LEN];
    let msg = format!("{REGISTER}User-Agent: EVIL dialer 2\r\n\r\n");
    buf[..msg.len()].copy_from_slice(msg.as_bytes());
    let c = classify(&buf, msg.len(), &t);
    assert_eq!(c.scanner, Some(Hit { signature: 0, field: Field::UserAgent }));
    assert_eq!(SignatureTable::build(&[("abc", ua)]), Err(SignatureError::TooShort { index: 0, len: 3 }));
    let long = "x".repeat(33);
    assert_eq!(SignatureTable::build(&[(long.as_str(), ua)]), Err(SignatureError::TooLong { index: 0, len: 33 }));
    assert_eq!(SignatureTable::build(&[("abcd", 0)]), Err(SignatureError::NoField { index: 0 }));
    assert_eq!(SignatureTable::build(&[("tab\there", ua)]), Err(SignatureError::NotPrintable { index: 0 }));
    let texts: Vec<String> = (0..33).map(|i| format!("{i:02}-tool")).collect();
    let many: Vec<(&str, u8)> = texts.iter().map(|t| (t.as_str(), ua)).collect();
    assert_eq!(SignatureTable::build(&many), Err(SignatureError::TooMany { count: 33 }));
    assert!(SignatureTable::build(&many[..32]).is_ok());
    // signatures sharing their first four bytes share a bucket of four
    let same: Vec<String> = (0..5).map(|i| format!("tool{i}")).collect();
    let same: Vec<(&str, u8)> = same.iter().map(|t| (t.as_str(), ua)).collect();
    assert!(SignatureTable::build(&same[..4]).is_ok());
    assert_eq!(SignatureTable::build(&same), Err(SignatureError::Crowded { index: 4 }));
    assert!(SignatureError::TooLong { index: 2, len: 40 }.to_string().contains("signature 3 is 40 bytes"));
}

/// The first 16 bytes of `payload` as [`super::method::leading`] reads them, zero-padded.
fn leading(payload: &[u8]) -> Method {
    let mut b = [0u8; 16];
    let n = payload.len().min(16);
    b[..n].copy_from_slice(&payload[..n]);
    let w0 = u64::from_le_bytes(b[..8].try_into().unwrap());
    let w1 = u64::from_le_bytes(b[8..].try_into().unwrap());
    super::method::leading(w0, w1)
}

#[test]
fn the_leading_method_agrees_with_the_start_line_parser() {
    for m in Method::ALL.into_iter().skip(1) {
        let line = format!("{} sip:100@10.0.0.1 SIP/2.0\r\n\r\n", m.name());
        assert_eq!(leading(line.as_bytes()), m, "{line:?}");
        assert_eq!(kind(line.as_bytes()), Kind::Request(m));
    }
    for other in [
        &b"register sip:a SIP/2.0"[..],
        b"REGISTERS sip:a SIP/2.0",
        b"SUBSCRIBEX sip:a SIP/2.0",
        b"SUBSCRIBX sip:a SIP/2.0",
        b" REGISTER sip:a SIP/2.0",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"X-PROBE sip:a SIP/2.0",
        b"\r\n\r\n",
        b"REGISTER",
        b"0123456789abcdef REGISTER ",
    ] {
        assert_eq!(leading(other), Method::Unknown, "{:?}", String::from_utf8_lossy(other));
    }
}

#[test]
fn lines_past_the_read_limit_end_the_walk() {
    // lines that start like `User-Agent` are each read; past the limit the walk stops
    let decoys = |n: usize| "Un-Agent: x\r\n".repeat(n);
    let near = format!("{REGISTER}{}User-Agent: friendly-scanner\r\n\r\n", decoys(super::MAX_READ_LINES - 2));
    assert_eq!(hit(&near), Some("friendly-scanner"));
    let far = format!("{REGISTER}{}User-Agent: friendly-scanner\r\n\r\n", decoys(super::MAX_READ_LINES + 1));
    assert_eq!(run(far.as_bytes()), Classification { kind: Kind::Request(Method::Register), scanner: None });
    // lines that start otherwise cost no read, however many
    let other = format!("{REGISTER}{}User-Agent: friendly-scanner\r\n\r\n", "X-Agent: x\r\n".repeat(60));
    assert_eq!(hit(&other), Some("friendly-scanner"));
}

#[test]
fn only_the_first_of_a_repeated_header_is_searched() {
    assert_eq!(hit("OPTIONS sip:a SIP/2.0\r\nUser-Agent: Foo\r\nUser-Agent: sipvicious\r\n\r\n"), None);
    assert_eq!(hit("OPTIONS sip:a SIP/2.0\r\nf: <sip:1@a>\r\nFrom: <sip:nm@nm>\r\n\r\n"), None);
    assert_eq!(hit("OPTIONS sip:a SIP/2.0\r\nFrom: <sip:nm@nm>\r\nf: <sip:1@a>\r\n\r\n"), Some(NMAP_PROBE_URI));
}

#[test]
fn a_value_longer_than_the_window_ends_where_the_search_stops() {
    // the value runs past the bytes searched; the next header is still read
    let long = format!("OPTIONS sip:a SIP/2.0\r\nUser-Agent: Foo {}\r\nFrom: <sip:nm@nm>\r\n\r\n", "y".repeat(300));
    let c = run(long.as_bytes());
    assert_eq!(c.scanner.map(|h| h.field), Some(Field::From));
}

#[test]
fn signatures_starting_with_a_digit_or_sharing_a_bucket() {
    let (ua, from) = (Field::UserAgent.bit(), Field::From.bit());
    // the search passes over word starts by their first letter, bucket and first 8 bytes: a
    // digit, a second signature of a bucket and a word that starts like the first one
    // (`sipvicious`) but is the second (`sipvxyz1`) are still found
    let t = SignatureTable::build(&[("1234abcd", ua), ("sipvicious", ua), ("sipvxyz1", ua), ("x-ray", from)]).unwrap();
    let found = |msg: &str| {
        let mut buf: Scratch = [0; SCRATCH_LEN];
        buf[..msg.len()].copy_from_slice(msg.as_bytes());
        classify(&buf, msg.len(), &t).scanner.map(|h| t.get(h.signature).unwrap().text().to_owned())
    };
    let with_ua = |ua: &str| found(&format!("{REGISTER}User-Agent: {ua}\r\n\r\n"));
    assert_eq!(with_ua("Foo 1234ABCD/2"), Some("1234abcd".to_owned()));
    assert_eq!(with_ua("Foo 01234abcd"), None, "not at a word start");
    assert_eq!(with_ua("SIPVXYZ1"), Some("sipvxyz1".to_owned()));
    assert_eq!(with_ua("sipviciou"), None);
    assert_eq!(with_ua("x sipvicious"), Some("sipvicious".to_owned()));
    // a signature for From only is not looked for in the User-Agent
    assert_eq!(with_ua("x-ray"), None);
    assert_eq!(found("OPTIONS sip:a SIP/2.0\r\nFrom: <sip:x-ray@a>\r\n\r\n"), Some("x-ray".to_owned()));
}
