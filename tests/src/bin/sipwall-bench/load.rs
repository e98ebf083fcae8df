//! Loading bans into the kernel and the daemon's memory: a store holding N bans, then
//! `sipwall run` (release build) started on it twice: with nothing pinned (the bans go from the
//! store into new tables, as after a reboot) and with the tables of the first run pinned (a
//! restart: the tables are taken over). The daemon logs how long each took; its resident
//! memory is read from /proc after it settles.

use std::time::Duration;

use sipwall::{datapath::bans::Ban, store::Store};
use sipwall_tests::{daemon::DaemonProc, netns::Lab};

use crate::util::{human, status_kb};

fn ban(i: u32) -> Ban {
    // spread over the whole address space, clear of the lab's own 10.200/16
    let a = i.wrapping_mul(2_654_435_761) | 0x0100_0000;
    let a = if a >> 24 == 10 { a ^ 0x4000_0000 } else { a };
    Ban {
        target: ipnet::IpNet::from(std::net::IpAddr::V4(a.into())),
        expires_unix_ms: Some(
            sipwall::datapath::clock::unix_ms(std::time::SystemTime::now())
                + 6 * 3_600_000
                + u64::from(i % 3600) * 1000,
        ),
        created_unix_ms: sipwall::datapath::clock::unix_ms(std::time::SystemTime::now()),
        reason: "asterisk: 3 failures within 10m".into(),
        source: "asterisk".into(),
    }
}

/// The number after `marker` in the log: "... in 123 ms".
fn ms_after(log: &str, marker: &str) -> Option<f64> {
    let line = log.lines().rev().find(|l| l.contains(marker))?;
    let at = line.rfind(" in ")?;
    line[at + 4..].trim_end_matches(" ms").trim().parse().ok()
}

pub fn run(quick: bool) -> String {
    let n: u32 = if quick { 100_000 } else { 1_000_000 };
    let rules = format!(
        "[bans]\ncapacity = {}\n[services.sip]\nports = [\"5060/udp\"]\n[jails.asterisk]\nenabled = false\n[jails.sshd]\nenabled = false\n",
        n + 1024
    );
    let lab = Lab::new();
    let mut d = DaemonProc::prepare(&lab, &rules, &[]);
    eprintln!("load: writing {} bans to the store", human(n as usize));
    {
        let mut store = Store::open(&d.dir.join("state")).unwrap();
        let bans: Vec<Ban> = (0..n).map(ban).collect();
        store.replace_all(bans.iter()).unwrap();
    }
    let mut rows = Vec::new();
    for (what, marker) in [
        ("from the store into new tables (first start, after a reboot)", "restored "),
        ("taking over the pinned tables (restart, upgrade)", "took over the pinned tables"),
    ] {
        let t0 = std::time::Instant::now();
        d.spawn(&lab);
        let ready = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(3));
        let pid = d.pid();
        let (rss, hwm) = (status_kb(pid, "VmRSS").unwrap_or(0), status_kb(pid, "VmHWM").unwrap_or(0));
        let log = d.log_text();
        let load = ms_after(&log, marker).unwrap_or_else(|| panic!("no `{marker}` line in the log:\n{log}"));
        let listed = d.cli_ok(&["status", "--json"]);
        assert!(listed.contains(&format!("\"bans_active\": {n}")), "{listed}");
        rows.push((what, load, ready, rss, hwm));
        d.stop();
    }
    let mut md = format!(
        "{} IPv4 bans in the store; `sipwall run` (release build) started on them twice.\n\n\
         | start | bans into the kernel | start to serving | RSS after start | peak RSS |\n|---|---:|---:|---:|---:|\n",
        human(n as usize)
    );
    for (what, load, ready, rss, hwm) in rows {
        md.push_str(&format!(
            "| {what} | {:.2} s | {:.2} s | {:.0} MiB | {:.0} MiB |\n",
            load / 1000.0,
            ready,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        ));
    }
    md
}
