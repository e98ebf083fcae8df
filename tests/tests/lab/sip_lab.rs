//! The SIP lab, with real peers: Kamailio as a registrar (user 1000, password `secret`) in the
//! protected namespace behind sipwall (XDP on its link, the egress classifier), SIPp registering
//! legitimately from one address once a second, and sipvicious attacking from others. Phase A,
//! the default signatures with stealth OPTIONS: svmap, svwar and svcrack find nothing, their
//! every packet is dropped and Kamailio never answers them; a UDP scanner packet proves nothing
//! about its source, so none is banned. Phase B, the same rules reloaded without User-Agent
//! signatures: svmap still finds nothing; svwar enumerating with INVITE acknowledges Kamailio's
//! 404s with their To-tags, and svcrack answers the challenges with the nonce, so both prove
//! their addresses and the `sip-wire` jail bans them after maxretry answers. SIPp never fails
//! a registration, its address is never banned, and it becomes known good.

use std::time::Duration;

use sipwall::datapath::features::Feature;
use sipwall_tests::{
    daemon::{DaemonProc, LOG_JAILS_OFF},
    kamailio::Registrar,
    netns::{wait_for, Lab},
    require_kernel, require_root,
    sipp::{Counts, RegisterLoop},
    sipvicious::Attacker,
};

/// Failures the `sip-wire` jail counts before it bans.
const MAXRETRY: u64 = 5;

/// The extensions svwar asks for: 20 unknown ones (404 each), then the registrar's user 1000
/// (401), which svwar reports as found.
const EXTENSIONS: &str = "2000-2019,1000";

/// Wrong passwords for svcrack: each is answered 401, then 403 (more than MAXRETRY of them).
const GUESSES: [&str; 10] =
    ["123456", "password", "1000", "qwerty", "letmein", "admin", "0000", "1234", "abc123", "pass"];

/// The lab's rules: the `sip` service on 5060, stealth OPTIONS, `sip-wire` at MAXRETRY; in
/// phase B without User-Agent signatures, as if the scanners hid theirs.
fn rules(user_agent_signatures: bool) -> String {
    let signatures = if user_agent_signatures { "" } else { "scanner_user_agents = []\n" };
    format!(
        r#"
[services.sip]
ports = ["5060/udp", "5060/tcp"]

[sip]
stealth_options = true
{signatures}
[jails.sip-wire]
maxretry = {MAXRETRY}

{LOG_JAILS_OFF}"#
    )
}

/// Everything running in the lab. Fields drop in this order: SIPp, the daemon, Kamailio, then
/// the namespaces.
struct Site {
    sipp: RegisterLoop,
    daemon: DaemonProc,
    kamailio: Registrar,
    lab: Lab,
    dir: std::path::PathBuf,
    /// The legitimate client's address.
    client: String,
}

impl Site {
    fn metric(&self, name: &str, labels: &str) -> u64 {
        self.daemon.metric(name, labels)
    }

