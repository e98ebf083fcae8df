//! Filters pasted from fail2ban.

use super::*;

fn spec(failregex: &[&str]) -> Spec {
    Spec { failregex: failregex.iter().map(|s| s.to_string()).collect(), ..Spec::default() }
}

fn hosts(f: &Filter, lines: &[&str]) -> Vec<Option<String>> {
    lines
        .iter()
        .map(|l| match f.judge(l) {
            Some(Event::Failure(x)) => Some(x.host.to_string()),
            Some(Event::Hostname { name, .. }) => Some(format!("name:{name}")),
            Some(other) => panic!("{other:?}"),
            None => None,
        })
        .collect()
}

#[test]
fn a_pasted_filter_with_prefix_and_definitions() {
    let mut s = spec(&[
        r"^Registration from '[^']*' failed for '<HOST>(:\d+)?' - (?:Wrong password|No matching peer found)$",
        r"^(?:Host )?<HOST> (?:failed (?:to authenticate\b|MD5 authentication\b)|tried to authenticate with nonexistent user\b)",
    ]);
    s.definitions.insert("_daemon".into(), "asterisk".into());
    s.definitions.insert("__pid_re".into(), r"(?:\s*\[\d+\])".into());
    s.definitions.insert(
        "log_prefix".into(),
        r"(?:NOTICE|SECURITY|WARNING)%(__pid_re)s:?(?:\[C-[\da-f]*\])?:? [^:]+:\d*(?:(?: in)? [^:]+:)?".into(),
    );
    s.prefregex = Some(r"^%(__prefix_line)s%(log_prefix)s <F-CONTENT>.+</F-CONTENT>$".into());
    let f = Filter::new(&s).unwrap();
    assert_eq!(
        hosts(
            &f,
            &[
                "[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Registration from '<sip:301@example.com>' failed for '1.2.3.4' - Wrong password",
                "Nov 4 18:30:40 localhost asterisk[32229]: NOTICE[32257]: chan_sip.c:23417 in handle_request_register: Registration from '<sip:301@example.com>' failed for '192.168.200.100:36998' - Wrong password",
                "[2016-05-06 07:08:09] NOTICE[31554] manager.c: 2001:db8::7 tried to authenticate with nonexistent user 'opennms'",
                "[2016-05-06 07:08:09] NOTICE[31554] manager.c: Registration from '<sip:301@example.com>' failed for '1.2.3.4' - Peer is not supposed to register",
                "garbage",
            ]
        ),
        [Some("1.2.3.4".into()), Some("192.168.200.100".into()), Some("2001:db8::7".into()), None, None]
    );
}

#[test]
fn users_nofail_ignore_and_names() {
    let mut s = spec(&[
        r"^%(__prefix_line)s(?:error: )?[aA]uthentication failure for <F-USER>.*</F-USER> from <HOST>$",
        r"^%(__prefix_line)s<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
    ]);
    s.definitions.insert("_daemon".into(), "sshd".into());
    s.ignoreregex = vec![r"for testuser from".into()];
    let f = Filter::new(&s).unwrap();
    let line = "Feb 25 14:34:10 srv sshd[1]: error: Authentication failure for bob from 192.0.2.3";
    match f.judge(line) {
        Some(Event::Failure(x)) => {
            assert_eq!((x.host.to_string(), x.user.as_deref()), ("192.0.2.3".into(), Some("bob")))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        hosts(
            &f,
            &[
                "Feb 25 14:34:10 srv sshd[1]: Connection from 192.0.2.3 port 22",
                "Feb 25 14:34:10 srv sshd[1]: Authentication failure for testuser from 192.0.2.3",
                "Feb 25 14:34:10 srv sshd[1]: Authentication failure for x from example.com",
                "Feb 25 14:34:10 srv sshd[1]: Authentication failure for x from ::ffff:192.0.2.9",
            ]
        ),
        [None, None, Some("name:example.com".into()), Some("192.0.2.9".into())]
    );
}

#[test]
fn python_conditionals_and_lookarounds() {
    let s = spec(&[
        r"^Failed \S+ for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: port \d+)?(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
    ]);
    let f = Filter::new(&s).unwrap();
    assert_eq!(
        hosts(
            &f,
            &[
                "Failed password for invalid user root from 192.0.2.1 port 22 ssh2",
                "Failed password for root from 192.0.2.2 port 22 ssh2: x"
            ]
        ),
        [Some("192.0.2.1".into()), Some("192.0.2.2".into())]
    );
}

#[test]
fn errors_name_the_expression() {
    let e = Filter::new(&spec(&[r"^oops (unclosed <HOST>"])).unwrap_err();
    assert_eq!(e.field, "failregex[0]");
    let e = Filter::new(&spec(&["no host here"])).unwrap_err();
    assert!(e.message.contains("names no host"), "{e}");
    let e = Filter::new(&spec(&["%(undefined)s <HOST>"])).unwrap_err();
    assert!(e.message.contains("not defined"), "{e}");
    let e = Filter::new(&spec(&[])).unwrap_err();
    assert_eq!(e.field, "failregex");
    let mut s = spec(&["<HOST>"]);
    s.prefregex = Some("^x".into());
    assert!(Filter::new(&s).unwrap_err().message.contains("F-CONTENT"));
}
