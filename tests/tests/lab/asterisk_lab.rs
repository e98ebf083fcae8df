//! The `asterisk` jail against a real Asterisk 20 (../shared/asterisk) behind sipwall: failures a
//! forger makes Asterisk log for any address (an unknown user's first REGISTER, made-up
//! credentials, a challenge answered from a forged address) ban nobody, while clients answering
//! their own challenges with wrong passwords are banned, by their real address only, even with a
//! fake failure message in their From.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde_json::Value;
use sipwall::datapath::features::Feature;
use sipwall_tests::{
    asterisk::{forged, forged_register, svcrack, Asterisk, Phone, ALICE, CHAN_SIP, PJSIP},
    daemon::{metric_sum, DaemonProc},
    netns::{wait_for, Lab},
    require_asterisk, require_kernel, require_root,
    sipvicious::Attacker,
    traffic::{frame, send_all, Receiver},
};

/// Failures the `asterisk` jail bans at (its default, written in the rules to be sure).
const MAXRETRY: usize = 3;
/// How long Asterisk, the daemon or the jail may take to catch up on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(180);
/// A display name carrying a complete pjsip failure message about another address.
const FAKE_DISPLAY: &str = "x' failed for '10.9.9.9:1' (callid: y) - Failed to authenticate";
const FAKE_ADDR: &str = "10.9.9.9";
/// alice's phone's port, on the lab's peer address.
const PHONE_PORT: u16 = 5070;

/// The site's rules: the SIP service on both drivers' ports, the asterisk jail on `logs` (of the
/// lab Asterisk's files), sshd off (no journal here), and `extra`.
fn rules(logs: &[PathBuf], extra: &str) -> String {
    let logs: Vec<String> = logs.iter().map(|l| format!("{:?}", l.display().to_string())).collect();
    format!(
        r#"
[services.sip]
ports = ["{CHAN_SIP}/udp", "{PJSIP}/udp"]

[jails.asterisk]
logpath = [{}]
maxretry = {MAXRETRY}

[jails.sshd]
enabled = false
{extra}"#,
        logs.join(", ")
    )
}

/// Everything running in the lab; fields drop in this order: the daemon, Asterisk, the namespaces.
struct Site {
    daemon: DaemonProc,
    asterisk: Asterisk,
    lab: Lab,
    dir: PathBuf,
    /// alice's phone on the lab's peer address, registered on pjsip.
    phone: Phone,
    /// The log files the asterisk jail reads.
    logs: Vec<PathBuf>,
}

impl Site {
    /// Asterisk in the host namespace, then the daemon (reading its logs from their start, so
    /// the lines it read can be compared with the files), then alice's phone registering.
    fn start(prefix: &std::path::Path, extra: &str) -> Site {
        Site::reading(prefix, extra, |a| a.log_files().to_vec())
    }

    /// As `start`, with the asterisk jail reading the files `logs` picks.
    fn reading(prefix: &std::path::Path, extra: &str, logs: impl FnOnce(&Asterisk) -> Vec<PathBuf>) -> Site {
        let lab = Lab::new();
        let dir = lab.scratch_dir("asterisk");
        let asterisk = Asterisk::start(&lab, prefix);
        let logs = logs(&asterisk);
        let daemon = DaemonProc::start_with(&lab, &rules(&logs, extra), &["--from-start"]);
        let phone = Phone::new(&lab.peer, addr(&lab.peer_ip4(), PHONE_PORT), pjsip(&lab), ALICE.0);
        let mut s = Site { daemon, asterisk, lab, dir, phone, logs };
        s.phone_registers("before any attack");
        s
    }

    /// alice's phone registers: challenged, then accepted, so its address is reachable both ways.
    fn phone_registers(&mut self, when: &str) {
        let got = self.phone.register(ALICE.1);
        assert_eq!(got, [401, 200], "{when}: the phone's registration; bans {:?}\n{}", self.bans(), self.messages());
    }

    fn messages(&self) -> String {
        std::fs::read_to_string(self.asterisk.messages()).unwrap_or_default()
    }

