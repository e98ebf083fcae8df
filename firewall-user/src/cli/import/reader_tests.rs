//! Unit tests of the fail2ban import's readers: INI files, fail2ban's file order and
//! interpolation, value syntaxes.

use std::{collections::BTreeMap, path::Path};

use super::{
    config::{Config, InterpError},
    ini,
    tests::Tree,
    values,
};

fn parse(text: &str) -> ini::IniFile {
    ini::parse(Path::new("t.conf"), text).unwrap()
}

#[test]
fn ini_reads_comments_continuations_and_delimiters_as_configparser() {
    let f = parse(
        "# comment\n; another\n[Jail]\nMaxRetry = 3 ; inline\nurl = a;b\nfailregex = ^one$\n    ^two$\n\n    # not a line\n    ^three$\n\nlogpath: /var/log/x\nempty =\n",
    );
    assert_eq!(f.get("Jail", "maxretry").unwrap().text, "3");
    assert_eq!(f.get("Jail", "url").unwrap().text, "a;b", "a `;` without a space before it is text");
    assert_eq!(f.get("Jail", "failregex").unwrap().text, "^one$\n^two$\n\n^three$");
    assert_eq!(f.get("Jail", "failregex").unwrap().line, 6);
    assert_eq!(f.get("Jail", "logpath").unwrap().text, "/var/log/x");
    assert_eq!(f.get("Jail", "empty").unwrap().text, "");
}

