//! Restarts never flush and re-add: while banned sources keep sending, the daemon is stopped,
//! started again, killed with SIGKILL, started again, and upgraded to tables of another size;
//! not one of their packets passes, and a ban the store missed is recovered from the kernel. A
//! ban storm cut by SIGKILL loses no ban the daemon told of.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use sipwall::control::{client, protocol::Request};
use sipwall_tests::{
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    require_root,
    traffic::{frame, storm_frame, Flow, Receiver, STORM_RULES},
};

const RULES: &str = r#"
[allow]
sources = ["127.0.0.0/8", "::1/128"]

[services.sip]
ports = ["5060/udp"]

[jails.asterisk]
enabled = false

[jails.sshd]
enabled = false
"#;

fn restarted(d: &mut DaemonProc, lab: &Lab) {
    d.spawn(lab);
    assert!(d.log_text().contains("took over the pinned tables"), "{}", d.log_text());
}

#[test]
fn restarts_never_let_a_banned_packet_through() {
    require_root!();
    let lab = Lab::new();
    let mut d = DaemonProc::start(&lab, RULES);
    let rx = Receiver::start(&lab);
    d.cli_ok(&["ban", "192.0.2.99", "--for", "1h"]);
    d.cli_ok(&["ban", "2001:db8:99:1::1"]);
    d.cli_ok(&["ban", "198.51.100.0/24", "--for", "1d"]);

    let (l4, l6, ln, lc) = (lab.clone_for_flow(), lab.clone_for_flow(), lab.clone_for_flow(), lab.clone_for_flow());
    let b4 = Flow::start(&lab, 400, move |i| frame(&l4, "192.0.2.99", 5060, false, "b4", i));
    let b6 = Flow::start(&lab, 400, move |i| frame(&l6, "2001:db8:99:1::abcd", 5060, false, "b6", i));
    let bn = Flow::start(&lab, 400, move |i| frame(&ln, "198.51.100.7", 22, false, "bn", i));
    let ok = Flow::start(&lab, 400, move |i| frame(&lc, "192.0.2.10", 5060, false, "ok", i));
    std::thread::sleep(Duration::from_millis(500));

    d.stop();
    std::thread::sleep(Duration::from_millis(500));
    restarted(&mut d, &lab);
    std::thread::sleep(Duration::from_millis(300));
    d.kill9();
    std::thread::sleep(Duration::from_millis(500));
    restarted(&mut d, &lab);
    std::thread::sleep(Duration::from_millis(300));

    // an upgrade to tables of another size: new ones are built and switched to in one step
    d.stop();
    std::fs::write(&d.config, format!("{RULES}\n[bans]\ncapacity = 4096\n")).unwrap();
    d.spawn(&lab);
    assert!(d.log_text().contains("cannot be reused"), "{}", d.log_text());
    std::thread::sleep(Duration::from_millis(300));
    d.stop();
    restarted(&mut d, &lab);
    std::thread::sleep(Duration::from_millis(300));

    let sent = [b4.stop(), b6.stop(), bn.stop()];
    let control = ok.stop();
    rx.settle();
    for (tag, n) in ["b4", "b6", "bn"].iter().zip(sent) {
        assert!(n > 1000, "{tag}: {n} frames sent");
        assert_eq!(rx.count(tag), 0, "{tag}: a banned packet passed during the restarts\n{}", d.log_text());
    }
    assert!(
        rx.count("ok") as u64 > control * 9 / 10,
        "unbanned traffic flows throughout: {} of {control}",
        rx.count("ok")
    );
    let list = d.cli_ok(&["list"]);
    for t in ["192.0.2.99/32", "2001:db8:99:1::/64", "198.51.100.0/24"] {
        assert!(list.contains(t), "{t} lost:\n{list}");
    }
}

#[test]
fn a_ban_missing_from_the_store_is_recovered_from_the_kernel() {
    require_root!();
    let lab = Lab::new();
    let mut d = DaemonProc::start(&lab, RULES);
    d.cli_ok(&["ban", "192.0.2.77", "--for", "2h"]);
    d.cli_ok(&["ban", "192.0.2.78"]);
    d.kill9();
    // as if the daemon had died between the kernel write and the disk write
    let store = sipwall::store::Store::open(&d.dir.join("state")).unwrap();
    assert!(store.delete_ban(&"192.0.2.77/32".parse().unwrap()).unwrap());
    drop(store);
    let rx = Receiver::start(&lab);
    let l = lab.clone_for_flow();
    let f = Flow::start(&lab, 400, move |i| frame(&l, "192.0.2.77", 5060, false, "gone", i));
    restarted(&mut d, &lab);
    std::thread::sleep(Duration::from_millis(300));
    f.stop();
    rx.settle();
    assert_eq!(rx.count("gone"), 0);
    let list = d.cli_ok(&["list", "--json"]);
    assert!(list.contains("192.0.2.77/32") && list.contains("\"source\": \"recovered\""), "{list}");
    assert!(list.contains("192.0.2.78/32"), "{list}");
    // the recovered ban keeps its expiry (about 2 hours from its creation)
    let why = d.cli_ok(&["why", "192.0.2.77", "--json"]);
    assert!(why.contains("\"remaining_secs\""), "{why}");
    assert!(wait_for(Duration::from_secs(60), || {
        let s = sipwall::store::Store::open(&d.dir.join("state")).unwrap();
        s.ban(&"192.0.2.77/32".parse().unwrap()).unwrap().is_some()
    }));
}