    /// The bans in force: (address, jail).
    fn bans(&self) -> Vec<(String, String)> {
        let v = json(&self.daemon.cli_ok(&["list", "--json"]));
        let bans = v.as_array().cloned().unwrap_or_default();
        bans.iter()
            .map(|b| {
                let target = b["target"].as_str().unwrap_or_default().trim_end_matches("/32");
                (target.to_owned(), b["source"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    fn banned_by(&self, addr: &str) -> Option<String> {
        self.bans().into_iter().find(|(t, _)| t == addr).map(|(_, jail)| jail)
    }

    fn why(&self, addr: &str) -> Value {
        json(&self.daemon.cli_ok(&["why", addr, "--json"]))
    }

    /// Failure lines the asterisk jail has judged: counted (banning or not, proven or not), or
    /// skipped for naming a host name or several addresses, or as the same failure another of its
    /// log files reported.
    fn judged(&self) -> u64 {
        let m = self.daemon.metrics();
        let skipped =
            |why: &str| metric_sum(&m, "sipwall_failures_skipped_total", &format!(r#"jail="asterisk",reason="{why}""#));
        metric_sum(&m, "sipwall_failures_total", r#"jail="asterisk""#)
            + skipped("ambiguous")
            + skipped("hostname")
            + skipped("duplicate")
    }

    /// Waits until the daemon has read every line now in Asterisk's log files.
    fn wait_read(&self) {
        let want: Vec<(String, u64)> = self.logs.iter().map(|f| (f.display().to_string(), line_count(f))).collect();
        let read = |s: &Site| {
            let v = json(&s.daemon.cli_ok(&["status", "--json"]));
            let jails = v["jails"].as_array().cloned().unwrap_or_default();
            let jail = jails.into_iter().find(|j| j["name"] == "asterisk").unwrap_or_default();
            let sources = jail["sources"].as_array().cloned().unwrap_or_default();
            let lines = |p: &str| sources.iter().find(|x| x["source"] == p).and_then(|x| x["lines"].as_u64());
            want.iter().all(|(p, n)| lines(p).is_some_and(|l| l >= *n))
        };
        assert!(
            wait_for(PATIENCE, || read(self)),
            "the daemon did not read the {want:?} lines of Asterisk's logs:\n{}\n{}",
            self.daemon.cli_ok(&["status", "--json"]),
            self.daemon.log_text()
        );
    }

    /// Waits until the daemon has read Asterisk's logs and the jail judged `n` failure lines
    /// (it may hold a line a while, waiting for its source to prove itself on the wire).
    fn wait_judged(&self, n: u64) {
        self.wait_read();
        assert!(
            wait_for(PATIENCE, || self.judged() >= n),
            "the jail judged {} of {n} failure lines:\n{}\n{}",
            self.judged(),
            self.daemon.metrics(),
            self.daemon.log_text()
        );
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

fn pjsip(lab: &Lab) -> SocketAddr {
    addr(&lab.host_ip4(), PJSIP)
}

fn line_count(path: &std::path::Path) -> u64 {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64)
}

fn show(what: &str, lines: &[String]) {
    eprintln!("{what}:");
    for l in lines {
        eprintln!("    {l}");
    }
}

/// Sends `3 × MAXRETRY` forgeries, `forge(site, source, i)`, from the phone's own address and
/// port and from an address never seen; waits until Asterisk logged each as `reason` (messages)
/// and `event` (security) and the jail judged them all; then neither source may be banned, the
/// phone still registers and the stranger's packets still reach the host.
fn forgeries_ban_nobody(
    s: &mut Site,
    reason: &str,
    event: &str,
    mut forge: impl FnMut(&Site, SocketAddr, u32) -> Vec<u8>,
) {
    let (phone, stranger) = (s.lab.peer_ip4(), format!("10.200.{}.77", s.lab.n));
    let sources = [addr(&phone, PHONE_PORT), addr(&stranger, 5060)];
    let n = 3 * MAXRETRY as u32;
    let frames = (0..n).flat_map(|i| sources.map(|src| forge(s, src, i))).collect();
    send_all(&s.lab, frames);
    let mut failures = 0;
    for src in sources {
        let (messages, security) = (s.asterisk.messages(), s.asterisk.security());
        let line = [reason, &format!("failed for '{src}'")];
        let event = [event, &format!("RemoteAddress=\"IPV4/UDP/{}/{}\"", src.ip(), src.port())];
        // a ban drops the forgeries still on their way: Asterisk never logs those
        let logged = |s: &Site| {
            s.asterisk.logged(&messages, &line).len() >= n as usize
                && s.asterisk.logged(&security, &event).len() >= n as usize
        };
        let banned = |s: &Site| s.banned_by(&src.ip().to_string()).is_some();
        wait_for(PATIENCE, || logged(s) || banned(s));
        let (lines, events) = (s.asterisk.logged(&messages, &line), s.asterisk.logged(&security, &event));
        failures += (lines.len() + events.len()) as u64;
        show(&format!("messages, forged from {src}"), &lines);
        show(&format!("security, forged from {src} (first of {})", events.len()), &events[..events.len().min(1)]);
        assert!(
            logged(s) || banned(s),
            "Asterisk logged {} of {n} `{reason}` and {} of {n} `{}` for {src} in {PATIENCE:?}:\n{}",
            lines.len(),
            events.len(),
            event[0],
            s.messages()
        );
    }
    s.wait_judged(failures);

    let bans = s.bans();
    assert!(
        bans.iter().all(|(t, _)| *t != phone && *t != stranger),
        "forged failures banned {bans:?}\n{}\n{}\n{}",
        s.why(&phone),
        s.why(&stranger),
        s.daemon.log_text()
    );
    s.phone_registers("after the forgeries");
    let rx = Receiver::start(&s.lab);
    send_all(&s.lab, (0..20).map(|i| frame(&s.lab, &stranger, 22, true, "stranger", i)).collect());
    assert!(
        wait_for(PATIENCE, || rx.count("stranger") == 20),
        "the stranger's SYNs to port 22: {} of 20 reached the host; bans {:?}",
        rx.count("stranger"),
        s.bans()
    );
}

#[test]
fn forged_unknown_user_registers_ban_nobody() {
    require_root!();
    let prefix = require_asterisk!();
    let mut s = Site::start(&prefix, "");
    // pjsip logs the first REGISTER of an unknown user before it challenges it
    forgeries_ban_nobody(&mut s, "No matching endpoint found", "InvalidAccountID", |s, src, i| {
        forged_register(&s.lab, src, PJSIP, "nosuchuser", i, false)
    });
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn forged_wrong_passwords_ban_nobody() {
    require_root!();
    let prefix = require_asterisk!();
    let mut s = Site::start(&prefix, "");
    // pjsip looks at the nonce of credentials only when their response is right (verify() in
    // res_pjsip_authenticator_digest.c): one REGISTER answering no challenge is enough for
    // `Failed to authenticate`
    forgeries_ban_nobody(&mut s, "Failed to authenticate", "ChallengeResponseFailed", |s, src, i| {
        forged_register(&s.lab, src, PJSIP, ALICE.0, i, true)
    });
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_challenge_answered_from_a_forged_address_bans_nobody() {
    require_root!();
    let prefix = require_asterisk!();
    let mut s = Site::start(&prefix, "");
    // chan_sip finds the dialog a REGISTER answers by its Call-ID and From tag, not by its
    // source: a relay that gets the challenges at its own address answers them from forged ones
    let relay = Attacker::new(&s.lab, 8, &s.dir).addr;
    let mut relay = Phone::new(&s.lab.peer, addr(&relay, 5073), addr(&s.lab.host_ip4(), CHAN_SIP), ALICE.0);
    forgeries_ban_nobody(&mut s, "Wrong password", "InvalidPassword", |s, src, i| {
        let (got, challenge) = relay.challenge(&format!("relayed-{i}"));
        let challenge = challenge.unwrap_or_else(|| panic!("the relay's REGISTER {i} got {got:?}, not a challenge"));
        forged(&s.lab, src, CHAN_SIP, &relay.answer_from(&challenge, src))
    });
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_cracker_with_a_fake_failure_in_its_display_name_is_banned_by_its_real_address() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let prefix = require_asterisk!();
    // the jail reads the messages alone: the security log's ChallengeResponseFailed for the same
    // guesses count as soon as the address proved itself and could make the ban before the
    // pjsip lines, whose fake address is resolved by the transaction's proof
    let mut s = Site::reading(&prefix, "", |a| vec![a.messages()]);
    let cracker = Attacker::new(&s.lab, 5, &s.dir).addr;
    let mut client = Phone::new(&s.lab.peer, addr(&cracker, 5071), pjsip(&s.lab), ALICE.0);
    client.display = Some(FAKE_DISPLAY.into());
    let needles = ["Failed to authenticate", &format!("failed for '{cracker}:5071'")];

    // wrong passwords, each answering the challenge the cracker got (so the host's packets reach
    // it), one at a time: the next goes once the daemon has read the lines of the last
    let mut tries = 0;
    while tries < MAXRETRY && s.banned_by(&cracker).is_none() {
        tries += 1;
        let got = client.register(&format!("guess-{tries}"));
        if got.is_empty() && s.banned_by(&cracker).is_some() {
            break;
        }
        assert_eq!(got, [401, 401], "wrong password {tries}: challenged, then refused");
        s.asterisk.wait_logged(&s.asterisk.messages(), tries, &needles, PATIENCE);
        s.wait_read();
    }
    let lines = s.asterisk.logged(&s.asterisk.messages(), &needles);
    show("messages, the cracker's wrong passwords", &lines);
    show("security, the cracker", &s.asterisk.logged(&s.asterisk.security(), &[&format!("/{cracker}/5071\"")]));
    assert!(
        wait_for(PATIENCE, || s.banned_by(&cracker).is_some()),
        "{tries} wrong passwords from {cracker} did not get it banned: {}\nbans {:?}\n{}",
        s.why(&cracker),
        s.bans(),
        s.daemon.log_text()
    );
    assert_eq!(s.banned_by(&cracker).as_deref(), Some("asterisk"));
    // the ban rests on the lines with the fake message, read for the real address
    let why = s.why(&cracker);
    let evidence: Vec<&str> =
        why["history"][0]["lines"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(
        evidence.iter().any(|l| l.contains(&format!("failed for '{FAKE_ADDR}:1'")) && l.contains(&cracker)),
        "the pjsip lines with the fake display name are not in the ban's evidence: {evidence:#?}"
    );

    let bans = s.bans();
    assert_eq!(bans, [(cracker, "asterisk".to_owned())], "only the cracker's real address is banned");
    let fake = s.why(FAKE_ADDR);
    let kept = |list: &str| fake[list].as_array().is_some_and(|l| !l.is_empty());
    assert!(!kept("pending") && !kept("unproven"), "failures of {FAKE_ADDR} are being kept: {fake}");

    // banned: its next REGISTER is dropped before Asterisk, and the phone goes on
    let dropped = s.daemon.metric("sipwall_packets_total", r#"reason="banned""#);
    client.patience = Duration::from_secs(5);
    assert_eq!(client.register("guess-after-the-ban"), Vec::<u16>::new(), "a banned source got an answer");
    assert!(s.daemon.metric("sipwall_packets_total", r#"reason="banned""#) > dropped, "{}", s.daemon.metrics());
    s.phone_registers("after the cracker's ban");
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

/// Wrong passwords svcrack tries: far more than MAXRETRY, so a ban cuts the list short.
const GUESSES: usize = 40;

#[test]
fn svcrack_is_banned_on_chan_sip_and_pjsip() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let prefix = require_asterisk!();
    // svcrack 0.3.3 cannot change its User-Agent (`friendly-scanner`), whose requests the SIP
    // inspector drops before Asterisk sees them: without signatures the asterisk jail must stop
    // it. chan_sip answers a wrong password 403, which the sip-wire jail counts too: off, so
    // every ban here is the asterisk jail's.
    let extra = "\n[sip]\nscanner_user_agents = []\n\n[jails.sip-wire]\nenabled = false\n";
    let mut s = Site::start(&prefix, extra);
    for (port, octet, failure) in [(CHAN_SIP, 6, "Wrong password"), (PJSIP, 7, "Failed to authenticate")] {
        let attacker = Attacker::new(&s.lab, octet, &s.dir).addr;
        let guesses: Vec<String> = (1..=GUESSES).map(|i| format!("guess-{i}")).collect();
        let guesses: Vec<&str> = guesses.iter().map(String::as_str).collect();
        let out = svcrack(&s.lab, &attacker, port, ALICE.0, &guesses, &s.dir);
        assert!(!out.contains(ALICE.1), "svcrack on {port}:\n{out}");
        assert!(
            wait_for(PATIENCE, || s.banned_by(&attacker).is_some()),
            "svcrack from {attacker} on {port} was not banned; bans {:?}\nsvcrack said:\n{out}\n{}\n{}",
            s.bans(),
            s.messages(),
            s.daemon.log_text()
        );
        assert_eq!(s.banned_by(&attacker).as_deref(), Some("asterisk"), "svcrack on {port}");
        let lines = s.asterisk.logged(&s.asterisk.messages(), &[failure, &format!("failed for '{attacker}:")]);
        show(&format!("messages, svcrack on {port}"), &lines);
        assert!(!lines.is_empty(), "svcrack's guesses never reached Asterisk on {port}:\n{out}");
        assert!(lines.len() < GUESSES, "all {} guesses were answered on {port}: the ban came late", lines.len());
        s.phone_registers(&format!("after svcrack on {port}"));
    }
    let bans = s.bans();
    assert_eq!(bans.len(), 2, "only the two svcrack sources are banned: {bans:?}");
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}
