//! Asterisk messages, and attempts to make the detector read an address an attacker chose.

use super::*;
use crate::detection::detect::never_proven;

// Asterisk 20.20.1's prefixes, as the lab build (../shared/asterisk) writes them
const SIP: &str = "[Dec  2 00:12:39] NOTICE[15471] chan_sip.c: ";
const PJSIP: &str = "[Dec  2 00:12:22] NOTICE[15453] res_pjsip/pjsip_distributor.c: ";
const SECURITY: &str = "[Dec  2 00:12:23] SECURITY[15494] res_security_log.c: ";

fn detect(line: &str) -> Vec<Event> {
    let mut out = Vec::new();
    Asterisk.feed(line, &mut out);
    out
}

fn host_of(line: &str) -> Option<String> {
    match detect(line).as_slice() {
        [Event::Failure(f)] => Some(f.host.to_string()),
        [] => None,
        other => panic!("{line}: {other:?}"),
    }
}

/// The address and proof of the one failure `line` holds.
fn failure_of(line: &str) -> Option<(String, Proof)> {
    match detect(line).as_slice() {
        [Event::Failure(f)] => Some((f.host.to_string(), f.proof)),
        [] => None,
        other => panic!("{line}: {other:?}"),
    }
}

/// The candidates of the one ambiguous event `line` holds.
fn ambiguous(line: &str) -> Vec<String> {
    match detect(line).as_slice() {
        [Event::Ambiguous { candidates, .. }] => candidates.iter().map(ToString::to_string).collect(),
        other => panic!("{line}: {other:?}"),
    }
}

fn pjsip(from: &str, addr: &str, callid: &str, reason: &str) -> String {
    format!("{PJSIP}Request 'REGISTER' from '{from}' failed for '{addr}' (callid: {callid}) - {reason}")
}

