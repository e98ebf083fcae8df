//! Alerts end to end: `sipwall run` in a lab namespace tells of a jail's ban, of `sipwall ban`,
//! `sipwall unban` and an expiry, by mail through an SMTP server (python3-aiosmtpd, STARTTLS and
//! AUTH required) and by an https webhook with a token header, both listening in that namespace
//! with certificates of a certificate authority the test made.

use std::{io::Write, time::Duration};

use sipwall::daemon::alerts::mail::hostname;
use sipwall_tests::{
    alerts::{python, Receiver, TestCa},
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    require_aiosmtpd, require_root,
};

const SMTP_PORT: u16 = 2525;
const HOOK_PORT: u16 = 8443;
const ATTACKER: &str = "192.0.2.66";

fn rules(dir: &std::path::Path, log: &std::path::Path, token: &str) -> String {
    let password = dir.join("smtp-password");
    std::fs::write(&password, "lab-pw-7\n").unwrap();
    format!(
        r#"
[allow]
sources = ["127.0.0.0/8", "::1/128"]

[services.sip]
ports = ["5060/udp"]

[jails.asterisk]
logpath = ["{log}"]
trust_unproven = true

[jails.sshd]
enabled = false

[webhook]
url = "https://127.0.0.1:{HOOK_PORT}/sipwall"
ca_file = "{ca}"
retries = 3

[webhook.headers]
Authorization = "Bearer {token}"

[mail]
to = "admin@example.com"
from = "sipwall@example.com"
server = "127.0.0.1:{SMTP_PORT}"
ca_file = "{ca}"
username = "sipwall"
password_file = "{password}"
"#,
        log = log.display(),
        ca = dir.join("ca.pem").display(),
        password = password.display()
    )
}

fn registration(i: u32) -> String {
    format!(
        "[2026-12-06 10:00:0{i}] NOTICE[1638] chan_sip.c: Registration from '\"10{i}\" <sip:10{i}@{ATTACKER}>' failed for '{ATTACKER}:5060' - Wrong password"
    )
}

/// (event, target) of each body the webhook accepted (answered 2xx), in order.
fn hook_events(hook: &mut Receiver) -> Vec<(String, String)> {
    hook.received()
        .iter()
        .filter(|r| r["status"].as_u64().is_some_and(|s| s < 300))
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            (v["event"].as_str().unwrap().to_owned(), v["target"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn bans_unbans_and_expiries_reach_the_mail_and_the_https_webhook() {
    require_root!();
    require_aiosmtpd!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("alerts");
    let ca = TestCa::new(&dir);
    let mut smtp = Receiver::smtp(python(Some((&lab, &lab.host))), SMTP_PORT, &ca, &dir, Some(("sipwall", "lab-pw-7")));
    // the first delivery is refused: the webhook retries
    let mut hook = Receiver::https(python(Some((&lab, &lab.host))), HOOK_PORT, &ca, &dir, &[503]);
    let log = dir.join("messages");
    std::fs::write(&log, "").unwrap();
    let d = DaemonProc::start(&lab, &rules(&dir, &log, "lab-token"));

    // a jail's ban, with the lines that led to it
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 1..=3 {
        writeln!(f, "{}", registration(i)).unwrap();
    }
    drop(f);
    assert!(wait_for(Duration::from_secs(60), || d.cli_ok(&["list"]).contains(ATTACKER)), "{}", d.log_text());
    // by hand: a ban lifted with `sipwall unban`, and one that runs out
    d.cli_ok(&["ban", "198.51.100.20", "--for", "1h"]);
    d.cli_ok(&["unban", "198.51.100.20"]);
    d.cli_ok(&["ban", "203.0.113.5", "--for", "2s"]);

    let expected: Vec<(String, String)> = [
        ("ban", "192.0.2.66/32"),
        ("ban", "198.51.100.20/32"),
        ("unban", "198.51.100.20/32"),
        ("ban", "203.0.113.5/32"),
        ("expire", "203.0.113.5/32"),
    ]
    .iter()
    .map(|(e, t)| (e.to_string(), t.to_string()))
    .collect();
    assert!(
        wait_for(Duration::from_secs(120), || hook_events(&mut hook).len() >= expected.len()),
        "the webhook got {:?}\n{}\n{}",
        hook_events(&mut hook),
        hook.log_text(),
        d.log_text()
    );
    assert_eq!(hook_events(&mut hook), expected);
    let got = hook.received();
    assert_eq!(got[0]["status"], 503, "{got:?}");
    assert_eq!(got[0]["body"], got[1]["body"], "the refused notification is sent again");
    for r in &got {
        assert_eq!(r["headers"]["authorization"], "Bearer lab-token", "{r}");
        assert_eq!(
            (r["path"].as_str(), r["headers"]["content-type"].as_str()),
            (Some("/sipwall"), Some("application/json"))
        );
    }
    let first: serde_json::Value = serde_json::from_str(got[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!((first["jail"].as_str(), first["failures"].as_u64()), (Some("asterisk"), Some(3)), "{first}");
    let manual: serde_json::Value = serde_json::from_str(got[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(manual["source"], "manual", "{manual}");

    assert!(
        wait_for(Duration::from_secs(120), || smtp.received().len() >= expected.len()),
        "{} mails:\n{}\n{}",
        smtp.received().len(),
        smtp.log_text(),
        d.log_text()
    );
    let mails = smtp.received();
    let host = hostname();
    let subjects: Vec<&str> = mails.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(
        subjects,
        [
            format!("[sipwall] asterisk: banned 192.0.2.66 from {host}"),
            format!("[sipwall] manual: banned 198.51.100.20 from {host}"),
            format!("[sipwall] manual: unbanned 198.51.100.20 on {host}"),
            format!("[sipwall] manual: banned 203.0.113.5 from {host}"),
            format!("[sipwall] manual: ban of 203.0.113.5 expired on {host}"),
        ]
    );
    for m in &mails {
        assert_eq!((m["tls"].as_bool(), m["login"].as_str()), (Some(true), Some("sipwall")), "STARTTLS and AUTH");
        assert_eq!(m["rcpt_tos"], serde_json::json!(["admin@example.com"]));
    }
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.contains("target:       192.0.2.66/32\n"), "{body}");
    for i in 1..=3 {
        assert!(body.contains(&registration(i)), "line {i} is in the mail:\n{body}");
    }
    assert!(!body.contains("whois"), "{body}");

    assert_eq!(d.metric("sipwall_webhook_deliveries_total", "result=\"delivered\""), 5);
    assert_eq!(d.metric("sipwall_webhook_deliveries_total", "result=\"retried\""), 1);
    assert_eq!(d.metric("sipwall_mail_deliveries_total", "result=\"delivered\""), 5);
    assert_eq!(d.metric("sipwall_mail_deliveries_total", "result=\"failed\""), 0);

    // a new token applies at the reload
    std::fs::write(&d.config, rules(&dir, &log, "lab-token-2")).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_rules_reloads_total", "result=\"applied\"") == 1),
        "{}",
        d.log_text()
    );
    d.cli_ok(&["ban", "192.0.2.200"]);
    assert!(
        wait_for(Duration::from_secs(60), || hook_events(&mut hook).len() == expected.len() + 1),
        "{}",
        d.log_text()
    );
    let last = hook.received().pop().unwrap();
    assert!(last["body"].as_str().unwrap().contains("192.0.2.200/32"), "{last}");
    assert_eq!(last["headers"]["authorization"], "Bearer lab-token-2", "{last}");
}
