use super::*;
use crate::detection::sources::ami::GAP_RECORD;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An event as the manager writes it: `Event`, `Privilege`, then `fields` in order.
fn event(name: &str, fields: &[(&str, &str)]) -> String {
    let mut s = format!("Event: {name}\nPrivilege: security,all");
    for (k, v) in fields {
        s.push_str(&format!("\n{k}: {v}"));
    }
    s
}

/// The common fields, required in this order (main/security_events.c `sec_events`).
fn common<'a>(
    service: &'a str,
    version: &'a str,
    account: &'a str,
    session: &'a str,
    local: &'a str,
    remote: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("EventTV", "2026-05-10T09:14:03.418+0000"),
        ("Severity", "Error"),
        ("Service", service),
        ("EventVersion", version),
        ("AccountID", account),
        ("SessionID", session),
        ("LocalAddress", local),
        ("RemoteAddress", remote),
    ]
}

/// res_pjsip/security_events.c: the Call-ID as SessionID, no Module, no SessionTV.
fn pjsip(name: &str, account: &str, remote: &str, extra: &[(&str, &str)]) -> String {
    let mut f = common("PJSIP", "1", account, "a84b4c76e66710@pc33.example.com", "IPV4/UDP/198.51.100.1/5060", remote);
    f.extend_from_slice(extra);
    event(name, &f)
}

/// channels/sip/security_events.c: the dialog's pointer as SessionID.
fn chan_sip(name: &str, version: &str, account: &str, remote: &str, extra: &[(&str, &str)]) -> String {
    let mut f = common("SIP", version, account, "0x55d0c1a2b3c0", "IPV4/UDP/198.51.100.1/5060", remote);
    f.extend_from_slice(extra);
    event(name, &f)
}

/// main/manager.c: the session's pointer as SessionID, its start as SessionTV.
fn manager(name: &str, account: &str, remote: &str, extra: &[(&str, &str)]) -> String {
    let mut f = common("AMI", "1", account, "0x7f3a5c001234", "IPV4/TCP/127.0.0.1/5038", remote);
    f.extend_from_slice(extra);
    f.push(("SessionTV", "2026-05-10T09:14:02.001+0000"));
    event(name, &f)
}

fn feed(d: &mut AmiSecurity, record: &str) -> Vec<Event> {
    let mut out = Vec::new();
    d.feed(record, &mut out);
    out
}

fn one(record: &str) -> Failure {
    let mut events = feed(&mut AmiSecurity::new(), record);
    assert_eq!(events.len(), 1, "{record}\n{events:?}");
    match events.remove(0) {
        Event::Failure(f) => f,
        e => panic!("{e:?}"),
    }
}

fn none(record: &str) {
    let events = feed(&mut AmiSecurity::new(), record);
    assert!(events.is_empty(), "{record}\n{events:?}");
}

