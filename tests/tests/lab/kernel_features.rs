//! Everything that needs the kernel's cooperation, end to end on one veth pair: `sipwall run`
//! attached natively, the SIP inspector dropping a scanner's request, a ban enforced, the 403s a
//! real registrar (Kamailio) answers counted on egress, and a daemon killed with SIGKILL and
//! started again leaving exactly one egress classifier, so each answer still counts once. The
//! kernel-matrix tier (`cargo xtask test --kernels`) runs this on every kernel of the matrix.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use aya::programs::{tc::TcAttachType, SchedClassifier};
use firewall_common::programs;
use sipwall::{datapath::egress::has_tcx, datapath::features::Feature};
use sipwall_tests::{
    daemon::{DaemonProc, LOG_JAILS_OFF},
    frames::l4_frame,
    kamailio::{refusing_cfg, Registrar},
    netns::{in_netns, wait_for, Lab},
    require_root,
    traffic::{send_all, Receiver},
};

fn rules() -> String {
    format!(
        r#"
[services.sip]
ports = ["5060/udp"]

[sip]
inspect = true

# the answers are counted, nobody is banned for them here
[jails.sip-wire]
maxretry = 1000

{LOG_JAILS_OFF}"#
    )
}

/// A marked SIP request (see `traffic::Receiver`) from `src`, with `user_agent`.
fn marked(lab: &Lab, src: &str, tag: &str, user_agent: &str) -> Vec<u8> {
    let payload = format!("OPTIONS sip:lab SIP/2.0\r\nUser-Agent: {user_agent}\r\nX-Mark: SWT:{tag}:0:\r\n\r\n");
    l4_frame(
        lab.peer_mac,
        lab.host_mac,
        src.parse().unwrap(),
        lab.host_ip4().parse().unwrap(),
        5060,
        false,
        payload.as_bytes(),
    )
}

/// Sends a REGISTER for `user` from the peer's own address and returns the status line of the
/// answer (Kamailio answers 1000 with 403, anyone else with 404).
fn register(lab: &Lab, user: &str, seq: u32) -> String {
    let (peer, host) = (lab.peer_ip4(), lab.host_ip4());
    let user = user.to_owned();
    in_netns(&lab.peer, move || {
        let sock = UdpSocket::bind(format!("{peer}:0")).expect("bind in the peer namespace");
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let port = sock.local_addr().unwrap().port();
        let msg = format!(
            "REGISTER sip:{host} SIP/2.0\r\nVia: SIP/2.0/UDP {peer}:{port};branch=z9hG4bK-kf{seq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{host}>;tag=kf{seq}\r\nTo: <sip:{user}@{host}>\r\n\
             Call-ID: kf{seq}@{peer}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{peer}:{port}>\r\n\
             User-Agent: Zoiper rv2.10\r\nContent-Length: 0\r\n\r\n"
        );
        let to: SocketAddr = format!("{host}:5060").parse().unwrap();
        let mut buf = [0u8; 2048];
        // a lost datagram is resent, as a SIP client would
        for _ in 0..10 {
            sock.send_to(msg.as_bytes(), to).unwrap();
            if let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                return text.lines().next().unwrap_or_default().to_owned();
            }
        }
        String::new()
    })
    .join()
    .unwrap()
}

/// The `sipwall_egress` programs attached to the lab host's egress, by TCX or on a clsact qdisc.
fn egress_classifiers(lab: &Lab) -> usize {
    let ifname = lab.host_if.clone();
    let tcx = in_netns(&lab.host, move || {
        SchedClassifier::query_tcx(&ifname, TcAttachType::Egress)
            .map(|(_, progs)| progs.iter().filter(|p| p.name_as_str() == Some(programs::EGRESS)).count())
            // no TCX before Linux 6.6
            .unwrap_or(0)
    })
    .join()
    .unwrap();
    let out = lab.cmd(&lab.host, "tc").args(["filter", "show", "dev", &lab.host_if, "egress"]).output().unwrap();
    let clsact =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(&format!(" {} ", programs::EGRESS))).count();
    tcx + clsact
}

