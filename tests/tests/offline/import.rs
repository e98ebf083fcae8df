//! `sipwall import-fail2ban` on Debian's own `/etc/fail2ban`, alone and with the jails of
//! issue 15 or with `jail.d` overrides: the rules pass `sipwall check`, and on fail2ban's sample
//! logs the imported jails find the same failures per address as `fail2ban-regex` with the
//! source jail's filter.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use sipwall::rules::Rules;
use sipwall_tests::{daemon::sipwall_bin, samples::LOGS};

const FAIL2BAN: &str = "/etc/fail2ban";

/// Whether Debian's fail2ban (configuration, sample logs, fail2ban-regex) is installed; outside
/// CI its absence skips loudly, under CI it fails.
fn installed(test: &str) -> bool {
    let regex = Command::new("fail2ban-regex").arg("--version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (Path::new(FAIL2BAN).join("jail.conf").is_file(), "/etc/fail2ban/jail.conf"),
        (Path::new(LOGS).is_dir(), LOGS),
        (regex, "fail2ban-regex"),
    ]
    .iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| *what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false);
    assert!(!ci, "{test}: {missing:?} missing; scripts/setup --test installs Debian's fail2ban package");
    eprintln!("\n*** SKIPPED {test}: {missing:?} missing (install Debian's fail2ban package). ***\n");
    false
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A copy of /etc/fail2ban with `extra` files written over it.
struct Copy(PathBuf);

