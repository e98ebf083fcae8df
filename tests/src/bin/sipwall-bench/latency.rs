//! Log line written → packets dropped. `sipwall run` (release build) follows an sshd log file
//! with a jail banning on the first failure. Per sample, a fresh source sends a steady flow to
//! 5060/udp; once its frames arrive, a failure line naming it is appended to the log. The
//! latency is from the write to the last of its frames that still reached the host after XDP;
//! at the flow's rate that is exact to one frame gap.

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use sipwall_tests::{
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    traffic::{frame, Flow, Receiver},
};

use crate::util::{median, quantile};

/// Frames per second of each sample's flow: one every 200 µs.
const PPS: u64 = 5_000;

fn rules(log: &Path) -> String {
    format!(
        "[services.sip]\nports = [\"5060/udp\"]\n\
         [jails.sshd]\nlogpath = [\"{}\"]\nmaxretry = 1\nbantime = \"1h\"\n\
         [jails.recidive]\nenabled = false\n[jails.asterisk]\nenabled = false\n",
        log.display()
    )
}

/// An sshd failure naming `addr`: proven evidence (sshd logs only after a completed TCP
/// handshake), so the jail bans at once. A SIP failure line (`Wrong password`) is unproven and
/// waits up to two seconds for its source to prove itself first (docs/rules.md).
fn failure(addr: &str) -> String {
    format!("Nov 22 10:00:00 pbx sshd[1638]: Failed password for root from {addr} port 50273 ssh2\n")
}

/// Mean of a Prometheus histogram from its `_sum` and `_count` lines.
fn histogram_mean(metrics: &str, name: &str) -> Option<(f64, u64)> {
    let value = |suffix: &str| -> Option<f64> {
        let key = format!("{name}_{suffix} ");
        metrics.lines().find(|l| l.starts_with(&key))?[key.len()..].trim().parse().ok()
    };
    let (sum, count) = (value("sum")?, value("count")?);
    (count > 0.0).then(|| (sum / count, count as u64))
}

pub fn run(quick: bool) -> String {
    let samples: u32 = if quick { 20 } else { 200 };
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("sipwall-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("messages");
    std::fs::write(&log, "").unwrap();
    let d = DaemonProc::start(&lab, &rules(&log));
    let rx = Receiver::start(&lab);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut ms = Vec::new();
    eprintln!("latency: {samples} samples");
    for i in 0..samples {
        let src = format!("198.18.{}.{}", i / 250, 1 + i % 250);
        let tag = format!("lat{i}");
        let (l, s, t) = (lab.clone_for_flow(), src.clone(), tag.clone());
        let flow = Flow::start(&lab, PPS, move |seq| frame(&l, &s, 5060, false, &t, seq));
        assert!(wait_for(Duration::from_secs(5), || rx.count(&tag) >= 20), "{src}: the flow does not arrive");
        let written = Instant::now();
        file.write_all(failure(&src).as_bytes()).unwrap();
        // banned once nothing more arrives for 50 ms, 250 frame gaps
        let quiet_since = || rx.last(&tag).map_or(written, |t| t.max(written));
        let stopped = wait_for(Duration::from_secs(5), || quiet_since().elapsed() > Duration::from_millis(50));
        let sent = flow.stop();
        assert!(stopped, "{src} was not banned within 5 s:\n{}", d.log_text());
        let last = rx.last(&tag).unwrap();
        ms.push(last.saturating_duration_since(written).as_secs_f64() * 1000.0);
        assert!(sent > rx.count(&tag) as u64, "{src}: every frame arrived, none was dropped");
    }
    let daemon = histogram_mean(&d.metrics(), "sipwall_ban_latency_seconds");
    let _ = std::fs::remove_dir_all(&dir);
    let mut md = format!(
        "{samples} sources, each sending {PPS} frames/s to 5060/udp through a veth pair into the daemon's \
         namespace (native XDP); a jail with `maxretry = 1` follows the log. Time from appending the \
         failure line to the last frame of that source seen after XDP (resolution {} µs).\n\n\
         | p50 | p99 | max | target p99 |\n|---:|---:|---:|---:|\n",
        1_000_000 / PPS
    );
    let max = ms.iter().cloned().fold(0.0, f64::max);
    md.push_str(&format!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | < 10 ms |\n",
        median(ms.clone()),
        quantile(&ms, 0.99),
        max
    ));
    if let Some((mean, n)) = daemon {
        md.push_str(&format!(
            "\nThe daemon's own histogram `sipwall_ban_latency_seconds` (line read → ban in the kernel): \
             mean {:.3} ms over {n} bans.\n",
            mean * 1000.0
        ));
    }
    md
}
