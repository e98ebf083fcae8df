//! The decision stream as LAPI 1.4.6 writes it, Go durations, the book's changes, own bans, and
//! the alerts a machine pushes.

use std::time::Duration;

use ipnet::IpNet;

use super::{
    alert,
    book::{Book, Change, Filter},
    decisions::{admit, go_duration_ms, Decision, Skip, Stream},
};
use crate::{
    daemon::alerts::{Alert, JailFacts},
    rules::alerts::EventKind,
};

const NOW: u64 = 1_796_563_376_000;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn go_durations_as_lapi_writes_them() {
    assert_eq!(go_duration_ms("59m59.210912445s"), Some(3_599_210));
    assert_eq!(go_duration_ms("1h59m58.655064256s"), Some(7_198_655));
    assert_eq!(go_duration_ms("-10.252041ms"), Some(-10));
    assert_eq!(go_duration_ms("-5m3s"), Some(-303_000));
    assert_eq!(go_duration_ms("1.5h"), Some(5_400_000));
    assert_eq!(go_duration_ms("300ms"), Some(300));
    assert_eq!(go_duration_ms("2µs"), Some(0));
    assert_eq!(go_duration_ms("0s"), Some(0));
    assert_eq!(go_duration_ms("0"), Some(0));
    assert_eq!(go_duration_ms("87600h"), Some(87_600 * 3_600_000));
    for bad in ["", "-", "5", "5x", "h", "1h-5m", "1..5s", "1.5.5s", "s5", ".s", "99999999999999999999999h"] {
        assert_eq!(go_duration_ms(bad), None, "{bad}");
    }
    // whatever the text, an answer and no panic
    let alphabet = ["1", "0", ".", "-", "h", "m", "s", "ms", "µs", "9999999999", "x"];
    for a in alphabet {
        for b in alphabet {
            for c in alphabet {
                let _ = go_duration_ms(&format!("{a}{b}{c}"));
            }
        }
    }
}

/// An answer of a real LAPI 1.4.6 (`cscli decisions add`, then `delete`).
const ANSWER: &str = r#"{"deleted":[{"duration":"-10.252041ms","id":2,"origin":"cscli","scenario":"manual 'ban' from 'cscli'","scope":"Ip","type":"ban","value":"203.0.113.9"}],"new":[{"duration":"29m59.655066209s","id":3,"origin":"cscli","scenario":"manual 'ban' from 'cscli'","scope":"Range","type":"ban","value":"203.0.113.0/28"},{"duration":"29m59.655064796s","id":4,"origin":"cscli","scenario":"manual 'ban' from 'cscli'","scope":"Ip","type":"ban","value":"2001:db8::5"},{"duration":"59m55.547612361s","id":1,"origin":"crowdsec","scenario":"sipwall/asterisk","scope":"Ip","type":"ban","value":"198.51.100.7"}]}"#;

