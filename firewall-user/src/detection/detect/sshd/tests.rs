//! sshd messages one by one, connections across lines, and user names crafted to move the
//! address read.

use super::*;

fn run(mode: Mode, lines: &[&str]) -> Vec<Vec<Event>> {
    let mut d = Sshd::new(mode);
    lines
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            d.feed(l, &mut out);
            out
        })
        .collect()
}

fn hosts(mode: Mode, lines: &[&str]) -> Vec<Option<String>> {
    run(mode, lines)
        .into_iter()
        .map(|evs| match evs.as_slice() {
            [] => None,
            [Event::Failure(f)] => Some(f.host.to_string()),
            [Event::Hostname { name, .. }] => Some(format!("name:{name}")),
            [Event::Ambiguous { candidates, names, .. }] => Some(format!("ambiguous:{candidates:?}{names:?}")),
            other => panic!("several events: {other:?}"),
        })
        .collect()
}

fn one(line: &str) -> Option<String> {
    hosts(Mode::Normal, &[line]).pop().unwrap()
}

#[test]
fn single_line_failures() {
    let cases = [
        ("Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT from 194.117.26.69 port 50273 ssh2", "194.117.26.69"),
        ("Jan  5 01:31:41 www sshd[1643]: ROOT LOGIN REFUSED FROM 1.2.3.4", "1.2.3.4"),
        ("Jul 20 14:42:11 localhost sshd[22708]: Invalid user ftp from 66.38.192.238", "66.38.192.238"),
        ("Feb 12 04:09:18 localhost sshd[26713]: error: PAM: Authentication failure for root from 202.0.0.1 via 192.0.2.1", "202.0.0.1"),
        ("Sep 29 17:15:02 spaceman sshd[12946]: User root from 127.0.0.1 not allowed because not listed in AllowUsers", "127.0.0.1"),
        ("Mar 15 09:20:57 host sshd[28542]: error: maximum authentication attempts exceeded for root from 192.0.2.4 port 33476 ssh2 [preauth]", "192.0.2.4"),
        ("Feb 25 14:34:11 srv sshd[3]: Received disconnect from 192.0.2.9 port 22:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", "192.0.2.9"),
        ("srv sshd[28732]: Failed password for invalid user x from aaaa:bbbb:cccc:1234::1:1 port 50273 ssh2", "aaaa:bbbb:cccc:1234::1:1"),
    ];
    for (line, host) in cases {
        assert_eq!(one(line).as_deref(), Some(host), "{line}");
    }
}

#[test]
fn harmless_lines() {
    for line in [
        "Feb 25 14:34:10 belka sshd[1]: Accepted password for root from 1.2.3.4 port 50273 ssh2",
        "Feb 25 14:34:10 belka sshd[2]: Connection closed by 1.2.3.4 [preauth]",
        "Feb 25 14:34:10 belka sshd[3]: Received disconnect from 1.2.3.4 port 22:11: disconnected by user",
        "Feb 25 14:34:10 belka su[4]: Failed password for root from 1.2.3.4 port 1 ssh2",
        "Feb 25 14:34:10 belka sshd[5]: Server listening on 0.0.0.0 port 22.",
        // PAM's report precedes sshd's own "Failed password" line, which is the one counted
        "Jun 21 16:47:48 host sshd[9252]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root",
    ] {
        assert_eq!(one(line), None, "{line}");
    }
}

