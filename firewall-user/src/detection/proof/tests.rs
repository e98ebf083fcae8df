use firewall_common::rate::{event, RateEvent};

use super::*;

const PHONE: &str = "198.51.100.7";
const WAIT: u64 = WAIT_MS;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn answer(status: &str, call: &str, method: &str, tag: &str, nonce: Option<&str>) -> Vec<u8> {
    let mut t = format!(
        "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\nCall-ID: {call}\r\n\
         From: <sip:a@h>;tag=f1\r\nTo: <sip:a@h>;tag={tag}\r\nCSeq: 1 {method}\r\n"
    );
    if let Some(n) = nonce {
        t.push_str(&format!("WWW-Authenticate: Digest realm=\"asterisk\",nonce=\"{n}\",algorithm=MD5\r\n"));
    }
    t.push_str("Content-Length: 0\r\n\r\n");
    t.into_bytes()
}

fn request(method: &str, call: &str, to_tag: Option<&str>, nonce: Option<&str>) -> Vec<u8> {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let mut t = format!("{method} sip:h SIP/2.0\r\nCall-ID: {call}\r\nTo: <sip:a@h>{tag}\r\nCSeq: 2 {method}\r\n");
    if let Some(n) = nonce {
        t.push_str(&format!(
            "Authorization: Digest username=\"a\",realm=\"asterisk\",nonce=\"{n}\",response=\"0\"\r\n"
        ));
    }
    t.push_str("\r\n");
    t.into_bytes()
}

fn ev(status: u32) -> RateEvent {
    RateEvent { kind: event::SIP_FAILURE, status, ..RateEvent::default() }
}

#[test]
fn a_phone_that_answers_its_challenge_and_succeeds_is_known_good() {
    let mut p = Proofs::new(86_400_000, 100);
    let phone = ip(PHONE);
    let c =
        p.answered(phone, 5060, &answer("401 Unauthorized", "reg-1", "REGISTER", "t1", Some("n-1")), 1_000).unwrap();
    p.challenged(phone, c, 1_000);
    assert_eq!(p.call(phone, c, 1_000), Proof::Unproven);
    assert!(p.request(phone, 5060, &request("REGISTER", "reg-1", None, Some("n-1")), 1_050).is_empty());
    assert_eq!(p.call(phone, c, 1_050), Proof::Proven);
    assert_eq!(p.host(phone, 1_050), Some(Token::Nonce));
    let ok = p.answered(phone, 5060, &answer("200 OK", "reg-1", "REGISTER", "t1", None), 1_060).unwrap();
    assert_eq!(p.succeeded(phone, ok, 1_060), Some(1_060 + 86_400_000));
    let (g, until) = p.good(phone, 2_000).unwrap();
    assert_eq!((g.method.as_str(), g.since, until), ("REGISTER", 1_060, 1_060 + 86_400_000));
    assert_eq!(p.found, [1, 0]);
    assert_eq!(p.expire(1_060 + 86_400_000), [phone]);
    assert!(p.good(phone, 1_060 + 86_400_000).is_none());
}

#[test]
fn a_forger_never_proves_the_address_it_uses() {
    let mut p = Proofs::new(86_400_000, 100);
    let victim = ip(PHONE);
    // forged REGISTERs from the victim draw challenges and 403s to it; the forger sees none
    for i in 0..10 {
        let call = format!("forged-{i}");
        let c =
            p.answered(victim, 5060, &answer("401 Unauthorized", &call, "REGISTER", "t", Some("n9")), 1_000).unwrap();
        p.challenged(victim, c, 1_000);
        let c = p.answered(victim, 5060, &answer("403 Forbidden", &call, "REGISTER", "tx", None), 1_000).unwrap();
        assert_eq!(p.failure(victim, c, ev(403), 1_000), None, "waits for a proof");
        // guessed tokens prove nothing
        let guess = request("REGISTER", &call, Some("guess"), Some("also-a-guess"));
        assert!(p.request(victim, 5060, &guess, 1_001).is_empty());
        // a 200 to a forged OPTIONS in a challenged call makes no one known good
        let o = p.answered(victim, 5060, &answer("200 OK", &call, "OPTIONS", "t", None), 1_002).unwrap();
        assert_eq!(p.succeeded(victim, o, 1_002), None);
        let r = p.answered(victim, 5060, &answer("200 OK", &call, "REGISTER", "t", None), 1_002).unwrap();
        assert_eq!(p.succeeded(victim, r, 1_002), None, "its request carried no nonce of the host's");
    }
    assert!(p.due(1_000 + WAIT - 1).is_empty());
    let due = p.due(1_000 + WAIT);
    assert_eq!(due.len(), 10, "judged unproven after the wait");
    assert!(p.host(victim, 2_000).is_none() && p.good(victim, 2_000).is_none());
}

