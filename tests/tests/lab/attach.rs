//! `sipwall run` attached in native mode to a veth inside a network namespace, with spoofed
//! traffic from the other end; outcomes observed on the receiving side.

use std::time::Duration;

use sipwall_tests::{
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    require_root,
    traffic::{frame, send_all, Flow, Receiver},
};

const RULES: &str = r#"
[allow]
sources = ["127.0.0.0/8", "::1/128", "198.51.100.10/32", "2001:db8:10::/48"]

[block]
sources = ["203.0.113.0/24", "2001:db8:bad::/48"]

[services.sip]
ports = ["5060/udp"]
rate = 20
burst = 20

[services.ssh]
ports = ["22/tcp"]
allow_from = ["192.0.2.50/32"]

[rate_limit]
report_interval = "200ms"
"#;

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn burst(lab: &Lab, tag: &str, srcs: &[&str], dport: u16, syn: bool, n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| frame(lab, srcs[i as usize % srcs.len()], dport, syn, tag, i)).collect()
}

#[test]
fn outcomes_on_the_receiving_side() {
    require_root!();
    let lab = Lab::new();
    let d = DaemonProc::start(&lab, RULES);
    let rx = Receiver::start(&lab);
    let mut frames = Vec::new();
    frames.extend(burst(&lab, "allow4", &["198.51.100.10"], 5060, false, 100));
    frames.extend(burst(&lab, "allow6", &["2001:db8:10::5"], 5060, false, 100));
    frames.extend(burst(&lab, "block4", &["203.0.113.5"], 5060, false, 100));
    frames.extend(burst(&lab, "block6", &["2001:db8:bad::5"], 5060, false, 100));
    frames.extend(burst(&lab, "limit4", &["192.0.2.77"], 5060, false, 100));
    frames.extend(burst(&lab, "limit6", &["2001:db8:77::1", "2001:db8:77::2"], 5060, false, 100));
    frames.extend(burst(&lab, "sshok", &["192.0.2.50"], 22, true, 10));
    frames.extend(burst(&lab, "sshno", &["192.0.2.51"], 22, true, 10));
    frames.extend(burst(&lab, "open", &["192.0.2.51"], 9999, false, 10));
    send_all(&lab, frames);
    rx.settle();

    assert_eq!(rx.count("allow4"), 100, "allow-listed sources are never limited");
    assert_eq!(rx.count("allow6"), 100);
    assert_eq!(rx.count("block4"), 0);
    assert_eq!(rx.count("block6"), 0);
    let (l4, l6) = (rx.count("limit4"), rx.count("limit6"));
    assert!((20..=24).contains(&l4), "burst of 20, then 20/s: got {l4}");
    assert!((20..=24).contains(&l6), "one bucket for the /64: got {l6}");
    assert_eq!(rx.count("sshok"), 10);
    assert_eq!(rx.count("sshno"), 0, "allow_from");
    assert_eq!(rx.count("open"), 10, "unprotected ports stay open");

    let m = d.metrics();
    assert_eq!(
        metric(&m, &format!("sipwall_xdp_attached{{iface=\"{}\",mode=\"native\"}}", lab.host_if)),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "sipwall_packets_total{action=\"drop\",reason=\"blocked\",service=\"sip\"}"),
        Some(200.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "sipwall_packets_total{action=\"drop\",reason=\"not_allowed\",service=\"ssh\"}"),
        Some(10.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "sipwall_packets_total{action=\"pass\",reason=\"allowlisted\",service=\"sip\"}"),
        Some(200.0),
        "{m}"
    );
    let limited = metric(&m, "sipwall_packets_total{action=\"drop\",reason=\"rate_limited\",service=\"sip\"}").unwrap();
    assert_eq!(limited as usize, 200 - l4 - l6);
    assert!(
        metric(&m, "sipwall_bytes_total{action=\"drop\",reason=\"blocked\",service=\"sip\"}").unwrap() > 200.0 * 42.0
    );
    assert!(wait_for(Duration::from_secs(60), || metric(
        &d.metrics(),
        "sipwall_rate_limit_events_total{service=\"sip\"}"
    )
    .unwrap_or(0.0)
        >= 2.0));
    assert!(d.log_text().contains("over the sip rate limit"), "{}", d.log_text());
    assert_eq!(
        metric(&m, "sipwall_map_capacity{map=\"SW_NET4\"}"),
        Some(2_000_000.0),
        "room for 1M prefixes and 1M bans"
    );
    assert_eq!(metric(&m, "sipwall_map_capacity{map=\"SW_RATE\"}"), Some(262_144.0));
}

