//! fail2ban's own annotated sample logs for Asterisk, FreeSWITCH and sshd, judged by sipwall's
//! built-in detectors and by fail2ban's filters pasted unchanged as custom detectors: every
//! `"match": true` line must yield exactly the expected host and every `"match": false` line
//! nothing.
//!
//! One deliberate difference: where sshd wrote a host *name* (`from example.com`), fail2ban
//! resolves it and bans the addresses it gets; sipwall reports the name (the detector yields
//! `Event::Hostname`, counted here as finding the expected host) but never bans on it, since
//! whoever controls the name's DNS records would choose whom sipwall bans. Such lines are
//! counted separately in the score.

use std::{io::Write, sync::Arc};

use serde_json::Value;

use sipwall::detection::detect::{asterisk::Asterisk, sshd, Detector};
use sipwall::detection::detect::{
    custom::{Custom, Filter},
    Event,
};
use sipwall_tests::samples::{self, Opts, Outcome};

fn sshd_detector(opts: &Opts) -> Box<dyn Detector> {
    let mode = opts.get("mode").and_then(Value::as_str).unwrap_or("normal");
    Box::new(sshd::Sshd::new(mode.parse().unwrap()))
}

fn report(name: &str, outcomes: &[Outcome]) -> Vec<String> {
    let mut per_file: std::collections::BTreeMap<&str, (usize, usize, usize)> = Default::default();
    let mut wrong = Vec::new();
    for o in outcomes {
        let e = per_file.entry(&o.file).or_default();
        e.1 += 1;
        if o.agrees() {
            e.0 += 1;
            if matches!(o.got.as_slice(), [Event::Hostname { .. }]) {
                e.2 += 1;
            }
        } else {
            wrong.push(format!(
                "{}:{} [{}] expected {:?}, got {:?}\n    {}",
                o.file, o.lnnum, o.filter, o.expected, o.got, o.line
            ));
        }
    }
    // written past the test harness's capture so that CI logs show the score
    let mut err = std::io::stderr();
    for (file, (ok, all, names)) in per_file {
        let _ = writeln!(err, "conformance {name}: {file}: {ok}/{all} judgements as fail2ban expects ({names} host names reported, not resolved)");
    }
    wrong
}

