//! Reading the events the kernel sends through its ring buffer: the XDP program's rate-limit
//! reports (for `flood`), the SIP inspector's drops (scanner signatures for `scanner`), the
//! egress classifier's SIP answers (failures for `sip-wire`, and the tokens of proofs) and the
//! requests of the sources awaited for a proof (see [`crate::detection::proof`]).
//!
//! What one forged packet can cause (a rate-limit report, a scanner packet, an answer to a
//! request nobody proved was sent from its address) is reported as unproven evidence.

mod describe;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use firewall_common::{
    proof::SipAnswer,
    rate::{RateEvent, FAMILY_V4},
    sip::{Field, Method, SipScratch},
};
use tokio::io::unix::AsyncFd;

pub use self::describe::{decode, Report};
use self::describe::{drop_line, limit_name, scanner_line, SignatureLabels};
use super::{detection::Detected, lock, state::Daemon, Shared};
use crate::{
    detection::detect::{Event, Proof},
    detection::jail::Engine,
    detection::proof::Call,
    rules::jails::DetectorKind,
};

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

/// The full address of a peer the kernel reported (`addr` as the kernel keeps it).
fn peer_of(family: u32, addr: firewall_common::addr::Addr6) -> std::net::IpAddr {
    if family == FAMILY_V4 {
        std::net::Ipv4Addr::from(addr.lo as u32).into()
    } else {
        std::net::Ipv6Addr::from(addr.to_be_bytes()).into()
    }
}

/// A record of the ring buffer, told apart by its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Event(RateEvent),
    /// An answer the host sent: the event, the peer's full address and port, the text.
    Answer(RateEvent, std::net::IpAddr, u16, Vec<u8>),
    /// A request from a source awaited for a proof: its address, port and text.
    Request(std::net::IpAddr, u16, Vec<u8>),
}

impl Record {
    /// The record in `item`, `None` for one too short to be any.
    pub fn read(item: &[u8]) -> Option<Record> {
        match item.len() {
            n if n == size_of::<SipAnswer>() => {
                // SAFETY: the kernel writes whole SipAnswer records of this size.
                let a = unsafe { std::ptr::read_unaligned(item.as_ptr() as *const SipAnswer) };
                let text = a.text[..(a.len as usize).min(a.text.len())].to_vec();
                Some(Record::Answer(a.ev, peer_of(a.ev.family, a.peer), a.peer_port, text))
            }
            n if n == size_of::<SipScratch>() => {
                // SAFETY: the kernel writes whole SipScratch records of this size; read in place,
                // the record is too large to copy whole.
                let s = unsafe { &*(item.as_ptr() as *const SipScratch) };
                let who = s.handoff;
                let text = s.buf[..s.state.inspected().min(s.buf.len())].to_vec();
                Some(Record::Request(peer_of(who.family, who.peer), who.port, text))
            }
            n if n >= size_of::<RateEvent>() => {
                // SAFETY: the kernel writes whole RateEvent records.
                Some(Record::Event(unsafe { std::ptr::read_unaligned(item.as_ptr() as *const RateEvent) }))
            }
            _ => None,
        }
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
            batch.extend(Record::read(&item));
        }
        guard.clear_ready();
        if batch.is_empty() {
            continue;
        }
        let mut records = batch.into_iter().peekable();
        while records.peek().is_some() {
            {
                let mut g = lock(&d);
                let now = crate::datapath::clock::unix_ms(std::time::SystemTime::now());
                g.batch(|g| {
                    for r in records.by_ref().take(RECORDS_PER_LOCK) {
                        match r {
                            Record::Event(ev) => handle(g, &mut reader, &ev, now),
                            Record::Answer(ev, peer, port, text) => {
                                answer(g, &mut reader, &ev, (peer, port, &text), now)
                            }
                            Record::Request(peer, port, text) => request(g, peer, port, &text, now),
                        }
                    }
                });
            }
            // control requests and scrapes waiting for the lock get it between two chunks
            tokio::task::yield_now().await;
        }
    }
}

