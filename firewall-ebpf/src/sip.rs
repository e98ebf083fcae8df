//! The SIP inspector, `sipwall_sip`: the XDP program tail-calls it for the packets it accepted
//! for the `sip` service (see docs/architecture.md). It copies the payload into a per-CPU
//! scratch buffer, reads the start line, walks the header block and then searches the values
//! for scanner signatures from two `bpf_loop` callbacks (each checked once by the verifier,
//! whatever the number of calls: their state lives in the map), and drops what `[sip]` forbids,
//! reporting each drop to the daemon. A request from a source inspected clean within
//! `[sip] reinspect` (`SW_SIP_CLEAN`) is read from the packet only as far as its method.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_jiffies64, bpf_loop, bpf_xdp_load_bytes},
    programs::XdpContext,
    EbpfContext,
};
use firewall_common::{
    addr::Addr6,
    config::RATE6_PREFIX,
    maps::capacity,
    rate::{event, RateEvent, RateKey, FAMILY_V6},
    reason::Reason,
    service::{policy, port_slot},
    sip::{
        clean::{Clean, Source},
        method,
        policy::{method_key, sip_flag, METHOD_SLOTS},
        word::opaque,
        Classifier, Method, SignatureTable, SipPolicy, SipScratch, Step, INSPECT_LEN, MAX_HEADER_STEPS,
        MAX_SEARCH_STEPS, SCRATCH_MASK,
    },
};

use crate::{
    cursor::{bytes, frame_len},
    events, limit,
    maps::{SW_CONFIG, SW_PORTS, SW_SERVICES, SW_SIP, SW_SIP_CLEAN, SW_SIP_SCRATCH, SW_SIP_SIGNATURES},
    parse, stats,
    transport::{segment, Segment, Way},
    verdict,
};

/// What the inspector decided, and what to tell the daemon about a drop.
struct Outcome {
    reason: Reason,
    detail: u32,
}

impl Outcome {
    const ACCEPTED: Outcome = Outcome { reason: Reason::Accepted, detail: 0 };
}

#[inline(always)]
pub fn inspect(ctx: &XdpContext) -> u32 {
    let Some(seg) = segment(ctx, Way::In) else {
        // nothing to read (IPv6 extension headers): the core program accepted it; counted
        // under its service, which the full parser finds
        let svc = parse::parse(ctx).map(|p| verdict::service_of(p.l4)).unwrap_or(0);
        return finish(ctx, svc, Reason::Accepted);
    };
    let (idx, byte) = port_slot(!seg.tcp, seg.port);
    let svc = match SW_PORTS.get(idx) {
        Some(g) => g.svc[byte & 7] as u32,
        None => 0,
    };
    let out = decide(ctx, &seg, svc);
    match out.reason {
        // the rate limiter reports its own drops
        Reason::Accepted | Reason::SipRemembered | Reason::SipMethodLimited => {}
        _ => report(&seg, svc, &out),
    }
    finish(ctx, svc, out.reason)
}

#[inline(always)]
fn finish(ctx: &XdpContext, svc: u32, reason: Reason) -> u32 {
    stats::count(ctx, reason, svc);
    match reason {
        Reason::Accepted | Reason::SipRemembered => xdp_action::XDP_PASS,
        _ => xdp_action::XDP_DROP,
    }
}

