//! Two sipwall hosts and Debian's crowdsec-firewall-bouncer sharing one private CrowdSec Local
//! API, each in a namespace of its own. A real svcrack against host A's real Asterisk is banned
//! on A, pushed, and dropped on host B, which never saw a log line; decisions made with cscli
//! reach both hosts and leave with their deletion; a forged flood banned on A on unproven
//! evidence stays on A; and with the LAPI stopped, both keep enforcing, A's ban of the outage
//! waits, and everything arrives once the LAPI is back.

use std::{path::Path, time::Duration};

use serde_json::Value;
use sipwall::datapath::features::Feature;
use sipwall_tests::{
    asterisk::{svcrack, Asterisk, ALICE, CHAN_SIP},
    crowdsec::{require_crowdsec, Backend, FirewallBouncer, Lapi},
    daemon::{DaemonProc, LOG_JAILS_OFF},
    netns::{wait_for, Lab},
    require_asterisk, require_kernel, require_root,
    sipvicious::Attacker,
    traffic::{frame, send_all, Flow, Receiver},
};

/// How long a step may take on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(120);
/// From a ban on one host to the same ban in force on another (the issue's bound).
const SPREAD_MS: u64 = 5_000;
/// The asterisk jail's bantime on host A (`1h` in its rules): a ban began at its end less this.
const BANTIME_MS: u64 = 3_600_000;
/// An address both hosts allow-list (a trunk): no decision may ban it.
const TRUNK: &str = "192.0.2.200";
/// A port with a rate limit, for the forged flood.
const PROBE: u16 = 5090;

/// `[crowdsec]` for a host in `lab`: a link to the LAPI, a bouncer key and machine credentials
/// of its own, pulling every second.
fn crowdsec(lapi: &Lapi, lab: &Lab, name: &str, dir: &Path) -> String {
    let url = lapi.connect(&lab.host);
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&key, format!("{}\n", lapi.add_bouncer(name))).unwrap();
    let credentials = lapi.add_machine(name, &url);
    format!(
        "\n[crowdsec]\napi_url = \"{url}\"\napi_key_file = \"{}\"\nupdate_frequency = \"1s\"\ncredentials_file = \"{}\"\n",
        key.display(),
        credentials.display()
    )
}

/// Host A: Asterisk's chan_sip behind the asterisk jail (svcrack's User-Agent left to it, the
/// sip-wire jail off, as in the Asterisk lab), and a flood jail trusting unproven rate-limit
/// reports on a probe port.
fn rules_a(asterisk: &Asterisk, link: &str) -> String {
    let logs: Vec<String> = asterisk.log_files().iter().map(|l| format!("{:?}", l.display().to_string())).collect();
    format!(
        r#"
[allow]
sources = ["127.0.0.0/8", "::1/128", "{TRUNK}/32"]

[services.sip]
ports = ["{CHAN_SIP}/udp"]

[services.probe]
ports = ["{PROBE}/udp"]
rate = 20
burst = 20

[rate_limit]
report_interval = "100ms"

[sip]
scanner_user_agents = []

[jails.asterisk]
logpath = [{}]
maxretry = 3
bantime = "1h"

[jails.sip-wire]
enabled = false

[jails.flood]
findtime = "1m"
maxretry = 3
bantime = "10m"
trust_unproven = true

[jails.sshd]
enabled = false
{link}"#,
        logs.join(", ")
    )
}

/// Host B: SIP on 5060, no log at all.
fn rules_b(link: &str) -> String {
    format!("[allow]\nsources = [\"127.0.0.0/8\", \"::1/128\", \"{TRUNK}/32\"]\n\n[services.sip]\nports = [\"5060/udp\"]\n\n{LOG_JAILS_OFF}{link}")
}

