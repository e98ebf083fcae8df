//! Jail arithmetic: the edges of findtime, maxretry, escalation and recidive.

use std::{cell::RefCell, time::Duration};

use super::*;
use crate::rules::jails::{builtin, Increment};

const MIN: u64 = 60_000;

/// Earlier bans, as the store would answer.
#[derive(Default)]
struct Past(RefCell<Vec<(IpNet, String, u64)>>);

impl Past {
    fn add(&self, o: &BanOrder, at: u64) {
        self.0.borrow_mut().push((o.target, o.jail.clone(), at));
    }
}

impl History for Past {
    fn count(&self, target: &IpNet, of: Jails<'_>, since: u64) -> u32 {
        self.0.borrow().iter().filter(|(t, j, at)| t == target && of.takes(j) && *at >= since).count() as u32
    }
}

fn detection() -> Detection {
    Detection { jails: builtin(), ignoreself: true, ..Detection::default() }
}

fn engine() -> Engine {
    Engine::new(&detection(), vec!["127.0.0.0/8".parse().unwrap(), "51.5.6.0/24".parse().unwrap()], 64)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn fail(e: &mut Engine, jail: &str, host: &str, at: u64, h: &dyn History) -> Outcome {
    let j = e.index(jail).unwrap();
    e.failure(j, ip(host), Some("100"), Some("a line"), at, h, Proof::Proven)
}

#[test]
fn maxretry_within_findtime_bans() {
    let mut e = engine();
    // asterisk: 3 failures within 10 minutes
    assert_eq!(fail(&mut e, "asterisk", "192.0.2.1", 0, &NoHistory), Outcome::Counted(1));
    assert_eq!(fail(&mut e, "asterisk", "192.0.2.1", 5 * MIN, &NoHistory), Outcome::Counted(2));
    match fail(&mut e, "asterisk", "192.0.2.1", 10 * MIN, &NoHistory) {
        Outcome::Ban(o) => {
            assert_eq!(o.target.to_string(), "192.0.2.1/32");
            assert_eq!(o.bantime, Some(Duration::from_secs(6 * 3600)));
            assert_eq!((o.failures, o.earlier), (3, 0));
            assert_eq!(o.lines.len(), 3);
            assert_eq!(o.users, ["100"]);
            assert_eq!(o.reason, "asterisk: 3 failures within 10m");
        }
        other => panic!("{other:?}"),
    }
    // the count starts over after a ban
    assert_eq!(fail(&mut e, "asterisk", "192.0.2.1", 10 * MIN + 1, &NoHistory), Outcome::Counted(1));
}

#[test]
fn a_failure_just_outside_findtime_does_not_count() {
    let mut e = engine();
    fail(&mut e, "asterisk", "192.0.2.1", 0, &NoHistory);
    fail(&mut e, "asterisk", "192.0.2.1", 1, &NoHistory);
    // 10 minutes and 1 ms after the first: only the second still counts
    assert_eq!(fail(&mut e, "asterisk", "192.0.2.1", 10 * MIN + 1, &NoHistory), Outcome::Counted(2));
}

#[test]
fn sources_and_jails_count_apart() {
    let mut e = engine();
    fail(&mut e, "asterisk", "192.0.2.1", 0, &NoHistory);
    fail(&mut e, "asterisk", "192.0.2.1", 1, &NoHistory);
    assert_eq!(fail(&mut e, "asterisk", "192.0.2.2", 2, &NoHistory), Outcome::Counted(1));
    assert_eq!(fail(&mut e, "sshd", "192.0.2.1", 3, &NoHistory), Outcome::Counted(1));
}

#[test]
fn ipv6_sources_count_per_ban_prefix() {
    let mut e = engine();
    fail(&mut e, "asterisk", "2001:db8:1:2::1", 0, &NoHistory);
    fail(&mut e, "asterisk", "2001:db8:1:2::ffff", 1, &NoHistory);
    match fail(&mut e, "asterisk", "2001:db8:1:2:abcd::9", 2, &NoHistory) {
        Outcome::Ban(o) => assert_eq!(o.target.to_string(), "2001:db8:1:2::/64"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fail(&mut e, "asterisk", "2001:db8:1:3::1", 3, &NoHistory), Outcome::Counted(1));
}

#[test]
fn allow_listed_and_ignored_sources_never_count() {
    let mut det = detection();
    det.jails[0].ignore = vec!["198.51.100.0/24".parse().unwrap()];
    let mut e = Engine::new(&det, vec!["51.5.6.0/24".parse().unwrap()], 64);
    for i in 0..10 {
        assert_eq!(
            fail(&mut e, "asterisk", "51.5.6.7", i, &NoHistory),
            Outcome::Ignored("51.5.6.0/24".parse().unwrap())
        );
        assert_eq!(
            fail(&mut e, "asterisk", "198.51.100.9", i, &NoHistory),
            Outcome::Ignored("198.51.100.0/24".parse().unwrap())
        );
    }
    // the jail's own ignore list is the jail's alone
    assert_eq!(fail(&mut e, "sshd", "198.51.100.9", 0, &NoHistory), Outcome::Counted(1));
}

#[test]
fn repeat_offenders_are_banned_longer_and_maxretry_stays() {
    let mut e = engine();
    let past = Past::default();
    let mut bantimes = Vec::new();
    let mut t = 0;
    for _ in 0..12 {
        let mut outcome = Outcome::Counted(0);
        let mut tries = 0;
        while !matches!(outcome, Outcome::Ban(_)) {
            t += 1000;
            tries += 1;
            outcome = fail(&mut e, "asterisk", "192.0.2.7", t, &past);
        }
        // maxretry never drops for a known offender
        assert_eq!(tries, 3);
        let Outcome::Ban(o) = outcome else { unreachable!() };
        past.add(&o, t);
        bantimes.push(o.bantime.unwrap().as_secs() / 3600);
    }
    // 6h doubling per earlier ban, capped at the built-in maxtime of one week
    assert_eq!(bantimes, [6, 12, 24, 48, 96, 168, 168, 168, 168, 168, 168, 168]);
}

#[test]
fn escalation_counts_only_bans_within_its_window() {
    let inc = Increment {
        factor: 1.0,
        multipliers: vec![1, 5, 30],
        maxtime: None,
        window: Duration::from_secs(3600),
        overalljails: false,
    };
    let base = Some(Duration::from_secs(600));
    assert_eq!(escalate::bantime(base, Some(&inc), 0), Some(Duration::from_secs(600)));
    assert_eq!(escalate::bantime(base, Some(&inc), 1), Some(Duration::from_secs(3000)));
    assert_eq!(escalate::bantime(base, Some(&inc), 2), Some(Duration::from_secs(18000)));
    assert_eq!(escalate::bantime(base, Some(&inc), 9), Some(Duration::from_secs(18000)));
    assert_eq!(escalate::bantime(None, Some(&inc), 3), None);
    let inc = Increment { multipliers: vec![], factor: 3.0, maxtime: Some(Duration::from_secs(10_000)), ..inc };
    assert_eq!(escalate::bantime(base, Some(&inc), 0), Some(Duration::from_secs(1800)));
    assert_eq!(escalate::bantime(base, Some(&inc), 4), Some(Duration::from_secs(10_000)));

    let mut det = detection();
    det.jails[0].increment =
        Some(Increment { window: Duration::from_secs(3600), ..det.jails[0].increment.clone().unwrap() });
    let mut e = Engine::new(&det, vec![], 64);
    let past = Past::default();
    let target: IpNet = "192.0.2.8/32".parse().unwrap();
    past.0.borrow_mut().push((target, "asterisk".into(), 0));
    past.0.borrow_mut().push((target, "sshd".into(), 3_000_000));
    let at = 3_600_001; // the asterisk ban at 0 is out of the hour's window
    fail(&mut e, "asterisk", "192.0.2.8", at, &past);
    fail(&mut e, "asterisk", "192.0.2.8", at, &past);
    match fail(&mut e, "asterisk", "192.0.2.8", at, &past) {
        Outcome::Ban(o) => assert_eq!((o.earlier, o.bantime), (0, Some(Duration::from_secs(6 * 3600)))),
        other => panic!("{other:?}"),
    }
    // with overalljails the sshd ban inside the window counts
    det.jails[0].increment.as_mut().unwrap().overalljails = true;
    e.reconfigure(&det, vec![], 64);
    for _ in 0..2 {
        fail(&mut e, "asterisk", "192.0.2.8", at, &past);
    }
    match fail(&mut e, "asterisk", "192.0.2.8", at, &past) {
        Outcome::Ban(o) => assert_eq!((o.earlier, o.bantime), (1, Some(Duration::from_secs(12 * 3600)))),
        other => panic!("{other:?}"),
    }
}

/// A 10-minute ban of `target` by `jail`.
fn ban_by(jail: &str, target: &str) -> BanOrder {
    BanOrder {
        jail: jail.into(),
        target: target.parse().unwrap(),
        bantime: Some(Duration::from_secs(600)),
        failures: 3,
        earlier: 0,
        lines: vec![],
        users: vec![],
        reason: String::new(),
        evidence: Proof::Proven,
    }
}

#[test]
fn recidive_bans_a_source_banned_again_and_again() {
    let mut e = engine();
    let past = Past::default();
    let mut recidive = None;
    for n in 0..5 {
        let at = n * 4 * 60 * MIN; // every 4 hours, all within the day
        let by = ban_by(if n % 2 == 0 { "asterisk" } else { "sshd" }, "192.0.2.9/32");
        recidive = e.banned(&by, at, &past);
        assert_eq!(recidive.is_some(), n == 4, "after {} bans", n + 1);
    }
    let o = recidive.unwrap();
    assert_eq!((o.jail.as_str(), o.bantime), ("recidive", Some(Duration::from_secs(7 * 24 * 3600))));
    assert_eq!(o.lines.len(), 5);
    assert!(o.lines[0].starts_with("banned by asterisk for 10m"), "{:?}", o.lines);
    // a recidive ban is not fed back to recidive
    assert_eq!(e.banned(&o, 0, &past), None);
}

#[test]
fn recidive_counts_bans_kept_from_before_a_restart() {
    let past = Past::default();
    let by = ban_by;
    // four bans by the first daemon, then a restart: an engine that remembers nothing
    let mut e = engine();
    for n in 0..4 {
        let o = by("asterisk", "192.0.2.10/32");
        past.add(&o, n * 60 * MIN);
        assert_eq!(e.banned(&o, n * 60 * MIN, &past), None);
    }
    let mut e = engine();
    let fifth = by("sshd", "192.0.2.10/32");
    past.add(&fifth, 5 * 60 * MIN);
    let o = e.banned(&fifth, 5 * 60 * MIN, &past).expect("the fifth ban within a day completes recidive");
    assert_eq!((o.jail.as_str(), o.failures), ("recidive", 5));
    // recidive's own bans, bans by hand, and bans older than its findtime, are not counted
    let mut e = engine();
    let t = "192.0.2.11/32";
    past.add(&by("recidive", t), 25 * 60 * MIN);
    past.add(&by(MANUAL, t), 25 * 60 * MIN);
    for n in 0..4 {
        past.add(&by("asterisk", t), n);
    }
    let late = by("asterisk", t);
    past.add(&late, 25 * 60 * MIN);
    assert_eq!(e.banned(&late, 25 * 60 * MIN, &past), None);
    // nor are allow-listed sources
    let trunk = by("asterisk", "51.5.6.7/32");
    for n in 0..6 {
        past.add(&trunk, n);
    }
    assert_eq!(e.banned(&trunk, 6, &past), None);
}

#[test]
fn tracked_sources_are_bounded_and_expire() {
    let mut w = Window::new(100);
    for i in 0..1000u32 {
        let t: IpNet = IpNet::from(IpAddr::from(i.to_be_bytes()));
        w.add(t, u64::from(i), 60_000, (Some("x"), None), Proof::Proven);
    }
    assert_eq!(w.len(), 100);
    // the newest are kept
    assert!(w.get(&IpNet::from(IpAddr::from(999u32.to_be_bytes()))).is_some());
    assert!(w.get(&IpNet::from(IpAddr::from(0u32.to_be_bytes()))).is_none());
    assert_eq!(w.expire(999 + 60_000, 60_000), 99);
    assert_eq!(w.len(), 1);
}

#[test]
fn unproven_failures_are_kept_apart_and_never_ban() {
    let mut e = engine();
    let j = e.index("asterisk").unwrap();
    let forged = ip("198.51.100.7");
    for n in 1..=10u32 {
        let got = e.failure(j, forged, None, Some("forged"), u64::from(n), &NoHistory, Proof::Unproven);
        assert_eq!(got, Outcome::Unproven(n));
    }
    assert!(e.pending(forged).is_empty(), "nothing counted toward maxretry");
    assert_eq!(e.pending_unproven(forged)[0].1.times.len(), 10);
    // proven failures of the same source count from zero
    assert_eq!(fail(&mut e, "asterisk", "198.51.100.7", 20, &NoHistory), Outcome::Counted(1));
    // unproven ones are forgotten after findtime like the others
    e.expire(20 + 600_000 + 11);
    assert!(e.pending_unproven(forged).is_empty());
}

#[test]
fn a_jail_that_trusts_unproven_evidence_says_so_in_its_bans() {
    let mut det = detection();
    for j in &mut det.jails {
        j.trust_unproven = j.name == "asterisk";
    }
    let mut e = Engine::new(&det, Vec::new(), 64);
    let j = e.index("asterisk").unwrap();
    let host = ip("203.0.113.9");
    let _ = e.failure(j, host, None, Some("a"), 1, &NoHistory, Proof::Proven);
    let _ = e.failure(j, host, None, Some("b"), 2, &NoHistory, Proof::Unproven);
    match e.failure(j, host, None, Some("c"), 3, &NoHistory, Proof::Proven) {
        Outcome::Ban(o) => {
            assert_eq!(o.evidence, Proof::Unproven);
            assert!(o.reason.ends_with(", 1 of them unproven (trust_unproven)"), "{}", o.reason);
        }
        other => panic!("{other:?}"),
    }
}
