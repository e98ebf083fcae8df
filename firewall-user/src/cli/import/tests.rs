//! Unit tests of the fail2ban import's translation and writer, on configurations written here.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use super::{
    glob, import,
    model::{Imported, Increment, JailOut},
    write,
};
use crate::rules::{jails::SSHD_JOURNAL, Rules};

/// A directory of files, removed when dropped.
pub(super) struct Tree(pub(super) PathBuf);

impl Tree {
    pub(super) fn new(files: &[(&str, &str)]) -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sipwall-import-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        Tree(dir)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const COMMON: &str = "[DEFAULT]\n_daemon = \\S*\n__prefix_line = \\s*\ndatepattern = {^LN-BEG}\n";
const APP: &str = "[INCLUDES]\nbefore = common.conf\n[Init]\nlevel = WARN\n[Definition]\n_daemon = app\n\
                   pfx = %(__prefix_line)s<level>\nfailregex = ^%(pfx)s login failed from <HOST> (100%% sure)$\n\
                   \t^%(pfx)s it's <mdre-<mode>>\nmdre-normal = bad user from <HOST>\nmdre-extra = .* from <HOST>\n\
                   ignoreregex =\njournalmatch = _SYSTEMD_UNIT=app.service + _COMM=app\n";

fn jail<'a>(imp: &'a Imported, name: &str) -> &'a JailOut {
    imp.jails.iter().find(|j| j.name == name).unwrap_or_else(|| panic!("no jail {name}: {imp:#?}"))
}

fn config(extra: &[(&str, &str)]) -> Tree {
    let mut files = vec![
        ("jail.conf", "[DEFAULT]\nenabled = false\nfilter = %(__name__)s[mode=%(mode)s]\nmode = normal\nbantime = 10m\nfindtime = 10m\nmaxretry = 5\nbackend = auto\naction = iptables-multiport\n[sshd]\nlogpath = /var/log/auth.log\n[asterisk]\nlogpath = /var/log/asterisk/messages\n[recidive]\nlogpath = /var/log/fail2ban.log\nbantime = 1w\nfindtime = 1d\n"),
        ("filter.d/common.conf", COMMON),
        ("filter.d/asterisk.conf", "[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = ^failed for '<HOST>'$\njournalmatch = _SYSTEMD_UNIT=asterisk.service\n"),
        ("filter.d/sshd.conf", "[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = ^Failed .* from <HOST>\n"),
        ("filter.d/recidive.conf", "[Definition]\nfailregex = Ban <HOST>\n"),
        ("filter.d/app.conf", APP),
    ];
    files.extend_from_slice(extra);
    Tree::new(&files)
}