#[test]
fn ban_and_unban_while_traffic_flows() {
    require_root!();
    let lab = Lab::new();
    let d = DaemonProc::start(&lab, RULES);
    let rx = Receiver::start(&lab);
    let l4 = lab.clone_for_flow();
    let f4 = Flow::start(&lab, 200, move |i| frame(&l4, "192.0.2.99", 9999, false, "b4", i));
    let l6 = lab.clone_for_flow();
    let f6 = Flow::start(&lab, 200, move |i| frame(&l6, "2001:db8:99:1::abcd", 9999, false, "b6", i));
    assert!(
        wait_for(Duration::from_secs(60), || rx.count("b4") > 80 && rx.count("b6") > 80),
        "flows reach the host before the ban"
    );

    let out = d.cli_ok(&["ban", "192.0.2.99", "--for", "1h", "--reason", "attach test"]);
    let banned4 = f4.sent();
    assert!(out.contains("banned 192.0.2.99/32"), "{out}");
    d.cli_ok(&["ban", "2001:db8:99:1::1"]);
    let banned6 = f6.sent();
    // the ban stays in force while a good number of frames is sent, however slow the machine
    assert!(wait_for(Duration::from_secs(60), || f4.sent() > banned4 + 150 && f6.sent() > banned6 + 150));
    let list = d.cli_ok(&["list", "--json"]);
    assert!(list.contains("\"target\": \"192.0.2.99/32\"") && list.contains("\"reason\": \"attach test\""), "{list}");
    assert!(list.contains("2001:db8:99:1::/64"), "IPv6 bans cover the /64: {list}");
    let table = d.cli_ok(&["list"]);
    assert!(table.starts_with("TARGET"), "{table}");

    let (unban4, unban6) = (f4.sent(), f6.sent());
    d.cli_ok(&["unban", "192.0.2.99"]);
    d.cli_ok(&["unban", "2001:db8:99:1::1"]);
    let (resumed4, resumed6) = (f4.sent(), f6.sent());
    assert!(wait_for(Duration::from_secs(60), || f4.sent() > resumed4 + 150 && f6.sent() > resumed6 + 150));
    let (s4, s6) = (f4.stop(), f6.stop());
    rx.settle();
    // the CLI answers once the kernel map holds the ban: no frame sent after that may arrive
    assert!(unban4 - banned4 > 150, "the ban was in force for a while");
    assert_eq!(rx.count_seq("b4", banned4, unban4), 0, "banned IPv4 source got through");
    assert_eq!(rx.count_seq("b6", banned6, unban6), 0, "banned IPv6 /64 got through");
    assert!(rx.count_seq("b4", resumed4, s4) as u64 > (s4 - resumed4) * 9 / 10, "traffic resumes after unban");
    assert!(rx.count_seq("b6", resumed6, s6) as u64 > (s6 - resumed6) * 9 / 10);
    let log = d.log_text();
    assert!(log.contains(r#""event":"ban""#) && log.contains(r#""event":"unban""#), "{log}");
    let err = d.cli(&["unban", "192.0.2.99"]);
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("is not banned"));
}

#[test]
fn reload_edited_and_broken_rules_while_traffic_flows() {
    require_root!();
    let lab = Lab::new();
    let d = DaemonProc::start(&lab, RULES);
    let rx = Receiver::start(&lab);
    let la = lab.clone_for_flow();
    let always = Flow::start(&lab, 300, move |i| frame(&la, "203.0.113.5", 9999, false, "always", i));
    let lb = lab.clone_for_flow();
    let newly = Flow::start(&lab, 300, move |i| frame(&lb, "192.0.2.88", 9999, false, "newly", i));
    std::thread::sleep(Duration::from_millis(600));
    assert!(rx.count("newly") > 100);

    // an edit that also brings thousands of prefixes, so the update takes many writes
    let mut extra = String::from("\n[block]\nsources = [\"203.0.113.0/24\", \"2001:db8:bad::/48\", \"192.0.2.88/32\"");
    for i in 0..5000u32 {
        extra.push_str(&format!(", \"{}\"", std::net::Ipv4Addr::from(0x6440_0000 + i * 4)));
    }
    extra.push_str("]\n");
    let edited = RULES.replace("[block]\nsources = [\"203.0.113.0/24\", \"2001:db8:bad::/48\"]\n", "") + &extra;
    std::fs::write(&d.config, &edited).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || metric(&d.metrics(), "sipwall_rules_reloads_total{result=\"applied\"}")
            == Some(1.0)),
        "{}",
        d.log_text()
    );
    let applied = newly.sent();
    std::thread::sleep(Duration::from_millis(500));

    std::fs::write(&d.config, edited.replace("[services.ssh]", "[services.ssh\n")).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || metric(&d.metrics(), "sipwall_rules_reloads_total{result=\"rejected\"}")
            == Some(1.0)),
        "{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));

    // SIGHUP reloads too (the file is still broken: rejected again)
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    assert!(
        wait_for(Duration::from_secs(60), || metric(&d.metrics(), "sipwall_rules_reloads_total{result=\"rejected\"}")
            == Some(2.0)),
        "{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    always.stop();
    let sent = newly.stop();
    rx.settle();

    assert_eq!(rx.count("always"), 0, "a source blocked before and after never passes, not even during the reload");
    assert!(sent - applied > 300);
    assert_eq!(rx.count_seq("newly", applied, sent), 0, "blocked after the reload, and still after the broken file");
    let log = d.log_text();
    assert!(log.contains("rules rejected, the previous rules stay in force"), "{log}");
    assert!(log.contains("rules.toml:"), "the error names the file, line and column: {log}");
}