#[test]
fn every_message_type() {
    let cases = [
        ("[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Registration from '<sip:301@example.com>' failed for '1.2.3.4' - Wrong password", "1.2.3.4"),
        ("[2013-03-26 15:47:54] NOTICE[1237] chan_sip.c: Registration from '\"100\"sip:100@1.2.3.4' failed for '5.6.7.8:23930' - No matching peer found", "5.6.7.8"),
        ("Nov 4 18:30:40 localhost asterisk[32229]: NOTICE[32257]: chan_sip.c:23417 in handle_request_register: Registration from '<sip:301@example.com>' failed for '192.168.200.100:36998' - Wrong password", "192.168.200.100"),
        ("[2013-02-05 23:44:42] NOTICE[436][C-00000fa9] chan_sip.c: Call from '' (1.2.3.4:10836) to extension '0972598285108' rejected because extension not found in context 'default'.", "1.2.3.4"),
        ("[Jan 18 17:39:50] NOTICE[12049]: res_pjsip_session.c:2337 new_invite: Call from 'anonymous' (TCP:[2001:db8::5]:61470) to extension '9011' rejected because extension not found in context 'default'.", "2001:db8::5"),
        ("[2012-02-13 17:53:59] NOTICE[1638] chan_iax2.c: Host 1.2.3.4 failed to authenticate as 'Fail2ban'", "1.2.3.4"),
        ("[2012-02-13 17:39:20] NOTICE[1638] chan_iax2.c: No registration for peer 'Fail2ban' (from 1.2.3.4)", "1.2.3.4"),
        ("[2016-06-09 00:01:02] NOTICE [22382] manager.c: 192.0.2.1 failed to authenticate as 'admin'", "192.0.2.1"),
        ("[2016-05-06 07:08:09] NOTICE[31554] manager.c: 192.0.2.4 tried to authenticate with nonexistent user 'opennms'", "192.0.2.4"),
        ("[2015-03-16 18:46:34] NOTICE[3453] chan_sip.c: hacking attempt detected '192.168.2.102'", "192.168.2.102"),
        ("[2016-05-23 10:18:16] NOTICE[19388] res_pjsip/pjsip_distributor.c: Request from '\"1000\" <sip:1000@10.0.0.1>' failed for '1.2.3.4:48336' (callid: 276666022) - Failed to authenticate", "1.2.3.4"),
        ("[2017-12-14 22:18:00] NOTICE[1943] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:'or''='@4.5.6.7>' failed for '[2001:db8::9]:43678' (callid: UmOkE9yQ) - No matching endpoint found", "2001:db8::9"),
        ("[2013-05-13 07:10:53] SECURITY[1204] res_security_log.c: SecurityEvent=\"InvalidAccountID\",EventTV=\"1368439853-500975\",Severity=\"Error\",Service=\"SIP\",EventVersion=\"1\",AccountID=\"00972599580679\",SessionID=\"0x7f8ecc0421f8\",LocalAddress=\"IPV4/UDP/1.2.3.4/5060\",RemoteAddress=\"IPV4/UDP/6.7.8.9/5070\"", "6.7.8.9"),
        ("[2019-09-20 19:12:43] SECURITY[1724] res_security_log.c: SecurityEvent=\"ChallengeResponseFailed\",EventTV=\"x\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"<unknown>\",SessionID=\"3686a690\",LocalAddress=\"IPV4/TLS/1.2.3.4/5062\",RemoteAddress=\"IPV6/TLS/2001:db8::2/30245\",Challenge=\"1569\",Response=\"8e18\",ExpectedResponse=\"\"", "2001:db8::2"),
        ("[2013-11-11 14:33:38] WARNING[8447][C-00000244] Ext. s: \"Rejecting unknown SIP connection from 192.168.55.152:52126\"", "192.168.55.152"),
        ("[2013-11-11 14:33:38] WARNING[12124][C-00000001] Ext. s: \"Rejecting unknown SIP connection from [2001:db8::1]:5060\"", "2001:db8::1"),
        ("Mar  1 15:35:53 pbx asterisk[2350]: WARNING[1195][C-00000b43]: Ext. s:6 in @ from-sip-external: \"Rejecting unknown SIP connection from 192.0.2.2\"", "192.0.2.2"),
        ("NOTICE[566]: chan_sip.c:28926 handle_request_register: Registration from '\"28\" <sip:28@127.0.0.100>' failed for '192.0.2.1:7998' - Wrong password", "192.0.2.1"),
    ];
    for (line, want) in cases {
        assert_eq!(host_of(line).as_deref(), Some(want), "{line}");
    }
}

#[test]
fn other_lines_are_not_failures() {
    for line in [
        "[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Registration from '<sip:301@example.com>' failed for '1.2.3.4' - Some new reason",
        "[2012-02-13 17:21:54] VERBOSE[1638] pbx.c: Executing [s@default:1] Answer(\"SIP/1.2.3.4-0001\", \"\") in new stack",
        "[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Peer '301' is now Reachable. (5ms / 2000ms)",
        "Registration from '<sip:301@example.com>' failed for '1.2.3.4' - Wrong password",
        "garbage",
        "",
    ] {
        assert_eq!(detect(line), [], "{line}");
    }
}