#[test]
fn ini_errors_name_the_file_and_line() {
    let e = ini::parse(Path::new("jail.local"), "bantime = 1h\n").unwrap_err();
    assert_eq!(e.to_string(), "jail.local:1: `bantime = 1h` comes before any [section] header");
    let e = ini::parse(Path::new("jail.local"), "[a]\nx = 1\nX = 2\n").unwrap_err();
    assert_eq!(e.to_string(), "jail.local:3: option `x` appears twice in section [a] of this file");
    let e = ini::parse(Path::new("j"), "[a]\njust words\n").unwrap_err();
    assert_eq!((e.line, e.message.contains("neither")), (2, true));
    let e = ini::parse(Path::new("j"), "[a]\n[a]\n").unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn files_are_read_in_fail2bans_order_and_later_wins() {
    let t = Tree::new(&[
        ("jail.conf", "[INCLUDES]\nbefore = paths.conf\n[DEFAULT]\nbantime = 10m\nfindtime = 1m\n[a]\nmaxretry = 1\nfindtime = 2m\n"),
        ("paths.conf", "[DEFAULT]\nlog = /var/log/p\n"),
        ("paths.local", "[DEFAULT]\nlog = /var/log/p-local\n"),
        ("jail.d/20-b.conf", "[a]\nmaxretry = 3\n"),
        ("jail.d/10-a.conf", "[a]\nmaxretry = 2\nbantime = 5m\n"),
        ("jail.local", "[a]\nmaxretry = 4\n[DEFAULT]\nfindtime = 9m\n"),
        ("jail.d/10-a.local", "[a]\nmaxretry = 5\n"),
        ("jail.d/.hidden.conf", "[a]\nmaxretry = 99\n"),
    ]);
    let cfg = Config::read(&t.0, "jail").unwrap();
    let names: Vec<String> = cfg.files.iter().map(|f| f.strip_prefix(&t.0).unwrap().display().to_string()).collect();
    assert_eq!(
        names,
        [
            "paths.conf",
            "paths.local",
            "jail.conf",
            "jail.d/10-a.conf",
            "jail.d/20-b.conf",
            "jail.local",
            "jail.d/10-a.local"
        ]
    );
    let v = BTreeMap::new();
    let get = |k: &str| cfg.get("a", k, &v).unwrap().unwrap();
    assert_eq!(get("maxretry"), "5");
    assert_eq!(get("bantime"), "5m", "the section's own value beats [DEFAULT]");
    assert_eq!(get("findtime"), "2m");
    assert_eq!(get("log"), "/var/log/p-local");
    assert_eq!(cfg.get("a", "nothing", &v), None);
    assert_eq!(cfg.get("KNOWN/a", "maxretry", &v).unwrap().unwrap(), "4", "the value the last file replaced");
}

#[test]
fn interpolation_follows_configparser_and_fail2ban() {
    let t = Tree::new(&[(
        "jail.conf",
        "[DEFAULT]\nfilter = %(__name__)s[mode=%(mode)s]\nmode = normal\nlog = /var/log/%(app)s.log\napp = x\n\
         act = base\n[s]\napp = asterisk\nact = %(default/act)s-s\npct = 50%%\nother = %(t/only)s\nbad = %(nope)s\nloop = %(loop)s\n\
         syntax = 5%d\n[t]\nonly = from-t\n",
    )]);
    let cfg = Config::read(&t.0, "jail").unwrap();
    let v = BTreeMap::new();
    let get = |k: &str| cfg.get("s", k, &v).unwrap();
    assert_eq!(get("filter").unwrap(), "s[mode=normal]");
    assert_eq!(get("log").unwrap(), "/var/log/asterisk.log", "a [DEFAULT] value sees the section's values");
    assert_eq!(get("act").unwrap(), "base-s");
    assert_eq!(get("pct").unwrap(), "50%");
    assert_eq!(get("other").unwrap(), "from-t");
    assert_eq!(get("bad"), Err(InterpError::Missing { at: "[s] bad".into(), name: "nope".into() }));
    assert!(matches!(get("loop"), Err(InterpError::Depth { .. })));
    assert!(matches!(get("syntax"), Err(InterpError::Syntax { .. })));
    let vars = BTreeMap::from([("mode".to_owned(), "ddos".to_owned())]);
    assert_eq!(cfg.get("s", "filter", &vars).unwrap().unwrap(), "s[mode=ddos]");
}

#[test]
fn known_refers_to_the_value_an_included_file_set() {
    let t = Tree::new(&[
        ("filter.d/common.conf", "[lt_journal]\nprefix = journal-prefix\n"),
        ("filter.d/app.conf", "[INCLUDES]\nbefore = common.conf\n[lt_journal]\nprefix = %(known/prefix)s-more\n"),
    ]);
    let cfg = Config::read(&t.0, "filter.d/app").unwrap();
    assert_eq!(cfg.get("lt_journal", "prefix", &BTreeMap::new()).unwrap().unwrap(), "journal-prefix-more");
}

#[test]
fn times_read_as_fail2ban_reads_them() {
    for (text, secs) in [("600", Some(600)), ("10m", Some(600)), ("360m", Some(21_600)), ("1h 30m", Some(5400))] {
        assert_eq!(values::seconds(text), Ok(secs), "{text}");
    }
    for (text, secs) in [("1d", Some(86_400)), ("1w", Some(604_800)), ("2 hours", Some(7200)), ("-1", None)] {
        assert_eq!(values::seconds(text), Ok(secs), "{text}");
    }
    assert_eq!(values::seconds("1mo"), Ok(Some(2_629_800)));
    assert!(values::seconds("1h*2").is_err());
    assert!(values::seconds("soon").is_err());
    assert_eq!(values::duration(Some(21_600)), "6h");
    assert_eq!(values::duration(None), "forever");
}

#[test]
fn names_with_options_split_as_extract_options() {
    let (n, o) = values::name_and_options("sshd[mode=aggressive, publickey=any]").unwrap();
    assert_eq!((n.as_str(), o.len(), o["mode"].as_str()), ("sshd", 2, "aggressive"));
    let (n, o) = values::name_and_options(r#"iptables[name=X, port="5060,5061", protocol='udp'][chain=IN]"#).unwrap();
    assert_eq!(n, "iptables");
    assert_eq!((o["port"].as_str(), o["protocol"].as_str(), o["chain"].as_str()), ("5060,5061", "udp", "IN"));
    assert_eq!(values::name_and_options("asterisk").unwrap().1.len(), 0);
    assert!(values::name_and_options("x[mode]").is_err());
}

#[test]
fn ignoreip_entries_become_networks() {
    assert_eq!(values::network("127.0.0.1/8").unwrap().to_string(), "127.0.0.0/8");
    assert_eq!(values::network("10.1.0.0/255.255.0.0").unwrap().to_string(), "10.1.0.0/16");
    assert_eq!(values::network("::1").unwrap().to_string(), "::1/128");
    assert!(values::network("pbx.example.com").is_err());
    assert!(values::network("10.0.0.0/255.0.255.0").is_err());
    assert_eq!(values::words("127.0.0.1/8 ::1,\n 10.0.0.1"), ["127.0.0.1/8", "::1", "10.0.0.1"]);
    assert_eq!(
        values::journal_alternatives("_SYSTEMD_UNIT=sshd.service + _COMM=sshd\n_UID=0 SYSLOG_IDENTIFIER=x"),
        [vec!["_SYSTEMD_UNIT=sshd.service"], vec!["_COMM=sshd"], vec!["_UID=0", "SYSLOG_IDENTIFIER=x"]]
    );
}
