//! Rules parsing: the shipped files load, and every kind of mistake is reported where it is.

use std::path::Path;

use super::*;
use crate::rules::jails::{DetectorKind, Mode};

mod crowdsec;
mod discovery;
mod sip;

fn reject(text: &str) -> Vec<(usize, usize, String)> {
    let err = Rules::parse("t.toml", text, Path::new("/nonexistent")).expect_err("must be rejected");
    err.errors().map(|d| (d.line, d.column, d.message.clone())).collect()
}

fn accept(text: &str) -> (Rules, Vec<Diagnostic>) {
    Rules::parse("t.toml", text, Path::new("/nonexistent")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn example_rules_are_accepted_as_written() {
    let text = include_str!("../../../rules/example.toml");
    let (r, warnings) = accept(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(r.allow.len(), 4);
    assert_eq!(r.block.iter().map(|n| n.to_string()).collect::<Vec<_>>(), ["203.0.113.0/24", "2001:db8:bad::/48"]);
    assert_eq!(r.bans, BanSettings { ipv6_prefix: 64, capacity: 1_000_000 });
    let names: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["sip", "rtp", "ssh"]);
    let sip = &r.services[0];
    assert_eq!(sip.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["5060/udp", "5060/tcp", "5061/tcp"]);
    assert_eq!(sip.limit, Some(Limit { rate: 50, burst: 200 }));
    assert_eq!(sip.allow_from, None);
    let ssh = &r.services[2];
    assert_eq!(ssh.allow_from.as_ref().unwrap()[0].to_string(), "188.10.11.12/32");
    assert_eq!(ssh.limit_tcp, TcpLimit::Syn);
}

#[test]
fn default_rules_are_valid() {
    let r = Rules::default_rules();
    assert!(r.services.iter().any(|s| s.name == "sip"));
    assert!(r.services.iter().all(|s| s.allow_from.is_none()), "defaults must never lock anyone out");
}

#[test]
fn syntax_errors_have_a_position() {
    let errs = reject("[allow]\nsources = [\"1.2.3.4\"\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].2.starts_with("not valid TOML"), "{errs:?}");
    assert_eq!(errs[0].0, 2);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = r#"[allow]
sources = ["1.2.3.4/33", "10.0.0.0/8", "nonsense"]

[bans]
ipv6_prefix = 200
capcity = 10

[services.sip]
ports = ["5060", "5060/udp"]
rate = "fast"
"#;
    let errs = reject(text);
    let pos: Vec<(usize, usize)> = errs.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(pos, [(2, 13), (2, 41), (5, 15), (6, 1), (9, 11), (10, 8)], "{errs:#?}");
    assert!(errs[0].2.contains("0 to 32"));
    assert!(errs[1].2.contains("`nonsense`"));
    assert!(errs[2].2.contains("between 1 and 128"));
    assert!(errs[3].2.contains("did you mean `capacity`"));
    assert!(errs[4].2.contains("5060/udp"));
    assert!(errs[5].2.contains("must be an integer, found a string"));
}

#[test]
fn unknown_sections_and_types() {
    let errs = reject("[alow]\nsources = []\n\nservices = 3\n");
    assert!(errs[0].2.contains("did you mean [allow]"), "{errs:?}");
    let errs = reject("[block]\nsources = \"1.2.3.4\"\nfiles = [1]\n");
    assert!(errs[0].2.contains("must be an array of strings, found a string"), "{errs:?}");
    assert!(errs[1].2.contains("only strings, found an integer"), "{errs:?}");
}

#[test]
fn service_errors() {
    let text = r#"[services.sip]
ports = ["5060/udp"]
[services.other]
ports = ["5000-5100/udp"]
[services.nolimit]
burst = 5
[services.BAD]
ports = ["1/tcp"]
limit_tcp = "sometimes"
[services.empty]
ports = []
"#;
    let errs = reject(text);
    let msgs: Vec<&str> = errs.iter().map(|e| e.2.as_str()).collect();
    assert!(msgs[0].contains("overlaps 5060/udp of service `sip`"), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("[services.nolimit] needs `ports`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("`burst` but no `rate`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("service name `BAD`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("\"syn\" (connection attempts) or \"all\"")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("`ports` is empty")), "{msgs:?}");
    assert_eq!(errs[0].0, 4);
}

#[test]
fn too_many_services() {
    let mut text = String::new();
    for i in 0..32 {
        text.push_str(&format!("[services.s{i}]\nports = [\"{}/udp\"]\n", 1000 + i));
    }
    let errs = reject(&text);
    assert!(errs.iter().any(|e| e.2.contains("32 services defined; at most 31")), "{errs:?}");
}

#[test]
fn rate_defaults_burst_and_tcp_mode() {
    let (r, _) = accept("[services.x]\nports = [\"22/tcp\"]\nrate = 7\nlimit_tcp = \"all\"\n");
    assert_eq!(r.services[0].limit, Some(Limit { rate: 7, burst: 7 }));
    assert_eq!(r.services[0].limit_tcp, TcpLimit::All);
}

#[test]
fn warnings_do_not_reject() {
    let (r, w) = accept("[allow]\nsources = [\"10.1.2.3/8\"]\n[services.ssh]\nports = [\"22/tcp\"]\nallow_from = []\n");
    assert_eq!(r.allow[0].to_string(), "10.0.0.0/8");
    assert_eq!(w.len(), 2);
    assert!(w[0].message.contains("host bits"));
    assert!(w[1].message.contains("only the global allow list"));
}

#[test]
fn journal_fields_journald_reads_in_proc_are_warned_of() {
    let jail = |src: &str| format!("[jails.sshd]\nlogpath = [\"{src}\"]\n");
    let (r, w) = accept(&jail("journal:_UID=0 _COMM=sshd"));
    assert_eq!(r.detection.jail("sshd").unwrap().logpath[0].to_string(), "journal:_UID=0 _COMM=sshd");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message.contains("`_COMM=sshd` misses entries") && w[0].message.contains("SYSLOG_IDENTIFIER"),
        "{w:?}"
    );
    assert_eq!((w[0].line, w[0].column), (2, 13));
    for quiet in ["journal:_UID=0 SYSLOG_IDENTIFIER=sshd", "journal:asterisk.service", "/var/log/auth.log"] {
        assert!(accept(&jail(quiet)).1.is_empty(), "{quiet}");
    }
}

#[test]
fn settings_ranges() {
    let errs = reject("[rate_limit]\ncapacity = 10\nreport_interval = \"5ms\"\n[block]\ncapacity = -1\n");
    let msgs: Vec<&str> = errs.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs[0].contains("between 1024"));
    assert!(msgs[1].contains("at least 10ms"));
    let (r, _) = accept("[rate_limit]\ncapacity = 4096\nreport_interval = \"250ms\"\n");
    assert_eq!(r.rate_limit.capacity, 4096);
    assert_eq!(r.rate_limit.report_interval, Duration::from_millis(250));
}

#[test]
fn blocklist_files_load_relative_to_the_rules_file() {
    let dir = std::env::temp_dir().join(format!("sipwall-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("drop.txt"), "# list\n198.51.100.0/24\n2001:db8:1::/48 ; note\n").unwrap();
    std::fs::write(dir.join("bad.txt"), "198.51.100.0/24\n999.0.0.1\n").unwrap();
    let good = "[block]\nfiles = [\"drop.txt\"]\n";
    let (r, _) = Rules::parse("t.toml", good, &dir).unwrap();
    assert_eq!(r.blocked().count(), 2);
    assert_eq!(r.watched_files(), [dir.join("drop.txt")]);

    // outside data: a faulty list does not reject the rules, it carries its faults
    let bad = "[block]\nfiles = [\"bad.txt\", \"missing.txt\"]\nsources = [\"203.0.113.0/24\"]\n";
    let (mut r2, _) = Rules::parse("t.toml", bad, &dir).unwrap();
    let shown: Vec<String> = r2.list_faults().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown[0].starts_with(&format!("{}:2:1: error: `999.0.0.1`", dir.join("bad.txt").display())), "{shown:?}");
    assert!(shown[1].starts_with("t.toml:2:22: error: cannot read blocklist"), "{shown:?}");
    assert_eq!(r2.block_files[0].nets.len(), 1, "what could be read of a list new to the rules applies");
    assert_eq!(r2.block.len(), 1, "the rest of the rules apply");

    // in a running daemon, the faulty lists keep their last good version
    std::fs::write(dir.join("missing.txt"), "192.0.2.0/24\n192.0.2.77\n").unwrap();
    std::fs::write(dir.join("bad.txt"), "198.51.100.0/24\n198.51.101.0/24\n").unwrap();
    let (good2, _) = Rules::parse("t.toml", bad, &dir).unwrap();
    assert_eq!(good2.list_faults().count(), 0);
    std::fs::write(dir.join("bad.txt"), "198.51.100.0/24\n198.51.10").unwrap();
    std::fs::remove_file(dir.join("missing.txt")).unwrap();
    r2 = Rules::parse("t.toml", bad, &dir).unwrap().0;
    r2.keep_good_lists(&good2);
    assert!(r2.block_files.iter().all(|f| f.kept && !f.faults.is_empty()));
    assert_eq!(r2.blocked().count(), good2.blocked().count());
    assert_eq!(r2.block_files[0].offsets, [0, 16], "offsets of the kept version");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn example_jails_and_builtin_defaults() {
    let (r, _) = accept(include_str!("../../../rules/example.toml"));
    let d = &r.detection;
    let names: Vec<&str> = d.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["asterisk", "sshd", "recidive", "flood", "sip-wire", "scanner"]);
    let wire = d.jail("sip-wire").unwrap();
    assert_eq!((wire.findtime.as_secs(), wire.maxretry, wire.bantime.map(|b| b.as_secs())), (600, 10, Some(6 * 3600)));
    assert!(!wire.detector.reads_logs());
    let sshd = d.jail("sshd").unwrap();
    assert_eq!(sshd.logpath[0].to_string(), jails::SSHD_JOURNAL);
    assert_eq!((sshd.findtime.as_secs(), sshd.maxretry, sshd.bantime.map(|b| b.as_secs())), (120, 10, Some(1200)));
    assert_eq!(sshd.increment.as_ref().unwrap().maxtime, Some(Duration::from_secs(7 * 86400)));
    assert_eq!(d.jail("flood").unwrap().services, ["sip"]);
    // without any [jails] the built-in ones apply with the hardening guides' values
    let (r, _) = accept("");
    let a = r.detection.jail("asterisk").unwrap();
    assert_eq!((a.findtime.as_secs(), a.maxretry, a.bantime.map(|b| b.as_secs())), (600, 3, Some(6 * 3600)));
    assert!(r.detection.jail("recidive").unwrap().enabled);
}

#[test]
fn jail_overrides_and_new_jails() {
    let text = r#"
[detectors.freepbx]
prefregex = '^%(__prefix_line)s(?:NOTICE|WARNING)\[\d+\]\S*:? [^:]+:\d* <F-CONTENT>.+</F-CONTENT>$'
failregex = '''
    ^Friendly Scanner from <HOST>$
    ^Blocked <HOST>
'''
definitions = { _daemon = "asterisk" }

[jails.sshd]
enabled = false

[jails.asterisk]
bantime = -1
ignore = ["10.0.0.0/8"]
increment = false

[jails.scanners]
detector = "freepbx"
logpath = "/var/log/asterisk/full"
maxretry = 1
bantime = "forever"

[jails.ssh-aggressive]
detector = "sshd"
mode = "aggressive"
logpath = ["/var/log/auth.log"]

[jails.recidive.increment]
multipliers = [1, 4, 16]
overalljails = true
"#;
    let (r, _) = accept(text);
    let d = &r.detection;
    assert!(!d.jail("sshd").unwrap().enabled);
    let a = d.jail("asterisk").unwrap();
    assert_eq!((a.bantime, a.increment.is_none(), a.ignore[0].to_string()), (None, true, "10.0.0.0/8".into()));
    let s = d.jail("scanners").unwrap();
    assert_eq!(s.detector, DetectorKind::Custom("freepbx".into()));
    assert_eq!((s.maxretry, s.bantime), (1, None));
    assert_eq!(d.detectors["freepbx"].failregex.len(), 2);
    assert_eq!(d.jail("ssh-aggressive").unwrap().detector, DetectorKind::Sshd(Mode::Aggressive));
    let inc = d.jail("recidive").unwrap().increment.clone().unwrap();
    assert_eq!((inc.multipliers, inc.overalljails), (vec![1, 4, 16], true));
}

#[test]
fn jail_errors_are_placed() {
    let text = r#"[jails.new]
logpath = ["relative/path"]

[jails.asterisk]
detector = "nosuch"
findtime = "10 minutes"
maxretry = 0
mode = "ddos"

[jails.flood]
services = ["nosuch"]
logpath = ["/var/log/x"]

[detectors.broken]
failregex = ['^unclosed ( <HOST>']

[jails.other]
detector = "sshd"

[webhook]
url = "ftp://example.com/hook"
"#;
    let errs = reject(text);
    let msgs: Vec<String> = errs.iter().map(|e| format!("{}:{} {}", e.0, e.1, e.2)).collect();
    let has = |line: usize, needle: &str| {
        assert!(errs.iter().any(|e| e.0 == line && e.2.contains(needle)), "line {line}: `{needle}` not in {msgs:#?}")
    };
    has(1, "needs `detector`");
    has(2, "absolute path");
    has(5, "unknown detector `nosuch`");
    has(6, "not a duration");
    has(7, "between 1 and");
    has(8, "sshd detector only");
    has(11, "service `nosuch` is not defined");
    has(12, "reads no logs");
    has(15, "failregex[0]");
    has(17, "needs `logpath`");
    has(21, "http://");
}

#[test]
fn a_file_the_toml_parser_panics_on_is_rejected() {
    // found by fuzzing: toml_edit 0.23 panics ("all items have spans") on this input
    let text = include_str!("tests/toml_panic.toml");
    let err = Rules::parse("t.toml", text, Path::new("/")).unwrap_err();
    assert!(err.to_string().contains("not valid TOML"), "{err}");
}

#[test]
fn definitions_that_double_at_every_step_are_rejected_where_they_are_used() {
    // found by fuzzing: this resolved to 2^25 copies and ran `sipwall check` out of memory
    let e = reject("[detectors.d]\ndaemon = '<__daemon_combs_re>'\nfailregex = '<_daemon> <HOST>'\n");
    assert_eq!(e.len(), 1, "{e:?}");
    let (line, _, msg) = &e[0];
    assert_eq!(*line, 3, "{e:?}");
    assert!(msg.contains("longer than 65536 bytes"), "{msg}");
}

#[test]
fn sip_iax_and_rtp_may_leave_their_ports_to_asterisk() {
    use crate::rules::services::PortsFrom;
    let (r, _) =
        accept("[services.sip]\nrate = 50\n\n[services.rtp]\nports = [\"16384-32767/udp\"]\n\n[services.iax]\n");
    let sip = r.services.iter().find(|s| s.name == "sip").unwrap();
    assert_eq!(sip.ports_from, PortsFrom::Standard);
    let ports: Vec<String> = sip.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["5060/udp", "5060/tcp", "5061/tcp"]);
    let rtp = r.services.iter().find(|s| s.name == "rtp").unwrap();
    assert_eq!(rtp.ports_from, PortsFrom::Rules, "written ports stay as written");
    let iax = r.services.iter().find(|s| s.name == "iax").unwrap();
    assert_eq!(iax.ports.iter().map(ToString::to_string).collect::<Vec<_>>(), ["4569/udp"]);
    let errs = reject("[services.web]\nrate = 5\n");
    assert!(errs.iter().any(|e| e.0 == 1 && e.2.contains("[services.web] needs `ports`")), "{errs:?}");
    let errs = reject("[services.sip]\n\n[services.pbx]\nports = [\"5060/udp\"]\n");
    assert!(errs.iter().any(|e| e.2.contains("overlaps 5060/udp of service `sip`")), "{errs:?}");
    let errs = reject("[services.pbx]\nports = [\"5060/udp\"]\n\n[services.sip]\n");
    assert!(errs.iter().any(|e| e.2.contains("takes the standard 5060/udp, which overlaps")), "{errs:?}");
}