#[test]
fn failures_of_each_driver_name_event_account_and_address() {
    let f = one(&pjsip("InvalidAccountID", "1001", "IPV4/UDP/192.0.2.10/5060", &[]));
    assert_eq!(
        (f.host, f.rule, f.user.as_deref(), f.proof),
        (ip("192.0.2.10"), "InvalidAccountID", Some("1001"), Proof::Unproven)
    );
    assert_eq!(f.attempts, 1);

    let acl = pjsip("FailedACL", "alice", "IPV6/TCP/2001:db8::10/40112", &[("ACLName", "not_match_endpoint_acl")]);
    let f = one(&acl);
    assert_eq!((f.host, f.rule, f.proof), (ip("2001:db8::10"), "FailedACL", Proof::Proven));

    let crf = [
        ("Challenge", "1746868443/5f0e6a1b2c3d4e5f60718293a4b5c6d7"),
        ("Response", "0123abcd"),
        ("ExpectedResponse", ""),
    ];
    let f = one(&pjsip("ChallengeResponseFailed", "alice", "IPV4/TLS/192.0.2.11/5061", &crf));
    assert_eq!(
        (f.host, f.rule, f.user.as_deref(), f.proof),
        (ip("192.0.2.11"), "ChallengeResponseFailed", Some("alice"), Proof::Proven)
    );

    let pw = [("Challenge", "4b2e1f0a"), ("ReceivedChallenge", "4b2e1f0a"), ("ReceivedHash", "9f8e7d6c")];
    let f = one(&chan_sip("InvalidPassword", "2", "2001", "IPV4/UDP/192.0.2.12/5060", &pw));
    // chan_sip's address is the Via maddr: a rule no wire proof upgrades
    assert_eq!((f.host, f.rule, f.proof), (ip("192.0.2.12"), UNTRUSTED_EVENT, Proof::Unproven));

    let f = one(&manager("InvalidAccountID", "admin", "IPV4/TCP/203.0.113.5/51234", &[]));
    assert_eq!(
        (f.host, f.rule, f.user.as_deref(), f.proof),
        (ip("203.0.113.5"), "InvalidAccountID", Some("admin"), Proof::Proven)
    );
    let f = one(&manager("InvalidPassword", "admin", "IPV6/TLS/2001:db8::5/51234", &[]));
    assert_eq!((f.host, f.proof), (ip("2001:db8::5"), Proof::Proven));
    let md5 = [("Challenge", "318464521"), ("Response", "00ff"), ("ExpectedResponse", "a1b2")];
    assert_eq!(one(&manager("ChallengeResponseFailed", "admin", "IPV4/TCP/203.0.113.5/1", &md5)).proof, Proof::Proven);
    assert_eq!(one(&manager("FailedACL", "admin", "IPV4/TCP/203.0.113.6/1", &[])).host, ip("203.0.113.6"));
    let f = one(&manager("RequestNotAllowed", "", "IPV4/TCP/203.0.113.7/1", &[("RequestType", "Action: Originate")]));
    assert_eq!((f.rule, f.user, f.proof), ("RequestNotAllowed", None, Proof::Proven));
    let auth = [("AuthMethod", "plain")];
    assert_eq!(one(&pjsip("AuthMethodNotAllowed", "alice", "IPV4/WS/192.0.2.13/80", &auth)).proof, Proof::Proven);
}

#[test]
fn a_bad_format_counts_only_before_a_login() {
    // RequestBadFormat has no AccountID among its required fields: it comes after SessionTV
    let bad = |account: &str| {
        let mut f = common("AMI", "1", "", "0x7f3a5c001234", "IPV4/TCP/127.0.0.1/5038", "IPV4/TCP/198.51.100.9/40000");
        f.remove(4);
        f.extend([
            ("RequestType", "Action: NONE"),
            ("SessionTV", "2026-05-10T09:14:02.001+0000"),
            ("AccountID", account),
        ]);
        event("RequestBadFormat", &f)
    };
    let f = one(&bad(""));
    assert_eq!((f.host, f.rule, f.proof), (ip("198.51.100.9"), "RequestBadFormat", Proof::Proven));
    // a logged-in client that sent an empty message
    none(&bad("admin"));
}

#[test]
fn informational_events_and_limits_are_no_failures() {
    none(&pjsip("ChallengeSent", "alice", "IPV4/UDP/192.0.2.20/5060", &[("Challenge", "")]));
    none(&chan_sip("ChallengeSent", "1", "2001", "IPV4/UDP/192.0.2.20/5060", &[("Challenge", "4b2e1f0a")]));
    none(&pjsip(
        "RequestNotSupported",
        "alice",
        "IPV4/UDP/192.0.2.20/5060",
        &[("RequestType", "registrar_requested_aor_not_found")],
    ));
    none(&chan_sip("SessionLimit", "1", "2001", "IPV4/UDP/192.0.2.20/5060", &[]));
    none(&manager("SessionLimit", "admin", "IPV4/TCP/192.0.2.20/1", &[]));
    none(&chan_sip("InvalidTransport", "1", "2001", "IPV4/UDP/192.0.2.20/5060", &[("AttemptedTransport", "UDP")]));
    none(&pjsip("MemoryLimit", "alice", "IPV4/UDP/192.0.2.20/5060", &[]));
    none(&pjsip("LoadAverageLimit", "alice", "IPV4/UDP/192.0.2.20/5060", &[]));
    none(&pjsip(
        "UnexpectedAddress",
        "alice",
        "IPV4/UDP/192.0.2.20/5060",
        &[("ExpectedAddress", "IPV4/UDP/192.0.2.21/5060")],
    ));

    let mut d = AmiSecurity::new();
    let mut out = Vec::new();
    let ok = pjsip("SuccessfulAuth", "alice", "IPV4/TCP/192.0.2.22/5060", &[("UsingPassword", "1")]);
    let s = d.read(&ok, &mut out).expect("a success");
    assert!(out.is_empty());
    assert_eq!(
        s,
        Success { host: ip("192.0.2.22"), user: Some("alice".into()), service: "PJSIP".into(), proof: Proof::Proven }
    );
    let ok = pjsip("SuccessfulAuth", "alice", "IPV4/UDP/192.0.2.22/5060", &[("UsingPassword", "1")]);
    assert_eq!(d.read(&ok, &mut out).unwrap().proof, Proof::Unproven);
    assert_eq!(SECURITY_EVENTS.len(), 15);
    assert!(SECURITY_EVENTS.contains(&"InvalidTransport") && !SECURITY_EVENTS.contains(&""));
}