#[test]
fn the_issues_jails_translate_to_the_built_in_ones() {
    let t = config(&[(
        "jail.local",
        "[asterisk]\nenabled  = true\nfilter   = asterisk\naction   = iptables-allports[name=ASTERISK, protocol=all]\n\
         logpath  = /var/log/asterisk/messages\nfindtime = 10m\nmaxretry = 3\nbantime  = 360m\nignoreip = 127.0.0.1/8 51.5.6.0/24\n\n\
         [sshd]\nenabled = true\nmaxretry = 10\nfindtime = 2m\nbantime = 20m\n\n[recidive]\nenabled = true\n",
    )]);
    let imp = import(&t.0, false).unwrap();
    let a = jail(&imp, "asterisk");
    assert_eq!(
        (a.enabled, a.detector.as_deref(), a.logpath.as_slice()),
        (true, None, &["/var/log/asterisk/messages".to_owned()][..])
    );
    assert_eq!((a.findtime, a.maxretry, a.bantime), (Some(600), Some(3), Some(Some(21_600))));
    let ignore: Vec<String> = a.ignore.iter().map(ToString::to_string).collect();
    assert_eq!(ignore, ["127.0.0.0/8", "51.5.6.0/24"]);
    assert_eq!(a.increment, Some(Increment::Off), "fail2ban's bantime.increment is off by default");
    let s = jail(&imp, "sshd");
    assert_eq!(
        (s.mode.as_deref(), s.findtime, s.maxretry, s.bantime),
        (Some("normal"), Some(120), Some(10), Some(Some(1200)))
    );
    let r = jail(&imp, "recidive");
    assert_eq!((r.logpath.len(), r.findtime, r.maxretry, r.bantime), (0, Some(86_400), Some(5), Some(Some(604_800))));
    assert!(imp.allow.is_empty(), "[DEFAULT] has no ignoreip");
    assert!(imp.detectors.is_empty());
    let actions: Vec<String> = imp.notes.iter().map(ToString::to_string).collect();
    assert_eq!(actions.len(), 3, "{actions:#?}");
    assert!(
        actions.iter().any(|n| n.contains(
            "jail.local:4: [asterisk] not translated: action `iptables-allports[name=ASTERISK, protocol=all]`"
        )),
        "{actions:#?}"
    );
    let text = write::rules(&imp, &t.0);
    Rules::parse("imported.toml", &text, Path::new("/")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // the asterisk jail is told of AMI, right above its logpath
    let at = text.find("\n[jails.asterisk]").unwrap();
    let jail = &text[at..at + text[at..].find("\nlogpath = ").unwrap()];
    assert!(jail.contains("# \"ami:127.0.0.1:5038\" to logpath"), "{jail}");
}

#[test]
fn overrides_in_jail_d_disable_jails_and_change_defaults() {
    let t = config(&[
        ("jail.local", "[DEFAULT]\nignoreip = 127.0.0.1/8 ::1 ops.example.com\nbantime = 1h\n[asterisk]\nenabled = true\nmaxretry = 4\n[sshd]\nenabled = true\n[app]\nenabled = true\nlogpath = /var/log/app.log\nignoreip = %(default/ignoreip)s 192.0.2.7\n"),
        ("jail.d/10-asterisk.conf", "[asterisk]\nfindtime = 5m\nmaxretry = 2\nbantime.increment = true\nbantime.factor = 2\nbantime.multipliers = 1 2 4\nbantime.rndtime = 30\n"),
        ("jail.d/20-sshd.local", "[sshd]\nenabled = false\n"),
        ("jail.d/30-defaults.local", "[DEFAULT]\nfindtime = 15m\n"),
        ("fail2ban.conf", "[Definition]\ndbpurgeage = 1d\n"),
        ("fail2ban.d/local.conf", "[Definition]\ndbpurgeage = 3d\n"),
    ]);
    let imp = import(&t.0, false).unwrap();
    let a = jail(&imp, "asterisk");
    assert_eq!((a.findtime, a.maxretry, a.bantime), (Some(300), Some(4), Some(Some(3600))));
    assert_eq!(
        a.increment,
        Some(Increment::On {
            factor: None,
            multipliers: vec![2, 4, 8],
            maxtime: None,
            overalljails: false,
            window: Some(3 * 86_400)
        }),
        "the factor multiplies the multipliers, as in fail2ban"
    );
    assert!(!jail(&imp, "sshd").enabled, "disabled by jail.d/20-sshd.local");
    assert!(!jail(&imp, "recidive").enabled);
    let app = jail(&imp, "app");
    assert_eq!(app.findtime, Some(900), "[DEFAULT] of a later .local");
    let allow: Vec<String> = imp.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["127.0.0.0/8", "::1/128"]);
    assert_eq!(app.ignore.iter().map(ToString::to_string).collect::<Vec<_>>(), ["192.0.2.7/32"]);
    let notes: Vec<String> = imp.notes.iter().map(ToString::to_string).collect();
    assert!(notes.iter().any(|n| n.contains("[asterisk] not translated: `bantime.rndtime`")), "{notes:#?}");
    assert!(notes.iter().any(|n| n.contains("ignoreip `ops.example.com`: a host name")), "{notes:#?}");
    let text = write::rules(&imp, &t.0);
    let (rules, _) = Rules::parse("imported.toml", &text, Path::new("/")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let inc = rules.detection.jail("asterisk").unwrap().increment.clone().unwrap();
    assert_eq!((inc.multipliers, inc.maxtime), (vec![2, 4, 8], None));
}

#[test]
fn a_filter_of_its_own_is_pasted_with_its_options_and_init() {
    let t = config(&[
        ("jail.local", "[app]\nenabled = true\nfilter = app[mode=extra]\nlogpath = /var/log/app.log\n"),
        ("filter.d/app.local", "[Init]\nlevel = ERROR\n"),
    ]);
    let imp = import(&t.0, false).unwrap();
    assert_eq!(jail(&imp, "app").detector.as_deref(), Some("app"));
    let d = &imp.detectors[0];
    assert_eq!(d.failregex, "^\\s*<level> login failed from <HOST> (100%% sure)$\n^\\s*<level> it's <mdre-<mode>>");
    assert_eq!(d.definitions["mode"], "extra");
    assert_eq!(d.definitions["level"], "ERROR", "app.local's [Init]");
    assert_eq!(d.definitions["_daemon"], "app");
    assert!(!d.definitions.contains_key("__prefix_line"), "common.conf's definitions are built into sipwall");
    let text = write::rules(&imp, &t.0);
    let (rules, _) = Rules::parse("imported.toml", &text, Path::new("/")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(rules.detection.detectors["app"], super::filter::spec(d), "the file reads back as written");
}

#[test]
fn the_journal_backend_reads_the_filters_journalmatch() {
    let t = config(&[(
        "jail.local",
        "[DEFAULT]\nbackend = systemd\n[sshd]\nenabled = true\n[app]\nenabled = true\n[asterisk]\nenabled = true\n",
    )]);
    let imp = import(&t.0, false).unwrap();
    assert_eq!(jail(&imp, "sshd").logpath, [SSHD_JOURNAL]);
    assert_eq!(jail(&imp, "app").logpath, ["journal:app.service", "journal:_COMM=app"]);
    assert_eq!(jail(&imp, "asterisk").logpath, ["journal:asterisk.service"]);
    assert_eq!(imp.detectors[0].definitions["logtype"], "journal");
}

#[test]
fn what_cannot_be_carried_is_listed() {
    let t = config(&[(
        "jail.local",
        "[web]\nenabled = true\nfilter = app[mode=normal]\nlogpath = /var/log/web/*.log\n[nofilter]\nenabled = true\nfilter = missing\nlogpath = /x\n\
         [sshd]\nenabled = true\nfilter = sshd[mode=aggressive, publickey=any]\nusedns = yes\nmaxmatches = 3\nmystery = 1\n",
    )]);
    let imp = import(&t.0, false).unwrap();
    let notes: Vec<String> = imp.notes.iter().map(ToString::to_string).collect();
    let has = |s: &str| assert!(notes.iter().any(|n| n.contains(s)), "{s}: {notes:#?}");
    has("[web] not translated: logpath `/var/log/web/*.log`: matches no file on this host, and sipwall takes no wildcards");
    has("[web] not translated: the jail: none of its log sources");
    has("[nofilter] not translated: the jail: the filter `missing`");
    has("[sshd] not translated: `usedns = yes`");
    has("[sshd] not translated: `mystery`: no sipwall equivalent");
    assert!(imp.jails.iter().all(|j| j.name != "web" && j.name != "nofilter"));
    // an option sipwall's sshd detector lacks: fail2ban's own filter is pasted instead
    let s = jail(&imp, "sshd");
    assert_eq!((s.detector.as_deref(), s.mode.as_deref()), (Some("sshd-filter"), None));
    assert_eq!(imp.detectors[0].definitions["publickey"], "any");
}

#[test]
fn strings_are_written_so_that_toml_reads_them_back() {
    for s in ["plain \\d+", "it's", "two\nlines", "ends with '", "has ''' inside", "tab\there", "quote \" and \\"] {
        let text = format!("v = {}\n", write::string(s));
        let doc: toml_edit::DocumentMut = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(doc["v"].as_str(), Some(s), "{text}");
    }
    assert_eq!(write::key("mdre-normal"), "mdre-normal");
    assert_eq!(write::key("lt_journal/__prefix_line"), "'lt_journal/__prefix_line'");
}

#[test]
fn a_file_name_or_journal_match_cannot_write_toml_of_its_own() {
    // a log file named by someone who can write in a logpath wildcard's directory
    let hostile = "/var/log/x\"]\n[allow]\nsources = [\"0.0.0.0\\u002F0\"]\n#";
    let items = [hostile, "journal:_SYSTEMD_UNIT=vpn@my\\x2dvpn.service", "cr\rhere"];
    let text = format!("logpath = {}\n", write::list(&items));
    let doc: toml_edit::DocumentMut = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    let read: Vec<&str> = doc["logpath"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(read, items, "{text}");
    assert!(doc.get("allow").is_none() && text.lines().count() == 1, "{text}");
    for k in ["a\"b", "new\nline", "cr\r"] {
        let text = format!("[t]\n{} = 1\n", write::key(k));
        let doc: toml_edit::DocumentMut = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(doc["t"].as_table().unwrap().iter().next().unwrap().0, k, "{text}");
    }
}

#[test]
fn logpath_wildcards_expand_as_glob() {
    assert!(glob::matches("*error.log", "site-error.log"));
    assert!(glob::matches("L[0-9]*.log", "L7-x.log"));
    assert!(!glob::matches("L[!0-9]*.log", "L7.log"));
    assert!(glob::matches("a?c", "abc") && !glob::matches("a?c", "ac"));
    assert!(!glob::matches("*.log", ".hidden.log"));
    let t =
        Tree::new(&[("w1/a-error.log", ""), ("w2/b-error.log", ""), ("w2/access.log", ""), ("w2/x-error.log.1", "")]);
    let pattern = format!("{}/w*/*error.log", t.0.display());
    let found: Vec<String> =
        glob::expand(&pattern).iter().map(|p| p.strip_prefix(&t.0).unwrap().display().to_string()).collect();
    assert_eq!(found, ["w1/a-error.log", "w2/b-error.log"]);
    let c =
        config(&[("jail.local", &format!("[app]\nenabled = true\nfilter = app[mode=normal]\nlogpath = {pattern}\n"))]);
    let imp = import(&c.0, false).unwrap();
    assert_eq!(jail(&imp, "app").logpath.len(), 2);
}

#[test]
fn an_init_value_is_used_as_interpolated_once() {
    let t = config(&[
        ("jail.local", "[grafana]\nenabled = true\nlogpath = /var/log/grafana.log\n"),
        (
            "filter.d/grafana.conf",
            "[INCLUDES]\nbefore = common.conf\n[Init]\ndatepattern = ^t=%%Y-%%m-%%dT%%H:%%M:%%S%%z\n\
             [Definition]\nfailregex = ^(?: lvl=err?or)? msg=\"Invalid username or password\" remote_addr=<ADDR>$\n",
        ),
    ]);
    let imp = import(&t.0, false).unwrap();
    assert!(
        imp.notes.iter().all(|n| n.jail.as_deref() != Some("grafana") || n.text.contains("action")),
        "{:#?}",
        imp.notes
    );
    let d = &imp.detectors[0];
    assert_eq!(d.datepattern.as_deref(), Some("^t=%%Y-%%m-%%dT%%H:%%M:%%S%%z"), "escaped again for the detector");
    let text = write::rules(&imp, &t.0);
    Rules::parse("imported.toml", &text, Path::new("/")).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn a_filter_without_common_conf_looks_for_the_date_anywhere() {
    let t = config(&[
        ("jail.local", "[web]\nenabled = true\nlogpath = /var/log/web.log\n"),
        ("filter.d/web.conf", "[Definition]\nfailregex = ^.* auth failed for <HOST>$\n"),
    ]);
    let imp = import(&t.0, false).unwrap();
    assert_eq!(imp.detectors[0].datepattern.as_deref(), Some("{DEFAULT}"), "as fail2ban without common.conf");
}