/// A blocklist is outside data: a truncated download keeps its last good version in force; a
/// change the tables cannot take is refused whole, and bans go on working under the old rules.
#[test]
fn a_broken_blocklist_or_a_refused_reload_lifts_no_block_and_bans_go_on() {
    require_root!();
    let lab = Lab::new();
    let rules = RULES.replace("[block]\n", "[block]\nfiles = [\"feed.txt\"]\n");
    let mut d = DaemonProc::prepare(&lab, &rules, &[]);
    let feed = d.dir.join("feed.txt");
    std::fs::write(&feed, "# feed\n192.0.2.88/32\n192.0.2.89/32\n2001:db8:ee::/48\n").unwrap();
    d.spawn(&lab);
    let series = |result: &str| format!("sipwall_rules_reloads_total{{result=\"{result}\"}}");
    let reloads = |d: &DaemonProc, result: &str, n: f64| {
        assert!(
            wait_for(Duration::from_secs(60), || metric(&d.metrics(), &series(result)) == Some(n)),
            "{result} {n}: {}",
            d.log_text()
        );
    };
    let healthy =
        |d: &DaemonProc| metric(&d.metrics(), &format!("sipwall_blocklist_healthy{{file=\"{}\"}}", feed.display()));
    assert_eq!(healthy(&d), Some(1.0));
    let rx = Receiver::start(&lab);
    let l = lab.clone_for_flow();
    let listed = Flow::start(&lab, 300, move |i| frame(&l, "192.0.2.88", 9999, false, "listed", i));

    // a download cut short: the last good version stays in force, the rest of the rules apply
    std::fs::write(&feed, "# feed\n192.0.2.1/32\n192.0.2").unwrap();
    reloads(&d, "applied", 1.0);
    assert_eq!(healthy(&d), Some(0.0));
    assert!(d.log_text().contains("last good version (3 networks) stays in force"), "{}", d.log_text());

    // 33 IPv6 prefix lengths: refused before anything is written
    let mut many = String::from("192.0.2.88/32\n");
    for len in 33..=65u32 {
        many.push_str(&format!("2001:{len:x}00::/{len}\n"));
    }
    std::fs::write(&feed, &many).unwrap();
    reloads(&d, "failed", 1.0);
    // bans, unbans and `why` work on the rules in force
    d.cli_ok(&["ban", "192.0.2.3"]);
    d.cli_ok(&["ban", "2001:db8:3::1"]);
    d.cli_ok(&["unban", "192.0.2.3"]);
    assert!(d.cli_ok(&["why", "192.0.2.89"]).contains("block"), "the kept list is in force");

    std::fs::write(&feed, "192.0.2.88/32\n").unwrap();
    reloads(&d, "applied", 2.0);
    assert_eq!(healthy(&d), Some(1.0));
    std::thread::sleep(Duration::from_millis(300));
    let sent = listed.stop();
    rx.settle();
    assert!(sent > 50, "{sent}");
    assert_eq!(rx.count("listed"), 0, "a listed source passed while its list was broken or refused");
    d.stop();
}