#[test]
fn remote_addresses_as_asterisk_writes_them() {
    let t = |v: &str| remote_address(v);
    assert_eq!(t("IPV4/UDP/192.0.2.1/5060"), Some((ip("192.0.2.1"), Transport::Udp)));
    assert_eq!(t("IPV6/TCP/2001:db8::1/5060"), Some((ip("2001:db8::1"), Transport::Tcp)));
    assert_eq!(t("IPV6/WSS/::1/443"), Some((ip("::1"), Transport::Wss)));
    assert_eq!(t("IPV6/UDP/fe80::1%eth0/5060"), Some((ip("fe80::1"), Transport::Udp)));
    // a driver that knows no transport writes none
    assert_eq!(t("IPV4/192.0.2.1/5060"), Some((ip("192.0.2.1"), Transport::Unknown)));
    for bad in [
        "IPV6/UDP/[2001:db8::1]/5060",
        "IPV4/UDP/2001:db8::1/5060",
        "IPV6/UDP/192.0.2.1/5060",
        "IPV4/SCTP/192.0.2.1/5060",
        "IPV4/UDP/192.0.2.1/70000",
        "IPV4/UDP/192.0.2.1/",
        "IPV4/UDP/192.0.2.1/5060/x",
        "IPV4/UDP/192.0.2.1%eth0/5060",
        "IPV6/UDP/fe80::1%/5060",
        "IPV4/UDP/host.example/5060",
        "(null)",
    ] {
        assert_eq!(t(bad), None, "{bad}");
    }
    assert!(!Transport::Udp.connected() && !Transport::Unknown.connected() && Transport::Ws.connected());
    let f = one(&pjsip("InvalidAccountID", "x", "IPV4/192.0.2.30/5060", &[]));
    assert_eq!((f.host, f.proof), (ip("192.0.2.30"), Proof::Unproven));
}

#[test]
fn attacker_text_in_a_value_moves_no_address() {
    let f = one(&pjsip("InvalidAccountID", "x RemoteAddress: IPV4/UDP/9.9.9.9/1", "IPV4/UDP/192.0.2.40/5060", &[]));
    assert_eq!((f.host, f.user.as_deref()), (ip("192.0.2.40"), Some("x RemoteAddress: IPV4/UDP/9.9.9.9/1")));
    let crf = [
        ("Challenge", "RemoteAddress: IPV4/TCP/9.9.9.9/1"),
        ("Response", "RemoteAddress: IPV4/TCP/9.9.9.9/1"),
        ("ExpectedResponse", ""),
    ];
    let f = one(&pjsip("ChallengeResponseFailed", "alice", "IPV4/UDP/192.0.2.41/5060", &crf));
    assert_eq!((f.host, f.proof), (ip("192.0.2.41"), Proof::Unproven));
    // a lone carriage return stays inside its value
    assert_eq!(
        one(&pjsip("InvalidAccountID", "a\rRemoteAddress: IPV4/TCP/9.9.9.9/1", "IPV4/UDP/192.0.2.42/5060", &[])).host,
        ip("192.0.2.42")
    );
}

#[test]
fn records_not_laid_out_as_asterisk_writes_them_are_refused() {
    let good = pjsip("InvalidAccountID", "1001", "IPV4/TCP/192.0.2.50/5060", &[]);
    one(&good);
    // the manager's own fields, where timestampevents and systemname put them
    one(&good.replacen(
        "Privilege: security,all",
        "Privilege: security,all\nTimestamp: 1746868443.418000\nSystemName: pbx1",
        1,
    ));
    let injected = [
        // a line break in AccountID (chan_sip decodes %0D%0A): a second address
        good.replacen("AccountID: 1001", "AccountID: 1001\nRemoteAddress: IPV4/TCP/9.9.9.9/1", 1),
        good.replacen(
            "AccountID: 1001",
            "AccountID: 1001\nSessionID: x\nLocalAddress: IPV4/TCP/1.1.1.1/1\nRemoteAddress: IPV4/TCP/9.9.9.9/1",
            1,
        ),
        format!("{good}\nRemoteAddress: IPV4/TCP/9.9.9.9/1"),
        format!("{good}\nModule: res_pjsip\nModule: x"),
        format!("{good}\nUnknown: 1"),
        good.replacen("\nLocalAddress: IPV4/UDP/198.51.100.1/5060", "", 1),
        good.replacen("Privilege: security,all\n", "", 1),
        good.replacen("Privilege: security,all", "Privilege: security,all\nSystemName: a\nTimestamp: 1", 1),
        good.replacen("Severity: Error", "Severity:Error", 1),
        good.replacen("Event: InvalidAccountID", "Event: Hangup", 1),
        format!("{good}\n"),
        GAP_RECORD.to_owned(),
        String::new(),
    ];
    for r in &injected {
        none(r);
    }
}

