//! Mail alerts against a real SMTP server on this host's loopback: Debian's python3-aiosmtpd,
//! STARTTLS required, with a certificate authority made by the test. The `[mail]` settings are
//! read from rules text, so the defaults under test are the shipped ones.

use std::{path::Path, sync::Arc, time::Duration};

use prometheus::{IntCounterVec, Opts};
use sipwall::{
    daemon::alerts::{
        mail::{self, hostname},
        Alert,
    },
    datapath::bans::Ban,
    detection::{detect::Proof, jail::BanOrder},
    rules::{
        alerts::{EventKind, Mail},
        Rules,
    },
};
use sipwall_tests::{
    alerts::{free_port, python, Receiver, TestCa},
    require_aiosmtpd,
};

const USER: (&str, &str) = ("sipwall", "pw-9f2c");

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sipwall-mail-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `[mail]` as a user writes it, read by the rules parser (relative paths from `dir`).
fn mail(dir: &Path, extra: &str) -> Mail {
    std::fs::write(dir.join("smtp-password"), format!("{}\n", USER.1)).unwrap();
    let text =
        format!("[mail]\nto = [\"admin@example.com\", \"noc@example.com\"]\nfrom = \"sipwall@example.com\"\n{extra}");
    let (rules, _) = Rules::parse("t.toml", &text, dir).unwrap_or_else(|e| panic!("{e}"));
    rules.alerts.mail.expect("a [mail]")
}

fn counter() -> IntCounterVec {
    IntCounterVec::new(Opts::new("t", "t"), &["result"]).unwrap()
}

fn ban(addr: &str, source: &str) -> Ban {
    Ban {
        target: format!("{addr}/32").parse().unwrap(),
        expires_unix_ms: Some(1_800_000_000_000),
        created_unix_ms: 1_799_999_000_000,
        reason: format!("{source}: 3 failures within 10m"),
        source: source.into(),
    }
}

fn order(addr: &str) -> BanOrder {
    BanOrder {
        jail: "asterisk".into(),
        target:       format!("{addr}/32").parse().unwrap(),
        bantime:      Some(Duration::from_secs(21600)),
        failures:     3,
        earlier: 0,
        lines: (1..=3)
            .map(|i| format!("[2026-12-06 10:00:0{i}] NOTICE[9] chan_sip.c: Registration from '<sip:10{i}@pbx>' failed for '{addr}:5060' - Wrong password"))
            .collect(),
        users: vec!["101".into(), "102".into(), "103".into()],
        reason:       "asterisk: 3 failures within 10m".into(),
        evidence:     Proof::Proven,
    }
}

fn jail_ban(addr: &str) -> Arc<Alert> {
    Arc::new(Alert::new(EventKind::Ban, &ban(addr, "asterisk"), Some(&order(addr)), 1_799_999_000_000))
}

/// Waits, up to a generous limit for a busy machine, for `f`.
async fn until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..1200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_ban_mail_arrives_over_starttls_with_the_lines_and_no_whois() {
    require_aiosmtpd!();
    let dir = scratch("each");
    let ca = TestCa::new(&dir);
    let port = free_port();
    let mut smtp = Receiver::smtp(python(None), port, &ca, &dir, Some(USER));
    let m = mail(
        &dir,
        &format!("server = \"127.0.0.1:{port}\"\nca_file = \"ca.pem\"\nusername = \"{}\"\npassword_file = \"smtp-password\"\n", USER.0),
    );
    let c = counter();
    let mailer = mail::start(m, c.clone()).unwrap();
    mailer.send(&jail_ban("192.0.2.66"));
    assert!(until(|| c.with_label_values(&["delivered"]).get() == 1).await, "{}", smtp.log_text());
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["subject"], format!("[sipwall] asterisk: banned 192.0.2.66 from {}", hostname()));
    assert_eq!((m["tls"].as_bool(), m["login"].as_str()), (Some(true), Some(USER.0)), "STARTTLS, then AUTH");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["admin@example.com", "noc@example.com"]));
    assert_eq!(
        (m["mail_from"].as_str(), m["content_type"].as_str()),
        (Some("sipwall@example.com"), Some("text/plain"))
    );
    let body = m["body"].as_str().unwrap();
    assert!(body.contains("target:       192.0.2.66/32\n"), "{body}");
    assert_eq!(body.matches("Wrong password").count(), 3, "lines are on by default:\n{body}");
    assert!(!body.contains("whois"), "whois is off by default:\n{body}");
    assert_eq!(c.with_label_values(&["retried"]).get() + c.with_label_values(&["failed"]).get(), 0);
}

