//! Reading the events the kernel sends through its ring buffer: the XDP program's rate-limit
//! reports (for `flood`) and the egress classifier's SIP failures (for `sip-wire`).

use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use firewall_common::rate::{event, RateEvent, FAMILY_V4};
use tokio::io::unix::AsyncFd;

use super::{detection::Detected, lock, state::Daemon, Shared};
use crate::{detect::Event, rules::jails::DetectorKind};

/// Log lines per window; the rest are summed up, so a spoofed flood cannot flood the log.
const LOG_BURST: usize = 10;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// The reported source as an address (an IPv6 source is its /64).
pub fn host_of(ev: &RateEvent) -> std::net::IpAddr {
    if ev.family == FAMILY_V4 {
        std::net::Ipv4Addr::from(ev.addr.lo as u32).into()
    } else {
        std::net::Ipv6Addr::from(ev.addr.to_be_bytes()).into()
    }
}

pub fn source_of(ev: &RateEvent) -> String {
    if ev.family == FAMILY_V4 {
        std::net::Ipv4Addr::from(ev.addr.lo as u32).to_string()
    } else {
        format!("{}/64", std::net::Ipv6Addr::from(ev.addr.to_be_bytes()))
    }
}

pub async fn read(ring: RingBuf<MapData>, d: Shared) {
    // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd until it is dropped.
    let mut fd = match unsafe { AsyncFd::register(ring) } {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot poll the event ring buffer: {e}; rate-limit events will not be reported");
            return;
        }
    };
    let (mut window, mut logged, mut suppressed) = (Instant::now(), 0usize, 0usize);
    loop {
        let mut guard = match fd.readable_mut().await {
            Ok(g) => g,
            Err(e) => {
                log::error!("event ring buffer: {e}");
                return;
            }
        };
        let mut batch = Vec::new();
        while let Some(item) = guard.get_inner_mut().next() {
            if item.len() >= std::mem::size_of::<RateEvent>() {
                // SAFETY: the kernel writes whole RateEvent records.
                batch.push(unsafe { std::ptr::read_unaligned(item.as_ptr() as *const RateEvent) });
            }
        }
        guard.clear_ready();
        if batch.is_empty() {
            continue;
        }
        let mut g = lock(&d);
        let now = crate::clock::unix_ms(std::time::SystemTime::now());
        for ev in &batch {
            if ev.kind == event::SIP_FAILURE {
                sip_failure(&mut g, ev, now);
                continue;
            }
            let svc = g.enforcer.services().name(ev.svc).unwrap_or("unknown").to_owned();
            g.metrics.rate_limit_events.with_label_values(&[&svc]).inc();
            // a source that keeps going over its limit is the flood jail's business
            let line = || format!("{} over the {svc} rate limit, {} packets dropped", source_of(ev), ev.dropped);
            report(&mut g, (&DetectorKind::Flood, "flood"), Some(&svc), ev, line, now);
            if window.elapsed() > LOG_WINDOW {
                if suppressed > 0 {
                    log::warn!("{suppressed} more rate-limit reports in the last {}s not shown", LOG_WINDOW.as_secs());
                }
                (window, logged, suppressed) = (Instant::now(), 0, 0);
            }
            if logged < LOG_BURST {
                logged += 1;
                log::warn!(
                    "{} over the {svc} rate limit ({} packets dropped since its last report)",
                    source_of(ev),
                    ev.dropped
                );
            } else {
                suppressed += 1;
            }
        }
    }
}

/// A SIP failure the host answered counts against its destination in `sip-wire`.
fn sip_failure(g: &mut Daemon, ev: &RateEvent, now: u64) {
    g.metrics.sip_failures_answered.with_label_values(&[&ev.status.to_string()]).inc();
    let line = || format!("SIP/2.0 {} answered to {}", ev.status, host_of(ev));
    report(g, (&DetectorKind::SipWire, "sip-wire"), None, ev, line, now);
}

/// Counts `ev` as a failure (of `rule`) of its source in the jail fed by `detector`, if one is enabled (and,
/// for a report about service `svc`, if the jail takes that service's reports).
fn report(
    g: &mut Daemon,
    (detector, rule): (&DetectorKind, &'static str),
    svc: Option<&str>,
    ev: &RateEvent,
    line: impl FnOnce() -> String,
    now: u64,
) {
    let Some(j) = g.engine.fed_by(detector) else { return };
    let spec = &g.engine.jails[j].spec;
    if svc.is_some_and(|s| !spec.services.is_empty() && !spec.services.iter().any(|x| x == s)) {
        return;
    }
    let x = Detected {
        jail: spec.name.as_str().into(),
        event: Event::failure(host_of(ev), None, rule),
        line: line(),
        read_at: Instant::now(),
    };
    g.detected(x, now);
}

/// Forwards the XDP program's drop trace (aya-log records) to the daemon's log.
pub async fn trace(logger: aya_log::EbpfLogger<&'static dyn log::Log>) {
    // SAFETY: the logger owns its ring buffer fd for as long as the AsyncFd lives.
    let mut fd = match unsafe { AsyncFd::register(logger) } {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot poll the drop trace: {e}");
            return;
        }
    };
    loop {
        let Ok(mut guard) = fd.readable_mut().await else { return };
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