#[test]
fn asterisk_samples() {
    if !samples::available("asterisk_samples") {
        return;
    }
    let outcomes = samples::replay("asterisk", "asterisk", &|_| Box::new(Asterisk));
    let wrong = report("asterisk", &outcomes);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// fail2ban's own filter `filter.d/NAME.conf`, pasted unchanged as a custom detector, on the
/// sample log `NAME`: one detector per option set of the samples (`mode`, `logtype`).
fn pasted_samples(name: &str) -> Vec<Outcome> {
    let path = std::path::Path::new(samples::FILTERS).join(format!("{name}.conf"));
    let make = |opts: &Opts| -> Box<dyn Detector> {
        let spec = samples::pasted_filter(&path, opts);
        let filter = Filter::new(&spec).unwrap_or_else(|e| panic!("fail2ban's {name} filter {opts:?} rejected: {e}"));
        Box::new(Custom::new(Arc::new(filter)))
    };
    samples::replay(name, name, &make)
}

/// Every sample line of fail2ban's filter `name`, pasted unchanged, judged as fail2ban does.
fn pasted_filter_agrees(test: &str, name: &str) -> Vec<Outcome> {
    if !samples::available(test) {
        return Vec::new();
    }
    let outcomes = pasted_samples(name);
    let wrong = report(&format!("{name} (pasted filter)"), &outcomes);
    assert!(wrong.is_empty(), "{} differences:\n{}", wrong.len(), wrong.join("\n"));
    outcomes
}

#[test]
fn asterisk_samples_through_the_pasted_fail2ban_filter() {
    pasted_filter_agrees("asterisk_samples_through_the_pasted_fail2ban_filter", "asterisk");
}

#[test]
fn freeswitch_samples_through_the_pasted_fail2ban_filter() {
    pasted_filter_agrees("freeswitch_samples_through_the_pasted_fail2ban_filter", "freeswitch");
}

/// sshd.conf in every mode its samples switch to (`normal`, `ddos`, `extra`, `aggressive`),
/// with `<mdre-<mode>>`, `<F-MLFID>` connections and `<F-NOFAIL>` lines, on syslog, RFC 5424
/// and journal lines.
#[test]
fn sshd_samples_through_the_pasted_fail2ban_filter() {
    let outcomes = pasted_filter_agrees("sshd_samples_through_the_pasted_fail2ban_filter", "sshd");
    if outcomes.is_empty() {
        return; // skipped outside CI
    }
    let modes: std::collections::BTreeSet<&str> = outcomes.iter().map(|o| o.filter.as_str()).collect();
    assert!(modes.len() >= 5, "the samples switch modes and log types: {modes:?}");
}

#[test]
fn sshd_samples() {
    if !samples::available("sshd_samples") {
        return;
    }
    let outcomes = samples::replay("sshd", "sshd", &sshd_detector);
    let wrong = report("sshd", &outcomes);
    assert!(wrong.is_empty(), "{} differences:\n{}", wrong.len(), wrong.join("\n"));
}

/// The filters of `filter.d` whose sample logs sipwall judges exactly as fail2ban does,
/// pasted unchanged.
const FULL_MARKS: &[&str] = &[
    "3proxy",
    "apache-badbots",
    "apache-fakegooglebot",
    "apache-pass",
    "assp",
    "asterisk",
    "bitwarden",
    "centreon",
    "counter-strike",
    "courier-auth",
    "courier-smtp",
    "cyrus-imap",
    "directadmin",
    "dovecot",
    "dropbear",
    "drupal-auth",
    "freeswitch",
    "froxlor-auth",
    "gitlab",
    "grafana",
    "groupoffice",
    "gssftpd",
    "horde",
    "kerio",
    "lighttpd-auth",
    "monit",
    "monitorix",
    "mssql-auth",
    "murmur",
    "mysqld-auth",
    "nagios",
    "named-refused",
    "nginx-bad-request",
    "nginx-http-auth",
    "nginx-limit-req",
    "nsd",
    "openhab",
    "openwebmail",
    "oracleims",
    "pam-generic",
    "perdition",
    "php-url-fopen",
    "phpmyadmin-syslog",
    "portsentry",
    "postfix",
    "proftpd",
    "pure-ftpd",
    "qmail",
    "recidive",
    "roundcube-auth",
    "scanlogd",
    "screensharingd",
    "sieve",
    "sogo-auth",
    "solid-pop3d",
    "squid",
    "squirrelmail",
    "sshd",
    "stunnel",
    "suhosin",
    "tine20",
    "uwimap-auth",
    "vsftpd",
    "webmin-auth",
    "wuftpd",
    "xinetd-fail",
    "znc-adminlog",
];

// The others, reported but not asserted:
// - apache-auth, apache-botsearch, apache-modsecurity, apache-nohome, apache-noscript,
//   apache-overflows, apache-shellshock, zoneminder: their definitions (`_apache_error_client`)
//   are in `apache-common.conf`, which the filter includes and a paste leaves out; rejected,
//   naming the definition to add. Likewise exim, exim-spam (`exim-common.conf`), nginx-botsearch
//   (`botsearch-common.conf`), selinux-ssh (`selinux-common.conf` holds the failregex).
// - sendmail-auth, sendmail-reject: `%(known/__prefix_line)s` extends the included value.
// - haproxy-http-auth (`<NOSRV>`), softethervpn (`<SECURITY_LOG>`): a literal `<word>` that
//   sipwall asks to write as `\<word>` rather than guess it is no definition.
// - ejabberd-auth (maxlines 2), mongodb-auth (10), slapd (20), guacamole (maxlines and
//   failregex chosen by `<L_<logging>/…>`, 2 lines by default): fail2ban's buffer of several
//   lines, rejected on purpose.
// - domino-smtp, traefik-auth: they do not include `common.conf`, so fail2ban looks for the date
//   with every default template (`{DEFAULT}`), also in the middle of the line; sipwall assumes
//   `common.conf`'s `{^LN-BEG}`. Pasted with `datepattern = {DEFAULT}` they would find it too.

/// Every filter of `filter.d` that has a sample log, pasted unchanged: those in `FULL_MARKS`
/// must agree with fail2ban on every line, the others' scores are reported.
#[test]
fn every_pasted_fail2ban_filter_with_samples() {
    if !samples::available("every_pasted_fail2ban_filter_with_samples") {
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(samples::LOGS)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| std::path::Path::new(samples::FILTERS).join(format!("{n}.conf")).is_file())
        .collect();
    names.sort();
    let mut err = std::io::stderr();
    let mut failed = Vec::new();
    for name in &names {
        let path = std::path::Path::new(samples::FILTERS).join(format!("{name}.conf"));
        // a filter sipwall rejects (or the harness cannot paste) panics inside `make`
        let outcomes = std::panic::catch_unwind(|| pasted_samples(name));
        let (ok, all, wrong) = match outcomes {
            Ok(o) => (o.iter().filter(|o| o.agrees()).count(), o.len(), report(name, &o)),
            Err(e) => {
                let msg = e.downcast_ref::<String>().cloned().unwrap_or_else(|| "panicked".into());
                (0, 0, vec![format!("{}: {msg}", path.display())])
            }
        };
        let _ = writeln!(err, "conformance every filter: {name}: {ok}/{all}");
        if FULL_MARKS.contains(&name.as_str()) && (all == 0 || !wrong.is_empty()) {
            failed.push(format!("{name}: {ok}/{all}\n{}", wrong.join("\n")));
        }
    }
    let missing: Vec<_> = FULL_MARKS.iter().filter(|n| !names.iter().any(|m| m == *n)).collect();
    assert!(missing.is_empty(), "filters or sample logs missing: {missing:?}");
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
