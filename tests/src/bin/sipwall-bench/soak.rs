//! A soak under a flood: forged sources, each sending one frame, as fast as one sender reaches
//! through the lab's veth pair (SIP requests, scanner requests, junk on 5060, SYNs to 22), while
//! sshd failures appended to a log ban addresses and an allow-listed source sends alongside.
//! Checked at the end: every address the log named is banned, in the kernel (a frame from each
//! is dropped as `banned`) and in the store, none refused or evicted; every allow-listed frame
//! that reached the program passed; the daemon's memory over the run.

use std::{
    io::Write,
    net::{IpAddr, Ipv4Addr, UdpSocket},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sipwall_tests::{
    daemon::{metric_sum, DaemonProc},
    frames::l4_frame,
    netns::{in_netns, wait_for, Lab, RawSock},
    traffic::{frame, payload},
};

use crate::util::{human, status_kb};

/// The allow-listed source: one frame in [`ALLOWED_EVERY`] is its.
const ALLOWED: &str = "198.18.0.7";
const ALLOWED_EVERY: u64 = 1_000;
/// Where the allow-listed frames go: a UDP socket on the host counts them.
const ALLOWED_PORT: u16 = 9999;

fn rules(log: &std::path::Path) -> String {
    format!(
        r#"
[allow]
sources = ["{ALLOWED}/32"]

[services.sip]
ports = ["5060/udp"]
rate = 20
burst = 40

[services.ssh]
ports = ["22/tcp"]
rate = 5
burst = 10

[jails.sshd]
logpath = ["{}"]
maxretry = 1
bantime = "1d"

[jails.asterisk]
enabled = false
"#,
        log.display()
    )
}

/// Flood source `i`: 11.0.0.0 and on, one address per frame.
fn flood_source(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32 + i as u32))
}

/// An address the log names: 100.64.0.0 and on.
fn logged(i: u32) -> String {
    Ipv4Addr::from(0x6440_0000u32 + i).to_string()
}

/// The flood frame of source `i`: a SIP request, a scanner's request, junk to 5060, or a SYN.
fn flood_frame(lab: &Lab, i: u64) -> Vec<u8> {
    let (src, dst) = (flood_source(i), lab.host_ip4().parse().unwrap());
    let f = |dport, syn, body: &[u8]| l4_frame(lab.peer_mac, lab.host_mac, src, dst, dport, syn, body);
    match i % 4 {
        0 => f(5060, false, &payload("flood", i)),
        1 => f(
            5060,
            false,
            b"OPTIONS sip:100@lab SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5060\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
        ),
        2 => f(5060, false, b"\x00\x01\x02 not SIP at all"),
        _ => f(22, true, b""),
    }
}

