//! `[webhook]` and `[mail]` in the rules file: defaults, every key, and each mistake reported
//! at its line and column with the file rejected.

use std::time::Duration;

use super::*;
use crate::rules::Rules;

/// A directory of files the rules name: `ca.pem` (a certificate), `notca.pem`, `pw`. Written
/// once per test process: tests running side by side read it while none writes.
fn files() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sipwall-alert-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["hooks.example".into()]).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(dir.join("notca.pem"), "just text\n").unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        std::fs::write(dir.join("pw2"), "two\nlines\n").unwrap();
        dir
    })
    .clone()
}

fn parse(text: &str) -> Result<Rules, Vec<(usize, usize, String)>> {
    match Rules::parse("t.toml", text, &files()) {
        Ok((r, _)) => Ok(r),
        Err(e) => Err(e.errors().map(|d| (d.line, d.column, d.message.clone())).collect()),
    }
}

fn reject(text: &str) -> Vec<(usize, usize, String)> {
    parse(text).err().unwrap_or_else(|| panic!("must be rejected:\n{text}"))
}

#[track_caller]
fn has(errs: &[(usize, usize, String)], line: usize, column: usize, needle: &str) {
    assert!(
        errs.iter().any(|e| e.0 == line && e.1 == column && e.2.contains(needle)),
        "{line}:{column} `{needle}` not in {errs:#?}"
    );
}

#[test]
fn a_webhook_with_only_a_url_has_the_defaults() {
    let r = parse("[webhook]\nurl = \"https://hooks.example/sipwall\"\n").unwrap();
    let w = r.alerts.webhook.unwrap();
    assert_eq!(w.url, "https://hooks.example/sipwall");
    assert_eq!((w.timeout, w.retries), (Duration::from_secs(5), 5));
    assert!(w.headers.is_empty() && w.ca_file.is_none() && !w.lines);
    assert!(EventKind::ALL.iter().all(|k| w.events.contains(*k)));
    assert!(r.alerts.mail.is_none());
}

#[test]
fn every_webhook_key() {
    let r = parse(
        r#"[webhook]
url = "https://127.0.0.1:8443/hook"
timeout = 2
retries = 0
ca_file = "ca.pem"
events = ["ban", "unban"]
lines = true

[webhook.headers]
Authorization = "Bearer abc"
X-Token = "t"
"#,
    )
    .unwrap();
    let w = r.alerts.webhook.unwrap();
    assert_eq!((w.timeout, w.retries, w.lines), (Duration::from_secs(2), 0, true));
    assert_eq!(w.headers, [("Authorization".into(), "Bearer abc".into()), ("X-Token".into(), "t".into())]);
    assert_eq!(w.ca_file.unwrap().certificates().len(), 1);
    assert!(w.events.contains(EventKind::Ban) && w.events.contains(EventKind::Unban));
    assert!(!w.events.contains(EventKind::Reban) && !w.events.contains(EventKind::Expire));
}

#[test]
fn webhook_mistakes_are_placed() {
    let errs = reject(
        r#"[webhook]
url = "ftp://hooks.example/x"
ca_file = "notca.pem"
events = ["ban", "banned"]
retries = 101

[webhook.headers]
"Bad Name" = "x"
Host = "y"
X-Ok = "line\nbreak"
X-Num = 3
"#,
    );
    has(&errs, 2, 8, "must start with https:// or http://, not ftp://");
    has(&errs, 3, 12, "holds no certificate");
    has(&errs, 4, 19, "unknown event `banned`");
    has(&errs, 5, 11, "between 0 and 100");
    has(&errs, 8, 1, "not a valid HTTP header name");
    has(&errs, 9, 1, "set by sipwall itself");
    has(&errs, 10, 9, "a line break or control character");
    has(&errs, 11, 9, "`X-Num` must be a string");
    let errs = reject("[webhook]\nurl = \"http://h/x\"\nca_file = \"nosuch.pem\"\nevents = []\nuser = 1\n");
    has(&errs, 3, 12, "cannot read ca_file");
    has(&errs, 4, 10, "events is empty");
    has(&errs, 5, 1, "unknown key `user` in [webhook]");
    has(&reject("[webhook]\ntimeout = \"1s\"\n"), 1, 2, "needs `url`");
    has(&reject("[webhook]\nurl = \"https://u:p@h/x\"\n"), 2, 8, "send a token in `headers`");
    has(&reject("[webhook]\nurl = \"http://h/x\"\nca_file = \"ca.pem\"\n"), 3, 1, "`ca_file` is for an https://");
}

#[test]
fn a_mail_with_the_needed_keys_has_the_defaults() {
    let r =
        parse("[mail]\nto = \"admin@example.com\"\nfrom = \"sipwall@example.com\"\nserver = \"smtp.example.com\"\n")
            .unwrap();
    let m = r.alerts.mail.unwrap();
    assert_eq!(m.to, ["admin@example.com"]);
    assert_eq!((m.host.as_str(), m.port, m.tls), ("smtp.example.com", 587, MailTls::StartTls));
    assert!(m.auth.is_none() && m.ca_file.is_none());
    assert!(m.lines, "lines are on, like fail2ban's action_mwl");
    assert!(!m.whois, "whois is off unless asked for");
    assert_eq!(m.mode, MailMode::Each);
    assert_eq!((m.timeout, m.retries), (Duration::from_secs(30), 5));
    assert!(EventKind::ALL.iter().all(|k| m.events.contains(*k)));
}