/// Garbage where the store should be: the daemon moves it aside, keeps it, and enforces the
/// pinned tables and the rules all the same; with no pinned tables either, it starts from the
/// rules.
#[test]
fn a_corrupt_store_never_keeps_the_daemon_from_enforcing() {
    require_root!();
    let lab = Lab::new();
    let rules = format!("{RULES}\n[block]\nsources = [\"203.0.113.0/24\"]\n");
    let mut d = DaemonProc::start(&lab, &rules);
    d.cli_ok(&["ban", "192.0.2.77", "--for", "2h"]);
    d.stop();
    let state = d.dir.join("state");
    let garbage = b"not a database: a disk that lost its blocks".repeat(200);
    let corrupt = |state: &std::path::Path| {
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(state.join(format!("sipwall.db{side}")));
        }
        std::fs::write(state.join("sipwall.db"), &garbage).unwrap();
    };
    corrupt(&state);

    let rx = Receiver::start(&lab);
    let (l1, l2) = (lab.clone_for_flow(), lab.clone_for_flow());
    let banned = Flow::start(&lab, 400, move |i| frame(&l1, "192.0.2.77", 5060, false, "banned", i));
    let blocked = Flow::start(&lab, 400, move |i| frame(&l2, "203.0.113.9", 5060, false, "blocked", i));
    restarted(&mut d, &lab);
    let log = d.log_text();
    assert!(log.contains("moved it aside"), "{log}");
    assert!(d.metrics().contains("\nsipwall_store_healthy 0"), "{}", d.metrics());
    let kept: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("sipwall.db.broken-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), garbage, "the broken store is kept as it was");
    // the ban the pinned tables held is in force and saved again; new bans work
    let list = d.cli_ok(&["list"]);
    assert!(list.contains("192.0.2.77/32"), "{list}");
    d.cli_ok(&["ban", "192.0.2.78"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(banned.stop() > 10 && blocked.stop() > 10);
    rx.settle();
    assert_eq!(rx.count("banned"), 0, "a banned source passed");
    assert_eq!(rx.count("blocked"), 0, "a blocked source passed");

    // after a reboot: no pinned tables, a corrupt store: the rules are enforced from the start
    d.stop();
    assert!(d.detach().status.success());
    corrupt(&state);
    d.spawn(&lab);
    assert!(d.log_text().matches("moved it aside").count() >= 2, "{}", d.log_text());
    let rx = Receiver::start(&lab);
    let l = lab.clone_for_flow();
    let blocked = Flow::start(&lab, 400, move |i| frame(&l, "203.0.113.9", 5060, false, "blocked2", i));
    std::thread::sleep(Duration::from_millis(300));
    d.cli_ok(&["ban", "192.0.2.79"]);
    assert!(blocked.stop() > 10);
    rx.settle();
    assert_eq!(rx.count("blocked2"), 0, "a blocked source passed");
    assert!(d.cli_ok(&["list"]).contains("192.0.2.79/32"));
}

/// The targets of the `ban` events in a daemon's log: the bans it told of.
fn told_bans(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .filter(|v| v["event"] == "ban")
        .filter_map(|v| v["target"].as_str().map(str::to_owned))
        .collect()
}

/// A ban storm from the kernel (a flood jail banning every source over its limit) and bans by
/// hand, cut by `kill -9`, then a start with no pinned tables, as after a reboot: every ban
/// the daemon told of, in its log or to the `sipwall ban` that asked, comes back from the store.
#[test]
fn a_ban_storm_cut_by_kill_9_loses_no_ban_it_told_of() {
    require_root!();
    let lab = Lab::new();
    let mut d = DaemonProc::start(&lab, STORM_RULES);
    let l = lab.clone_for_flow();
    let storm = Flow::start(&lab, 4_000, move |i| storm_frame(&l, i));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let by_hand = {
        let (stop, acked, socket) = (stop.clone(), acked.clone(), d.socket.clone());
        std::thread::spawn(move || {
            for i in 0u32.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let target = std::net::Ipv4Addr::from(0xc612_0000u32 + i).to_string();
                let req = Request::Ban { target: target.clone(), duration: None, reason: None };
                if client::call(&socket, &req).is_ok_and(|r| r.ok) {
                    acked.lock().unwrap().push(format!("{target}/32"));
                }
            }
        })
    };
    let stormed = wait_for(Duration::from_secs(180), || {
        acked.lock().unwrap().len() >= 20 && d.metric("sipwall_bans_total", r#"jail="flood""#) >= 1_500
    });
    assert!(stormed, "the storm banned too few sources:\n{}", d.log_text());
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    by_hand.join().unwrap();
    storm.stop();
    let acked = acked.lock().unwrap().clone();
    let mut told = told_bans(&d.log_text());
    assert!(told.len() >= 1_500, "{} bans told of", told.len());
    told.extend(acked.iter().cloned());

    // as after a reboot: nothing pinned, the bans come from the store alone
    let out = d.detach();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = d.log_text().len();
    d.spawn(&lab);
    assert!(d.log_text()[before..].contains("restored "), "{}", &d.log_text()[before..]);
    let list: serde_json::Value = serde_json::from_str(&d.cli_ok(&["list", "--json"])).unwrap();
    let listed: BTreeSet<String> =
        list.as_array().unwrap().iter().filter_map(|b| b["target"].as_str().map(str::to_owned)).collect();
    let lost: Vec<&String> = told.difference(&listed).collect();
    assert!(lost.is_empty(), "{} of {} told bans lost, e.g. {:?}", lost.len(), told.len(), &lost[..lost.len().min(5)]);
    eprintln!(
        "{} bans told of ({} by hand) before kill -9; {} restored from the store",
        told.len(),
        acked.len(),
        listed.len()
    );
}