#[test]
fn addresses_in_attacker_fields_are_never_taken() {
    // From header crafted to look like the end of a registration failure
    let l = "[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Registration from '<sip:x' failed for '10.0.0.1' - Wrong password@evil>' failed for '1.2.3.4' - Wrong password";
    assert_eq!(host_of(l).as_deref(), Some("1.2.3.4"));
    // a benign message carrying a fake failure in its text matches nothing
    let l = "[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Peer 'x: Registration from 'a' failed for '10.0.0.1' - Wrong password' is now Reachable.";
    assert_eq!(detect(l), []);
    // a caller id with a fake transport address: two candidates, banned is no one
    let l = "[2013-02-05 23:44:42] NOTICE[436] chan_sip.c: Call from 'x' (10.0.0.1:5060) to extension 'y' (1.2.3.4:10836) to extension '123' rejected because extension not found in context 'default'.";
    assert!(matches!(detect(l).as_slice(), [Event::Ambiguous { candidates, .. }] if candidates.len() == 2));
    // a call id with a fake "failed for" after the real one
    let l = "[2016-05-23 10:18:16] NOTICE[19388] res_pjsip/pjsip_distributor.c: Request from '<sip:a@b>' failed for '1.2.3.4:5060' (callid: z' failed for '10.0.0.1:5060' (callid: q) - Failed to authenticate";
    assert!(matches!(detect(l).as_slice(), [Event::Ambiguous { .. }]));
    // the same address twice is no ambiguity
    let l = "[2016-05-23 10:18:16] NOTICE[19388] res_pjsip/pjsip_distributor.c: Request from '<sip:a@b>' failed for '1.2.3.4:5060' (callid: z' failed for '1.2.3.4:1' (callid: q) - Failed to authenticate";
    assert_eq!(host_of(l).as_deref(), Some("1.2.3.4"));
    // a security event with a RemoteAddress forged in the session id: the last real one wins
    // where only server fields follow it (InvalidAccountID)...
    let l = "[2015-05-25 07:21:48] SECURITY[6988] res_security_log.c: SecurityEvent=\"InvalidAccountID\",EventTV=\"x\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"70000180\",SessionID=\"\",LocalAddress=\"IPV4/UDP/127.0.0.1/5060\",RemoteAddress=\"IPV4/UDP/5.6.7.8/1111\"\",LocalAddress=\"IPV4/UDP/1.2.3.4/5060\",RemoteAddress=\"IPV4/UDP/10.250.251.252/5061\"";
    assert_eq!(host_of(l).as_deref(), Some("10.250.251.252"));
    // ...and is ambiguous where attacker fields (Response) follow it
    let l = "[2015-05-24 08:42:16] SECURITY[4583] res_security_log.c: SecurityEvent=\"ChallengeResponseFailed\",EventTV=\"x\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"<unknown>\",SessionID=\"s\",LocalAddress=\"IPV4/UDP/1.2.3.4/5060\",RemoteAddress=\"IPV4/UDP/10.250.251.252/5060\",Challenge=\"c\",Response=\"\",RemoteAddress=\"IPV4/UDP/10.0.0.1/1\",ExpectedResponse=\"\"";
    assert!(matches!(detect(l).as_slice(), [Event::Ambiguous { .. }]));
}

// What each message proves: the rows of the classification, written out again here so that a
// change to a row fails a test.

#[test]
fn chan_sip_registration_reasons() {
    for reason in [
        // the lab: a nonce fetched at one address, answered wrongly from a forged one
        "Wrong password",
        "Username/auth name mismatch",
        "No matching peer found",
        "Not a local domain",
        "Device does not match ACL",
        "Peer is not supposed to register",
        "ACL error (permit/deny)",
    ] {
        let l = format!("{SIP}Registration from '<sip:alice@10.77.0.1>' failed for '10.77.0.3:5066' - {reason}");
        assert_eq!(failure_of(&l), Some(("10.77.0.3".into(), Unproven)), "{l}");
    }
}

#[test]
fn pjsip_reasons() {
    for reason in [
        // the lab: one forged REGISTER with a made-up nonce
        "Failed to authenticate",
        "No matching endpoint found",
        "Not match Endpoint ACL",
        "Not match Endpoint Contact ACL",
        "Error to authenticate",
    ] {
        let l = pjsip("<sip:alice@10.77.0.1>", "10.77.0.3:5062", "e1-forged", reason);
        assert_eq!(failure_of(&l), Some(("10.77.0.3".into(), Unproven)), "{l}");
        // pjsip counts unidentified requests and says so after the reason
        let l = format!("{l} after 5 tries in 2.017 ms");
        assert_eq!(failure_of(&l), Some(("10.77.0.3".into(), Unproven)), "{l}");
    }
    // a reason it does not know is no failure, counted or not
    assert_eq!(detect(&pjsip("<sip:a@b>", "10.77.0.3:5062", "c", "Something new")), []);
    assert_eq!(detect(&pjsip("<sip:a@b>", "10.77.0.3:5062", "c", "Something new after 5 tries in 2.017 ms")), []);
}

