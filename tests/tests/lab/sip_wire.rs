//! The `sip-wire` jail end to end, with real peers: Kamailio as a registrar in the protected
//! namespace answers a real sipvicious extension scan (svwar) from the other with 404s; the
//! egress classifier reports them. A scan with REGISTER answers nothing back, so nothing proves
//! its 404s went to their sender: they ban no one. A scan with INVITE acknowledges each 404 with
//! its To-tag, which only the real sender saw: after `maxretry` of them the scanner's packets
//! are dropped by XDP. No log is read.

use std::{process::Stdio, time::Duration};

use sipwall::datapath::features::Feature;
use sipwall_tests::{
    daemon::{metric_sum, DaemonProc, LOG_JAILS_OFF},
    kamailio::{refusing_cfg, Registrar},
    netns::{wait_for, Lab},
    require_kernel, require_root,
};

const MAXRETRY: u32 = 5;

fn rules() -> String {
    format!(
        r#"
[services.sip]
ports = ["5060/udp"]

# sipvicious announces itself (friendly-scanner); without signatures only its effect on the
# server gives it away, which is what this jail reads
[sip]
scanner_user_agents = []

[jails.sip-wire]
maxretry = {MAXRETRY}

{LOG_JAILS_OFF}"#
    )
}

/// `svmap` from the peer: whether it found a SIP server on the host.
fn svmap_finds(lab: &Lab) -> bool {
    let out = lab
        .cmd(&lab.peer, "timeout")
        .args(["20", "svmap", "-t", "1", &lab.host_ip4()])
        .output()
        .expect("run svmap (Debian's sipvicious; scripts/setup --test installs it)");
    String::from_utf8_lossy(&out.stdout).contains(&format!("{}:5060", lab.host_ip4()))
}

#[test]
fn a_real_extension_scan_answered_with_404s_gets_the_scanner_dropped() {
    require_root!();
    require_kernel!(Feature::SipInspector);
    require_kernel!(Feature::EgressClassifier);
    let lab = Lab::new();
    let dir = lab.scratch_dir("sipwire");
    let _kamailio = Registrar::with_config(&lab, &dir, &refusing_cfg(&lab.host_ip4()));
    let d = DaemonProc::start(&lab, &rules());
    // the registrar answers before any failure: OPTIONS get 200, which is no failure
    assert!(
        wait_for(Duration::from_secs(20), || svmap_finds(&lab)),
        "kamailio does not answer: {}",
        std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default()
    );
    assert!(!d.cli_ok(&["list"]).contains(&lab.peer_ip4()), "OPTIONS answered 200 banned nobody");

    // 40 extensions by REGISTER, every one unknown: 404s, but nothing proves who asked
    let svwar = |method: &str| {
        lab.cmd(&lab.peer, "timeout")
            .args(["60", "svwar", "-e2000-2039", "-m", method, "-t", "0.2", &lab.host_ip4()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run svwar")
    };
    svwar("REGISTER");
    let unproven = || d.metric("sipwall_failures_skipped_total", r#"jail="sip-wire",reason="unproven""#);
    assert!(
        wait_for(Duration::from_secs(120), || unproven() >= u64::from(MAXRETRY)),
        "the 404s to a REGISTER scan were not judged unproven\n{}",
        d.metrics()
    );
    assert!(!d.cli_ok(&["list"]).contains(&lab.peer_ip4()), "unproven 404s banned the scanner");
    let why = d.cli_ok(&["why", &lab.peer_ip4()]);
    assert!(why.contains("not counted: sip-wire"), "{why}");

    // the same scan by INVITE: each 404 is acknowledged, proven, counted
    svwar("INVITE");
    assert!(
        wait_for(Duration::from_secs(60), || d.cli_ok(&["list"]).contains(&lab.peer_ip4())),
        "the scanner was not banned\n{}",
        d.log_text()
    );
    assert!(d.metric("sipwall_sip_proofs_total", r#"token="to_tag""#) >= u64::from(MAXRETRY), "{}", d.metrics());
    let m = d.metrics();
    let answered = metric_sum(&m, "sipwall_sip_failures_answered_total", r#"status="404""#);
    assert!(answered >= u64::from(MAXRETRY), "404s seen on egress: {answered}\n{m}");
    let why = d.cli_ok(&["why", &lab.peer_ip4()]);
    assert!(why.contains("sip-wire"), "{why}");
    assert!(why.contains("SIP/2.0 404 answered"), "{why}");

    // banned: the scanner no longer finds the server at all, and the drops are counted
    assert!(!svmap_finds(&lab), "a banned scanner still reaches Kamailio");
    let banned = d.metric("sipwall_packets_total", r#"reason="banned""#);
    assert!(banned > 0, "{}", d.metrics());
    let _ = std::fs::remove_dir_all(&dir);
}