/// A tun device (as WireGuard, ppp and other L3 links) hands XDP packets without an Ethernet
/// header: `sipwall run` refuses it by name and type before attaching anything, rather than pass
/// every packet as `non_ip` with bans that do not hold.
#[test]
fn interfaces_without_an_ethernet_header_are_refused_by_name() {
    require_root!();
    let lab = Lab::new();
    let ok = |c: &mut std::process::Command| assert!(c.status().unwrap().success());
    ok(lab.cmd(&lab.host, "ip").args(["tuntap", "add", "dev", "sw-tun0", "mode", "tun"]));
    ok(lab.cmd(&lab.host, "ip").args(["link", "set", "sw-tun0", "up"]));
    let dir = lab.scratch_dir("tun");
    std::fs::write(dir.join("rules.toml"), sipwall_tests::daemon::LOG_JAILS_OFF).unwrap();
    let out = lab
        .cmd(&lab.host, sipwall_tests::daemon::sipwall_bin().to_str().unwrap())
        .args(["run", "--iface", "sw-tun0", "--metrics-addr", "127.0.0.1:9978"])
        .arg("--config")
        .arg(dir.join("rules.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--socket")
        .arg(dir.join("ctl.sock"))
        .arg("--pin-dir")
        .arg(dir.join("pins"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("sw-tun0 is a link without a link-layer header (tun, WireGuard)"), "{err}");
    let link = lab.cmd(&lab.host, "ip").args(["link", "show", "sw-tun0"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("xdp"), "nothing attached");
}

/// An answer whose payload lies in pages, not in the SKB's linear part (UDP GSO sends build
/// them so, as large and zero-copy sends do): the egress classifier pulls its first bytes in
/// and reads it.
#[test]
fn answers_in_non_linear_buffers_are_read_on_egress() {
    require_root!();
    let lab = Lab::new();
    let d = DaemonProc::start(&lab, RULES);
    let (host, peer) = (lab.host_ip4(), lab.peer_ip4());
    let sent = sipwall_tests::netns::in_netns(&lab.host, move || {
        let sock = std::net::UdpSocket::bind(format!("{host}:5060")).unwrap();
        let gso: libc::c_int = 1200;
        // SAFETY: setting an int socket option on a socket we own.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_UDP,
                libc::UDP_SEGMENT,
                (&raw const gso).cast::<libc::c_void>(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "UDP_SEGMENT: {}", std::io::Error::last_os_error());
        let answer = "SIP/2.0 403 Forbidden\r\nVia: SIP/2.0/UDP 10.0.0.1:5099;branch=z9hG4bK1\r\n\
                      Call-ID: gso-1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        sock.send_to(answer.as_bytes(), format!("{peer}:5099")).unwrap()
    })
    .join()
    .unwrap();
    assert!(sent > 0);
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_sip_failures_answered_total", r#"status="403""#) == 1),
        "{}\n{}",
        d.metrics(),
        d.log_text()
    );
}

#[test]
fn stopping_keeps_enforcing_until_detached() {
    require_root!();
    let lab = Lab::new();
    let mut d = DaemonProc::start(&lab, RULES);
    let link = || {
        String::from_utf8_lossy(&lab.cmd(&lab.host, "ip").args(["link", "show", &lab.host_if]).output().unwrap().stdout)
            .into_owned()
    };
    assert!(link().contains("xdp"), "attached: {}", link());
    assert!(!link().contains("xdpgeneric"), "native mode: {}", link());
    let status = d.stop();
    assert!(status.success(), "{status}: {}", d.log_text());
    assert!(!d.socket.exists(), "control socket removed");
    assert!(link().contains("xdp"), "still attached after the daemon stopped: {}", link());
    assert!(d.log_text().contains("stays attached and keeps enforcing"), "{}", d.log_text());
    let rx = Receiver::start(&lab);
    send_all(&lab, (0..10).map(|i| frame(&lab, "203.0.113.5", 9999, false, "down", i)).collect());
    rx.settle();
    assert_eq!(rx.count("down"), 0, "blocked while the daemon is down");

    let out = d.detach();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("detached from {}", lab.host_if)));
    assert!(!link().contains("xdp"), "detached: {}", link());
    // with the program gone, a blocked source reaches the host again
    send_all(&lab, (0..10).map(|i| frame(&lab, "203.0.113.5", 9999, false, "after", i)).collect());
    rx.settle();
    assert_eq!(rx.count("after"), 10);
}