#[test]
fn security_events_by_kind_and_transport() {
    let line = |kind: &str, transport: &str| {
        format!(
            "{SECURITY}SecurityEvent=\"{kind}\",EventTV=\"2026-12-02T00:12:23.003+0000\",Severity=\"Error\",\
             Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"alice\",SessionID=\"e5-forged\",\
             LocalAddress=\"IPV4/{transport}/10.77.0.1/5080\",RemoteAddress=\"IPV4/{transport}/10.77.0.3/5064\""
        )
    };
    // a line of the security log proves nothing, whatever the transport it names: chan_sip's name
    // the Via header's maddr, and chan_sip can write whole lines through AccountID
    for kind in ["ChallengeResponseFailed", "InvalidPassword", "InvalidAccountID", "FailedACL"] {
        for transport in ["UDP", "TCP", "TLS", "WS", "WSS"] {
            assert_eq!(failure_of(&line(kind, transport)), Some(("10.77.0.3".into(), Unproven)), "{kind}");
            assert!(
                matches!(&detect(&line(kind, transport))[..], [Event::Failure(f)] if never_proven(f.rule)),
                "{kind} {transport}: wire proofs must not upgrade it"
            );
        }
    }
    let sip = line("InvalidPassword", "TCP").replace("Service=\"PJSIP\"", "Service=\"SIP\"");
    assert_eq!(failure_of(&sip), Some(("10.77.0.3".into(), Unproven)));
    assert_eq!(detect(&line("ChallengeSent", "UDP")), []);
    assert_eq!(detect(&line("SuccessfulAuth", "TCP")), []);
}

#[test]
fn other_messages() {
    let cases = [
        ("[Dec  2 00:12:39] NOTICE[15471][C-00000001] chan_sip.c: Call from 'alice' (198.51.100.7:5060) to extension '900' rejected because extension not found in context 'default'.", Unproven),
        ("[2015-03-16 18:46:34] NOTICE[3453] chan_sip.c: hacking attempt detected '198.51.100.7'", Unproven),
        ("[2013-11-11 14:33:38] WARNING[8447][C-00000244] Ext. s: \"Rejecting unknown SIP connection from 198.51.100.7:52126\"", Unproven),
        ("[Dec  2 00:12:39] NOTICE[15471] chan_iax2.c: No registration for peer 'alice' (from 198.51.100.7)", Unproven),
        ("[Dec  2 00:12:39] NOTICE[15471] chan_iax2.c: Host 198.51.100.7 tried to authenticate with nonexistent user 'alice'", Unproven),
        ("[Dec  2 00:12:39] NOTICE[15471] chan_iax2.c: Host 198.51.100.7 failed MD5 authentication for 'alice' (0123 != 4567)", Proven),
        ("[2012-02-13 17:53:59] NOTICE[1638] chan_iax2.c: Host 198.51.100.7 failed to authenticate as 'alice'", Proven),
        // Asterisk 20 (authdebug=yes): with a port, the user unquoted
        ("[Dec  2 00:12:39] WARNING[15471] chan_iax2.c: Host 198.51.100.7:4569 failed to authenticate as alice", Proven),
        // the message right after the address decides, not the user named after it
        ("[Dec  2 00:12:39] NOTICE[15471] chan_iax2.c: Host 198.51.100.7 tried to authenticate with nonexistent user 'x failed MD5 authentication for 'y'", Unproven),
        // the manager: over TCP, every message is proven
        ("[Dec  2 00:12:39] NOTICE[15471] manager.c: 198.51.100.7 failed to authenticate as 'admin'", Proven),
        ("[Dec  2 00:12:39] NOTICE[15471] manager.c: 198.51.100.7 tried to authenticate with nonexistent user 'root'", Proven),
    ];
    for (line, proof) in cases {
        assert_eq!(failure_of(line), Some(("198.51.100.7".into(), proof)), "{line}");
    }
}

