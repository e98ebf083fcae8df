//! The real Asterisk 20 (../shared/asterisk) seen through its manager interface (AMI) and its
//! configuration, with no log line read: svcrack and a client guessing passwords are banned from
//! the security events alone, with Asterisk writing no log at all; forged REGISTERs ban nobody;
//! AMI and the log files give the same figures over the same attacks; after Asterisk restarts
//! mid-attack, every failure it reports once sipwall is logged in again counts. Discovery reads
//! the lab's configuration, with a pjsip identify section and a sip.conf peer the test adds, and
//! follows its changes.

use std::{net::SocketAddr, path::Path, time::Duration};

use serde_json::Value;
use sipwall::datapath::features::Feature;
use sipwall_tests::{
    asterisk::{ami_credentials, forged_register, svcrack, Asterisk, Phone, ALICE, AMI_PORT, PJSIP},
    daemon::{metric_sum, DaemonProc},
    netns::{wait_for, Lab},
    require_asterisk, require_kernel, require_root,
    sipvicious::Attacker,
    traffic::{frame, send_all, Receiver},
};

/// How long Asterisk, the daemon or a jail may take on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(180);
const MAXRETRY: u64 = 3;

fn ami() -> String {
    format!("ami:127.0.0.1:{AMI_PORT}")
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `[sip]` without signatures (svcrack's User-Agent would be dropped before Asterisk saw it),
/// sip-wire off (every ban here is a jail's on Asterisk's reports), and the manager account.
fn common(dir: &Path) -> String {
    format!(
        "[services.sip]\nports = [\"5060/udp\", \"{PJSIP}/udp\"]\n\n[sip]\nscanner_user_agents = []\n\n\
         [jails.sip-wire]\nenabled = false\n\n[jails.sshd]\nenabled = false\n\n\
         [asterisk]\ndiscover = false\nami_credentials = {:?}\n",
        ami_credentials(dir).display().to_string()
    )
}

/// The jail `jail`'s sources, as `sipwall status --json` shows them: (source, up).
fn sources(d: &DaemonProc, jail: &str) -> Vec<(String, bool)> {
    let v = json(&d.cli_ok(&["status", "--json"]));
    let jails = v["jails"].as_array().cloned().unwrap_or_default();
    let j = jails.into_iter().find(|j| j["name"] == jail).unwrap_or_default();
    let list = j["sources"].as_array().cloned().unwrap_or_default();
    list.iter().map(|s| (s["source"].as_str().unwrap_or_default().to_owned(), s["up"] == true)).collect()
}

/// Waits until jail `jail` is logged in to the manager.
fn ami_up(d: &DaemonProc, jail: &str) {
    let up = |d: &DaemonProc| sources(d, jail).iter().any(|(s, up)| *s == ami() && *up);
    assert!(
        wait_for(PATIENCE, || up(d)),
        "jail {jail} never logged in to AMI: {:?}\n{}",
        sources(d, jail),
        d.log_text()
    );
}

fn banned_by(d: &DaemonProc, host: &str) -> Option<String> {
    let v = json(&d.cli_ok(&["list", "--json"]));
    let target = format!("{host}/32");
    v.as_array()?.iter().find(|b| b["target"] == target.as_str()).and_then(|b| b["source"].as_str().map(str::to_owned))
}

/// Failures jail `jail` judged: counted (proven or not), or skipped as ambiguous or as another
/// source's report of the same failure.
fn judged(d: &DaemonProc, jail: &str) -> u64 {
    let m = d.metrics();
    let skipped =
        |why: &str| metric_sum(&m, "sipwall_failures_skipped_total", &format!(r#"jail="{jail}",reason="{why}""#));
    metric_sum(&m, "sipwall_failures_total", &format!(r#"jail="{jail}""#)) + skipped("ambiguous") + skipped("duplicate")
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// `n` one-datagram REGISTERs from forged sources 10.66.X.Y: for an unknown user, or with
/// credentials answering no challenge.
fn forge(lab: &Lab, n: u32, round: u32, made_up_credentials: bool) {
    let user = if made_up_credentials { ALICE.0 } else { "nosuchuser" };
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let src = addr(&format!("10.66.{round}.{}", 10 + i), 5060);
            forged_register(lab, src, PJSIP, user, round * 100 + i, made_up_credentials)
        })
        .collect();
    send_all(lab, frames);
}

#[test]
fn svcrack_and_a_password_guesser_are_banned_through_ami_alone() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let prefix = require_asterisk!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("ami");
    let mut asterisk = Asterisk::start(&lab, &prefix);
    asterisk.logging_off();
    let logs = asterisk.log_files();
    let sizes: Vec<u64> = logs.iter().map(|p| size(p)).collect();
    let rules = format!("{}\n[jails.asterisk]\nlogpath = [\"{}\"]\nmaxretry = {MAXRETRY}\n", common(&dir), ami());
    let d = DaemonProc::start(&lab, &rules);
    ami_up(&d, "asterisk");
    let mut phone = Phone::new(&lab.peer, addr(&lab.peer_ip4(), 5070), addr(&lab.host_ip4(), PJSIP), ALICE.0);
    assert_eq!(phone.register(ALICE.1), [401, 200], "alice registers");

    // forged REGISTERs, unknown user and made-up credentials: failures no one proved
    forge(&lab, 10, 1, false);
    forge(&lab, 10, 2, true);
    assert!(
        wait_for(PATIENCE, || judged(&d, "asterisk") >= 20),
        "the jail judged {} of 20 forged failures:\n{}",
        judged(&d, "asterisk"),
        d.log_text()
    );

    // svcrack against pjsip
    let cracker = Attacker::new(&lab, 6, &dir).addr;
    let guesses: Vec<String> = (1..=40).map(|i| format!("guess-{i}")).collect();
    let guesses: Vec<&str> = guesses.iter().map(String::as_str).collect();
    let out = svcrack(&lab, &cracker, PJSIP, ALICE.0, &guesses, &dir);
    assert!(!out.contains(ALICE.1), "{out}");
    assert!(
        wait_for(PATIENCE, || banned_by(&d, &cracker).is_some()),
        "svcrack from {cracker} was not banned through AMI:\n{out}\n{}",
        d.log_text()
    );
    assert_eq!(banned_by(&d, &cracker).as_deref(), Some("asterisk"));

    // a client answering its own challenges with wrong passwords
    let guesser = Attacker::new(&lab, 9, &dir).addr;
    let mut wrong = Phone::new(&lab.peer, addr(&guesser, 5071), addr(&lab.host_ip4(), PJSIP), ALICE.0);
    for i in 0..2 * MAXRETRY {
        if banned_by(&d, &guesser).is_some() {
            break;
        }
        wrong.register(&format!("wrong-{i}"));
    }
    assert!(
        wait_for(PATIENCE, || banned_by(&d, &guesser).is_some()),
        "the guesser {guesser} was not banned through AMI:\n{}",
        d.log_text()
    );

    let v = json(&d.cli_ok(&["list", "--json"]));
    let bans: Vec<&str> = v.as_array().unwrap().iter().filter_map(|b| b["target"].as_str()).collect();
    assert_eq!(bans.len(), 2, "only svcrack and the guesser are banned, no forged source: {bans:?}");
    let m = d.metrics();
    assert!(metric_sum(&m, "sipwall_failures_skipped_total", r#"jail="asterisk",reason="unproven""#) >= 20, "{m}");
    assert_eq!(metric_sum(&m, "sipwall_log_source_up", r#"source="ami:127.0.0.1:5038""#), 1, "{m}");
    assert_eq!(phone.register(ALICE.1), [401, 200], "alice still registers");
    let after: Vec<u64> = logs.iter().map(|p| size(p)).collect();
    assert_eq!(after, sizes, "Asterisk wrote to its log files ({logs:?}): the bans did not come from AMI alone");
}

#[test]
fn ami_and_the_log_files_count_the_same_failures() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    let prefix = require_asterisk!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("ami-figures");
    let asterisk = Asterisk::start(&lab, &prefix);
    let logs: Vec<String> = asterisk.log_files().iter().map(|l| format!("{:?}", l.display().to_string())).collect();
    // the same detector on the log files, on AMI, and on both at once; no ban to cut an attack short
    let rules = format!(
        "{}\n[jails.asterisk]\nlogpath = [{logs}]\nmaxretry = 1000\n\n[jails.ami]\ndetector = \"asterisk\"\n\
         logpath = [\"{ami}\"]\nmaxretry = 1000\n\n[jails.both]\ndetector = \"asterisk\"\n\
         logpath = [{logs}, \"{ami}\"]\nmaxretry = 1000\n",
        common(&dir),
        logs = logs.join(", "),
        ami = ami()
    );
    let d = DaemonProc::start(&lab, &rules);
    ami_up(&d, "ami");
    ami_up(&d, "both");
    forge(&lab, 8, 1, false);
    forge(&lab, 8, 2, true);
    let cracker = Attacker::new(&lab, 6, &dir).addr;
    let guesses: Vec<String> = (1..=12).map(|i| format!("guess-{i}")).collect();
    let guesses: Vec<&str> = guesses.iter().map(String::as_str).collect();
    svcrack(&lab, &cracker, PJSIP, ALICE.0, &guesses, &dir);
    let guesser = Attacker::new(&lab, 9, &dir).addr;
    let mut wrong = Phone::new(&lab.peer, addr(&guesser, 5071), addr(&lab.host_ip4(), PJSIP), ALICE.0);
    for i in 0..4 {
        assert_eq!(wrong.register(&format!("wrong-{i}")), [401, 401]);
    }
    // what bans: the proven failures, each once, whichever sources report it; and the forged
    // ones unproven in each (a security log line proves nothing, so a jail reading that file
    // may count a forged failure's line there besides its messages line)
    let proven = 12 + 4;
    let figures = |jail: &str| {
        let m = d.metrics();
        let of = |name: &str, extra: &str| metric_sum(&m, name, &format!(r#"jail="{jail}"{extra}"#));
        let unproven = of("sipwall_failures_skipped_total", r#",reason="unproven""#);
        (of("sipwall_failures_total", "") - unproven, unproven)
    };
    let settled = wait_for(PATIENCE, || {
        ["asterisk", "ami", "both"].iter().all(|j| {
            let (p, u) = figures(j);
            p == proven && u >= 16
        })
    });
    let (logged, managed, both) = (figures("asterisk"), figures("ami"), figures("both"));
    eprintln!(
        "asterisk_ami: (proven, unproven) from the log files {logged:?}, from AMI {managed:?}, from both {both:?}"
    );
    assert!(
        settled,
        "(proven, unproven) from the log files {logged:?}, from AMI {managed:?}, from both {both:?}; {proven} \
         failures proved themselves and 16 were forged\n{}\n{}",
        d.metrics(),
        d.log_text()
    );
    assert_eq!(managed.1, 16, "AMI reports each forged failure once");
    drop(d);
    drop(asterisk);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn after_asterisk_restarts_every_failure_it_reports_counts() {
    require_root!();
    let prefix = require_asterisk!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("ami-restart");
    let asterisk = Asterisk::start(&lab, &prefix);
    let rules = format!("{}\n[jails.asterisk]\nlogpath = [\"{}\"]\nmaxretry = 1000\n", common(&dir), ami());
    let d = DaemonProc::start(&lab, &rules);
    ami_up(&d, "asterisk");
    forge(&lab, 10, 1, false);
    assert!(wait_for(PATIENCE, || judged(&d, "asterisk") >= 10), "{}", d.log_text());

    // mid-attack, Asterisk (and its manager) goes away and comes back
    asterisk.restart(&lab);
    let counted = judged(&d, "asterisk");
    assert!(
        wait_for(PATIENCE, || d.log_text().matches("log source ami:127.0.0.1:5038: reading").count() >= 2),
        "sipwall did not log in to AMI again:\n{}",
        d.log_text()
    );
    ami_up(&d, "asterisk");
    forge(&lab, 15, 2, false);
    // what Asterisk reported after the restart, by its own security log
    let reported = asterisk.wait_logged(&asterisk.security(), 15, &["InvalidAccountID"], PATIENCE).len() as u64;
    assert!(
        wait_for(PATIENCE, || judged(&d, "asterisk") >= counted + reported),
        "after the reconnect Asterisk reported {reported} failures, the jail judged {}:\n{}",
        judged(&d, "asterisk") - counted,
        d.log_text()
    );
    assert_eq!(judged(&d, "asterisk"), counted + reported, "no failure counted twice");
    drop(d);
    drop(asterisk);
    let _ = std::fs::remove_dir_all(dir);
}

/// The lab's Asterisk configuration, copied, with a pjsip trunk (an identify section matching an
/// address and a name), a chan_sip peer with a fixed host, and an identify naming no known host.
fn site_config(dir: &Path, prefix: &Path) -> std::path::PathBuf {
    let conf = dir.join("asterisk");
    std::fs::create_dir_all(&conf).unwrap();
    // rtp.conf comes later: a file the configuration gains is picked up too
    for f in ["pjsip.conf", "sip.conf", "iax.conf", "modules.conf", "logger.conf"] {
        let from = prefix.join("etc/asterisk").join(f);
        if from.exists() {
            std::fs::copy(&from, conf.join(f)).unwrap();
        }
    }
    let add = |f: &str, text: &str| {
        let mut t = std::fs::read_to_string(conf.join(f)).unwrap_or_default();
        t.push_str(text);
        std::fs::write(conf.join(f), t).unwrap();
    };
    add(
        "pjsip.conf",
        "\n[itsp]\ntype=identify\nendpoint=alice\nmatch=203.0.113.5,sip.itsp.lab\n\n\
         [backup]\ntype=identify\nendpoint=bob\nmatch=nowhere.invalid\n",
    );
    add("sip.conf", "\n[carrier]\ntype=peer\nhost=198.51.100.9\ncontext=internal\n");
    conf
}

#[test]
fn discovery_reads_the_lab_asterisk_configuration_and_follows_its_changes() {
    require_root!();
    let prefix = require_asterisk!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("discovery");
    let conf = site_config(&dir, &prefix);
    // the name resolves inside the host namespace only (ip netns exec binds this over /etc/hosts)
    let hosts = Path::new("/etc/netns").join(&lab.host);
    std::fs::create_dir_all(&hosts).unwrap();
    std::fs::write(hosts.join("hosts"), "127.0.0.1 localhost\n203.0.113.77 sip.itsp.lab\n").unwrap();
    // a low limit on SIP, and the services left to Asterisk
    let rules = format!(
        "[services.sip]\nrate = 5\nburst = 5\n\n[services.rtp]\n\n[jails.asterisk]\nenabled = false\n\n\
         [jails.sshd]\nenabled = false\n\n[asterisk]\nconfig_dir = {:?}\n",
        conf.display().to_string()
    );
    let d = DaemonProc::start(&lab, &rules);
    let status = d.cli_ok(&["status"]);
    for needle in [
        "sip: 5080/udp on 0.0.0.0 (pjsip udp transport transport-udp, pjsip.conf:",
        "sip: 5060/udp on 0.0.0.0 (chan_sip",
        "trunk itsp (pjsip identify, pjsip.conf:",
        "sip.itsp.lab → 203.0.113.77",
        "trunk carrier (sip peer, sip.conf:",
        "service sip takes 5080/udp (pjsip udp transport transport-udp, pjsip.conf:5), 5060/udp (chan_sip",
    ] {
        assert!(status.contains(needle), "status lacks {needle:?}:\n{status}");
    }
    assert!(d.log_text().contains("nowhere.invalid"), "a name that does not resolve is a warning:\n{}", d.log_text());
    let why = json(&d.cli_ok(&["why", "203.0.113.77", "--json"]));
    assert!(why["allowed_by"].as_str().unwrap_or_default().contains("trunk itsp (pjsip identify"), "{why}");
    let refused = d.cli(&["ban", "198.51.100.9"]);
    assert!(!refused.status.success(), "a trunk was banned");

    // over the limit on pjsip's port: a stranger is cut to the burst, the trunks are not limited
    let rx = Receiver::start(&lab);
    let mut frames = Vec::new();
    for i in 0..60 {
        frames.push(frame(&lab, "203.0.113.77", PJSIP, false, "trunk", i));
        frames.push(frame(&lab, "198.51.100.9", PJSIP, false, "peer", i));
        frames.push(frame(&lab, "192.0.2.44", PJSIP, false, "stranger", i));
    }
    send_all(&lab, frames);
    rx.settle();
    assert_eq!((rx.count("trunk"), rx.count("peer")), (60, 60), "trunks are never limited");
    assert!(
        rx.count("stranger") < 30,
        "a stranger's frames to 5080/udp went unfiltered: {} of 60 passed",
        rx.count("stranger")
    );

    // Asterisk's configuration changes: a new transport and a new trunk, picked up like a rules reload
    let pjsip = conf.join("pjsip.conf");
    let mut t = std::fs::read_to_string(&pjsip).unwrap();
    t.push_str("\n[transport-alt]\ntype=transport\nprotocol=udp\nbind=0.0.0.0:5090\n\n[itsp2]\ntype=identify\nendpoint=alice\nmatch=192.0.2.88\n");
    std::fs::write(&pjsip, t).unwrap();
    assert!(
        wait_for(PATIENCE, || {
            let s = d.cli_ok(&["status"]);
            s.contains("sip: 5090/udp") && s.contains("trunk itsp2")
        }),
        "the changed pjsip.conf was not picked up:\n{}\n{}",
        d.cli_ok(&["status"]),
        d.log_text()
    );
    assert!(!d.cli(&["ban", "192.0.2.88"]).status.success(), "the new trunk was banned");
    std::fs::write(conf.join("rtp.conf"), "[general]\nrtpstart=16384\nrtpend=32767\n").unwrap();
    assert!(
        wait_for(PATIENCE, || d.cli_ok(&["status"]).contains("service rtp takes 16384-32767/udp (rtp.conf:2)")),
        "the new rtp.conf was not picked up:\n{}\n{}",
        d.cli_ok(&["status"]),
        d.log_text()
    );
    let _ = std::fs::remove_dir_all(&hosts);
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}
