//! The alert mails: subjects like fail2ban's, the body with or without the log lines, whois only
//! when given, digests, and the message lettre sends.

use std::{sync::Arc, time::Duration};

use super::{
    message::{clean, digest, each, shown, Tally, LINE_BYTES},
    *,
};
use crate::{
    daemon::alerts::tests::{ban, order},
    rules::alerts::{Events, Mail, MailMode, MailTls},
};

fn jail_ban() -> Alert {
    Alert::new(EventKind::Ban, &ban(), Some(&order()), 1_794_999_000_000)
}

fn mail() -> Mail {
    Mail {
        to: vec!["Admin <admin@example.com>".into(), "noc@example.com".into()],
        from: "sipwall@example.com".into(),
        host: "127.0.0.1".into(),
        port: 2525,
        tls: MailTls::StartTls,
        auth: None,
        ca_file: None,
        lines: true,
        whois: false,
        mode: MailMode::Each,
        events: Events::all(),
        timeout: Duration::from_secs(5),
        retries: 0,
    }
}

#[test]
fn a_ban_mail_says_what_and_why() {
    let t = each(&jail_ban(), "pbx1", true, None);
    assert_eq!(t.subject, "[sipwall] asterisk: banned 192.0.2.66 from pbx1");
    assert!(t.body.starts_with("sipwall on pbx1: banned 192.0.2.66.\n"), "{}", t.body);
    for needle in [
        "target:       192.0.2.66/32\n",
        "reason:       asterisk: 3 failures within 10m\n",
        "expires:      2026-11-18T11:06:40Z\n",
        "bantime:      6h\n",
        "failures:     3\n",
        "users tried:  100\n",
        "The log lines that led to the ban (the last 1):",
        "    [2026-12-06 10:00:01] NOTICE[123] chan_sip.c: Registration from",
    ] {
        assert!(t.body.contains(needle), "`{needle}` not in:\n{}", t.body);
    }
    assert!(!t.body.contains("whois"), "{}", t.body);
}

#[test]
fn lines_off_is_fail2bans_action_mw() {
    let t = each(&jail_ban(), "pbx1", false, None);
    assert!(!t.body.contains("Wrong password") && !t.body.contains("log lines"), "{}", t.body);
    assert!(t.body.contains("failures:     3"), "{}", t.body);
}

#[test]
fn whois_text_is_shown_when_given() {
    let t = each(&jail_ban(), "pbx1", true, Some("netname: TEST-NET-1\ncountry: ZZ"));
    assert!(t.body.contains("\nwhois 192.0.2.66:\n\n    netname: TEST-NET-1\n    country: ZZ\n"), "{}", t.body);
}

#[test]
fn unbans_and_expiries_have_their_own_subjects() {
    let mut b = ban();
    b.source = "manual".into();
    let t = each(&Alert::new(EventKind::Unban, &b, None, 1), "pbx1", true, None);
    assert_eq!(t.subject, "[sipwall] manual: unbanned 192.0.2.66 on pbx1");
    assert!(t.body.contains("was until:    2026-11-18T11:06:40Z"), "{}", t.body);
    let t = each(&Alert::new(EventKind::Expire, &ban(), None, 1), "pbx1", true, None);
    assert_eq!(t.subject, "[sipwall] asterisk: ban of 192.0.2.66 expired on pbx1");
    let t = each(&Alert::new(EventKind::Reban, &ban(), None, 1), "pbx1", true, None);
    assert_eq!(t.subject, "[sipwall] asterisk: banned 192.0.2.66 again from pbx1");
    let mut wide = ban();
    wide.target = "2001:db8:1:2::/64".parse().unwrap();
    assert_eq!(shown(&wide.target), "2001:db8:1:2::/64");
}

#[test]
fn attacker_text_cannot_break_the_mail() {
    assert_eq!(clean("a\r\nSubject: x\u{1b}[31m\tb"), "a??Subject: x?[31m\tb");
    let long = "é".repeat(LINE_BYTES);
    let c = clean(&long);
    assert!(c.len() <= LINE_BYTES + '…'.len_utf8() && c.ends_with('…'), "{}", c.len());
    let mut o = order();
    o.lines = vec!["line\r\n.\r\nQUIT".into()];
    o.users = vec!["<b>x</b>\n".into()];
    let t = each(&Alert::new(EventKind::Ban, &ban(), Some(&o), 1), "pbx1", true, None);
    assert!(t.body.contains("    line??.??QUIT\n") && t.body.contains("users tried:  <b>x</b>?\n"), "{}", t.body);
}

#[test]
fn only_the_last_lines_are_shown() {
    let mut o = order();
    o.lines = (0..15).map(|i| format!("failure {i}")).collect();
    let t = each(&Alert::new(EventKind::Ban, &ban(), Some(&o), 1), "pbx1", true, None);
    assert!(t.body.contains("(the last 10)") && t.body.contains("failure 14") && t.body.contains("failure 5\n"));
    assert!(!t.body.contains("failure 4\n"), "{}", t.body);
}