#[tokio::test]
async fn a_digest_lists_several_events_in_one_mail() {
    require_aiosmtpd!();
    let dir = scratch("digest");
    let ca = TestCa::new(&dir);
    let port = free_port();
    let mut smtp = Receiver::smtp(python(None), port, &ca, &dir, None);
    let m = mail(
        &dir,
        &format!("server = \"127.0.0.1:{port}\"\nca_file = \"ca.pem\"\nmode = \"digest\"\ndigest_interval = \"2s\"\nlines = false\n"),
    );
    let c = counter();
    let mailer = mail::start(m, c.clone()).unwrap();
    for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        mailer.send(&jail_ban(a));
    }
    mailer.send(&Arc::new(Alert::new(EventKind::Expire, &ban("198.51.100.9", "manual"), None, 1_800_000_000_000)));
    assert!(until(|| c.with_label_values(&["delivered"]).get() == 1).await, "{}", smtp.log_text());
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["subject"], format!("[sipwall] digest from {}: 3 bans, 1 expiry", hostname()));
    let body = got[0]["body"].as_str().unwrap();
    for needle in [
        "asterisk: banned 192.0.2.1",
        "asterisk: banned 192.0.2.2",
        "asterisk: banned 192.0.2.3",
        "manual: ban of 198.51.100.9 expired",
    ] {
        assert!(body.contains(needle), "`{needle}` not in\n{body}");
    }
    assert!(!body.contains("Wrong password"), "lines = false:\n{body}");
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_wrong_password_fails_and_is_counted() {
    require_aiosmtpd!();
    let dir = scratch("fail");
    let ca = TestCa::new(&dir);
    let port = free_port();
    let mut smtp = Receiver::smtp(python(None), port, &ca, &dir, Some(USER));
    let server = format!("server = \"127.0.0.1:{port}\"\nretries = 0\ntimeout = \"10s\"\n");
    let auth = format!("username = \"{}\"\npassword_file = \"smtp-password\"\n", USER.0);
    // the system's authorities do not know the test's
    let c = counter();
    let untrusted = mail::start(mail(&dir, &format!("{server}{auth}")), c.clone()).unwrap();
    untrusted.send(&jail_ban("192.0.2.66"));
    assert!(until(|| c.with_label_values(&["failed"]).get() == 1).await, "{}", smtp.log_text());
    // trusted, but the wrong password
    std::fs::write(dir.join("wrong"), "nope\n").unwrap();
    let c2 = counter();
    let wrong = format!("{server}ca_file = \"ca.pem\"\nusername = \"{}\"\npassword_file = \"wrong\"\n", USER.0);
    let m = mail(&dir, &wrong);
    let refused = mail::start(m, c2.clone()).unwrap();
    refused.send(&jail_ban("192.0.2.67"));
    assert!(until(|| c2.with_label_values(&["failed"]).get() == 1).await, "{}", smtp.log_text());
    assert!(smtp.received().is_empty(), "nothing may be delivered: {:?}", smtp.received());
    assert_eq!(c.with_label_values(&["delivered"]).get() + c2.with_label_values(&["delivered"]).get(), 0);
}

#[tokio::test]
async fn implicit_tls_and_a_local_relay_without_tls_deliver_too() {
    require_aiosmtpd!();
    let dir = scratch("modes");
    let ca = TestCa::new(&dir);
    for (tls, server_tls, expect_tls) in [("tls", "implicit", true), ("none", "none", false)] {
        let ca_file = if expect_tls { "ca_file = \"ca.pem\"\n" } else { "" };
        let port = free_port();
        let mut smtp = Receiver::smtp_with(python(None), port, &ca, &dir, Some(USER), server_tls);
        let auth = format!("username = \"{}\"\npassword_file = \"smtp-password\"\n", USER.0);
        let m = mail(&dir, &format!("server = \"127.0.0.1:{port}\"\ntls = \"{tls}\"\n{ca_file}{auth}"));
        let c = counter();
        let mailer = mail::start(m, c.clone()).unwrap();
        mailer.send(&jail_ban("192.0.2.66"));
        assert!(until(|| c.with_label_values(&["delivered"]).get() == 1).await, "tls = {tls}: {}", smtp.log_text());
        let got = smtp.received();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["tls"].as_bool(), Some(expect_tls), "tls = {tls}");
        assert_eq!(got[0]["login"].as_str(), Some(USER.0));
        assert!(got[0]["subject"].as_str().unwrap().contains("banned 192.0.2.66"), "{}", got[0]);
    }
}
