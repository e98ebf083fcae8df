//! The `journal:` log source against a real systemd-journald, private to the test: a real sshd
//! logging through syslog gets its password-guessing client dropped, and every journal line is
//! counted exactly once across daemon, journalctl and journald restarts.
//!
//! journald runs here without systemd as PID 1, so it cannot tell which unit a process belongs
//! to and leaves `_SYSTEMD_UNIT` empty: `journal:UNIT` (journalctl `--unit=`) matches nothing
//! here. The sources below are field matches, which match the same way on a systemd host.

use std::time::Duration;

use sipwall_tests::{
    daemon::DaemonProc,
    journald::PrivateJournal,
    netns::{wait_for, Lab},
    require_root,
    sshd::{attempt, jail_rules, Sshd, SshdLog},
};

const MAXRETRY: u64 = 4;
const SOURCE: &str = "journal:SYSLOG_IDENTIFIER=sshd";
/// Generous bounds for things that happen in the background; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(60);

fn rules() -> String {
    jail_rules(SOURCE, MAXRETRY)
}

/// The value of the sample of `name` whose labels include `labels`, if there is one.
fn metric(text: &str, name: &str, labels: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(labels))
        .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
}

fn failures(d: &DaemonProc) -> u64 {
    metric(&d.metrics(), "sipwall_failures_total", r#"jail="sshd""#).unwrap_or(0)
}

fn lines_read(d: &DaemonProc) -> u64 {
    metric(&d.metrics(), "sipwall_log_lines_total", r#"jail="sshd""#).unwrap_or(0)
}

fn source_up(d: &DaemonProc) -> Option<u64> {
    metric(&d.metrics(), "sipwall_log_source_up", &format!(r#"source="{SOURCE}""#))
}

/// Waits until the daemon's journalctl reads new entries: it starts at the end of the journal
/// some time after the daemon answers, and lines logged before that are history.
fn until_reading(d: &DaemonProc, j: &PrivateJournal) {
    let before = lines_read(d);
    for i in 0.. {
        assert!(i < 120, "the daemon read none of the journal:\n{}", d.log_text());
        j.syslog("sshd", 1, &format!("sipwall-test: anyone reading? {i}"));
        if wait_for(Duration::from_secs(1), || lines_read(d) > before) {
            return;
        }
    }
}

/// Logs `n` failures of `addr`, then one of a fence address, and checks that the daemon counted
/// exactly these: any line read twice or not at all shows in the count once the fence is read.
fn fail_and_count(d: &DaemonProc, j: &PrivateJournal, addr: &str, n: u64, fence: &str) {
    let before = failures(d);
    for i in 0..n {
        j.syslog("sshd", 2000 + i as u32, &format!("Failed password for root from {addr} port {} ssh2", 40000 + i));
    }
    j.syslog("sshd", 3000, &format!("Failed password for invalid user fence from {fence} port 1 ssh2"));
    let want = before + n + 1;
    wait_for(PATIENCE, || failures(d) >= want);
    assert_eq!(
        failures(d),
        want,
        "{n} failures of {addr} and a fence, counted once each\n{}\njournal: {:#?}\n{}",
        d.cli_ok(&["status"]),
        j.messages(&["SYSLOG_IDENTIFIER=sshd"]),
        d.log_text()
    );
}

fn banned(d: &DaemonProc, addr: &str) -> bool {
    d.cli_ok(&["list"]).contains(addr)
}

/// The pid of the journalctl the daemon runs.
fn journalctl_of(d: &DaemonProc) -> Option<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", d.pid())).ok()?;
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse::<i32>().ok()).collect::<Vec<_>>())
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "journalctl"))
}

