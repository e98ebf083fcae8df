//! A real OpenSSH server in the protected namespace and a real client in the other failing
//! passwords: after `maxretry` failures the client's packets are dropped by XDP, and they stay
//! dropped while the daemon is stopped, restarted and killed.

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use sipwall_tests::{
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    require_root,
    sshd::{attempt, jail_rules, Sshd, SshdLog},
    traffic::SourceCounter,
};

const MAXRETRY: u32 = 4;

#[test]
fn a_password_guessing_client_is_dropped_and_stays_dropped_across_restarts() {
    require_root!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("sshd");
    let sshd = Sshd::start(&lab, &dir, SshdLog::File);
    let log = sshd.log.clone().unwrap();
    let mut d = DaemonProc::start(&lab, &jail_rules(Some(&log.display().to_string()), MAXRETRY));
    let peer: Ipv4Addr = lab.peer_ip4().parse().unwrap();
    let packets = SourceCounter::start(&lab, peer);

    for n in 1..=MAXRETRY {
        let said = attempt(&lab, 5);
        assert!(said.contains("Permission denied"), "attempt {n} reached sshd and failed: {said}");
        let banned = wait_for(Duration::from_secs(3), || d.cli_ok(&["list"]).contains(&lab.peer_ip4()));
        assert_eq!(
            banned,
            n == MAXRETRY,
            "after {n} of {MAXRETRY} failures:\n{}\n{}",
            d.cli_ok(&["list"]),
            d.log_text()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let at_ban = packets.count();
    assert!(at_ban > 0, "the client's packets reached the host before the ban");

    // the client keeps trying in the background while the daemon restarts
    let stop = Arc::new(AtomicBool::new(false));
    let tries = Arc::new(AtomicU64::new(0));
    let (s, t, l) = (stop.clone(), tries.clone(), lab.clone_for_flow());
    let client = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let said = attempt(&l, 1);
            assert!(!said.contains("Permission denied"), "a banned client reached sshd: {said}");
            t.fetch_add(1, Ordering::Relaxed);
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    d.stop();
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn(&lab);
    std::thread::sleep(Duration::from_millis(1500));
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn(&lab);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client thread");
    assert!(tries.load(Ordering::Relaxed) >= 3, "the client kept trying");
    assert_eq!(packets.count(), at_ban, "not one packet of the banned client passed\n{}", d.log_text());

    let why = d.cli_ok(&["why", &lab.peer_ip4()]);
    assert!(why.contains("sshd") && why.contains("Failed password for root"), "{why}");
    let auth = std::fs::read_to_string(&log).unwrap();
    assert_eq!(auth.matches("Failed password").count() as u32, MAXRETRY, "sshd saw exactly maxretry attempts:\n{auth}");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