#[test]
fn a_user_name_cannot_choose_the_address() {
    // the user name is attacker-chosen text; the source follows it
    let l = "Feb 25 14:34:10 srv sshd[9]: Failed password for invalid user from 10.0.0.1 port 1 ssh2 from 192.0.2.66 port 4711 ssh2";
    assert_eq!(one(l).as_deref(), Some("192.0.2.66"));
    let l = "Feb 25 14:34:10 srv sshd[9]: Invalid user admin from 10.0.0.1 from 192.0.2.66 port 4711";
    assert_eq!(one(l).as_deref(), Some("192.0.2.66"));
    let l = "Feb 25 14:34:10 srv sshd[9]: Failed password for root from 192.0.2.66 port 4711 ssh2: from 10.0.0.1";
    assert_eq!(one(l).as_deref(), Some("192.0.2.66"));
    // names are reported, never resolved
    let l = "Feb 25 14:34:10 srv sshd[9]: error: PAM: Authentication failure for stefanor from example.com";
    assert_eq!(one(l).as_deref(), Some("name:example.com"));
    // a user name with spaces can write a second source: an address and a name, or the same
    // address on either side of a name, are ambiguous, and say so with the name
    let l = "Feb 25 14:34:10 srv sshd[9]: Failed password for a b from 192.0.2.66 port 1 ssh2: from h.example port 2 ssh2: x";
    assert_eq!(one(l).as_deref(), Some(r#"ambiguous:[192.0.2.66]["h.example"]"#));
    let l = "Feb 25 14:34:10 srv sshd[9]: Failed password for a b from 10.0.0.1 port 1 ssh2: from h.example port 1 ssh2: from 10.0.0.1 port 1 ssh2: x";
    assert_eq!(one(l).as_deref(), Some(r#"ambiguous:[10.0.0.1]["h.example"]"#));
    let l = "Feb 25 14:34:10 srv sshd[9]: Failed password for a b from g.example port 1 ssh2: from h.example port 2 ssh2: x";
    assert_eq!(one(l).as_deref(), Some(r#"ambiguous:[]["g.example", "h.example"]"#));
}

#[test]
fn wrong_keys_fail_only_if_no_key_is_accepted() {
    let tried = "Nov 28 09:16:05 srv sshd[32310]: Failed publickey for git from 192.0.2.111 port 57910 ssh2: RSA 14:ba";
    let accepted =
        "Nov 28 09:16:05 srv sshd[32310]: Accepted publickey for git from 192.0.2.111 port 57910 ssh2: RSA 15:ba";
    let closed = "Nov 28 09:16:05 srv sshd[32310]: Connection closed by 192.0.2.111 [preauth]";
    let too_many = "Nov 28 09:16:05 srv sshd[32310]: Disconnecting: Too many authentication failures for git [preauth]";
    assert_eq!(hosts(Mode::Normal, &[tried, tried, accepted, closed]), [None, None, None, None]);
    assert_eq!(hosts(Mode::Normal, &[tried, tried, too_many, closed]), [None, None, Some("192.0.2.111".into()), None]);
    // the pre-authentication close is a failure of its own in aggressive mode
    assert_eq!(
        hosts(Mode::Aggressive, &[tried, too_many, closed]),
        [None, Some("192.0.2.111".into()), Some("192.0.2.111".into())]
    );
}

#[test]
fn sources_other_than_ipv4_are_remembered_per_connection() {
    let too_many = |pid| format!("Nov 28 09:16:05 srv sshd[{pid}]: Disconnecting: Too many authentication failures");
    let tried =
        |pid, src: &str| format!("Nov 28 09:16:05 srv sshd[{pid}]: Failed publickey for git from {src} port 1 ssh2");
    let lines = [
        tried(1, "2001:db8::1"),
        tried(2, "host.example.com"),
        tried(3, "192.0.2.3"),
        // a connection's source replaced by one of another kind, both ways
        tried(1, "192.0.2.1"),
        tried(3, "2001:db8::3"),
        too_many(1),
        too_many(2),
        too_many(3),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let expected =
        [None, None, None, None, None, Some("192.0.2.1"), Some("name:host.example.com"), Some("2001:db8::3")];
    assert_eq!(hosts(Mode::Normal, &lines), expected.map(|h| h.map(str::to_owned)));
    // a connection forgotten frees its place: a new one with the same header starts afresh
    let closed = "Nov 28 09:16:05 srv sshd[2]: Connection closed by host.example.com port 1 [preauth]";
    let lines = [tried(2, "host.example.com"), closed.to_owned(), too_many(2)];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(hosts(Mode::Normal, &lines), [None, None, None]);
}

#[test]
fn a_failure_without_address_waits_for_it() {
    let lines = [
        "Nov 23 21:50:19 sshd[8148]: Disconnecting: Too many authentication failures for root [preauth]",
        "Nov 23 21:50:37 sshd[8148]: Connection closed by 61.0.0.1 [preauth]",
    ];
    assert_eq!(hosts(Mode::Normal, &lines), [None, Some("61.0.0.1".into())]);
    // another connection (another pid) does not pick it up
    let lines = [
        "Nov 23 21:50:19 sshd[8148]: Disconnecting: Too many authentication failures for root [preauth]",
        "Nov 23 21:50:37 sshd[8149]: Connection closed by 61.0.0.1 [preauth]",
    ];
    assert_eq!(hosts(Mode::Normal, &lines), [None, None]);
}

#[test]
fn a_second_user_on_one_connection_is_a_failure() {
    let lines = [
        "Nov 26 15:03:30 host sshd[22440]: Connection from 192.0.2.3 port 39678 on 192.168.1.9 port 22",
        "Nov 26 15:03:31 host sshd[22440]: Failed publickey for sree from 192.0.2.3 port 39678 ssh2: RSA x",
        "Nov 26 15:03:32 host sshd[22440]: Failed publickey for rusty from 192.0.2.3 port 39678 ssh2: RSA y",
    ];
    assert_eq!(hosts(Mode::Normal, &lines), [None, None, Some("192.0.2.3".into())]);
}

#[test]
fn modes_widen_what_counts() {
    let scan = "Feb 25 14:34:10 srv sshd[7]: Did not receive identification string from 192.0.2.5";
    let noauth = "Feb 25 14:34:10 srv sshd[8]: Received disconnect from 192.0.2.6 port 1:14: No supported authentication methods available [preauth]";
    assert_eq!(hosts(Mode::Normal, &[scan, noauth]), [None, None]);
    assert_eq!(hosts(Mode::Ddos, &[scan, noauth]), [Some("192.0.2.5".into()), None]);
    assert_eq!(hosts(Mode::Extra, &[scan, noauth]), [None, Some("192.0.2.6".into())]);
    assert_eq!(hosts(Mode::Aggressive, &[scan, noauth]), [Some("192.0.2.5".into()), Some("192.0.2.6".into())]);
}

#[test]
fn connection_state_is_bounded() {
    let mut d = Sshd::new(Mode::Normal);
    let mut out = Vec::new();
    for pid in 0..(conns::MAX_CONNECTIONS as u32 * 3) {
        d.feed(
            &format!("Nov 26 15:03:30 host sshd[{pid}]: Connection from 192.0.2.3 port 1 on 10.0.0.1 port 22"),
            &mut out,
        );
    }
    assert!(out.is_empty());
    let (known, ordered) = d.conns.sizes();
    assert!(known <= conns::MAX_CONNECTIONS);
    assert!(ordered <= 2 * conns::MAX_CONNECTIONS + 1);
}