    /// The bans in force: (target, who banned).
    fn bans(&self) -> Vec<(String, String)> {
        let out = self.daemon.cli_ok(&["list", "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("sipwall list --json: {e}\n{out}"));
        v.as_array()
            .expect("a list of bans")
            .iter()
            .map(|b| {
                let target = b["target"].as_str().unwrap_or_default();
                (target.trim_end_matches("/32").to_owned(), b["source"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// Packets dropped (or passed) for `reason`, summed over services.
    fn packets(&self, reason: &str) -> u64 {
        self.metric("sipwall_packets_total", &format!(r#"reason="{reason}""#))
    }

    /// Who banned `addr`, if it is banned.
    fn banned_by(&self, addr: &str) -> Option<String> {
        self.bans().into_iter().find(|(t, _)| t == addr).map(|(_, by)| by)
    }

    fn banned(&self, addr: &str) -> bool {
        self.banned_by(addr).is_some()
    }

    /// Waits until `addr` is banned and checks that jail `jail` banned it; fails with the
    /// daemon's log otherwise.
    fn wait_banned(&self, addr: &str, jail: &str, what: &str) {
        assert!(
            wait_for(Duration::from_secs(30), || self.banned(addr)),
            "{what}: {addr} was not banned; bans: {:?}\n{}",
            self.bans(),
            self.daemon.log_text()
        );
        assert_eq!(self.banned_by(addr).as_deref(), Some(jail), "{what}: {addr} banned by another jail");
    }

    /// The legitimate client is doing fine: at least `n` registrations succeeded, none failed,
    /// and its address is not banned. Returns the counters.
    fn client_registers(&self, n: u64, when: &str) -> Counts {
        assert!(
            self.sipp.wait_successes(n, Duration::from_secs(60)),
            "{when}: fewer than {n} registrations succeeded: {:?}\n{}\n{}",
            self.sipp.counts(),
            self.sipp.error_text(),
            self.kamailio.log_text()
        );
        let c = self.sipp.counts();
        assert_eq!(c.failed, 0, "{when}: a legitimate registration failed: {c:?}\n{}", self.sipp.error_text());
        assert!(!self.banned(&self.client), "{when}: the legitimate client is banned: {:?}", self.bans());
        c
    }

    fn why(&self, addr: &str) -> String {
        self.daemon.cli_ok(&["why", addr])
    }
}

fn start() -> Site {
    let lab = Lab::new();
    let dir = lab.scratch_dir("siplab");
    let kamailio = Registrar::start(&lab, &dir);
    // before the firewall: what the scanners get from Kamailio, which the phases compare with
    let control = Attacker::new(&lab, 30, &dir);
    assert!(
        wait_for(Duration::from_secs(40), || control.svmap().0),
        "Kamailio does not answer svmap:\n{}",
        kamailio.log_text()
    );
    let (found, run) = control.svwar("INVITE", EXTENSIONS);
    assert_eq!(found, ["1000"], "svwar without the firewall:\n{}{}", run.stdout, run.stderr);
    let daemon = DaemonProc::start(&lab, &rules(true));
    let client = lab.peer_ip4();
    let sipp = RegisterLoop::start(&lab, &client, &dir);
    Site { sipp, daemon, kamailio, lab, dir, client }
}

/// Phase A: the default signatures, stealth OPTIONS.
fn scanners_are_dropped_at_every_packet(s: &Site) {
    let answered = |s: &Site| s.metric("sipwall_sip_failures_answered_total", "");
    let unproven = |s: &Site| s.metric("sipwall_failures_skipped_total", r#"jail="scanner",reason="unproven""#);

    // svmap: its OPTIONS is dropped, so it finds no server
    let svmap = Attacker::new(&s.lab, 11, &s.dir);
    let (scanner, skipped) = (s.packets("sip_scanner"), unproven(s));
    let (found, run) = svmap.svmap();
    assert!(!found, "svmap found the server behind stealth OPTIONS:\n{}{}", run.stdout, run.stderr);
    assert!(
        s.packets("sip_scanner") > scanner,
        "svmap's OPTIONS was not dropped as a scanner's\n{}",
        s.daemon.metrics()
    );
    // a UDP datagram may carry anyone's address: counted apart, nobody banned
    assert!(wait_for(Duration::from_secs(60), || unproven(s) > skipped), "{}", s.daemon.metrics());
    assert!(!s.banned(&svmap.addr), "a forgeable scanner packet banned its source: {:?}", s.bans());
    let why = s.why(&svmap.addr);
    assert!(why.contains("not counted: scanner") && why.contains("friendly-scanner"), "{why}");

    // svwar and svcrack carry the same User-Agent: every packet dropped, which Kamailio never
    // sees, so it answers them nothing (SIPp's 401 challenges are no failures)
    let before = answered(s);
    let svwar = Attacker::new(&s.lab, 12, &s.dir);
    let (found, run) = svwar.svwar("INVITE", EXTENSIONS);
    assert!(found.is_empty(), "svwar found extensions through the firewall: {found:?}\n{}", run.stdout);

    let svcrack = Attacker::new(&s.lab, 13, &s.dir);
    let (cracked, run) = svcrack.svcrack("1000", &GUESSES);
    assert!(cracked.is_empty(), "svcrack reports {cracked:?}\n{}", run.stdout);

    assert_eq!(answered(s), before, "Kamailio answered svwar or svcrack with 403/404:\n{}", s.daemon.metrics());
    assert_eq!(s.metric("sipwall_bans_total", r#"jail="scanner""#), 0, "{:?}", s.bans());
}

/// Rewrites the rules file and waits until the daemon applied it.
fn reload(s: &Site, rules: &str) {
    let applied = |s: &Site| s.metric("sipwall_rules_reloads_total", r#"result="applied""#);
    let before = applied(s);
    std::fs::write(&s.daemon.config, rules).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || applied(s) > before),
        "the daemon did not apply the rewritten rules:\n{}",
        s.daemon.log_text()
    );
}

/// Phase B: no User-Agent signatures; stealth OPTIONS and the `sip-wire` jail stop the scanners,
/// which prove their addresses by answering what Kamailio sent them.
fn hidden_scanners_are_banned_after_maxretry_answers(s: &Site) {
    let failures =
        |s: &Site, status: &str| s.metric("sipwall_sip_failures_answered_total", &format!(r#"status="{status}""#));

    // svmap is no scanner to the inspector now, but its OPTIONS still gets no answer
    let svmap = Attacker::new(&s.lab, 21, &s.dir);
    let (stealth, scanner) = (s.packets("sip_stealth_options"), s.packets("sip_scanner"));
    let (found, run) = svmap.svmap();
    assert!(!found, "svmap found the server behind stealth OPTIONS:\n{}{}", run.stdout, run.stderr);
    assert!(s.packets("sip_stealth_options") > stealth, "{}", s.daemon.metrics());
    assert_eq!(s.packets("sip_scanner"), scanner, "a User-Agent signature still matched svmap");
    assert!(!s.banned(&svmap.addr), "a hidden OPTIONS is dropped, not punished: {:?}", s.bans());

    // svwar: Kamailio answers 404 for each unknown extension, which svwar acknowledges with its
    // To-tag, until sip-wire bans it; extension 1000, asked for last, is never reached (before
    // the firewall svwar reported it)
    let svwar = Attacker::new(&s.lab, 22, &s.dir);
    let (not_found, banned) = (failures(s, "404"), s.packets("banned"));
    let (found, run) = svwar.svwar("INVITE", EXTENSIONS);
    s.wait_banned(&svwar.addr, "sip-wire", "svwar without signatures");
    let answered = failures(s, "404") - not_found;
    assert!(answered >= MAXRETRY, "404s answered to svwar: {answered}, maxretry {MAXRETRY}");
    assert!(answered < 20, "svwar was answered all the way ({answered} 404s): the ban did not stop it");
    eprintln!("svwar: {answered} 404s answered before the ban, found {found:?}");
    assert!(!found.contains(&"1000".to_owned()), "svwar still found 1000: {found:?}\n{}", run.stdout);
    assert!(s.packets("banned") > banned, "svwar's packets after the ban were not dropped\n{}", s.daemon.metrics());
    let why = s.why(&svwar.addr);
    assert!(why.contains("SIP/2.0 404 answered"), "{why}");

    // svcrack: each wrong guess is answered 403 until sip-wire bans it
    let svcrack = Attacker::new(&s.lab, 23, &s.dir);
    let (forbidden, banned) = (failures(s, "403"), s.packets("banned"));
    let (cracked, run) = svcrack.svcrack("1000", &GUESSES);
    assert!(cracked.is_empty(), "svcrack reports {cracked:?}\n{}", run.stdout);
    s.wait_banned(&svcrack.addr, "sip-wire", "svcrack without signatures");
    let answered = failures(s, "403") - forbidden;
    assert!(answered >= MAXRETRY, "403s answered to svcrack: {answered}, maxretry {MAXRETRY}");
    assert!(answered < GUESSES.len() as u64, "every guess was answered ({answered} 403s): the ban did not stop it");
    eprintln!("svcrack: {answered} of {} guesses answered 403 before the ban", GUESSES.len());
    assert!(s.packets("banned") > banned, "svcrack's packets after the ban were not dropped\n{}", s.daemon.metrics());
    let why = s.why(&svcrack.addr);
    assert!(why.contains("SIP/2.0 403 answered"), "{why}");
}

#[test]
fn sipvicious_is_stopped_while_a_legitimate_client_keeps_registering() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let mut s = start();
    // the registrar works through the firewall before any attack
    let c0 = s.client_registers(2, "before the attacks");

    scanners_are_dropped_at_every_packet(&s);
    let c1 = s.client_registers(c0.successful + 2, "after phase A");

    reload(&s, &rules(false));
    hidden_scanners_are_banned_after_maxretry_answers(&s);
    let c2 = s.client_registers(c1.successful + 2, "after phase B");

    let (end, status) = s.sipp.stop();
    assert_eq!(end.failed, 0, "a legitimate registration failed: {end:?}\n{}", s.sipp.error_text());
    assert!(end.successful >= c2.successful, "{end:?}");
    assert_eq!(status.and_then(|st| st.code()), Some(0), "sipp: {status:?}\n{}", s.sipp.error_text());
    assert!(!s.banned(&s.client), "the legitimate client ended up banned: {:?}", s.bans());
    // each registration is two REGISTERs from sipp's one port: the first is read only to its
    // method (but the first of the run, and the first after the reload changed the signatures);
    // the second answers the challenge, so it is inspected in full and shown to the daemon,
    // which finds the nonce in it
    let remembered = s.packets("sip_remembered");
    assert!(remembered + 2 >= end.successful, "{remembered} requests remembered\n{}", s.daemon.metrics());
    assert!(s.metric("sipwall_sip_proofs_total", r#"token="nonce""#) >= end.successful, "{}", s.daemon.metrics());
    // answering its challenge and registering made the client known good
    assert_eq!(s.metric("sipwall_known_good_sources", ""), 1, "{}", s.daemon.metrics());
    let why = s.why(&s.client);
    assert!(why.contains("known good: authenticated with REGISTER"), "{why}");
    eprintln!(
        "legitimate registrations: {} successful, {} failed; {remembered} requests read only to their method",
        end.successful, end.failed
    );
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}
