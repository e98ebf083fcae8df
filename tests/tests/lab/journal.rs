//! The `journal:` log source against a real systemd-journald, private to the test: a real sshd
//! logging through syslog gets its password-guessing client dropped, what a local user logs as
//! sshd is not even read, and every journal line is counted exactly once across daemon,
//! journalctl and journald restarts.
//!
//! journald runs here without systemd as PID 1, so it cannot tell which unit a process belongs
//! to and leaves `_SYSTEMD_UNIT` empty: `journal:UNIT` (journalctl `--unit=`) matches nothing
//! here. The sources below are field matches, which match the same way on a systemd host.

use std::time::Duration;

use sipwall_tests::{
    daemon::DaemonProc,
    journald::{Logger, PrivateJournal},
    netns::{wait_for, Lab},
    require_root,
    sshd::{attempt, jail_rules, Sshd, SshdLog},
};

const MAXRETRY: u64 = 4;
/// For the restart test, which logs through `logger` itself; anyone can log with this
/// identifier, so the built-in sshd jail matches journald's fields instead (`ROOT_SSHD`).
const SOURCE: &str = "journal:SYSLOG_IDENTIFIER=sshd";
/// What the built-in sshd jail's source matches: entries that root logged as sshd (or, since
/// OpenSSH 9.8, sshd-session).
const ROOT_SSHD: [&str; 3] = ["_UID=0", "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"];
/// The local user who forges sshd's lines: nobody.
const NOBODY: u32 = 65534;
/// The address the forged lines accuse.
const VICTIM: &str = "198.51.100.77";
/// Generous bounds for things that happen in the background; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(60);

