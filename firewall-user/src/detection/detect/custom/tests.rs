//! Filters pasted from fail2ban.

use std::collections::HashMap;

use super::*;
use crate::detection::detect::custom::{
    date::{Dates, State},
    definitions::Definitions,
};

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

fn defs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn tags_substitute_innermost_first_and_split_into_lines() {
    let own = defs(&[
        ("mode", "extra"),
        ("cmn", "^a <HOST>$"),
        ("mdre-normal", ""),
        ("mdre-ddos", "^b <HOST>$"),
        ("mdre-extra", "%(cmn)s\n<mdre-ddos>"),
    ]);
    let d = Definitions::new(&own);
    let lines = ["%(cmn)s".to_owned(), "<mdre-<mode>>".to_owned(), "# a comment".to_owned()];
    let got: Vec<String> = d.expressions(&lines).unwrap().into_iter().map(|(i, e)| format!("{i}:{e}")).collect();
    assert_eq!(got, ["0:^a <HOST>$", "1:^a <HOST>$", "1:^b <HOST>$"]);
    let own = defs(&[("mode", "normal"), ("mdre-normal", "")]);
    assert!(Definitions::new(&own).expressions(&["<mdre-<mode>>".to_owned()]).unwrap().is_empty());
    // `%%` is a percent sign; `__prefix_line` is common.conf's for log files
    let own = defs(&[("_daemon", "sshd")]);
    let d = Definitions::new(&own);
    assert_eq!(d.resolve("100%% <__daemon_re>").unwrap(), r"100% [\[\(]?sshd(?:\(\S+\))?[\]\)]?:?");
    assert!(d.resolve("%(__prefix_line)s").unwrap().starts_with(r"(?:\[\])?\s*"));
}

#[test]
fn unresolvable_definitions_are_errors() {
    use super::definitions::Error;
    let own = defs(&[("mode", "fast")]);
    let d = Definitions::new(&own);
    assert_eq!(d.expressions(&["<mdre-<mode>> <HOST>".to_owned()]), Err((0, Error::UnknownTag("mdre-fast".into()))));
    assert_eq!(d.resolve("%(nope)s"), Err(Error::Undefined("nope".into())));
    let own = defs(&[("a", "<b>"), ("b", "<a>")]);
    assert!(matches!(Definitions::new(&own).resolve("<a>"), Err(Error::Cycle(_))));
    let own = defs(&[("a", "%(b)s"), ("b", "%(a)s")]);
    assert!(matches!(Definitions::new(&own).resolve("%(a)s"), Err(Error::Cycle(_))));
    // a definition writing another twice doubles the text at each step: refused, not 2^25 long
    let own = defs(&[("_daemon", "<__daemon_combs_re>")]);
    assert_eq!(Definitions::new(&own).resolve("<_daemon> <HOST>"), Err(Error::TooLong("__daemon_combs_re".into())));
    let own = defs(&[("a", "<b><b>"), ("b", "<c><c>"), ("c", "x")]);
    assert_eq!(Definitions::new(&own).resolve("<a>").unwrap(), "xxxx");
    // regex syntax, fail2ban's tags and escaped brackets are no tags
    let ok = r"(?P<x>a)(?<=b)(?<!c)<[^.]+\.[^.]+> \<literal> [<]NOSRV> <F-USER>u</F-USER> <F-ID/> <HOST> <ADDR>";
    assert_eq!(Definitions::new(&HashMap::new()).expressions(&[ok.to_owned()]).unwrap().len(), 1);
    assert_eq!(
        Definitions::new(&HashMap::new()).expressions(&["a\n<SKIPLINES>b <HOST>".to_owned()]),
        Err((0, Error::SkipLines))
    );
}

#[test]
fn filter_errors_point_at_the_key() {
    let mut s = spec(&["^x <mdre-<mode>>"]);
    s.definitions = defs(&[("mode", "normal")]);
    let e = Filter::new(&s).unwrap_err();
    assert_eq!(e.field, "failregex[0]");
    assert!(e.message.contains("`<mdre-normal>`") && e.message.contains("definitions"), "{e}");
    let mut s = spec(&["^<HOST>"]);
    s.maxlines = Some(2);
    assert_eq!(Filter::new(&s).unwrap_err().field, "maxlines");
    s.maxlines = Some(1);
    s.datepattern = Some("^%Q".into());
    assert_eq!(Filter::new(&s).unwrap_err().field, "datepattern");
    // the two ways the error message offers to write a literal `<name>`
    let f = Filter::new(&spec(&[r"^\<NOSRV> [<]x> <HOST>$"])).unwrap();
    assert_eq!(hosts(&f, &["<NOSRV> <x> 192.0.2.1"]), [Some("192.0.2.1".into())]);
}