#[test]
fn the_ack_of_a_failed_invite_proves_its_failure() {
    let mut p = Proofs::new(0, 100);
    let caller = ip("203.0.113.9");
    let c = p.answered(caller, 5070, &answer("404 Not Found", "inv-1", "INVITE", "as71", None), 5_000).unwrap();
    assert_eq!(p.failure(caller, c, ev(404), 5_000), None);
    // an ACK from another port, or with another tag, proves nothing
    assert!(p.request(caller, 5071, &request("ACK", "inv-1", Some("as71"), None), 5_010).is_empty());
    assert!(p.request(caller, 5070, &request("ACK", "inv-1", Some("as72"), None), 5_010).is_empty());
    let proven = p.request(caller, 5070, &request("ACK", "inv-1", Some("as71"), None), 5_020);
    assert_eq!(proven.len(), 1);
    assert_eq!((proven[0].host, proven[0].ev.status), (caller, 404));
    assert!(p.due(5_000 + WAIT).is_empty(), "no longer waiting");
    // the next failure of the proven transaction is proven at once
    let c2 = p.answered(caller, 5070, &answer("404 Not Found", "inv-1", "INVITE", "as73", None), 6_000).unwrap();
    assert_eq!(p.failure(caller, c2, ev(404), 6_000), Some(Proof::Proven));
    // another transaction of the same address waits for its own proof
    let c3 = p.answered(caller, 5070, &answer("404 Not Found", "inv-2", "INVITE", "as74", None), 6_000).unwrap();
    assert_eq!(p.failure(caller, c3, ev(404), 6_000), None);
    assert_eq!(p.found, [0, 1]);
    assert_eq!(p.host(caller, 6_000), Some(Token::ToTag));
}

#[test]
fn a_password_guesser_proves_its_transactions() {
    let mut p = Proofs::new(86_400_000, 100);
    let guesser = ip("2001:db8:7::5");
    let mut nonce = "first".to_owned();
    for i in 0..5 {
        let c =
            p.answered(guesser, 5060, &answer("401 Unauthorized", "crack", "REGISTER", "t", Some(&nonce)), i).unwrap();
        p.challenged(guesser, c, i);
        let _ = p.request(guesser, 5060, &request("REGISTER", "crack", None, Some(&nonce)), i);
        nonce = format!("n{i}");
        assert_eq!(p.call(guesser, c, i), Proof::Proven);
    }
    // counted per /64, as bans are
    assert_eq!(p.host(ip("2001:db8:7::99"), 10), Some(Token::Nonce));
    assert!(p.good(guesser, 10).is_none(), "never succeeded");
}

#[test]
fn tables_stay_bounded_under_a_flood_of_forged_destinations() {
    let mut p = Proofs::new(86_400_000, 100);
    for i in 0..(CAPACITY as u32 + 5_000) {
        let a = IpAddr::from(i.to_be_bytes());
        let c = p.answered(a, 5060, &answer("403 Forbidden", "f", "INVITE", "t", None), 1).unwrap();
        p.failure(a, c, ev(403), 1);
    }
    assert!(p.sent.len() <= CAPACITY && p.waiting.len() <= CAPACITY);
}

