//! Asterisk messages, and attempts to make the detector read an address an attacker chose.

use super::*;

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