fn rules() -> String {
    jail_rules(Some(SOURCE), MAXRETRY)
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

/// Waits until the daemon's journalctl reads new entries, which `log` writes: it starts at the
/// end of the journal some time after the daemon answers, and lines logged before that are
/// history.
fn until_reading(d: &DaemonProc, log: impl Fn(&str)) {
    let before = lines_read(d);
    for i in 0.. {
        assert!(i < 120, "the daemon read none of the journal:\n{}", d.log_text());
        log(&format!("sipwall-test: anyone reading? {i}"));
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
    until_reading(&d, |m| j.syslog("sshd", 1, m));
    assert_eq!(source_up(&d), Some(1), "{}", d.metrics());

    // below maxretry: counted, nobody banned
    fail_and_count(&d, &j, "198.51.100.7", MAXRETRY - 1, "203.0.113.1");
    assert!(!banned(&d, "198.51.100.7"));

    // a restarted daemon starts at the end of the journal: what it read before is not read
    // again, and what was logged while it was down is history (docs/rules.md, Log sources)
    d.stop();
    j.syslog("sshd", 4000, "Failed password for root from 198.51.100.8 port 1 ssh2");
    d.spawn(&lab);
    until_reading(&d, |m| j.syslog("sshd", 1, m));
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

/// A real sshd logging through syslog into the private journal, once it says it listens.
fn start_sshd(lab: &Lab, j: &PrivateJournal) -> Sshd {
    let dir = j.dir.join("sshd");
    std::fs::create_dir_all(&dir).unwrap();
    let sshd = Sshd::start(lab, &dir, SshdLog::Syslog);
    assert!(
        wait_for(PATIENCE, || j.messages(&ROOT_SSHD).iter().any(|m| m.contains("Server listening"))),
        "sshd did not log through /dev/log into the private journal as root's sshd:\n{:?}",
        j.messages(&[])
    );
    sshd
}

/// Root's program named sshd, standing in for sshd where a line must be logged at a given time.
fn root_sshd(j: &PrivateJournal) -> Logger {
    j.logger("sshd", 0)
}

/// Fails passwords against the real sshd from the lab's peer: each failure is counted once, and
/// the peer is dropped at the `MAXRETRY`th.
fn guess_until_dropped(d: &DaemonProc, lab: &Lab) {
    let peer = lab.peer_ip4();
    let before = failures(d);
    for n in 1..=MAXRETRY {
        let said = attempt(lab, 5);
        assert!(said.contains("Permission denied"), "attempt {n} reached sshd and failed: {said}");
        assert!(wait_for(PATIENCE, || failures(d) >= before + n), "failure {n} counted:\n{}", d.log_text());
        assert_eq!(failures(d), before + n, "each failure counted once");
        let banned = wait_for(Duration::from_secs(3), || banned(d, &peer));
        assert_eq!(banned, n == MAXRETRY, "after {n} of {MAXRETRY} failures:\n{}", d.cli_ok(&["list"]));
    }
    let said = attempt(lab, 2);
    assert!(!said.contains("Permission denied"), "a banned client reached sshd: {said}");
}

/// A private journal, a real sshd logging to it and a daemon with the built-in sshd jail, as a
/// host without a rules file for it has, reading it. Fields drop in order: the daemon before
/// the lab it runs in, the journal last.
struct SshdLab {
    root: Logger,
    d: DaemonProc,
    sshd: Sshd,
    lab: Lab,
    j: PrivateJournal,
}

fn sshd_lab() -> SshdLab {
    let j = PrivateJournal::start();
    let lab = Lab::new();
    let sshd = start_sshd(&lab, &j);
    let d = DaemonProc::start(&lab, &jail_rules(None, MAXRETRY));
    let root = root_sshd(&j);
    until_reading(&d, |m| root.syslog("sshd", m));
    root.reap();
    SshdLab { root, d, sshd, lab, j }
}

#[test]
fn a_real_sshd_logging_to_the_journal_gets_its_password_guessing_client_dropped() {
    require_root!();
    let SshdLab { d, lab, j, .. } = &sshd_lab();
    guess_until_dropped(d, lab);

    let why = d.cli_ok(&["why", &lab.peer_ip4()]);
    assert!(why.contains("sshd[") && why.contains("Failed password for root"), "{why}");
    // sshd's privilege-separated child has its monitor, running as root, log for it: every
    // failure is root's
    let failed = |m: &[&str]| j.messages(m).iter().filter(|m| m.starts_with("Failed password")).count() as u64;
    assert_eq!(failed(&ROOT_SSHD), MAXRETRY, "sshd logged exactly maxretry failures, as root");
    assert_eq!(failed(&[]), MAXRETRY, "and no other failures are in the journal");
}

#[test]
fn sshd_lines_a_local_user_forges_are_not_read_and_ban_nobody() {
    require_root!();
    let SshdLab { root, d, lab, j, .. } = &sshd_lab();
    // a failure of a fence address, logged as root's sshd: once it is counted, the daemon has
    // read everything logged before it (journalctl follows the journal in order)
    let fence = |n: u64| {
        let addr = format!("203.0.113.{n}");
        root.syslog("sshd", &format!("Failed password for invalid user fence from {addr} port 1 ssh2"));
        let counted = wait_for(PATIENCE, || d.cli_ok(&["why", &addr]).contains("failures are being counted"));
        assert!(counted, "fence {n} counted:\n{}", d.log_text());
        root.reap();
    };
    fence(1);
    let before = (failures(d), lines_read(d));

    // a local user runs a program named sshd and logs, tagged sshd, what sshd logs, more than
    // maxretry times: `_COMM=sshd` or `SYSLOG_IDENTIFIER=sshd` alone would ban VICTIM
    let nobody = j.logger("sshd", NOBODY);
    let mut forged = Vec::new();
    for port in 4242..4242 + MAXRETRY + 1 {
        forged.extend([
            format!("Failed password for root from {VICTIM} port {port} ssh2"),
            format!("Invalid user x from {VICTIM} port {port}"),
            format!("Failed password for invalid user x from {VICTIM} port {port} ssh2"),
            format!("Connection closed by authenticating user root {VICTIM} port {port} [preauth]"),
            format!("Connection closed by invalid user x {VICTIM} port {port} [preauth]"),
        ]);
    }
    for m in &forged {
        nobody.syslog("sshd", m);
    }
    // journald's own fields cannot be claimed: it drops those a client sends
    let native = format!("Failed password for root from {VICTIM} port 4343 ssh2");
    let message = format!("MESSAGE={native}");
    nobody.native(&[&message, "SYSLOG_IDENTIFIER=sshd", "_UID=0", "_COMM=sshd", "_SYSTEMD_UNIT=ssh.service"]);
    forged.push(native);
    forged.sort();

    // the forged lines are in the journal as sshd's, from the user: only `_UID` tells them apart
    let uid = format!("_UID={NOBODY}");
    let as_sshd = || {
        let mut m = j.messages(&["_COMM=sshd", "SYSLOG_IDENTIFIER=sshd", &uid]);
        m.sort();
        m
    };
    let arrived = wait_for(PATIENCE, || as_sshd().len() >= forged.len());
    nobody.reap();
    assert!(arrived, "the forged lines reached the journal as sshd's:\n{:#?}", j.messages(&[]));
    assert_eq!(as_sshd(), forged);
    let root_lines = j.messages(&ROOT_SSHD);
    assert!(!root_lines.iter().any(|m| m.contains(VICTIM)), "a forged line passes for root's sshd: {root_lines:#?}");

    fence(2);
    assert_eq!(
        (failures(d), lines_read(d)),
        (before.0 + 1, before.1 + 1),
        "(failures, lines read): the daemon read the fence and none of the {} forged lines:\n{}",
        forged.len(),
        d.cli_ok(&["status"])
    );
    let why = d.cli_ok(&["why", VICTIM]);
    assert_eq!(why.trim(), format!("{VICTIM} is not banned"), "no failures counted, no ban, no history");

    // the real sshd's failures still count and ban, after the forged lines as before them
    guess_until_dropped(d, lab);
    assert!(!banned(d, VICTIM), "{}", d.cli_ok(&["list"]));
}

#[test]
fn sshd_failures_count_when_journald_reads_them_after_sshd_session_ended() {
    require_root!();
    let SshdLab { d, sshd, lab, j, .. } = &sshd_lab();
    let before = failures(d);

    // journald is behind, as on a host under attack: the session that logged the failure has
    // ended and been reaped before journald looks for it in /proc
    j.pause_journald();
    let said = attempt(lab, 30);
    let ended = wait_for(PATIENCE, || sshd.sessions() == 0);
    j.resume_journald();
    assert!(said.contains("Permission denied"), "the attempt reached sshd and failed: {said}");
    assert!(ended, "the session ended");

    // the entry is root's and tagged sshd, but journald found no process to name in `_COMM`
    let failed = |m: &[&str]| j.messages(m).iter().filter(|m| m.starts_with("Failed password")).count();
    assert!(wait_for(PATIENCE, || failed(&ROOT_SSHD) == 1), "{:#?}", j.messages(&[]));
    assert_eq!(failed(&["_COMM=sshd"]), 0, "journald named the ended session");
    let counted = wait_for(PATIENCE, || failures(d) > before);
    assert!(counted, "the failure of an ended session is counted:\n{}", d.log_text());
    assert_eq!(failures(d), before + 1, "{}", d.log_text());
}
