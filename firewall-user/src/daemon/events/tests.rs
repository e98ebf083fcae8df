use std::time::Duration;

use firewall_common::{
    addr::Addr6,
    rate::{event, RateEvent, FAMILY_V4, FAMILY_V6},
    reason::Reason,
    sip::{policy::method_key, Classifier, Field, Method, Scratch, SCRATCH_LEN},
};

use super::{
    decode,
    describe::{drop_line, limit_name, scanner_line, signature, SignatureLabels},
    host_of, jail_for, source_of, Report,
};
use crate::{
    detection::detect::Proof,
    detection::jail::{Engine, NoHistory, Outcome},
    metrics::Metrics,
    rules::{jails::DetectorKind, sip::SipRules, Rules},
};

fn v4(a: [u8; 4]) -> Addr6 {
    Addr6 { hi: 0, lo: u64::from(u32::from_be_bytes(a)) }
}

fn sip_dropped(reason: Reason, detail: u32, addr: Addr6, family: u32) -> RateEvent {
    RateEvent { kind: event::SIP_DROPPED, svc: 1, family, dropped: 1, status: reason as u32, detail, addr, ts: 0 }
}

/// What the kernel reports for `payload` under `rules`: the classifier's hit, encoded as the
/// SIP inspector encodes it.
fn kernel_detail(payload: &[u8], rules: &SipRules) -> u32 {
    let mut buf: Scratch = [0; SCRATCH_LEN];
    buf[..payload.len()].copy_from_slice(payload);
    let table = rules.signatures().expect("valid signatures");
    let mut c = Classifier::new(payload.len());
    c.run(&mut buf, &table);
    let (index, field) = c.hit().expect("a scanner signature");
    index | field << 8
}

const SIPVICIOUS_OPTIONS: &[u8] = b"OPTIONS sip:100@192.0.2.10 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK-1;rport\r\n\
    Max-Forwards: 70\r\n\
    To: \"sipvicious\"<sip:100@192.0.2.10>\r\n\
    From: \"sipvicious\"<sip:100@1.1.1.1>;tag=6134\r\n\
    User-Agent: friendly-scanner\r\n\
    Call-ID: 1234\r\n\
    CSeq: 1 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

const NMAP_OPTIONS: &[u8] = b"OPTIONS sip:nm SIP/2.0\r\n\
    Via: SIP/2.0/UDP nm;branch=foo;rport\r\n\
    From: <sip:nm@nm>;tag=root\r\n\
    To: <sip:nm2@nm2>\r\n\
    Call-ID: 50000\r\n\
    CSeq: 42 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

#[test]
fn a_scanner_hit_reads_as_the_signature_and_field_the_kernel_matched() {
    let rules = SipRules::default();
    let detail = kernel_detail(SIPVICIOUS_OPTIONS, &rules);
    let ev = sip_dropped(Reason::SipScanner, detail, v4([203, 0, 113, 9]), FAMILY_V4);
    let Report::Scanner { svc, index, field } = decode(&ev) else { panic!("{:?}", decode(&ev)) };
    assert_eq!((svc, field), (1, Field::UserAgent));
    assert_eq!(
        scanner_line(&source_of(&ev), signature(&rules, index), index, field),
        "203.0.113.9: scanner signature \"friendly-scanner\" in User-Agent"
    );

    let detail = kernel_detail(NMAP_OPTIONS, &rules);
    let ev = sip_dropped(Reason::SipScanner, detail, v4([198, 51, 100, 7]), FAMILY_V4);
    let Report::Scanner { index, field, .. } = decode(&ev) else { panic!("{:?}", decode(&ev)) };
    assert_eq!(
        scanner_line(&source_of(&ev), signature(&rules, index), index, field),
        "198.51.100.7: scanner signature \"sip:nm@nm\" in From"
    );
}

#[test]
fn every_signature_index_of_the_kernel_table_names_its_rules_text() {
    let mut rules = SipRules::default();
    rules.scanner_user_agents.push("Custom-Agent".into());
    let table = rules.signatures().unwrap();
    let n = rules.scanner_user_agents.len() + rules.scanner_uris.len();
    for i in 0..n as u32 {
        let text = signature(&rules, i).unwrap();
        assert_eq!(table.get(i as u8).unwrap().text(), text.to_ascii_lowercase(), "index {i}");
    }
    assert_eq!(signature(&rules, n as u32), None);
    assert_eq!(signature(&rules, 255), None);
}

