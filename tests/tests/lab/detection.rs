//! Detection end to end: log lines in Asterisk's formats appended to a file the daemon follows
//! while the attacker's packets flow; after `maxretry` failures its packets are dropped by XDP.
//! Lines that name other addresses in attacker-controlled fields ban nobody else. The lines are
//! written here, with no SIP exchange behind them, so nothing proves their sources: the jails
//! under test trust unproven evidence (spoof_lab and asterisk_lab test the default).

use std::{io::Write, path::Path, time::Duration};

use sipwall_tests::{
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    require_root,
    traffic::{frame, send_all, Receiver},
};

fn rules(log: &Path, extra: &str) -> String {
    format!(
        r#"
[allow]
sources = ["127.0.0.0/8", "::1/128", "198.51.100.10/32"]

[services.sip]
ports = ["5060/udp"]

[jails.asterisk]
logpath = ["{}"]
trust_unproven = true

[jails.sshd]
enabled = false
{extra}
"#,
        log.display()
    )
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn registration(from_user: &str, addr: &str) -> String {
    format!(
        "[2026-11-22 10:00:00] NOTICE[1638] chan_sip.c: Registration from '\"{from_user}\" <sip:{from_user}@{addr}>' failed for '{addr}:5060' - Wrong password"
    )
}

fn banned(d: &DaemonProc) -> String {
    d.cli_ok(&["list"])
}

#[test]
fn asterisk_failures_appended_to_a_log_get_the_source_dropped() {
    require_root!();
    let lab = Lab::new();
    let dir = lab.scratch_dir("detect");
    let log = dir.join("messages");
    // lines already in the file when the daemon starts are history: not counted
    append(&log, &(0..5).map(|_| registration("old", "192.0.2.99")).collect::<Vec<_>>());
    let d = DaemonProc::start(&lab, &rules(&log, ""));
    let rx = Receiver::start(&lab);

    let attacker = "192.0.2.66";
    let mut seq = 0;
    let mut send = |n: u64| {
        let frames: Vec<_> = (seq..seq + n).map(|i| frame(&lab, attacker, 5060, false, "attacker", i)).collect();
        seq += n;
        send_all(&lab, frames);
    };
    send(20);
    assert!(wait_for(Duration::from_secs(60), || rx.count("attacker") == 20), "before any failure, packets pass");

    // forged lines: the attacker writes other addresses into From/display names
    append(
        &log,
        &[
            registration("198.51.100.10", attacker),
            format!("[2026-11-22 10:00:01] NOTICE[1943] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:x@{}>' failed for '{attacker}:5060' (callid: a' failed for '203.0.113.7:1') - No matching endpoint found", lab.host_ip4()),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!banned(&d).contains(attacker), "2 failures of 3: not yet\n{}", d.log_text());
    send(20);
    assert!(wait_for(Duration::from_secs(60), || rx.count("attacker") == 40), "still passing after 2 failures");

    append(&log, &[registration("1000", attacker)]);
    assert!(
        wait_for(Duration::from_secs(60), || banned(&d).contains(attacker)),
        "the third failure bans the source:\n{}\n{}",
        banned(&d),
        d.log_text()
    );
    send(50);
    rx.settle();
    assert_eq!(rx.count("attacker"), 40, "after the ban not one packet passes");

    let list = banned(&d);
    for innocent in ["198.51.100.10", "203.0.113.7", "192.0.2.99", &lab.host_ip4()] {
        assert!(!list.contains(innocent), "{innocent} must not be banned:\n{list}");
    }
    let why = d.cli_ok(&["why", attacker]);
    assert!(why.contains("asterisk") && why.contains("Wrong password"), "{why}");
    let m = d.metrics();
    assert!(m.contains("sipwall_bans_total{jail=\"asterisk\"} 1"), "{m}");
    assert!(m.contains("sipwall_failures_total{jail=\"asterisk\"} 3"), "{m}");
    assert!(m.contains(&format!("sipwall_log_source_up{{jail=\"asterisk\",source=\"{}\"}} 1", log.display())), "{m}");
    assert!(m.contains("sipwall_log_lines_total{jail=\"asterisk\"} 3"), "old lines are not read: {m}");
    // the ban is one JSON line in the log
    assert!(d
        .log_text()
        .lines()
        .any(|l| l.starts_with('{') && l.contains("\"event\":\"ban\"") && l.contains(attacker)));
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A webhook receiver in the host namespace: every body POSTed to it.
fn webhook_receiver(lab: &Lab) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write as _};
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let b = bodies.clone();
    sipwall_tests::netns::in_netns(&lab.host, move || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tx.send(l.local_addr().unwrap().port()).unwrap();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
                        .map(|(_, v)| v)
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        b.lock().unwrap().push(body.to_owned());
                        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                        break;
                    }
                }
            }
        }
    });
    (rx.recv_timeout(Duration::from_secs(5)).unwrap(), bodies)
}

#[test]
fn a_source_that_keeps_hitting_its_rate_limit_is_banned_by_the_flood_jail() {
    require_root!();
    let lab = Lab::new();
    let (port, bodies) = webhook_receiver(&lab);
    let rules = format!(
        r#"
[services.sip]
ports = ["5060/udp"]
rate = 20
burst = 20

[rate_limit]
report_interval = "100ms"

[jails.flood]
findtime = "1m"
maxretry = 3
bantime = "10m"
trust_unproven = true

[jails.asterisk]
enabled = false

[jails.sshd]
enabled = false

[webhook]
url = "http://127.0.0.1:{port}/sipwall"
"#
    );
    let d = DaemonProc::start(&lab, &rules);
    let flooder = "192.0.2.150";
    let l = lab.clone_for_flow();
    let f = sipwall_tests::traffic::Flow::start(&lab, 500, move |i| frame(&l, flooder, 5060, false, "flood", i));
    assert!(
        wait_for(Duration::from_secs(60), || d.cli_ok(&["list"]).contains(flooder)),
        "{}\n{}",
        d.cli_ok(&["list"]),
        d.log_text()
    );
    f.stop();
    let list = d.cli_ok(&["list", "--json"]);
    assert!(list.contains("\"source\": \"flood\""), "{list}");
    assert!(
        wait_for(Duration::from_secs(60), || bodies.lock().unwrap().iter().any(|b| b.contains(flooder))),
        "the webhook got: {:?}\n{}",
        bodies.lock().unwrap(),
        d.log_text()
    );
    let body = bodies.lock().unwrap().iter().find(|b| b.contains(flooder)).cloned().unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["event"].as_str(), v["jail"].as_str()), (Some("ban"), Some("flood")), "{body}");
    assert_eq!(v["evidence"].as_str(), Some("unproven"), "{body}");
    assert!(v["reason"].as_str().unwrap_or_default().ends_with("unproven (trust_unproven)"), "{body}");
    let m = d.metrics();
    assert!(m.contains("sipwall_bans_total{jail=\"flood\"} 1"), "{m}");
    assert!(m.contains("sipwall_webhook_deliveries_total{result=\"delivered\"} 1"), "{m}");
}