#[test]
fn every_journal_line_is_read_once_across_daemon_journalctl_and_journald_restarts() {
    require_root!();
    let mut j = PrivateJournal::start();
    let lab = Lab::new();
    let mut d = DaemonProc::start(&lab, &rules());
    until_reading(&d, &j);
    assert_eq!(source_up(&d), Some(1), "{}", d.metrics());

    // below maxretry: counted, nobody banned
    fail_and_count(&d, &j, "198.51.100.7", MAXRETRY - 1, "203.0.113.1");
    assert!(!banned(&d, "198.51.100.7"));

    // a restarted daemon starts at the end of the journal: what it read before is not read
    // again, and what was logged while it was down is history (docs/rules.md, Log sources)
    d.stop();
    j.syslog("sshd", 4000, "Failed password for root from 198.51.100.8 port 1 ssh2");
    d.spawn(&lab);
    until_reading(&d, &j);
    assert_eq!(failures(&d), 0, "the new daemon counted old lines:\n{}", d.log_text());
    fail_and_count(&d, &j, "198.51.100.9", MAXRETRY, "203.0.113.2");
    assert!(wait_for(PATIENCE, || banned(&d, "198.51.100.9")), "maxretry failures ban:\n{}", d.log_text());
    assert!(!banned(&d, "198.51.100.8"), "a line logged while the daemon was down was counted");

    // journalctl ends: the source is down, and the next journalctl starts after the last
    // entry read, so what was logged in between is read, once
    let pid = journalctl_of(&d).expect("the daemon runs journalctl");
    // SAFETY: killing the journalctl our daemon started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_for(PATIENCE, || source_up(&d) == Some(0)), "journalctl ended: source down\n{}", d.metrics());
    fail_and_count_later(&d, &j);

    // journald stops: journalctl would wait quietly, so journald itself is watched
    j.stop_journald();
    assert!(wait_for(PATIENCE, || source_up(&d) == Some(0)), "journald stopped: source down\n{}", d.metrics());
    let status = d.cli_ok(&["status"]);
    assert!(status.contains("systemd-journald is not running"), "{status}");
    j.start_journald();
    assert!(wait_for(PATIENCE, || source_up(&d) == Some(1)), "journald is back: source up\n{}", d.log_text());
    fail_and_count(&d, &j, "198.51.100.11", 2, "203.0.113.4");

    d.stop();
    assert!(!j.journald_log().contains("Failed to"), "journald complained:\n{}", j.journald_log());
}

/// Failures logged while the daemon's journalctl is down are counted once it is back.
fn fail_and_count_later(d: &DaemonProc, j: &PrivateJournal) {
    let before = failures(d);
    for i in 0..2 {
        j.syslog("sshd", 5000 + i, &format!("Failed password for root from 198.51.100.10 port {i} ssh2"));
    }
    assert!(wait_for(PATIENCE, || source_up(d) == Some(1)), "journalctl restarted: source up\n{}", d.log_text());
    assert!(wait_for(PATIENCE, || failures(d) >= before + 2), "lines logged while journalctl was down are read");
    fail_and_count(d, j, "198.51.100.10", 0, "203.0.113.3");
    assert_eq!(failures(d), before + 3, "{}", d.log_text());
}

#[test]
fn a_real_sshd_logging_to_the_journal_gets_its_password_guessing_client_dropped() {
    require_root!();
    let j = PrivateJournal::start();
    let lab = Lab::new();
    let dir = j.dir.join("sshd");
    std::fs::create_dir_all(&dir).unwrap();
    let _sshd = Sshd::start(&lab, &dir, SshdLog::Syslog);
    assert!(
        wait_for(PATIENCE, || j.messages(&["_COMM=sshd"]).iter().any(|m| m.contains("Server listening"))),
        "sshd did not log through /dev/log into the private journal:\n{:?}",
        j.messages(&[])
    );
    let d = DaemonProc::start(&lab, &rules());
    until_reading(&d, &j);
    let peer = lab.peer_ip4();

    for n in 1..=MAXRETRY {
        let said = attempt(&lab, 5);
        assert!(said.contains("Permission denied"), "attempt {n} reached sshd and failed: {said}");
        assert!(wait_for(PATIENCE, || failures(&d) >= n), "failure {n} counted:\n{}", d.log_text());
        assert_eq!(failures(&d), n, "each failure counted once");
        let banned = wait_for(Duration::from_secs(3), || banned(&d, &peer));
        assert_eq!(banned, n == MAXRETRY, "after {n} of {MAXRETRY} failures:\n{}", d.cli_ok(&["list"]));
    }
    let said = attempt(&lab, 2);
    assert!(!said.contains("Permission denied"), "a banned client reached sshd: {said}");

    let why = d.cli_ok(&["why", &peer]);
    assert!(why.contains("sshd[") && why.contains("Failed password for root"), "{why}");
    // the same entries carry _COMM=sshd, which the built-in sshd jail's `journal:_COMM=sshd
    // _COMM=sshd-session` matches
    let failed = j.messages(&["_COMM=sshd"]).iter().filter(|m| m.starts_with("Failed password")).count();
    assert_eq!(failed as u64, MAXRETRY, "sshd logged exactly maxretry failures");
}