pub fn run(quick: bool) -> String {
    let flood: u64 = if quick { 1_000_000 } else { 10_000_000 };
    let bans: u32 = if quick { 1_000 } else { 5_000 };
    let lab = Lab::new();
    let dir = lab.scratch_dir("soak");
    let log = dir.join("auth.log");
    std::fs::write(&log, "").unwrap();
    let mut d = DaemonProc::start(&lab, &rules(&log));
    let pid = d.pid();

    // the allow-listed source's frames, counted by a socket after the program
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let counter = {
        let (stop, received) = (stop.clone(), received.clone());
        in_netns(&lab.host, move || {
            let s = UdpSocket::bind(("0.0.0.0", ALLOWED_PORT)).expect("bind the allow-listed flow's port");
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if s.recv(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // memory, twice a second
    let rss = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                v.push((Instant::now(), status_kb(pid, "VmRSS").unwrap_or(0), status_kb(pid, "RssAnon").unwrap_or(0)));
                std::thread::sleep(Duration::from_millis(500));
            }
            v
        })
    };
    // sshd failures for `bans` addresses, 200 a second
    let writer = {
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let start = Instant::now();
            for i in 0..bans {
                let due = start + Duration::from_millis(u64::from(i) * 5);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                writeln!(
                    f,
                    "Dec  5 10:00:00 pbx sshd[{}]: Failed password for root from {} port {} ssh2",
                    1000 + i,
                    logged(i),
                    40000 + i % 20000
                )
                .unwrap();
            }
        })
    };
    eprintln!("soak: {} forged sources, {} bans from the log", human(flood as usize), human(bans as usize));
    let t0 = Instant::now();
    let sent_allowed = {
        let (l, ifname) = (lab.clone_for_flow(), lab.peer_if.clone());
        in_netns(&lab.peer, move || {
            let sock = RawSock::open(&ifname).expect("packet socket on the peer side");
            let mut allowed = 0u64;
            for i in 0..flood {
                sock.send(&flood_frame(&l, i)).expect("send");
                if i % ALLOWED_EVERY == 0 {
                    sock.send(&frame(&l, ALLOWED, ALLOWED_PORT, false, "allowed", allowed)).expect("send");
                    allowed += 1;
                }
            }
            allowed
        })
        .join()
        .unwrap()
    };
    let flood_secs = t0.elapsed().as_secs_f64();
    writer.join().unwrap();
    let all_banned =
        wait_for(Duration::from_secs(120), || d.metric("sipwall_bans_total", r#"jail="sshd""#) >= u64::from(bans));
    let run_secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    counter.join().unwrap();
    let rss = rss.join().unwrap();
    let got_allowed = received.load(Ordering::Relaxed);

    let m = d.metrics();
    let allowed_passed = metric_sum(&m, "sipwall_packets_total", r#"reason="allowlisted""#);
    let lost = metric_sum(&m, "sipwall_kernel_events_total", r#"outcome="lost""#);
    let refused = metric_sum(&m, "sipwall_bans_refused_total", "");
    let drops = |reason: &str| metric_sum(&m, "sipwall_packets_total", &format!(r#"reason="{reason}""#));
    let counted = ["accepted", "sip_not_sip", "sip_scanner", "rate_limited", "unprotected_port", "banned"]
        .iter()
        .map(|r| drops(r))
        .sum::<u64>();
    let list: serde_json::Value = serde_json::from_str(&d.cli_ok(&["list", "--json"])).unwrap();
    let listed: std::collections::BTreeSet<String> =
        list.as_array().unwrap().iter().filter_map(|b| b["target"].as_str().map(str::to_owned)).collect();
    let missing = (0..bans).filter(|i| !listed.contains(&format!("{}/32", logged(*i)))).count();

    // every ban holds in the kernel: one frame from each banned address is dropped as banned
    let before = d.metric("sipwall_packets_total", r#"reason="banned""#);
    {
        let (l, ifname) = (lab.clone_for_flow(), lab.peer_if.clone());
        in_netns(&lab.peer, move || {
            let sock = RawSock::open(&ifname).expect("packet socket on the peer side");
            for i in 0..bans {
                sock.send(&frame(&l, &logged(i), 5060, false, "banned", u64::from(i))).expect("send");
                if i % 256 == 255 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
        .join()
        .unwrap();
    }
    let mut dropped = 0;
    wait_for(Duration::from_secs(10), || {
        dropped = d.metric("sipwall_packets_total", r#"reason="banned""#) - before;
        dropped >= u64::from(bans)
    });
    d.stop();
    let stored = sipwall::store::Store::open(&d.dir.join("state")).unwrap().load_bans().unwrap().0.len();

    let mib = |kb: u64| kb as f64 / 1024.0;
    // heap after each quarter of the flood: it levels off once the jails' windows are full
    let at = |q: f64| {
        let t = t0 + Duration::from_secs_f64(flood_secs * q);
        rss.iter().min_by_key(|r| if r.0 > t { r.0 - t } else { t - r.0 }).map_or(0, |r| r.2)
    };
    let quarters = [0.25, 0.5, 0.75, 1.0].map(|q| format!("{:.0}", mib(at(q)))).join(" / ");
    let row = |pick: fn(&(Instant, u64, u64)) -> u64| {
        let v: Vec<u64> = rss.iter().map(pick).collect();
        format!(
            "{:.0} / {:.0} / {:.0} MiB",
            mib(v.first().copied().unwrap_or(0)),
            mib(v.iter().copied().max().unwrap_or(0)),
            mib(v.last().copied().unwrap_or(0))
        )
    };
    format!(
        "{} forged sources (one frame each: SIP requests, scanner requests, junk to 5060, SYNs to 22) sent in \
         {flood_secs:.1} s ({} frames/s from one sender) while {} sshd failures were appended to a followed log \
         (200 a second; `maxretry = 1`); an allow-listed source sent one frame in {ALLOWED_EVERY} alongside.\n\n\
         | check | result |\n|---|---|\n\
         | bans from the log | {} of {bans} in force after {run_secs:.1} s{} |\n\
         | in the store | {stored} |\n\
         | held in the kernel (a frame from each banned address dropped as `banned`) | {dropped} of {bans} |\n\
         | bans refused | {refused} |\n\
         | allow-listed frames: sent / passed by the program / received by the host's socket | {sent_allowed} / {allowed_passed} / {got_allowed} |\n\
         | frames the program counted under the flood's reasons | {counted} |\n\
         | kernel reports lost (ring buffer full) | {lost} |\n\
         | daemon RSS: start / peak / end | {} |\n\
         | of which its own heap (`RssAnon`; the rest is mapped parts of the kernel tables) | {} |\n\
         | heap after 25 / 50 / 75 / 100 % of the flood | {quarters} MiB |\n",
        human(flood as usize),
        (flood as f64 / flood_secs) as u64,
        human(bans as usize),
        listed.len(),
        if all_banned && missing == 0 { "" } else { " (MISSING)" },
        row(|r| r.1),
        row(|r| r.2),
    )
}