/// The ban of `addr` (an address or a network) in force on `d`, as `sipwall list --json` shows it.
fn ban(d: &DaemonProc, addr: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(&d.cli_ok(&["list", "--json"])).unwrap_or(Value::Null);
    let target = if addr.contains('/') { addr.to_owned() } else { format!("{addr}/32") };
    v.as_array()?.iter().find(|b| b["target"] == target.as_str()).cloned()
}

fn source(d: &DaemonProc, addr: &str) -> Option<String> {
    ban(d, addr).and_then(|b| b["source"].as_str().map(str::to_owned))
}

/// Waits until `addr` is banned on `d` by `by`, or fails with the daemon's log.
#[track_caller]
fn banned_by(d: &DaemonProc, addr: &str, by: &str, lapi: &Lapi) -> Value {
    assert!(
        wait_for(PATIENCE, || source(d, addr).as_deref() == Some(by)),
        "{addr} was not banned by {by}; its ban: {:?}\n{}\nLAPI log:\n{}",
        ban(d, addr),
        d.log_text(),
        lapi.log_text()
    );
    ban(d, addr).unwrap()
}

/// Frames from `addr` and from a clean source to `lab`'s host; how many of each arrived.
fn burst(lab: &Lab, rx: &Receiver, addr: &str, round: &str) -> (usize, usize) {
    let (from, clean) = (format!("from-{round}"), format!("clean-{round}"));
    let mut frames = Vec::new();
    for i in 0..50 {
        frames.push(frame(lab, addr, 5060, false, &from, i));
        frames.push(frame(lab, "192.0.2.10", 5060, false, &clean, i));
    }
    send_all(lab, frames);
    rx.settle();
    (rx.count(&from), rx.count(&clean))
}

#[track_caller]
fn dropped_on(lab: &Lab, rx: &Receiver, addr: &str, round: &str) {
    let (from, clean) = burst(lab, rx, addr, round);
    assert_eq!(from, 0, "{round}: frames from {addr} reached the host");
    assert!(clean > 40, "{round}: a clean source's frames pass: {clean} of 50");
}

fn svcrack_from(lab: &Lab, octet: u8, dir: &Path) -> String {
    let attacker = Attacker::new(lab, octet, dir).addr;
    let guesses: Vec<String> = (1..=40).map(|i| format!("guess-{i}")).collect();
    let guesses: Vec<&str> = guesses.iter().map(String::as_str).collect();
    let out = svcrack(lab, &attacker, CHAN_SIP, ALICE.0, &guesses, dir);
    assert!(!out.contains(ALICE.1), "svcrack found the password:\n{out}");
    attacker
}