impl Copy {
    fn new(name: &str, extra: &[(&str, &str)]) -> Copy {
        let dir = std::env::temp_dir().join(format!("sipwall-import-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(Path::new(FAIL2BAN), &dir);
        for (p, text) in extra {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Copy(dir)
    }

    /// Imports into `rules.toml` (with `args`), checks it with `sipwall check`, and loads it.
    fn import(&self, args: &[&str]) -> (PathBuf, String, Rules) {
        let out = self.0.join(format!("rules{}.toml", args.join("")));
        let (code, _, err) = run(Command::new(sipwall_bin())
            .arg("import-fail2ban")
            .arg(&self.0)
            .arg("--output")
            .arg(&out)
            .arg("--force")
            .args(args));
        assert_eq!(code, 0, "{err}");
        let (code, stdout, stderr) = run(Command::new(sipwall_bin()).arg("check").arg(&out));
        assert_eq!(code, 0, "sipwall check: {stdout}{stderr}");
        let rules = Rules::load(&out).unwrap_or_else(|e| panic!("{e}")).0;
        (out, err, rules)
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn addr(s: &str) -> String {
    sipwall::detection::detect::host::addr(s).map_or_else(|| s.to_owned(), |a| a.to_string())
}

/// Failures per address that `fail2ban-regex` finds in `log` with `filter`. Host names are not
/// resolved (`--usedns=no`): sipwall reports them and never bans them, and what they resolve to
/// would depend on the network.
fn fail2ban_regex(log: &Path, filter: &str) -> BTreeMap<String, usize> {
    let (code, out, err) = run(Command::new("fail2ban-regex").args(["--usedns=no", "-o", "ip"]).arg(log).arg(filter));
    assert_eq!(code, 0, "fail2ban-regex {filter}: {err}");
    let mut m = BTreeMap::new();
    for l in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        *m.entry(addr(l)).or_default() += 1;
    }
    m
}

/// Failures per address that `sipwall test-log` finds in `log` with `jail` of `rules`, leaving
/// out the lines that `skip` names, and how many failures were left out so.
fn test_log(rules: &Path, jail: &str, log: &Path, skip: &dyn Fn(&str) -> bool) -> (BTreeMap<String, usize>, usize) {
    let (code, out, err) =
        run(Command::new(sipwall_bin()).args(["test-log", "--json", "--jail", jail, "--config"]).arg(rules).arg(log));
    assert_eq!(code, 0, "sipwall test-log: {err}");
    let lines: Vec<String> = std::fs::read_to_string(log).unwrap().lines().map(str::to_owned).collect();
    let (mut m, mut skipped) = (BTreeMap::new(), 0);
    for l in out.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let n = v["line"].as_u64().unwrap() as usize;
        // a host name is reported (kind `hostname`), never banned
        if v["kind"] != "failure" {
            continue;
        }
        if skip(&lines[n - 1]) {
            skipped += 1;
        } else {
            *m.entry(addr(v["host"].as_str().unwrap())).or_default() += 1;
        }
    }
    (m, skipped)
}

/// RFC 5424 syslog lines: sipwall's sshd detector reads them, fail2ban's filter only with
/// `logtype = rfc5424`.
fn rfc5424(line: &str) -> bool {
    line.strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .is_some_and(|(p, r)| p.bytes().all(|b| b.is_ascii_digit()) && r.starts_with("1 "))
}

/// The imported jail finds what the source jail's filter finds, address by address.
fn same_failures(dir: &Path, rules: &Path, jail: &str, filter: &str, skip: &dyn Fn(&str) -> bool) {
    same_failures_as(dir, rules, jail, jail, filter, skip)
}

/// [`same_failures`] for a jail named otherwise than the sample log.
fn same_failures_as(dir: &Path, rules: &Path, jail: &str, sample: &str, filter: &str, skip: &dyn Fn(&str) -> bool) {
    let log = Path::new(LOGS).join(sample);
    let f2b = fail2ban_regex(&log, &dir.join("filter.d").join(filter).display().to_string());
    let (sw, skipped) = test_log(rules, jail, &log, skip);
    let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
    // written past the test harness's capture so that CI logs show the score
    let _ = writeln!(
        std::io::stderr(),
        "import {}: jail {jail} on the {sample} sample log: fail2ban-regex {filter}: {} failures of {} addresses; \
         sipwall test-log: {} failures of {} addresses (and {skipped} on RFC 5424 lines)",
        rules.file_name().unwrap().to_string_lossy(),
        total(&f2b),
        f2b.len(),
        total(&sw),
        sw.len()
    );
    assert!(total(&f2b) >= 5, "the sample log has failures: {f2b:?}");
    assert_eq!(sw, f2b, "{jail}: sipwall (left) and fail2ban-regex (right) differ");
}

#[test]
fn debians_own_configuration_imports_and_checks() {
    if !installed("debians_own_configuration_imports_and_checks") {
        return;
    }
    let c = Copy::new("debian", &[]);
    let (_, err, rules) = c.import(&[]);
    let sshd = rules.detection.jail("sshd").unwrap();
    assert!(sshd.enabled, "jail.d/defaults-debian.conf enables sshd: {err}");
    assert_eq!((sshd.maxretry, sshd.findtime.as_secs(), sshd.bantime.map(|b| b.as_secs())), (5, 600, Some(600)));
    assert!(!rules.detection.jail("asterisk").unwrap().enabled);
    assert!(!rules.detection.jail("recidive").unwrap().enabled);
    assert!(err.contains("[sshd] not translated: action `iptables-multiport["), "{err}");
}

const ISSUE: &str = "[asterisk]
enabled  = true
filter   = asterisk
action   = iptables-allports[name=ASTERISK, protocol=all]
logpath  = /var/log/asterisk/messages
findtime = 10m
maxretry = 3
bantime  = 360m
ignoreip = 127.0.0.1/8 51.5.6.0/24

[sshd]
enabled = true
maxretry = 10
findtime = 2m
bantime = 20m

[recidive]
enabled = true
";

#[test]
fn the_issues_jails_find_what_fail2ban_finds() {
    if !installed("the_issues_jails_find_what_fail2ban_finds") {
        return;
    }
    let c = Copy::new("issue", &[("jail.local", ISSUE)]);
    let (out, err, rules) = c.import(&[]);
    let text = std::fs::read_to_string(&out).unwrap();
    let a = rules.detection.jail("asterisk").unwrap();
    assert!(a.enabled);
    assert_eq!((a.maxretry, a.findtime.as_secs(), a.bantime.map(|b| b.as_secs())), (3, 600, Some(21_600)));
    let ignore: Vec<String> = a.ignore.iter().map(ToString::to_string).collect();
    assert_eq!(ignore, ["127.0.0.0/8", "51.5.6.0/24"]);
    assert_eq!(a.increment, None, "bantime.increment is off in the source");
    let s = rules.detection.jail("sshd").unwrap();
    assert_eq!((s.maxretry, s.findtime.as_secs(), s.bantime.map(|b| b.as_secs())), (10, 120, Some(1200)));
    let r = rules.detection.jail("recidive").unwrap();
    assert!(r.enabled);
    assert_eq!((r.maxretry, r.findtime.as_secs(), r.bantime.map(|b| b.as_secs())), (5, 86_400, Some(604_800)));
    assert!(
        err.contains(
            "jail.local:4: [asterisk] not translated: action `iptables-allports[name=ASTERISK, protocol=all]`"
        ),
        "{err}"
    );
    assert!(
        text.contains("#   ") && text.contains("[asterisk] not translated: action"),
        "the notes are in the file too"
    );
    same_failures(&c.0, &out, "asterisk", "asterisk.conf", &|_| false);
    same_failures(&c.0, &out, "sshd", "sshd.conf[mode=normal]", &rfc5424);
    // fail2ban's own filters pasted: the same failures, RFC 5424 lines included
    let (pasted, _, rules) = c.import(&["--paste-filters"]);
    assert_eq!(rules.detection.detectors.len(), 2);
    same_failures(&c.0, &pasted, "asterisk", "asterisk.conf", &|_| false);
    same_failures(&c.0, &pasted, "sshd", "sshd.conf[mode=normal]", &|_| false);
}

#[test]
fn jail_d_overrides_apply_in_fail2bans_order() {
    if !installed("jail_d_overrides_apply_in_fail2bans_order") {
        return;
    }
    let c = Copy::new(
        "overrides",
        &[
            ("jail.local", "[DEFAULT]\nbantime = 1h\nignoreip = 127.0.0.1/8 ::1\n\n[asterisk]\nenabled = true\nmaxretry = 4\n\n[freeswitch]\nenabled = true\nmode = extra\n"),
            ("jail.d/10-asterisk.conf", "[asterisk]\nmaxretry = 2\nfindtime = 5m\nbantime.increment = true\nbantime.maxtime = 1d\n"),
            ("jail.d/20-no-sshd.local", "[sshd]\nenabled = false\n\n[ssh-all]\nenabled = true\nfilter = sshd[mode=aggressive]\nlogpath = /var/log/auth.log\n"),
            ("jail.d/30-defaults.local", "[DEFAULT]\nfindtime = 15m\n\n[sshd]\nmaxretry = 7\n"),
        ],
    );
    let (out, err, rules) = c.import(&[]);
    let a = rules.detection.jail("asterisk").unwrap();
    assert_eq!(a.maxretry, 4, "jail.local comes after jail.d/*.conf");
    assert_eq!((a.findtime.as_secs(), a.bantime.map(|b| b.as_secs())), (300, Some(3600)));
    let inc = a.increment.as_ref().expect("bantime.increment");
    assert_eq!(inc.maxtime.map(|m| m.as_secs()), Some(86_400));
    assert_eq!(inc.window.as_secs(), 86_400, "Debian's fail2ban.conf keeps bans for a day (dbpurgeage)");
    assert!(!rules.detection.jail("sshd").unwrap().enabled, "jail.d/20-no-sshd.local disables it: {err}");
    let fs = rules.detection.jail("freeswitch").unwrap();
    assert!(fs.enabled);
    assert_eq!(fs.findtime.as_secs(), 900, "[DEFAULT] of jail.d/30-defaults.local");
    let spec = &rules.detection.detectors["freeswitch"];
    assert_eq!(spec.definitions["mode"], "extra");
    let allow: Vec<String> = rules.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["127.0.0.0/8", "::1/128"], "[DEFAULT]'s ignoreip, common to every jail");
    same_failures(&c.0, &out, "freeswitch", "freeswitch.conf[mode=extra]", &|_| false);
    same_failures(&c.0, &out, "asterisk", "asterisk.conf", &|_| false);
    let all = rules.detection.jail("ssh-all").unwrap();
    assert_eq!(all.detector, sipwall::rules::jails::DetectorKind::Sshd(sipwall::rules::jails::Mode::Aggressive));
    same_failures_as(&c.0, &out, "ssh-all", "sshd", "sshd.conf[mode=aggressive]", &rfc5424);
}

/// Every jail of Debian's jail.conf at once: the rules pass `sipwall check`, and each jail is
/// either in them or listed as not translated, with the reason.
#[test]
fn every_jail_of_debians_jail_conf_is_imported_or_listed() {
    if !installed("every_jail_of_debians_jail_conf_is_imported_or_listed") {
        return;
    }
    let c = Copy::new("all", &[("jail.d/zz-all.local", "[DEFAULT]\nenabled = true\n")]);
    let (out, err, rules) = c.import(&[]);
    let text = std::fs::read_to_string(&out).unwrap();
    let cfg = sipwall::cli::import::config::Config::read(&c.0, "jail").unwrap();
    let names: Vec<&str> = cfg.section_names().collect();
    assert!(names.len() > 80, "{names:?}");
    let mut imported = 0;
    for name in &names {
        if text.contains(&format!("# fail2ban jail [{name}],")) {
            imported += 1;
        } else {
            assert!(
                err.contains(&format!("[{name}] not translated: the jail: ")),
                "{name}: neither imported nor listed\n{err}"
            );
        }
    }
    let _ = writeln!(std::io::stderr(), "import every jail of jail.conf: {imported} of {} imported", names.len());
    assert!(imported > 50, "{imported} of {}", names.len());
    assert!(rules.detection.jail("asterisk").unwrap().enabled && rules.detection.jail("sshd").unwrap().enabled);
}

/// The command's answers to a directory that is not a fail2ban configuration, a line fail2ban
/// would refuse, and an output file that exists.
#[test]
fn import_errors_name_the_file_and_line_and_keep_existing_output() {
    let dir = std::env::temp_dir().join(format!("sipwall-import-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    let import = |args: &[&str]| run(Command::new(sipwall_bin()).arg("import-fail2ban").arg(&dir).args(args));
    let (code, _, err) = import(&[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("neither jail.conf nor jail.local exists here"), "{err}");
    std::fs::write(dir.join("jail.local"), "[sshd]\nenabled = true\nmaxretry 3\n").unwrap();
    let (code, _, err) = import(&[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("jail.local:3: `maxretry 3` is neither `name = value` nor a [section] header"), "{err}");
    std::fs::write(dir.join("jail.local"), "[sshd]\nenabled = true\nlogpath = /var/log/auth.log\n").unwrap();
    std::fs::write(dir.join("filter.d/sshd.conf"), "[Definition]\nfailregex = ^Failed .* from <HOST>\n").unwrap();
    let out = dir.join("rules.toml");
    std::fs::write(&out, "# mine\n").unwrap();
    let (code, _, err) = import(&["--output", out.to_str().unwrap()]);
    assert_eq!(code, 73, "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# mine\n");
    let (code, _, err) = import(&["--output", out.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&out).unwrap().contains("[jails.sshd]"));
    let (code, stdout, _) = import(&[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("[jails.sshd]\n# fail2ban jail [sshd], filter sshd\n"), "{stdout}");
    // fail2ban's own defaults where the configuration sets none
    assert!(stdout.contains("findtime = \"10m\"\nmaxretry = 3\nbantime = \"10m\"\n"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}