#[test]
fn after_a_chan_sip_or_unreadable_record_nothing_is_proven_until_the_next_sync() {
    let tcp = pjsip("InvalidAccountID", "1001", "IPV4/TCP/192.0.2.60/5060", &[]);
    let proof = |d: &mut AmiSecurity| match &feed(d, &tcp)[..] {
        [Event::Failure(f)] => f.proof,
        e => panic!("{e:?}"),
    };
    let mut d = AmiSecurity::new();
    assert_eq!(proof(&mut d), Proof::Proven);
    // chan_sip: its address is the top Via's maddr, whatever the transport
    let f = feed(&mut d, &chan_sip("InvalidAccountID", "1", "2001", "IPV4/TCP/192.0.2.61/5060", &[]));
    assert!(matches!(&f[..], [Event::Failure(f)] if f.proof == Proof::Unproven && f.host == ip("192.0.2.61")), "{f:?}");
    // what follows may have been written by the text of that event
    assert_eq!(proof(&mut d), Proof::Unproven);
    assert_eq!(proof(&mut d), Proof::Unproven);
    feed(&mut d, SYNC_RECORD);
    assert_eq!(proof(&mut d), Proof::Proven);
    for doubt in [GAP_RECORD, "Event: InvalidAccountID\nPrivilege: security,all", "garbage"] {
        feed(&mut d, doubt);
        assert_eq!(proof(&mut d), Proof::Unproven, "{doubt}");
        feed(&mut d, SYNC_RECORD);
        assert_eq!(proof(&mut d), Proof::Proven);
    }
    // a service Asterisk 20 does not have is not trusted either
    let other =
        event("FailedACL", &common("XMPP", "1", "x", "s", "IPV4/TCP/198.51.100.1/5222", "IPV4/TCP/192.0.2.62/5222"));
    assert_eq!(one(&other).proof, Proof::Unproven);
}

#[test]
fn a_nonce_echoed_over_udp_proves_nothing() {
    // chan_sip: the nonce sent (ChallengeSent) comes back from the same RemoteAddress, but that
    // address is the client's Via maddr, and the 401 went to its real source
    let mut d = AmiSecurity::new();
    feed(&mut d, SYNC_RECORD);
    let sent = chan_sip("ChallengeSent", "1", "2001", "IPV4/UDP/192.0.2.70/5060", &[("Challenge", "4b2e1f0a")]);
    assert!(feed(&mut d, &sent).is_empty());
    let pw = [("Challenge", "4b2e1f0a"), ("ReceivedChallenge", "4b2e1f0a"), ("ReceivedHash", "9f8e7d6c")];
    let f = feed(&mut d, &chan_sip("InvalidPassword", "2", "2001", "IPV4/UDP/192.0.2.70/5060", &pw));
    assert!(matches!(&f[..], [Event::Failure(f)] if f.proof == Proof::Unproven), "{f:?}");
    // pjsip: ChallengeSent has an empty Challenge, and the 401 goes to the Via's maddr
    let mut d = AmiSecurity::new();
    feed(&mut d, &pjsip("ChallengeSent", "alice", "IPV4/UDP/192.0.2.71/5060", &[("Challenge", "")]));
    let crf =
        [("Challenge", "1746868443/5f0e6a1b2c3d4e5f60718293a4b5c6d7"), ("Response", "00"), ("ExpectedResponse", "")];
    let f = feed(&mut d, &pjsip("ChallengeResponseFailed", "alice", "IPV4/UDP/192.0.2.71/5060", &crf));
    assert!(matches!(&f[..], [Event::Failure(f)] if f.proof == Proof::Unproven), "{f:?}");
}