/// Waits until `sipwall_sip_failures_answered_total{status}` reaches `n`.
fn answered(d: &DaemonProc, status: &str, n: u64) -> bool {
    let labels = format!(r#"status="{status}""#);
    wait_for(Duration::from_secs(30), || d.metric("sipwall_sip_failures_answered_total", &labels) >= n)
}

#[test]
fn every_part_works_on_this_kernel_and_a_sigkill_leaves_one_egress_classifier() {
    require_root!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("kernel");
    let kamailio = Registrar::with_config(&lab, &dir, &refusing_cfg(&lab.host_ip4()));
    let mut d = DaemonProc::start(&lab, &rules());

    // the kernel took every part; the kernel tier collects what it took from SIPWALL_REPORT_DIR
    let features: Vec<(&str, u64)> = Feature::ALL
        .iter()
        .map(|f| (f.name(), d.metric("sipwall_feature_enabled", &format!(r#"feature="{}""#, f.name()))))
        .collect();
    if let Some(dir) = std::env::var_os("SIPWALL_REPORT_DIR") {
        let features: serde_json::Map<String, serde_json::Value> =
            features.iter().map(|(f, on)| (f.to_string(), (*on).into())).collect();
        let report = serde_json::json!({ "kernel": sipwall::datapath::features::release(), "features": features });
        std::fs::write(std::path::Path::new(&dir).join("features.json"), report.to_string()).unwrap();
    }
    for (feature, on) in &features {
        let want = u64::from(*feature != "tcx" || has_tcx());
        assert_eq!(*on, want, "{feature}:\n{}", d.log_text());
    }
    let status = d.cli_ok(&["status"]);
    assert!(status.contains("sip_inspector on, egress_classifier on"), "{status}");
    assert_eq!(egress_classifiers(&lab), 1);

    // the inspector: a scanner's request is dropped, a phone's passes
    let rx = Receiver::start(&lab);
    send_all(
        &lab,
        vec![marked(&lab, "192.0.2.99", "scan", "friendly-scanner"), marked(&lab, "192.0.2.98", "phone", "Zoiper")],
    );
    assert!(wait_for(Duration::from_secs(30), || rx.count("phone") == 1), "the phone's request did not arrive");
    assert!(
        wait_for(Duration::from_secs(30), || d.metric("sipwall_packets_total", r#"reason="sip_scanner""#) == 1),
        "{}",
        d.metrics()
    );
    assert_eq!(rx.count("scan"), 0, "the scanner's request reached the host");

    // a ban: dropped at the driver
    d.cli_ok(&["ban", "192.0.2.77", "--for", "1h"]);
    send_all(&lab, vec![marked(&lab, "192.0.2.77", "banned", "Zoiper")]);
    assert!(
        wait_for(Duration::from_secs(30), || d.metric("sipwall_packets_total", r#"reason="banned""#) == 1),
        "{}",
        d.metrics()
    );
    assert_eq!(rx.count("banned"), 0);

    // the registrar's 403 is read on egress
    assert!(register(&lab, "1000", 1).starts_with("SIP/2.0 403"), "{}", kamailio.log_text());
    assert!(answered(&d, "403", 1), "{}", d.metrics());

    // killed without a chance to clean up, then started again: one classifier, one count
    d.kill9();
    d.spawn(&lab);
    assert_eq!(egress_classifiers(&lab), 1, "{}", d.log_text());
    assert!(register(&lab, "1000", 2).starts_with("SIP/2.0 403"));
    // a 404 after it: once it is counted, every report of the 403 before it has been read
    assert!(register(&lab, "2000", 3).starts_with("SIP/2.0 404"));
    assert!(answered(&d, "404", 1), "{}", d.metrics());
    assert_eq!(d.metric("sipwall_sip_failures_answered_total", r#"status="403""#), 1, "{}", d.metrics());
    let _ = std::fs::remove_dir_all(&dir);
}