#[test]
fn two_hosts_and_debians_bouncer_share_bans_through_a_real_lapi() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let prefix = require_asterisk!();
    require_crowdsec();
    let mut lapi = Lapi::start();
    let (lab_a, lab_b) = (Lab::new(), Lab::new());
    let dir = lab_a.scratch_dir("fleet");
    let asterisk = Asterisk::start(&lab_a, &prefix);
    let a =
        DaemonProc::start_with(&lab_a, &rules_a(&asterisk, &crowdsec(&lapi, &lab_a, "pbx-a", &dir)), &["--from-start"]);
    let mut b = DaemonProc::start(&lab_b, &rules_b(&crowdsec(&lapi, &lab_b, "pbx-b", &dir)));
    let firewall = FirewallBouncer::start(&lapi, Backend::Nftables);
    for (name, d) in [("A", &a), ("B", &b)] {
        assert!(
            wait_for(PATIENCE, || d.metric("sipwall_crowdsec_up", "role=\"bouncer\"") == 1),
            "host {name} never pulled the decision stream:\n{}",
            d.log_text()
        );
    }
    let rx_b = Receiver::start(&lab_b);

    // a forged flood on A's probe port: banned there on unproven evidence, never pushed
    let flooder = "192.0.2.150";
    let l = lab_a.clone_for_flow();
    let flood = Flow::start(&lab_a, 500, move |i| frame(&l, flooder, PROBE, false, "flood", i));
    let flood_ban = banned_by(&a, flooder, "flood", &lapi);
    flood.stop();
    assert!(flood_ban["reason"].as_str().unwrap_or_default().contains("unproven"), "{flood_ban}");

    // a real svcrack against A: the asterisk jail bans it, and B drops it within 5 s of the ban
    let cracker = svcrack_from(&lab_a, 6, &dir);
    let on_a = banned_by(&a, &cracker, "asterisk", &lapi);
    let on_b = banned_by(&b, &cracker, "crowdsec", &lapi);
    assert_eq!(on_b["reason"], "sipwall/asterisk", "{on_b}");
    // A's ban to the millisecond (its end less the bantime); B's creation is kept to the second,
    // so the spread is at most its next second less that
    let banned_a = on_a["expires_unix_ms"].as_u64().unwrap() - BANTIME_MS;
    let spread = on_b["created_unix_ms"].as_u64().unwrap() + 1000 - banned_a;
    eprintln!("fleet: the ban of {cracker} was in force on B at most {spread} ms after A's");
    assert!(spread <= SPREAD_MS, "B banned {cracker} up to {spread} ms after A:\n{on_a}\n{on_b}");
    dropped_on(&lab_b, &rx_b, &cracker, "pushed");
    assert_eq!(b.metric("sipwall_log_lines_total", ""), 0, "B read no log");
    // Debian's bouncer enforces the same decision: CrowdSec itself reads what sipwall pushed
    assert!(wait_for(PATIENCE, || firewall.has(&cracker)), "{:?}\n{}", firewall.entries(), firewall.log_text());
    // A's own decision came back in its stream and stayed A's ban
    assert!(
        wait_for(PATIENCE, || a.metric("sipwall_crowdsec_decisions_skipped_total", "reason=\"own\"") >= 1),
        "{}",
        a.log_text()
    );
    assert_eq!(source(&a, &cracker).as_deref(), Some("asterisk"));
    // the flood's ban came first: had it been pushed, the LAPI would hold it by now
    let decisions = lapi.decisions();
    assert!(decisions.iter().any(|d| d.1 == cracker), "{decisions:?}");
    assert!(!decisions.iter().any(|d| d.1 == flooder), "the unproven ban reached the LAPI: {decisions:?}");
    assert!(a.metric("sipwall_crowdsec_pushed_total", "result=\"unproven\"") >= 1);
    assert!(source(&b, flooder).is_none() && !firewall.has(flooder));
    assert_eq!(b.metric("sipwall_crowdsec_pushed_total", "result=\"sent\""), 0, "B has no jail bans to push");

    // cscli's decisions: enforced on both hosts, lifted on both by their deletion
    lapi.cscli(&["decisions", "add", "--ip", "198.51.100.40", "--duration", "1h"]);
    lapi.cscli(&["decisions", "add", "--range", "203.0.113.0/28", "--duration", "1h"]);
    for d in [&a, &b] {
        banned_by(d, "198.51.100.40", "crowdsec", &lapi);
        banned_by(d, "203.0.113.0/28", "crowdsec", &lapi);
    }
    dropped_on(&lab_b, &rx_b, "198.51.100.40", "cscli");
    let why: Value = serde_json::from_str(&b.cli_ok(&["why", "198.51.100.40", "--json"])).unwrap();
    assert_eq!(why["bans"][0]["source"], "crowdsec", "{why}");
    assert_eq!(why["bans"][0]["reason"], "manual 'ban' from 'cscli'", "{why}");
    // a decision on an allow-listed trunk is never enforced; one on a range holding it is, for
    // the range's other addresses: the trunk's own entry wins
    lapi.cscli(&["decisions", "add", "--ip", TRUNK, "--duration", "1h"]);
    lapi.cscli(&["decisions", "add", "--range", "192.0.2.192/26", "--duration", "1h"]);
    for (name, d) in [("A", &a), ("B", &b)] {
        banned_by(d, "192.0.2.192/26", "crowdsec", &lapi);
        assert!(
            wait_for(PATIENCE, || d.metric("sipwall_crowdsec_decisions_skipped_total", "reason=\"allow_listed\"") >= 1),
            "host {name} did not refuse the trunk's decision:\n{}",
            d.log_text()
        );
        assert!(ban(d, TRUNK).is_none(), "host {name} banned the trunk");
    }
    let (from, _) = burst(&lab_b, &rx_b, TRUNK, "trunk");
    assert_eq!(from, 50, "the trunk reaches B through the range's ban");
    dropped_on(&lab_b, &rx_b, "192.0.2.201", "trunk-range");
    lapi.cscli(&["decisions", "delete", "--ip", "198.51.100.40"]);
    for (name, d) in [("A", &a), ("B", &b)] {
        assert!(
            wait_for(PATIENCE, || ban(d, "198.51.100.40").is_none()),
            "host {name} kept the deleted decision:\n{}",
            d.log_text()
        );
    }
    let (from, _) = burst(&lab_b, &rx_b, "198.51.100.40", "deleted");
    assert_eq!(from, 50, "the lifted source reaches B again");
    assert_eq!(source(&b, "203.0.113.0/28").as_deref(), Some("crowdsec"), "the range's decision stays");

    // the LAPI stops: both hosts keep every ban; A bans a second cracker meanwhile
    lapi.cscli(&["decisions", "add", "--ip", "198.51.100.41", "--duration", "1h"]);
    banned_by(&b, "198.51.100.41", "crowdsec", &lapi);
    lapi.stop();
    for (name, d) in [("A", &a), ("B", &b)] {
        assert!(
            wait_for(PATIENCE, || d.metric("sipwall_crowdsec_up", "role=\"bouncer\"") == 0),
            "host {name} did not see the LAPI go:\n{}",
            d.log_text()
        );
        assert!(d.cli_ok(&["status"]).contains("bouncer: DOWN"), "{}", d.cli_ok(&["status"]));
    }
    let second = svcrack_from(&lab_a, 7, &dir);
    banned_by(&a, &second, "asterisk", &lapi);
    // B restarts meanwhile: the decisions' bans come back from its store
    b.stop();
    b.spawn(&lab_b);
    for addr in ["198.51.100.41", &cracker] {
        assert_eq!(source(&b, addr).as_deref(), Some("crowdsec"), "B lost {addr} over a restart:\n{}", b.log_text());
    }
    dropped_on(&lab_b, &rx_b, &cracker, "outage");

    // back: the ban made during the outage reaches B and Debian's bouncer, nothing was lost
    lapi.restart();
    banned_by(&b, &second, "crowdsec", &lapi);
    assert!(wait_for(PATIENCE, || firewall.has(&second)), "{:?}", firewall.entries());
    for d in [&a, &b] {
        assert_eq!(source(d, "198.51.100.41").as_deref(), Some("crowdsec"), "{}", d.log_text());
        assert!(source(d, &cracker).is_some());
    }
    assert!(b.cli_ok(&["status"]).contains("bouncer: up"), "{}", b.cli_ok(&["status"]));

    // a decision deleted while B was down is lifted by B's first pull, which lists them all
    b.stop();
    lapi.cscli(&["decisions", "delete", "--ip", "198.51.100.41"]);
    b.spawn(&lab_b);
    assert!(
        wait_for(PATIENCE, || ban(&b, "198.51.100.41").is_none()),
        "B kept a decision deleted while it was down:\n{}",
        b.log_text()
    );
    assert_eq!(source(&b, &second).as_deref(), Some("crowdsec"), "the other decisions stay");
    drop(firewall);
    drop((a, b));
    drop(asterisk);
    let _ = std::fs::remove_dir_all(dir);
}