#[inline(always)]
fn decide(ctx: &XdpContext, seg: &Segment, svc: u32) -> Outcome {
    let Some(pol) = SW_SIP.get(0) else { return Outcome::ACCEPTED };
    if pol.flags & sip_flag::INSPECT == 0 {
        return Outcome::ACCEPTED;
    }
    // SAFETY: no preconditions.
    let now = unsafe { bpf_jiffies64() };
    let source = Source { addr: seg.peer, family: seg.family, port: seg.peer_port, tcp: seg.tcp as u8, _pad: 0 };
    // a request from a source inspected clean is read only as far as its method; anything
    // else (a response, a keep-alive, a continued TCP message, junk) is inspected in full
    let m = leading_method(ctx, seg);
    let request = m != Method::Unknown as u32;
    // the slot is masked into the array: there is always one
    let Some(slot) = SW_SIP_CLEAN.get_ptr_mut(source.slot(capacity::SIP_CLEAN - 1)) else {
        return Outcome::ACCEPTED;
    };
    // SAFETY: a slot of a shared array; a write racing with another CPU's costs at most one
    // request its full inspection, or lets one request of a source being inspected skip it.
    let slot = unsafe { &mut *slot };
    if pol.reinspect != 0 && request && slot.fresh(&source, pol.epoch, pol.reinspect, now) {
        return enforce(seg, svc, pol, m, now, Reason::SipRemembered);
    }
    if pol.reinspect != 0 && request {
        // remembered before the inspection and forgotten (whoever holds the slot by then) if
        // it finds a signature or no start line: a write after the inspection on the path of
        // the requests that pass would double the verifier's walk of the inspection
        *slot = Clean { source, at: now, epoch: pol.epoch, _pad: 0 };
    }
    let Some(c) = classify(ctx, seg) else { return Outcome::ACCEPTED };
    if !c.is_sip() {
        // a TCP segment may continue a message that began in an earlier one
        if seg.tcp {
            return Outcome::ACCEPTED;
        }
        // junk forgets whoever holds the slot: a source that sends it is inspected in full
        // again, and a method name followed by no start line is no request that passed
        slot.source.family = 0;
        return Outcome { reason: Reason::SipNotSip, detail: 0 };
    }
    let Some(m) = c.method_id() else { return Outcome::ACCEPTED };
    if let Some((signature, field)) = c.hit() {
        slot.source.family = 0;
        return Outcome { reason: Reason::SipScanner, detail: signature | field << 8 };
    }
    enforce(seg, svc, pol, m, now, Reason::Accepted)
}

/// What `[sip]` says of a request with method id `m` that carries no signature; `pass` if
/// nothing.
#[inline(always)]
fn enforce(seg: &Segment, svc: u32, pol: &SipPolicy, m: u32, now: u64, pass: Reason) -> Outcome {
    let m = m & (METHOD_SLOTS as u32 - 1);
    if pol.allowed.0 & (1 << m) == 0 {
        return Outcome { reason: Reason::SipMethod, detail: m };
    }
    if m == Method::Options as u32 && pol.flags & sip_flag::STEALTH_OPTIONS != 0 && !allow_listed(svc) {
        return Outcome { reason: Reason::SipStealthOptions, detail: m };
    }
    if pol.limited & (1 << m) != 0 {
        let limits = &pol.limits[m as usize];
        let Some(cfg) = SW_CONFIG.get(0) else { return Outcome::ACCEPTED };
        let addr = if seg.family == FAMILY_V6 { seg.peer.masked(RATE6_PREFIX) } else { seg.peer };
        let key = RateKey { addr, svc: method_key(svc, m), family: seg.family };
        if !limit::take(&key, limits, cfg, now) {
            return Outcome { reason: Reason::SipMethodLimited, detail: m };
        }
    }
    Outcome { reason: pass, detail: 0 }
}

/// The method id the payload starts with, read from the packet ([`Method::Unknown`] when it
/// starts with none, or is shorter than 16 bytes).
#[inline(always)]
fn leading_method(ctx: &XdpContext, seg: &Segment) -> u32 {
    if seg.end < seg.payload + 16 {
        return Method::Unknown as u32;
    }
    let Some(b) = bytes::<16>(ctx, seg.payload) else { return Method::Unknown as u32 };
    let w0 = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let w1 = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    method::leading(w0, w1) as u32
}

/// A source that reached a service with `allow_from` is in its list (the core program checked);
/// the global allow list never gets here.
#[inline(always)]
fn allow_listed(svc: u32) -> bool {
    SW_SERVICES.get(svc).is_some_and(|p| p.flags & policy::ALLOW_FROM != 0)
}