#[test]
fn an_unknown_signature_index_is_named_by_number() {
    let ev = sip_dropped(Reason::SipScanner, 40 | 2 << 8, v4([192, 0, 2, 1]), FAMILY_V4);
    let Report::Scanner { index, field, .. } = decode(&ev) else { panic!() };
    assert_eq!((index, field), (40, Field::RequestUri));
    let rules = SipRules::default();
    let text = signature(&rules, index);
    assert_eq!(scanner_line(&source_of(&ev), text, index, field), "192.0.2.1: scanner signature #40 in Request-URI");
}

#[test]
fn an_ipv6_source_is_reported_as_its_64() {
    let addr = Addr6::from_be_bytes("2001:db8:1:2::".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let ev = sip_dropped(Reason::SipNotSip, 0, addr, FAMILY_V6);
    let Report::SipDropped { reason, method, .. } = decode(&ev) else { panic!() };
    assert_eq!(drop_line(&source_of(&ev), reason, method), "2001:db8:1:2::/64: not SIP on the sip port, dropped");
    assert_eq!(host_of(&ev), "2001:db8:1:2::".parse::<std::net::IpAddr>().unwrap());
}

#[test]
fn the_other_sip_drops_say_why() {
    let src = v4([198, 51, 100, 7]);
    let line = |reason: Reason, detail: u32| {
        let ev = sip_dropped(reason, detail, src, FAMILY_V4);
        match decode(&ev) {
            Report::SipDropped { reason, method, .. } => drop_line(&source_of(&ev), reason, method),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        line(Reason::SipMethod, Method::Subscribe as u32),
        "198.51.100.7: SIP method SUBSCRIBE dropped (not in allowed_methods)"
    );
    assert_eq!(
        line(Reason::SipMethod, Method::Unknown as u32),
        "198.51.100.7: SIP request with a method outside the RFC ones dropped (not in allowed_methods)"
    );
    assert_eq!(
        line(Reason::SipStealthOptions, Method::Options as u32),
        "198.51.100.7: OPTIONS dropped (stealth_options)"
    );
    assert_eq!(line(Reason::SipMethodLimited, 5), "198.51.100.7: SIP packet dropped (sip_method_limited)");
    let ev = RateEvent { status: 200, ..sip_dropped(Reason::SipNotSip, 0, src, FAMILY_V4) };
    assert_eq!(decode(&ev), Report::SipDropped { svc: 1, reason: None, method: Method::Unknown });
}

#[test]
fn a_rate_limit_report_names_the_service_or_the_method_limit() {
    let ev = |svc| RateEvent { kind: event::RATE_LIMITED, svc, family: FAMILY_V4, dropped: 7, ..Default::default() };
    assert_eq!(decode(&ev(3)), Report::RateLimited { svc: 3, method: None });
    let register = decode(&ev(method_key(3, Method::Register as u32)));
    assert_eq!(register, Report::RateLimited { svc: 3, method: Some(Method::Register) });
    assert_eq!(limit_name("sip", None), "sip rate limit");
    assert_eq!(limit_name("sip", Some(Method::Register)), "sip REGISTER limit");
    let failure = RateEvent { kind: event::SIP_FAILURE, status: 404, ..ev(1) };
    assert_eq!(decode(&failure), Report::SipFailure { status: 404 });
    assert_eq!(decode(&RateEvent { kind: 99, ..ev(1) }), Report::Unknown { kind: 99 });
}

#[test]
fn signature_labels_stay_those_of_the_rules_in_force() {
    let m = Metrics::default();
    let c = &m.sip_scanner_packets;
    let mut labels = SignatureLabels::default();
    let old = SipRules::default();
    for i in [0, 1, 0] {
        let l = labels.label(signature(&old, i), &old, c);
        c.with_label_values(&[l]).inc();
    }
    let text = m.render(Vec::new());
    assert!(text.contains("sipwall_sip_scanner_packets_total{signature=\"friendly-scanner\"} 2"), "{text}");
    assert!(text.contains("sipwall_sip_scanner_packets_total{signature=\"sipvicious\"} 1"), "{text}");

    // a reload keeps sipvicious only: friendly-scanner's series goes when the next one appears
    let new = SipRules { scanner_user_agents: vec!["sipvicious".into(), "evil-agent".into()], ..SipRules::default() };
    for i in [1, 1, 40] {
        let l = labels.label(signature(&new, i), &new, c);
        c.with_label_values(&[l]).inc();
    }
    let text = m.render(Vec::new());
    assert!(!text.contains("friendly-scanner"), "{text}");
    assert!(text.contains("sipwall_sip_scanner_packets_total{signature=\"sipvicious\"} 1"), "{text}");
    assert!(text.contains("sipwall_sip_scanner_packets_total{signature=\"evil-agent\"} 2"), "{text}");
    assert!(text.contains("sipwall_sip_scanner_packets_total{signature=\"unknown\"} 1"), "{text}");
}

#[test]
fn one_proven_scanner_report_bans_its_source_in_the_scanner_jail() {
    let rules = Rules::default_rules();
    let mut e = Engine::new(&rules.detection, Vec::new(), 64);
    let j = jail_for(&e, &DetectorKind::Scanner, Some("sip")).expect("the built-in scanner jail");
    assert_eq!(e.jails[j].spec.name, "scanner");
    let mut ev = sip_dropped(Reason::SipScanner, 0, v4([203, 0, 113, 9]), FAMILY_V4);
    // over a TCP connection whose handshake completed
    ev.detail |= firewall_common::proof::SCANNER_PROVEN;
    assert!(matches!(decode(&ev), Report::Scanner { index: 0, field: Field::UserAgent, .. }), "{:?}", decode(&ev));
    let line = scanner_line(&source_of(&ev), Some("friendly-scanner"), 0, Field::UserAgent);
    match e.failure(j, host_of(&ev), None, Some(&line), 0, &NoHistory, Proof::Proven) {
        Outcome::Ban(o) => {
            assert_eq!(o.target.to_string(), "203.0.113.9/32");
            assert_eq!(o.bantime, Some(Duration::from_secs(86_400)));
            assert_eq!(o.lines, vec![line]);
            assert_eq!(o.evidence, Proof::Proven);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unproven_scanner_report_bans_no_one_unless_the_jail_trusts_it() {
    let mut rules = Rules::default_rules();
    let mut e = Engine::new(&rules.detection, Vec::new(), 64);
    let j = jail_for(&e, &DetectorKind::Scanner, Some("sip")).unwrap();
    let ev = sip_dropped(Reason::SipScanner, 0, v4([203, 0, 113, 9]), FAMILY_V4);
    for n in 1..=3 {
        assert_eq!(
            e.failure(j, host_of(&ev), None, Some("x"), n, &NoHistory, Proof::Unproven),
            Outcome::Unproven(n as u32)
        );
    }
    assert!(e.pending(host_of(&ev)).is_empty());
    assert_eq!(e.pending_unproven(host_of(&ev))[0].1.times.len(), 3, "kept apart, for `why`");
    for jail in &mut rules.detection.jails {
        jail.trust_unproven = jail.detector == DetectorKind::Scanner;
    }
    let mut e = Engine::new(&rules.detection, Vec::new(), 64);
    match e.failure(j, host_of(&ev), None, Some("x"), 0, &NoHistory, Proof::Unproven) {
        Outcome::Ban(o) => {
            assert_eq!(o.evidence, Proof::Unproven);
            assert!(o.reason.ends_with(", unproven (trust_unproven)"), "{}", o.reason);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_jail_with_services_takes_only_their_reports() {
    let mut rules = Rules::default_rules();
    for j in &mut rules.detection.jails {
        if j.detector == DetectorKind::Flood {
            j.services = vec!["ssh".into()];
        }
    }
    let e = Engine::new(&rules.detection, Vec::new(), 64);
    assert_eq!(jail_for(&e, &DetectorKind::Flood, Some("sip")), None);
    assert!(jail_for(&e, &DetectorKind::Flood, Some("ssh")).is_some());
    // sip-wire reports are about no service
    assert!(jail_for(&e, &DetectorKind::SipWire, None).is_some());
    for j in &mut rules.detection.jails {
        j.enabled = j.detector != DetectorKind::Scanner;
    }
    let e = Engine::new(&rules.detection, Vec::new(), 64);
    assert_eq!(jail_for(&e, &DetectorKind::Scanner, Some("sip")), None);
}