#[test]
fn every_mail_key() {
    let r = parse(
        r#"[mail]
to = ["Admin <admin@example.com>", "noc@example.com"]
from = "sipwall@example.com"
server = "[::1]:2525"
tls = "tls"
username = "sipwall"
password_file = "pw"
ca_file = "ca.pem"
lines = false
whois = true
mode = "digest"
digest_interval = "30m"
events = ["ban"]
timeout = "10s"
retries = 1
"#,
    )
    .unwrap();
    let m = r.alerts.mail.unwrap();
    assert_eq!(m.to, ["Admin <admin@example.com>", "noc@example.com"]);
    assert_eq!((m.host.as_str(), m.port, m.tls), ("::1", 2525, MailTls::Tls));
    assert_eq!(m.auth, Some(("sipwall".into(), Secret("s3cret".into()))));
    assert!(!format!("{m:?}").contains("s3cret"), "the password is never printed");
    assert!(!m.lines && m.whois);
    assert_eq!(m.mode, MailMode::Digest(Duration::from_secs(1800)));
    assert!(m.events.contains(EventKind::Ban) && !m.events.contains(EventKind::Expire));
    assert_eq!((m.timeout, m.retries), (Duration::from_secs(10), 1));
    let r = parse("[mail]\nto='a@b.c'\nfrom='d@e.f'\nserver='localhost'\ntls='none'\nmode='digest'\n").unwrap();
    let m = r.alerts.mail.unwrap();
    assert_eq!((m.port, m.tls, m.mode), (25, MailTls::None, MailMode::Digest(Duration::from_secs(3600))));
    assert_eq!(
        parse("[mail]\nto='a@b.c'\nfrom='d@e.f'\nserver='mx'\ntls='tls'\n").unwrap().alerts.mail.unwrap().port,
        465
    );
}

#[test]
fn mail_mistakes_are_placed() {
    let errs = reject(
        r#"[mail]
to = ["admin@example.com", "not an address"]
from = "sipwall"
server = "smtp.example.com:99999"
tls = "ssl"
mode = "hourly"
username = "u"
lines = "yes"
"#,
    );
    has(&errs, 2, 29, "`not an address` is not a mail address");
    has(&errs, 3, 9, "`sipwall` is not a mail address");
    has(&errs, 4, 11, "not a port");
    has(&errs, 5, 8, "expected \"starttls\", \"tls\" or \"none\"");
    has(&errs, 6, 9, "expected \"each\" or \"digest\"");
    has(&errs, 7, 1, "`username` needs `password_file`");
    has(&errs, 8, 9, "must be true or false");
    has(&reject("[mail]\nfrom = \"a@b.c\"\nserver = \"h\"\n"), 1, 2, "needs `to` (fail2ban's destemail)");
    has(&reject("[mail]\nto = \"a@b.c\"\nserver = \"h\"\n"), 1, 2, "needs `from` (fail2ban's sender)");
    has(&reject("[mail]\nto = \"a@b.c\"\nfrom = \"a@b.c\"\n"), 1, 2, "needs `server`");
    let base = "[mail]\nto = \"a@b.c\"\nfrom = \"a@b.c\"\n";
    has(
        &reject(&format!("{base}server = \"smtp.example.com\"\ntls = \"none\"\n")),
        4,
        11,
        "only for a relay on this host",
    );
    has(&reject(&format!("{base}server = \"h\"\ndigest_interval = \"1h\"\n")), 5, 1, "needs mode = \"digest\"");
    has(&reject(&format!("{base}server = \"h\"\nusername = \"u\"\npassword_file = \"pw2\"\n")), 6, 18, "on one line");
    has(
        &reject(&format!("{base}server = \"h\"\nusername = \"u\"\npassword_file = \"nosuch\"\n")),
        6,
        18,
        "cannot read",
    );
    has(&reject(&format!("{base}server = \"h\"\npassword_file = \"pw\"\n")), 5, 1, "`password_file` needs `username`");
    has(&reject(&format!("{base}server = \"h\"\nto_addr = 1\n")), 5, 1, "unknown key `to_addr` in [mail]");
    has(
        &reject(&format!("{base}server = \"::1\"\ntls = \"none\"\nca_file = \"ca.pem\"\n")),
        6,
        1,
        "`ca_file` is for tls",
    );
}

#[test]
fn the_event_filter() {
    let e = Events::of(&[EventKind::Unban, EventKind::Expire]);
    assert!(!e.contains(EventKind::Ban) && !e.contains(EventKind::Reban));
    assert!(e.contains(EventKind::Unban) && e.contains(EventKind::Expire));
    assert_eq!(Events::default(), Events::all());
    assert!(!Events::of(&[]).contains(EventKind::Ban));
}

#[test]
fn the_webhook_is_shown_without_its_path_or_credentials() {
    use super::webhook::endpoint;
    assert_eq!(endpoint("https://hooks.slack.com/services/T0/B0/secret"), "https://hooks.slack.com/…");
    assert_eq!(endpoint("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    assert_eq!(endpoint("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    assert_eq!(endpoint("https://user:pw@[::1]:8443/x?token=y"), "https://[::1]:8443/…");
    assert_eq!(endpoint("https://h?token=y"), "https://h/…");
}