/// Copies the payload and classifies it; `None` for an empty payload or a missing map.
#[inline(always)]
fn classify(ctx: &XdpContext, seg: &Segment) -> Option<Classifier> {
    let frame = frame_len(ctx);
    let end = if seg.end < frame { seg.end } else { frame };
    if seg.payload >= end {
        return None;
    }
    let len = end - seg.payload;
    let len = if len > INSPECT_LEN { INSPECT_LEN } else { len };
    let scratch = SW_SIP_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; the program runs to completion before the next packet here.
    let s = unsafe { &mut *scratch };
    // through memory, so the compiler cannot fold the check below into one the verifier
    // does not see on the value it is given
    let n = (opaque(len) & SCRATCH_MASK) as u32;
    if n == 0 {
        return None;
    }
    // SAFETY: n <= SCRATCH_MASK < the buffer's size.
    let r =
        unsafe { bpf_xdp_load_bytes(ctx.as_ptr() as *mut _, seg.payload as u32, s.buf.as_mut_ptr() as *mut c_void, n) };
    if r != 0 {
        return None;
    }
    s.state = Classifier::new(n as usize);
    let table = SW_SIP_SIGNATURES.get(0)?;
    if s.state.first(&s.buf) == Step::Continue {
        // the callbacks get the two map values through their context, which never changes:
        // their state is in the scratch value
        let mut maps = Maps { scratch, table };
        let maps = &mut maps as *mut Maps as *mut c_void;
        // SAFETY: `maps` outlives the calls.
        unsafe {
            bpf_loop(MAX_HEADER_STEPS as u32, header_block as *mut c_void, maps, 0);
            bpf_loop(MAX_SEARCH_STEPS.div_ceil(SEARCH_STEPS_PER_CALL) as u32, search_field as *mut c_void, maps, 0);
        }
    }
    // SAFETY: as above; read back after the callbacks wrote it.
    Some(unsafe { (*scratch).state })
}

/// The callbacks' context: this CPU's scratch value and the signature table.
#[repr(C)]
struct Maps {
    scratch: *mut SipScratch,
    table: *const SignatureTable,
}

/// 32 bytes of the header block per call; 1 stops the loop.
extern "C" fn header_block(_index: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: `classify` passes a live `Maps`; the scratch slot is this CPU's.
    let s = unsafe { &mut *(*(ctx as *mut Maps)).scratch };
    stop(s.state.headers(&s.buf))
}

/// Search steps (8 bytes of a value, or the move to the next field) per call of
/// `search_field`: a third of the calls, for about 40,000 more instructions of verifier work.
const SEARCH_STEPS_PER_CALL: usize = 3;

/// [`SEARCH_STEPS_PER_CALL`] steps of the signature search; 1 stops the loop.
extern "C" fn search_field(_index: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: as in `header_block`.
    let (s, table) = unsafe {
        let m = &*(ctx as *mut Maps);
        (&mut *m.scratch, &*m.table)
    };
    // written out, not a loop: the loop compiles into more verifier work (460,000 in all)
    let mut step = || s.state.search(&s.buf, table) == Step::Done;
    if step() || step() || step() {
        return 1;
    }
    0
}

#[inline(always)]
fn stop(step: Step) -> i64 {
    match step {
        Step::Continue => 0,
        Step::Done => 1,
    }
}

/// Reports a drop: every scanner hit (the daemon bans on it, and bans stop the next ones early),
/// the other drops at most once per jiffy on each CPU.
#[inline(always)]
fn report(seg: &Segment, svc: u32, out: &Outcome) {
    // SAFETY: no preconditions.
    let now = unsafe { bpf_jiffies64() };
    if out.reason != Reason::SipScanner {
        let Some(s) = SW_SIP_SCRATCH.get_ptr_mut(0) else { return };
        // SAFETY: this CPU's slot, as in `classify`.
        let s = unsafe { &mut *s };
        if s.reported == now {
            return;
        }
        s.reported = now;
    }
    let addr: Addr6 = if seg.family == FAMILY_V6 { seg.peer.masked(RATE6_PREFIX) } else { seg.peer };
    events::send(&RateEvent {
        kind: event::SIP_DROPPED,
        svc,
        family: seg.family,
        dropped: 1,
        ts: now,
        status: out.reason as u32,
        detail: out.detail,
        addr,
    });
}