#[test]
fn the_stream_reads_lists_and_nulls() {
    let s: Stream = serde_json::from_str(ANSWER).unwrap();
    assert_eq!(s.new.len(), 3);
    assert_eq!(s.deleted[0].value, "203.0.113.9");
    assert_eq!(s.new[0].scope, "Range");
    let empty: Stream = serde_json::from_str(r#"{"deleted":null,"new":null}"#).unwrap();
    assert_eq!(empty, Stream::default());
}

fn decision(id: i64, scope: &str, value: &str, duration: &str) -> Decision {
    Decision {
        id,
        origin: "cscli".into(),
        kind: "ban".into(),
        scope: scope.into(),
        value: value.into(),
        duration: duration.into(),
        scenario: "manual 'ban' from 'cscli'".into(),
    }
}

#[test]
fn only_ban_decisions_on_addresses_and_ranges_are_enforced() {
    let d = decision(1, "Ip", "198.51.100.7", "1h");
    assert_eq!(admit(&d, &[], 64, NOW), Ok((net("198.51.100.7/32"), NOW + 3_600_000)));
    let v6 = decision(1, "ip", "2001:db8::5", "1h");
    assert_eq!(admit(&v6, &[], 64, NOW).unwrap().0, net("2001:db8::/64"), "normalized as bans are");
    assert_eq!(admit(&v6, &[], 128, NOW).unwrap().0, net("2001:db8::5/128"));
    let r = decision(1, "Range", "203.0.113.7/28", "1h");
    assert_eq!(admit(&r, &[], 64, NOW).unwrap().0, net("203.0.113.0/28"));
    let captcha = Decision { kind: "captcha".into(), ..d.clone() };
    assert_eq!(admit(&captcha, &[], 64, NOW), Err(Skip::Type));
    assert_eq!(admit(&decision(1, "Country", "FR", "1h"), &[], 64, NOW), Err(Skip::Scope));
    assert_eq!(admit(&decision(1, "Ip", "not-an-ip", "1h"), &[], 64, NOW), Err(Skip::Invalid));
    assert_eq!(admit(&decision(1, "Ip", "192.0.2.1", "soon"), &[], 64, NOW), Err(Skip::Invalid));
    assert_eq!(admit(&decision(1, "Ip", "192.0.2.1", "-3s"), &[], 64, NOW), Err(Skip::Expired));
    let origins = vec!["crowdsec".to_owned(), "CAPI".to_owned()];
    assert_eq!(admit(&d, &origins, 64, NOW), Err(Skip::Origin));
    let capi = Decision { origin: "capi".into(), ..d };
    assert!(admit(&capi, &origins, 64, NOW).is_ok(), "origins compare without case");
}

/// Takes `s` with no decision counted as this host's own.
fn take(book: &mut Book, s: Stream) -> (Vec<Change>, Vec<(Skip, String)>) {
    let mut own = |_: &IpNet, _: u64, _: &str| false;
    book.take(s, &mut Filter { origins: &[], v6_prefix: 64, now_ms: NOW, own: &mut own })
}

fn enforce(t: &str, ms: u64) -> Change {
    Change::Enforce { target: net(t), until_ms: NOW + ms, scenario: "manual 'ban' from 'cscli'".into() }
}

#[test]
fn a_target_is_banned_for_its_longest_decision_and_lifted_with_the_last() {
    let mut b = Book::default();
    let (c, _) = take(
        &mut b,
        Stream {
            new: vec![decision(1, "Ip", "192.0.2.1", "1h"), decision(2, "Ip", "192.0.2.1", "4h")],
            deleted: vec![],
        },
    );
    assert_eq!(c, vec![enforce("192.0.2.1/32", 4 * 3_600_000)]);
    // the longer goes: the ban is cut to the other
    let (c, _) = take(&mut b, Stream { new: vec![], deleted: vec![decision(2, "Ip", "192.0.2.1", "-1s")] });
    assert_eq!(c, vec![enforce("192.0.2.1/32", 3_600_000)]);
    let (c, _) = take(&mut b, Stream { new: vec![], deleted: vec![decision(1, "Ip", "192.0.2.1", "-1s")] });
    assert_eq!(c, vec![Change::Lift { target: net("192.0.2.1/32") }]);
    assert!(b.is_empty());
}

#[test]
fn a_deleted_decision_the_book_never_held_lifts_its_target_unless_another_holds_it() {
    let mut b = Book::default();
    take(&mut b, Stream { new: vec![decision(5, "Ip", "192.0.2.5", "1h")], deleted: vec![] });
    // held before a restart: unknown id, no other decision for the target
    let (c, _) = take(&mut b, Stream { new: vec![], deleted: vec![decision(9, "Range", "198.51.100.0/24", "-1s")] });
    assert_eq!(c, vec![Change::Lift { target: net("198.51.100.0/24") }]);
    // unknown id, but decision 5 still bans the target
    let (c, _) = take(&mut b, Stream { new: vec![], deleted: vec![decision(8, "Ip", "192.0.2.5", "-1s")] });
    assert_eq!(c, vec![]);
    assert!(b.holds(&net("192.0.2.5/32")));
}

#[test]
fn skipped_and_own_decisions_are_not_held() {
    let mut b = Book::default();
    let mut own = |t: &IpNet, until: u64, scenario: &str| {
        *t == net("198.51.100.7/32") && scenario == "sipwall/asterisk" && until <= NOW + 3_600_000
    };
    let s: Stream = serde_json::from_str(ANSWER).unwrap();
    let (c, skipped) = b.take(s, &mut Filter { origins: &[], v6_prefix: 64, now_ms: NOW, own: &mut own });
    assert_eq!(skipped, vec![(Skip::Own, "198.51.100.7".to_owned())]);
    let targets: Vec<String> = c
        .iter()
        .map(|c| match c {
            Change::Enforce { target, .. } | Change::Lift { target } => target.to_string(),
        })
        .collect();
    assert_eq!(targets, ["203.0.113.9/32", "203.0.113.0/28", "2001:db8::/64"]);
    assert!(matches!(c[0], Change::Lift { .. }));
    assert_eq!(b.len(), 2);
    assert_eq!(b.by_origin(), vec![("cscli".to_owned(), 2)]);
}

#[test]
fn decisions_over_are_forgotten() {
    let mut b = Book::default();
    take(
        &mut b,
        Stream {
            new: vec![decision(1, "Ip", "192.0.2.1", "1s"), decision(2, "Ip", "192.0.2.2", "1h")],
            deleted: vec![],
        },
    );
    b.expire(NOW + 2_000);
    assert!(!b.holds(&net("192.0.2.1/32")));
    assert!(b.holds(&net("192.0.2.2/32")));
    b.clear();
    assert!(b.is_empty() && b.targets().is_empty());
}

fn jail_ban(target: &str, evidence: &'static str, kind: EventKind) -> Alert {
    Alert {
        kind,
        target: net(target),
        at_unix_ms: NOW,
        expires_unix_ms: Some(NOW + 3_600_000),
        reason: "5 failures within 10m".into(),
        source: "asterisk".into(),
        jail: Some(JailFacts {
            jail: "asterisk".into(),
            failures: 5,
            earlier: 0,
            bantime: Some(Duration::from_secs(3600)),
            users: vec!["100".into(), "101".into()],
            evidence,
            lines: vec![
                "NOTICE[123] chan_sip.c: Registration from '\"100\"' failed for '10.0.0.9:5060' - Wrong password"
                    .into(),
            ],
        }),
    }
}

#[test]
fn only_proven_jail_bans_with_time_left_are_pushed() {
    let all = |_: &str| true;
    assert_eq!(alert::pushable(&jail_ban("192.0.2.9/32", "proven", EventKind::Ban), all, NOW), Ok(()));
    assert_eq!(alert::pushable(&jail_ban("192.0.2.9/32", "proven", EventKind::Reban), all, NOW), Ok(()));
    assert_eq!(alert::pushable(&jail_ban("192.0.2.9/32", "unproven", EventKind::Ban), all, NOW), Err("unproven"));
    assert_eq!(alert::pushable(&jail_ban("192.0.2.9/32", "proven", EventKind::Expire), all, NOW), Err("not_a_ban"));
    assert_eq!(alert::pushable(&jail_ban("192.0.2.9/32", "proven", EventKind::Ban), |j| j == "sshd", NOW), Err("jail"));
    let manual = Alert { jail: None, source: "manual".into(), ..jail_ban("192.0.2.9/32", "proven", EventKind::Ban) };
    assert_eq!(alert::pushable(&manual, all, NOW), Err("manual"));
    assert_eq!(
        alert::pushable(&jail_ban("192.0.2.9/32", "proven", EventKind::Ban), all, NOW + 3_600_000),
        Err("expired")
    );
}

#[test]
fn a_pushed_alert_carries_one_decision_that_never_outlasts_the_ban() {
    let a = jail_ban("192.0.2.9/32", "proven", EventKind::Ban);
    // pushed 1.5 s after the ban: 3598.5 s left, rounded down
    let v = alert::of(&a, NOW + 1_500);
    assert_eq!(v["scenario"], "sipwall/asterisk");
    assert_eq!(v["source"]["scope"], "Ip");
    assert_eq!(v["source"]["ip"], "192.0.2.9");
    assert_eq!(v["events_count"], 5);
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "the ban and its log line");
    let d = &v["decisions"][0];
    assert_eq!(d["type"], "ban");
    assert_eq!(d["value"], "192.0.2.9");
    assert_eq!(d["duration"], "3598s");
    assert_eq!(d["scenario"], "sipwall/asterisk");
    let v6 = alert::of(&jail_ban("2001:db8:1::/64", "proven", EventKind::Ban), NOW);
    assert_eq!(v6["source"]["scope"], "Range");
    assert_eq!(v6["source"]["range"], "2001:db8:1::/64");
    let forever = Alert { expires_unix_ms: None, ..a };
    assert_eq!(alert::of(&forever, NOW)["decisions"][0]["duration"], format!("{}s", alert::FOREVER_SECS));
}
