//! Reading the events the kernel sends through its ring buffer: the XDP program's rate-limit
//! reports (for `flood`), the SIP inspector's drops (scanner signatures for `scanner`) and the
//! egress classifier's SIP failures (for `sip-wire`).

mod describe;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use firewall_common::{
    rate::{RateEvent, FAMILY_V4},
    sip::{Field, Method},
};
use tokio::io::unix::AsyncFd;

pub use self::describe::{decode, Report};
use self::describe::{drop_line, limit_name, scanner_line, SignatureLabels};
use super::{detection::Detected, lock, state::Daemon, Shared};
use crate::{detect::Event, jail::Engine, rules::jails::DetectorKind};

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
            log::error!(
                "cannot poll the event ring buffer: {e}; rate-limit reports, SIP drops and SIP failures \
                 will not reach the jails"
            );
            return;
        }
    };
    let mut reader = Reader { log: LogLimit::new(), signatures: SignatureLabels::default() };
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
            handle(&mut g, &mut reader, ev, now);
        }
    }
}

/// What the event reader keeps from one batch to the next.
struct Reader {
    log: LogLimit,
    signatures: SignatureLabels,
}

/// Log lines about kernel reports: [`LOG_BURST`] per [`LOG_WINDOW`], the rest only counted.
struct LogLimit {
    window: Instant,
    logged: usize,
    suppressed: usize,
}

impl LogLimit {
    fn new() -> LogLimit {
        LogLimit { window: Instant::now(), logged: 0, suppressed: 0 }
    }

    fn log(&mut self, level: log::Level, line: impl FnOnce() -> String) {
        if self.window.elapsed() > LOG_WINDOW {
            if self.suppressed > 0 {
                log::warn!(
                    "{} more rate-limit reports and SIP drops in the last {}s not shown",
                    self.suppressed,
                    LOG_WINDOW.as_secs()
                );
            }
            *self = LogLimit::new();
        }
        if self.logged < LOG_BURST {
            self.logged += 1;
            log::log!(level, "{}", line());
        } else {
            self.suppressed += 1;
        }
    }
}

fn handle(g: &mut Daemon, r: &mut Reader, ev: &RateEvent, now: u64) {
    match decode(ev) {
        Report::SipFailure { .. } => sip_failure(g, ev, now),
        Report::SipChallenge => {
            if !g.challenges.challenged(host_of(ev), ev, now) {
                r.log.log(log::Level::Warn, || {
                    format!("too many SIP challenges waiting for a success; {} not tracked", host_of(ev))
                });
            }
        }
        Report::SipSuccess => g.challenges.succeeded(host_of(ev)),
        Report::RateLimited { svc, method } => rate_limited(g, r, ev, svc, method, now),
        Report::Scanner { svc, index, field } => scanner(g, r, ev, (svc, index, field), now),
        // not-SIP payloads, unwanted methods and hidden OPTIONS are dropped, not punished:
        // their counts are in sipwall_packets_total
        Report::SipDropped { reason, method, .. } => {
            r.log.log(log::Level::Info, || drop_line(&source_of(ev), reason, method))
        }
        Report::Unknown { kind } => log::debug!("kernel event of unknown kind {kind} ignored"),
    }
}

fn service_name(g: &Daemon, id: u32) -> String {
    g.enforcer.services().name(id).unwrap_or("unknown").to_owned()
}

/// A source that keeps going over a limit (its service's or a SIP method's) is the flood jail's
/// business.
fn rate_limited(g: &mut Daemon, r: &mut Reader, ev: &RateEvent, svc: u32, method: Option<Method>, now: u64) {
    let svc = service_name(g, svc);
    match method {
        None => g.metrics.rate_limit_events.with_label_values(&[&svc]).inc(),
        Some(m) => g.metrics.sip_method_limit_events.with_label_values(&[m.name()]).inc(),
    }
    let limit = limit_name(&svc, method);
    let line = || format!("{} over the {limit}, {} packets dropped", source_of(ev), ev.dropped);
    report(g, (&DetectorKind::Flood, "flood"), Some(&svc), ev, line, now);
    r.log.log(log::Level::Warn, || {
        format!("{} over the {limit} ({} packets dropped since its last report)", source_of(ev), ev.dropped)
    });
}

/// One scanner packet is a failure of its source in `scanner` (which bans at the first).
fn scanner(g: &mut Daemon, r: &mut Reader, ev: &RateEvent, (svc, index, field): (u32, u32, Field), now: u64) {
    let rules = &g.enforcer.rules().sip;
    let text = describe::signature(rules, index);
    let label = r.signatures.label(text, rules, &g.metrics.sip_scanner_packets);
    g.metrics.sip_scanner_packets.with_label_values(&[label]).inc_by(u64::from(ev.dropped.max(1)));
    let line = scanner_line(&source_of(ev), text, index, field);
    r.log.log(log::Level::Info, || format!("{line}, dropped"));
    let svc = service_name(g, svc);
    report(g, (&DetectorKind::Scanner, "scanner"), Some(&svc), ev, || line, now);
}

/// A SIP failure the host answered counts against its destination in `sip-wire`.
fn sip_failure(g: &mut Daemon, ev: &RateEvent, now: u64) {
    g.metrics.sip_failures_answered.with_label_values(&[&ev.status.to_string()]).inc();
    let line = || format!("SIP/2.0 {} answered to {}", ev.status, host_of(ev));
    report(g, (&DetectorKind::SipWire, "sip-wire"), None, ev, line, now);
}

/// The SIP challenges no success followed within the wait count as failures in `sip-wire`.
pub fn unanswered(g: &mut Daemon) {
    let now = crate::clock::unix_ms(std::time::SystemTime::now());
    for ev in g.challenges.unanswered(now) {
        g.metrics.sip_failures_answered.with_label_values(&[&ev.status.to_string()]).inc();
        let line = || {
            let wait = super::challenges::WAIT_MS / 1000;
            format!("SIP/2.0 {} answered to {}, no success within {wait}s", ev.status, host_of(&ev))
        };
        report(g, (&DetectorKind::SipWire, "sip-wire"), None, &ev, line, now);
    }
}

/// The jail fed by `detector` that takes a report (about service `svc`, if it is about one): the
/// first enabled one, unless its `services` list leaves `svc` out.
fn jail_for(engine: &Engine, detector: &DetectorKind, svc: Option<&str>) -> Option<usize> {
    let j = engine.fed_by(detector)?;
    let spec = &engine.jails[j].spec;
    if svc.is_some_and(|s| !spec.services.is_empty() && !spec.services.iter().any(|x| x == s)) {
        return None;
    }
    Some(j)
}

/// Counts `ev` as a failure (of `rule`) of its source in the jail fed by `detector`, if one
/// takes it ([`jail_for`]).
fn report(
    g: &mut Daemon,
    (detector, rule): (&DetectorKind, &'static str),
    svc: Option<&str>,
    ev: &RateEvent,
    line: impl FnOnce() -> String,
    now: u64,
) {
    let Some(j) = jail_for(&g.engine, detector, svc) else { return };
    let x = Detected {
        jail: g.engine.jails[j].spec.name.as_str().into(),
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