#[test]
fn detach_on_exit_leaves_nothing_behind() {
    require_root!();
    let lab = Lab::new();
    let mut d = DaemonProc::start_with(&lab, RULES, &["--detach-on-exit"]);
    let link = || {
        String::from_utf8_lossy(&lab.cmd(&lab.host, "ip").args(["link", "show", &lab.host_if]).output().unwrap().stdout)
            .into_owned()
    };
    assert!(link().contains("xdp"));
    assert!(d.stop().success(), "{}", d.log_text());
    assert!(!link().contains("xdp"), "detached: {}", link());
    assert!(!d.pin_dir.exists(), "pins removed");
    assert!(d.log_text().contains(&format!("detached from {}", lab.host_if)));
}

#[test]
fn drop_trace_names_source_and_reason() {
    require_root!();
    let lab = Lab::new();
    let d = DaemonProc::start_with(&lab, RULES, &["--trace-drops"]);
    send_all(&lab, (0..3).map(|i| frame(&lab, "203.0.113.5", 5060, false, "t", i)).collect());
    send_all(&lab, (0..3).map(|i| frame(&lab, "2001:db8:bad::7", 5060, false, "t", i)).collect());
    assert!(
        wait_for(Duration::from_secs(60), || d.log_text().contains("drop 203.0.113.5 service 1 reason blocked")
            && d.log_text().contains("drop 2001:db8:bad::7 service 1 reason blocked")),
        "{}",
        d.log_text()
    );
}

#[test]
fn one_program_on_several_interfaces() {
    require_root!();
    let lab = Lab::new();
    let (peer2, host2, mac2) = lab.add_link();
    let iface = format!("{},{host2}", lab.host_if);
    let d = DaemonProc::start_with(&lab, RULES, &["--iface", &iface]);
    let m = d.metrics();
    for i in [&lab.host_if, &host2] {
        assert_eq!(metric(&m, &format!("sipwall_xdp_attached{{iface=\"{i}\",mode=\"native\"}}")), Some(1.0), "{m}");
    }
    // blocked traffic on the second link is dropped too, and counted with the first's
    let rx = sipwall_tests::netns::in_netns(&lab.host, {
        let h = host2.clone();
        move || sipwall_tests::netns::RawSock::open(&h).unwrap()
    })
    .join()
    .unwrap();
    let mut frames = Vec::new();
    for (i, src) in ["203.0.113.5", "192.0.2.40"].iter().enumerate() {
        let mut f = frame(&lab, src, 9999, false, "two", i as u64);
        f[..6].copy_from_slice(&mac2);
        frames.push(f);
    }
    sipwall_tests::netns::in_netns(&lab.peer, move || {
        let s = sipwall_tests::netns::RawSock::open(&peer2).unwrap();
        for f in frames {
            s.send(&f).unwrap();
        }
    })
    .join()
    .unwrap();
    let mut got = Vec::new();
    while let Some(f) = rx.recv() {
        if f.windows(8).any(|w| w == b"SWT:two:") {
            got.push(f);
        }
    }
    assert_eq!(got.len(), 1, "only the unblocked source arrives");
    assert!(wait_for(Duration::from_secs(60), || {
        metric(&d.metrics(), "sipwall_packets_total{action=\"drop\",reason=\"blocked\",service=\"none\"}") == Some(1.0)
    }));
    // an interface that goes away takes the program with it, and the metric says so
    sipwall_tests::netns::sh(&["ip", "-n", &lab.host, "link", "del", &host2]);
    let attached = |i: &str| metric(&d.metrics(), &format!("sipwall_xdp_attached{{iface=\"{i}\",mode=\"native\"}}"));
    assert!(wait_for(Duration::from_secs(60), || attached(&host2) == Some(0.0)), "{}", d.metrics());
    assert_eq!(attached(&lab.host_if), Some(1.0), "{}", d.metrics());
}