/// Kernel records handled under one hold of the daemon's lock (and saved in one group).
const RECORDS_PER_LOCK: usize = 512;

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
        // answers come with their text (`answer`); without it nothing proves them
        Report::SipFailure { .. } | Report::SipChallenge | Report::SipSuccess => {
            answer(g, r, ev, (host_of(ev), 0, &[]), now)
        }
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
    // one forged packet over the limit is enough for a report
    report(g, (&DetectorKind::Flood, "flood"), Some(&svc), (ev, Proof::Unproven), line, now);
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
    let proof = if ev.detail & firewall_common::proof::SCANNER_PROVEN != 0 { Proof::Proven } else { Proof::Unproven };
    report(g, (&DetectorKind::Scanner, "scanner"), Some(&svc), (ev, proof), || line, now);
}

/// An answer the host sent to `peer` (`text`, empty when unread): its tokens are kept for
/// proofs; a failure counts in `sip-wire` once judged proven or not, a challenge waits for a
/// success, a success after a challenge may make its source known good.
fn answer(
    g: &mut Daemon,
    r: &mut Reader,
    ev: &RateEvent,
    (peer, port, text): (std::net::IpAddr, u16, &[u8]),
    now: u64,
) {
    let host = host_of(ev);
    let call = g.proofs.answered(peer, port, text, now);
    match decode(ev) {
        Report::SipFailure { .. } => {
            g.metrics.sip_failures_answered.with_label_values(&[&ev.status.to_string()]).inc();
            // an answer whose transaction cannot be told is never proven
            let proof = match call {
                Some(c) => g.proofs.failure(host, c, *ev, now),
                None => Some(Proof::Unproven),
            };
            if let Some(p) = proof {
                sip_failure(g, ev, p, now);
            }
        }
        Report::SipChallenge => {
            if let Some(c) = call {
                g.proofs.challenged(host, c, now);
            }
            if !g.challenges.challenged(host, (*ev, call), now) {
                r.log.log(log::Level::Warn, || {
                    format!("too many SIP challenges waiting for a success; {host} not tracked")
                });
            }
        }
        Report::SipSuccess => {
            g.challenges.succeeded(host);
            if let Some(until) = call.and_then(|c| g.proofs.succeeded(host, c, now)) {
                g.known_good(host, until);
            }
        }
        _ => {}
    }
}

/// A request from a source awaited for a proof: the failures of its transaction it proves
/// count now.
fn request(g: &mut Daemon, peer: std::net::IpAddr, port: u16, text: &[u8], now: u64) {
    for w in g.proofs.request(peer, port, text, now) {
        sip_failure(g, &w.ev, Proof::Proven, now);
    }
}

/// A SIP failure the host answered counts against its destination in `sip-wire`.
fn sip_failure(g: &mut Daemon, ev: &RateEvent, proof: Proof, now: u64) {
    let line = || format!("SIP/2.0 {} answered to {}", ev.status, host_of(ev));
    report(g, (&DetectorKind::SipWire, "sip-wire"), None, (ev, proof), line, now);
}

/// Each second: the SIP challenges no success followed within the wait count as failures in
/// `sip-wire`, and so do the failures whose wait for a proof ended (unproven).
pub fn unanswered(g: &mut Daemon) {
    let now = crate::datapath::clock::unix_ms(std::time::SystemTime::now());
    for (ev, call) in g.challenges.unanswered(now) {
        g.metrics.sip_failures_answered.with_label_values(&[&ev.status.to_string()]).inc();
        let proof = call.map_or(Proof::Unproven, |c: Call| g.proofs.call(host_of(&ev), c, now));
        let line = || {
            let wait = super::challenges::WAIT_MS / 1000;
            format!("SIP/2.0 {} answered to {}, no success within {wait}s", ev.status, host_of(&ev))
        };
        report(g, (&DetectorKind::SipWire, "sip-wire"), None, (&ev, proof), line, now);
    }
    for w in g.proofs.due(now) {
        sip_failure(g, &w.ev, Proof::Unproven, now);
    }
    for host in g.proofs.expire(now) {
        g.no_longer_good(host);
    }
    g.release_held(now);
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
    (ev, proof): (&RateEvent, Proof),
    line: impl FnOnce() -> String,
    now: u64,
) {
    let Some(j) = jail_for(&g.engine, detector, svc) else { return };
    let event = match proof {
        Proof::Proven => Event::failure(host_of(ev), None, rule),
        Proof::Unproven => Event::unproven(host_of(ev), None, rule),
    };
    let x = Detected {
        jail: g.engine.jails[j].spec.name.as_str().into(),
        event,
        line: line(),
        source: "kernel".into(),
        read_at: Instant::now(),
    };
    g.counted(x, now);
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
