//! A ban storm from the kernel: `sipwall run` (release build) with a flood jail that bans every
//! source over its limit at its first report (`maxretry = 1`, `trust_unproven = true`), and
//! forged sources sending two frames each to a service allowing one, so that every source
//! becomes a kernel report and a ban. Measured: bans per second while the storm lasts, the time
//! to catch up once it stops, reports lost on the ring buffer, how long `sipwall status` waits
//! meanwhile, and that the store holds every ban in force at the end.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use sipwall::control::{client, protocol::Request};
use sipwall_tests::{
    daemon::DaemonProc,
    netns::{wait_for, Lab},
    traffic::{storm_frame, Flow, STORM_RULES},
};

use crate::util::{human, median, quantile};

/// One storm: `rate` new sources a second for `secs` seconds.
struct Storm {
    rate: u64,
    sources: u64,
    banned: u64,
    /// Bans a second, one figure per second of the storm.
    per_second: Vec<f64>,
    drain: f64,
    lost: u64,
    status_ms: Vec<f64>,
    stored: i64,
    active: u64,
}

fn storm(rate: u64, secs: u64) -> Storm {
    let lab = Lab::new();
    let mut d = DaemonProc::start(&lab, &format!("[bans]\ncapacity = 1048576\n{STORM_RULES}"));
    let banned = |d: &DaemonProc| d.metric("sipwall_bans_total", r#"jail="flood""#);
    // `sipwall status` every 50 ms while the storm lasts
    let stop = Arc::new(AtomicBool::new(false));
    let waits = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let (stop, waits, socket) = (stop.clone(), waits.clone(), d.socket.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if client::call(&socket, &Request::Status).is_ok_and(|r| r.ok) {
                    waits.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let l = lab.clone_for_flow();
    let flow = Flow::start(&lab, 2 * rate, move |i| storm_frame(&l, i));
    let mut per_second = Vec::new();
    let mut last = banned(&d);
    for _ in 0..secs {
        std::thread::sleep(Duration::from_secs(1));
        let now = banned(&d);
        per_second.push((now - last) as f64);
        last = now;
    }
    let sent = flow.stop();
    let stopped = Instant::now();
    // a source whose second frame was not sent when the flow stopped is never over its limit
    let sources = sent / 2;
    // caught up: every reported source banned, or no ban for 3 s
    let mut seen = (banned(&d), Instant::now());
    wait_for(Duration::from_secs(300), || {
        let n = banned(&d);
        if n != seen.0 {
            seen = (n, Instant::now());
        }
        n >= sources || seen.1.elapsed() > Duration::from_secs(3)
    });
    let drain = seen.1.duration_since(stopped).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    let metrics = d.metrics();
    let lost = sipwall_tests::daemon::metric_sum(&metrics, "sipwall_kernel_events_total", r#"outcome="lost""#);
    let active = sipwall_tests::daemon::metric_sum(&metrics, "sipwall_bans_active", "");
    let banned = banned(&d);
    d.stop();
    let db = stored_bans(&d.dir.join("state"));
    let status_ms = waits.lock().unwrap().clone();
    Storm { rate, sources, banned, per_second, drain, lost, status_ms, stored: db, active }
}

/// The bans in the store under `dir`, read once the daemon stopped.
fn stored_bans(dir: &std::path::Path) -> i64 {
    let store = sipwall::store::Store::open(dir).expect("open the store");
    store.load_bans().expect("read the store").0.len() as i64
}

pub fn run(quick: bool) -> String {
    let secs = if quick { 5 } else { 20 };
    let rates: &[u64] = if quick { &[10_000] } else { &[5_000, 10_000, 20_000] };
    let mut md = format!(
        "Forged sources, two frames each to a service allowing one; a flood jail bans each at its first \
         kernel report. {secs} s per row.\n\n\
         | new sources/s | sources | banned | bans/s (median second) | catch-up after the storm | reports lost | `sipwall status` p50 / p99 / max | store = bans in force |\n\
         |---:|---:|---:|---:|---:|---:|---:|---|\n"
    );
    for &rate in rates {
        eprintln!("storm: {} new sources a second for {secs} s", human(rate as usize));
        let s = storm(rate, secs);
        let p = |q| quantile(&s.status_ms, q);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} s | {} | {:.1} / {:.1} / {:.1} ms | {} ({} / {}) |\n",
            human(s.rate as usize),
            human(s.sources as usize),
            human(s.banned as usize),
            human(median(s.per_second.clone()) as usize),
            s.drain,
            s.lost,
            p(0.5),
            p(0.99),
            p(1.0),
            if s.stored == s.active as i64 { "yes" } else { "NO" },
            s.stored,
            s.active
        ));
    }
    md
}