#[test]
fn only_the_date_is_removed() {
    let lines = |p: Option<&str>, ls: &[&str]| -> Vec<String> {
        let d = Dates::new(p).unwrap();
        ls.iter().map(|l| d.strip(l, &mut State::default()).into_owned()).collect()
    };
    assert_eq!(
        lines(
            None,
            &[
                "[2012-02-13 17:21:54] NOTICE[1638] x",
                "Jan  5 01:31:41 www sshd[1643]: x",
                "2013-12-31 17:39:54.767815 [WARNING] x",
                "2015-04-16T18:02:50.321974+00:00 host x",
                "Mon Jan 18 17:39:50 2024 h x",
                "NOTICE[566]: chan_sip.c:28926 x",
                "2013-12-31 17:39:54x",
            ]
        ),
        [
            "[] NOTICE[1638] x",
            " www sshd[1643]: x",
            " [WARNING] x",
            " host x",
            " h x",
            "NOTICE[566]: chan_sip.c:28926 x",
            "2013-12-31 17:39:54x",
        ]
    );
    // freeswitch.conf's pattern, with ConfigParser's `%%` already read as `%`
    let fs = "^(?:%Y-)?%m-%d[ T]%H:%M:%S(?:\\.%f)?\n{^LN-BEG}";
    assert_eq!(
        lines(Some(fs), &["08-03 07:56:53.026292 [WARN] x", "Jan  5 01:31:41 h x", "x 08-03 07:56:53"]),
        [" [WARN] x", " h x", "x 08-03 07:56:53"]
    );
    assert_eq!(
        lines(Some(r"^<\d+>\d+\s+{DATE}"), &["<38>1 2019-07-08T17:40:16.954167-04:00 h sshd 1 - - x"]),
        [" h sshd 1 - - x"]
    );
}

#[test]
fn connections_pool_their_lines_by_id() {
    let mut s = spec(&[
        r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
        r"^Failed <F-USER>\S+</F-USER>$",
        r"^<F-MLFFORGET>Closed</F-MLFFORGET>",
        r"^<F-MLFGAINED>Accepted</F-MLFGAINED> <F-USER>\S+</F-USER>",
    ]);
    s.prefregex = Some(r"^<F-MLFID>%(__prefix_line)s</F-MLFID><F-CONTENT>.+</F-CONTENT>$".into());
    let mut c = Custom::new(Arc::new(Filter::new(&s).unwrap()));
    let mut feed = |l: &str| {
        let mut out = Vec::new();
        c.feed(l, &mut out);
        out.iter().map(|e| e.host().map(|h| h.to_string()).unwrap_or_default()).collect::<Vec<_>>().join(",")
    };
    assert_eq!(feed("Jan  5 01:31:41 h sshd[1]: Connection from 192.0.2.1 port 22"), "");
    assert_eq!(feed("Jan  5 01:31:42 h sshd[1]: Failed root"), "192.0.2.1");
    assert_eq!(feed("Jan  5 01:31:42 h sshd[2]: Failed root"), "", "another connection, address unknown");
    assert_eq!(feed("Jan  5 01:31:43 h sshd[2]: Connection from 192.0.2.2 port 22"), "192.0.2.2", "the pending one");
    assert_eq!(feed("Jan  5 01:31:44 h sshd[1]: Closed"), "192.0.2.1");
    assert_eq!(feed("Jan  5 01:31:45 h sshd[1]: Failed root"), "", "forgotten with its address");
    assert_eq!(feed("Jan  5 01:31:46 h sshd[3]: Connection from 192.0.2.3 port 22"), "");
    assert_eq!(feed("Jan  5 01:31:47 h sshd[3]: Accepted bob"), "");
    // a stateless judgement sees no connection
    assert_eq!(Filter::new(&s).unwrap().judge("Jan  5 01:31:42 h sshd[1]: Failed root"), None);
}