#[test]
fn a_digest_lists_every_event_in_one_mail() {
    let mut other = ban();
    other.target = "198.51.100.7/32".parse().unwrap();
    other.source = "sshd".into();
    let events: Vec<Arc<Alert>> = vec![
        Arc::new(jail_ban()),
        Arc::new(Alert::new(EventKind::Ban, &other, None, 2)),
        Arc::new(Alert::new(EventKind::Expire, &other, None, 3)),
    ];
    let t = digest(&events, &Tally::default(), "pbx1", Duration::from_secs(3600), true, &[]);
    assert_eq!(t.subject, "[sipwall] digest from pbx1: 2 bans, 1 expiry");
    assert!(t.body.starts_with("sipwall on pbx1: 2 bans, 1 expiry in 1h.\n"), "{}", t.body);
    for needle in ["asterisk: banned 192.0.2.66", "sshd: banned 198.51.100.7", "sshd: ban of 198.51.100.7 expired"] {
        assert_eq!(t.body.matches(needle).count(), 2, "`{needle}` in the list and its section:\n{}", t.body);
    }
    assert!(t.body.contains("Wrong password"), "{}", t.body);
    assert!(!digest(&events, &Tally::default(), "pbx1", Duration::from_secs(60), false, &[])
        .body
        .contains("Wrong password"));
}

#[test]
fn the_message_is_plain_text_to_every_recipient() {
    let m = build(&mail(), each(&jail_ban(), "pbx1", true, None)).unwrap();
    let text = String::from_utf8(m.formatted()).unwrap();
    assert!(text.contains("From: sipwall@example.com\r\n"), "{text}");
    assert!(text.contains("To: Admin <admin@example.com>, noc@example.com\r\n"), "{text}");
    assert!(text.contains("Subject: [sipwall] asterisk: banned 192.0.2.66 from pbx1\r\n"), "{text}");
    assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("text/html"));
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_counted_as_failed() {
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = IntCounterVec::new(prometheus::Opts::new("t", "t"), &["result"]).unwrap();
    let mut m = mail();
    m.port = port;
    m.retries = 1;
    let mailer = start(m, c.clone()).unwrap();
    mailer.send(&Arc::new(jail_ban()));
    for _ in 0..600 {
        if c.with_label_values(&["failed"]).get() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((c.with_label_values(&["retried"]).get(), c.with_label_values(&["failed"]).get()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_digest_gathers_an_interval_and_an_empty_interval_sends_nothing() {
    let (tx, mut rx) = mpsc::channel(16);
    let hour = Duration::from_secs(3600);
    let start = tokio::time::Instant::now();
    for _ in 0..3 {
        tx.send(Arc::new(jail_ban())).await.unwrap();
    }
    let (batch, open) = collect(&mut rx, hour).await.unwrap();
    assert_eq!((batch.events.len(), open), (3, true));
    assert_eq!(start.elapsed(), hour, "sent an interval after its first event");
    // nothing for ten intervals: no digest
    assert!(tokio::time::timeout(hour * 10, collect(&mut rx, hour)).await.is_err());
    // one event late in the wait, another half an hour after it: one digest
    let t = tx.clone();
    tokio::spawn(async move {
        t.send(Arc::new(jail_ban())).await.unwrap();
        tokio::time::sleep(hour / 2).await;
        t.send(Arc::new(jail_ban())).await.unwrap();
    });
    let (batch, _) = collect(&mut rx, hour).await.unwrap();
    assert_eq!(batch.events.len(), 2);
    // a closed queue hands over what was collected at once, then ends
    tx.send(Arc::new(jail_ban())).await.unwrap();
    drop(tx);
    let before = tokio::time::Instant::now();
    assert_eq!(collect(&mut rx, hour).await.map(|(b, open)| (b.events.len(), open)), Some((1, false)));
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert!(collect(&mut rx, hour).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_storm_in_a_digest_is_counted_past_what_it_lists() {
    let (tx, mut rx) = mpsc::channel(64);
    let n = DIGEST_EVENTS + 300;
    tokio::spawn(async move {
        for i in 0..n {
            let kind = if i % 3 == 2 { EventKind::Expire } else { EventKind::Ban };
            tx.send(Arc::new(Alert::new(kind, &ban(), None, i as u64))).await.unwrap();
        }
    });
    let (batch, _) = collect(&mut rx, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(batch.events.len(), DIGEST_EVENTS, "kept");
    assert_eq!(batch.more.bans + batch.more.expiries, 300, "counted");
    let t = digest(&batch.events, &batch.more, "pbx1", Duration::from_secs(3600), true, &[]);
    let expiries = n / 3;
    assert_eq!(t.subject, format!("[sipwall] digest from pbx1: {} bans, {expiries} expiries", n - expiries));
    assert!(t.body.contains("… and 300 more, not listed"), "{}", &t.body[..400]);
    assert!(t.body.contains(&format!("\n{}. ", message::DIGEST_DETAILED)), "detailed up to the limit");
    assert!(!t.body.contains(&format!("\n{}. ", message::DIGEST_DETAILED + 1)), "and no further");
}