// Complete fake failure messages in the fields an attacker writes: lines the lab Asterisk 20.20.1
// wrote for REGISTERs sent from 10.77.0.2.

#[test]
fn pjsip_fakes_in_the_from_header_or_call_id_ban_no_one() {
    // pjproject takes the Call-ID up to the end of its line, spaces included: the fake follows the
    // real address, and "the last (callid: wins" would ban 10.8.8.8
    let l = "[Dec  2 00:12:27] NOTICE[15453] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:nosuchuser@10.77.0.1>' failed for '10.77.0.2:31711' (callid: x' failed for '10.8.8.8:5060' (callid: y) - No matching endpoint found";
    assert_eq!(ambiguous(l), ["10.8.8.8", "10.77.0.2"]);
    // the display name, verbatim, before it
    let l = "[Dec  2 00:12:28] NOTICE[15453] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"x' failed for '10.9.9.9:1' (callid: y) - Failed to authenticate\" <sip:nosuchuser@10.77.0.1>' failed for '10.77.0.2:48081' (callid: a'failed-for'10.8.8.8:5060') - No matching endpoint found";
    assert_eq!(ambiguous(l), ["10.9.9.9", "10.77.0.2"]);
    // the user= parameter of the From URI, which pjproject unescapes and prints as it is
    let l = "[Dec  2 00:12:28] NOTICE[15453] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:nosuchuser@10.77.0.1;user=x' failed for '10.9.9.9:1' (callid: y) - Failed to authenticate>' failed for '10.77.0.2:49008' (callid: e3b) - No matching endpoint found";
    assert_eq!(ambiguous(l), ["10.9.9.9", "10.77.0.2"]);
    // on both sides at once
    let display = format!("\"{}\" <sip:alice@10.77.0.1>", fake("10.9.9.9:1", "Failed to authenticate"));
    let l = pjsip(&display, "10.77.0.2:5060", "x' failed for '10.8.8.8:5060' (callid: y", "Failed to authenticate");
    assert_eq!(ambiguous(&l), ["10.8.8.8", "10.9.9.9", "10.77.0.2"]);
    // a Call-ID without spaces holds no fake, nor does a display name without the whole pattern
    let l = pjsip(
        "\"a'failed-for'10.9.9.9:1'\" <sip:a@b>",
        "10.77.0.2:5060",
        "a'failed-for'10.8.8.8:5060'",
        "Failed to authenticate",
    );
    assert_eq!(failure_of(&l), Some(("10.77.0.2".into(), Unproven)));
}

#[test]
fn pjsip_reason_is_read_at_the_end() {
    // the display name fakes a failed authentication, the server's reason is the unknown user
    let display = format!("\"{}\" <sip:alice@10.77.0.1>", fake("10.77.0.2:5060", "Failed to authenticate"));
    let l = pjsip(&display, "10.77.0.2:5060", "c", "No matching endpoint found");
    assert_eq!(failure_of(&l), Some(("10.77.0.2".into(), Unproven)));
    // a known reason in the Call-ID is no reason when the server's is unknown
    let l = pjsip("<sip:alice@10.77.0.1>", "10.77.0.2:5060", "c) - Failed to authenticate", "Something new");
    assert_eq!(detect(&l), []);
    let l = pjsip("<sip:a@b>", "10.77.0.2:5060", "c) - Failed to authenticate after 1 tries in 1 ms", "Something new");
    assert_eq!(detect(&l), []);
}

/// A fake `failed for` message of `addr`, ending in `reason`, for a display name.
fn fake(addr: &str, reason: &str) -> String {
    format!("x' failed for '{addr}' (callid: y) - {reason}")
}

#[test]
fn chan_sip_takes_the_last_address_whatever_the_to_header_holds() {
    // chan_sip logs the To header: after it come only the address and the reason, the server's
    let l = format!("{SIP}Registration from '<sip:x' failed for '10.9.9.9:1' - Wrong password@10.77.0.1>' failed for '10.77.0.3:5066' - No matching peer found");
    assert_eq!(failure_of(&l), Some(("10.77.0.3".into(), Unproven)));
    let to = "\"x' failed for '10.9.9.9:1' - No matching peer found\" <sip:alice@10.77.0.1>";
    let l = format!("{SIP}Registration from '{to}' failed for '[2001:db8::7]:5060' - Wrong password");
    assert_eq!(failure_of(&l), Some(("2001:db8::7".into(), Unproven)));
    // a reason chan_sip has but sipwall does not know is no failure, whatever the To header ends in
    let l = format!(
        "{SIP}Registration from '<sip:a' - Wrong password>' failed for '10.77.0.3:5066' - RTP initialization failed"
    );
    assert_eq!(detect(&l), []);
}

#[test]
fn call_rejected_stays_ambiguous_with_fakes_on_either_side() {
    // chan_sip URI-decodes the extension (%27 and %20 make quotes and spaces); the caller is the
    // From user
    let l = format!("{SIP}Call from 'alice' (198.51.100.7:5060) to extension '1' (10.8.8.8:5060) to extension '2' rejected because extension not found in context 'default'.");
    assert_eq!(ambiguous(&l), ["10.8.8.8", "198.51.100.7"]);
    let l = format!("{SIP}Call from 'x' (10.9.9.9:5060) to extension 'y' (198.51.100.7:5060) to extension '2' rejected because extension not found in context 'default'.");
    assert_eq!(ambiguous(&l), ["10.9.9.9", "198.51.100.7"]);
}

#[test]
fn security_event_fakes() {
    // a fake RemoteAddress over TCP in the Call-ID: the real one, over UDP, decides
    let l = format!(
        "{SECURITY}SecurityEvent=\"InvalidAccountID\",EventTV=\"t\",Severity=\"Error\",Service=\"PJSIP\",\
         EventVersion=\"1\",AccountID=\"alice\",SessionID=\"x\",RemoteAddress=\"IPV4/TCP/10.8.8.8/1\"\",\
         LocalAddress=\"IPV4/UDP/10.77.0.1/5080\",RemoteAddress=\"IPV4/UDP/10.77.0.2/5060\",Module=\"chan_pjsip\""
    );
    assert_eq!(failure_of(&l), Some(("10.77.0.2".into(), Unproven)));
    // where attacker fields follow the real one, the same address claimed over TCP proves nothing
    let l = format!(
        "{SECURITY}SecurityEvent=\"InvalidPassword\",EventTV=\"t\",Severity=\"Error\",Service=\"SIP\",\
         EventVersion=\"2\",AccountID=\"alice\",SessionID=\"0x7f20ec00c8a0\",LocalAddress=\"IPV4/UDP/10.77.0.1/5060\",\
         RemoteAddress=\"IPV4/UDP/10.77.0.2/5066\",Challenge=\"5fa12a58\",ReceivedChallenge=\"5fa12a58\",\
         ReceivedHash=\"0\",RemoteAddress=\"IPV4/TCP/10.77.0.2/1\""
    );
    assert_eq!(failure_of(&l), Some(("10.77.0.2".into(), Unproven)));
    // and another address there makes it ambiguous
    assert_eq!(ambiguous(&l.replace("TCP/10.77.0.2", "TCP/10.8.8.8")), ["10.8.8.8", "10.77.0.2"]);
}