#[test]
fn an_ambiguous_line_names_the_address_that_proved_its_transaction() {
    let mut p = Proofs::new(0, 100);
    let (cracker, victim) = (ip("203.0.113.5"), ip("10.9.9.9"));
    let call = "a84b c@x";
    p.answered(cracker, 5062, &answer("401 Unauthorized", call, "REGISTER", "t", Some("n1")), 0);
    p.request(cracker, 5062, &request("REGISTER", call, None, Some("n1")), 10);
    let line = format!(
        "NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"x' failed for '10.9.9.9:1' \
         (callid: y) - Failed to authenticate\" <sip:alice@h>' failed for '203.0.113.5:5062' (callid: {call}) - \
         Failed to authenticate"
    );
    assert_eq!(p.resolve(&line, &[victim, cracker], 20), Some(cracker));
    // a fake naming the victim's own proven transaction makes it ambiguous again, never the victim
    p.answered(victim, 1, &answer("401 Unauthorized", "y", "REGISTER", "t2", Some("n2")), 0);
    p.request(victim, 1, &request("REGISTER", "y", None, Some("n2")), 10);
    assert_eq!(p.resolve(&line, &[victim, cracker], 20), None);
    // nothing proven: nothing named
    let q = Proofs::new(0, 100);
    assert_eq!(q.resolve(&line, &[victim, cracker], 20), None);
}

#[test]
fn only_a_call_id_the_server_wrote_settles_a_line_by_its_transaction() {
    let mut p = Proofs::new(0, 100);
    let (forger, victim) = (ip("203.0.113.5"), ip("10.9.9.9"));
    // the victim proved transaction "y"; the forger proved nothing
    p.answered(victim, 1, &answer("401 Unauthorized", "y", "REGISTER", "t", Some("n1")), 0);
    p.request(victim, 1, &request("REGISTER", "y", None, Some("n1")), 10);
    let rule = "r";

    // text a client chose (a user name, a User-Agent) that looks like Asterisk's field and names
    // the victim's transaction, in a line another detector read
    let line = "auth failed for user '(callid: y) - ' from 203.0.113.5 or 10.9.9.9";
    let ambiguous = || Event::Ambiguous { candidates: vec![victim, forger], names: Vec::new(), rule };
    let mut e = ambiguous();
    assert!(p.settle(&mut e, line, false, 20), "settled at once: no proof could name its source");
    assert_eq!(e, ambiguous(), "never resolved to the victim");
    // in Asterisk's line the field is the server's: the transaction names its source
    let mut e = ambiguous();
    assert!(p.settle(&mut e, line, true, 20));
    assert_eq!(e, Event::failure(victim, None, rule));
    // a host name in the line could be the source: nothing is resolved
    let mut e = Event::Ambiguous { candidates: vec![victim, forger], names: vec!["pbx.example".into()], rule };
    assert!(p.settle(&mut e, line, true, 20));
    assert!(matches!(e, Event::Ambiguous { .. }));

    // an unproven failure of the victim: another detector's line is proven by the victim's own
    // proof; Asterisk's line only by the transaction it names, which here the victim never proved
    let other_call = "auth failed '(callid: z) - ' from 10.9.9.9";
    let mut e = Event::unproven(victim, None, rule);
    assert!(p.settle(&mut e, other_call, false, 20));
    assert_eq!(e, Event::failure(victim, None, rule));
    let mut e = Event::unproven(victim, None, rule);
    assert!(!p.settle(&mut e, other_call, true, 20));
    assert_eq!(e, Event::unproven(victim, None, rule));
    // the forger proved nothing: its unproven failure waits either way
    for call_ids in [false, true] {
        let mut e = Event::unproven(forger, None, rule);
        assert!(!p.settle(&mut e, line, call_ids, 20));
        assert_eq!(e, Event::unproven(forger, None, rule));
    }
}
