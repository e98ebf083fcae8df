//! The SIP inspector: the XDP program tail-calls it for the packets it accepted for the `sip`
//! service (see docs/architecture.md). Two programs chained by a tail call, each checked by the
//! verifier on its own:
//!
//! - `sipwall_sip` ([`gate`]) reads the request's method. A request from a source inspected
//!   clean within `[sip] reinspect` (`SW_SIP_CLEAN`) goes straight to the method checks; any
//!   other packet is copied into the per-CPU scratch buffer with a [`Handoff`] and goes on to
//! - `sipwall_sip_full` ([`full`]), which reads the start line, walks the header block and
//!   searches the values for scanner signatures from `bpf_loop` callbacks (each checked once,
//!   whatever the number of calls: their state lives in the map), then applies `[sip]`.
//!
//! The second stage starts from map memory, whose contents the verifier does not track, so it
//! is checked once rather than once per path of the first: on Linux 6.1 the two in one program
//! went past the verifier's limit of a million instructions. Each drop is reported to the
//! daemon.

pub mod full;
pub mod gate;
mod proof;

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use firewall_common::{
    addr::Addr6,
    config::RATE6_PREFIX,
    rate::{event, RateEvent, RateKey, FAMILY_V6},
    reason::{Action, Reason},
    service::policy,
    sip::{
        policy::{method_key, sip_flag, METHOD_SLOTS},
        Handoff, Method, SipPolicy,
    },
};

use crate::{
    clock, events, good, limit,
    maps::{SW_CONFIG, SW_SERVICES, SW_SIP_SCRATCH},
    stats,
};

/// What the inspector decided, and what to tell the daemon about a drop.
struct Outcome {
    reason: Reason,
    detail: u32,
}

impl Outcome {
    const ACCEPTED: Outcome = Outcome { reason: Reason::Accepted, detail: 0 };
}

/// Reports the outcome if it is a drop the daemon hears of, counts it and turns it into an XDP
/// action.
#[inline(always)]
fn conclude(ctx: &XdpContext, who: &Handoff, out: &Outcome) -> u32 {
    // the rate limiter reports its own drops
    if out.reason.action() == Action::Drop && out.reason != Reason::SipMethodLimited {
        report(who, out);
    }
    finish(ctx, who.svc, out.reason)
}

#[inline(always)]
fn finish(ctx: &XdpContext, svc: u32, reason: Reason) -> u32 {
    stats::count(ctx, reason, svc);
    match reason.action() {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => xdp_action::XDP_DROP,
    }
}

/// What `[sip]` says of a request with method id `m` that carries no signature; `pass` if
/// nothing.
#[inline(always)]
fn enforce(who: &Handoff, pol: &SipPolicy, m: u32, pass: Reason) -> Outcome {
    let m = m & (METHOD_SLOTS as u32 - 1);
    if pol.allowed.0 & (1 << m) == 0 {
        return Outcome { reason: Reason::SipMethod, detail: m };
    }
    if m == Method::Options as u32 && pol.flags & sip_flag::STEALTH_OPTIONS != 0 && !allow_listed(who.svc) {
        return Outcome { reason: Reason::SipStealthOptions, detail: m };
    }
    if pol.limited & (1 << m) != 0 {
        let limits = &pol.limits[m as usize];
        let Some(cfg) = SW_CONFIG.get(0) else { return Outcome::ACCEPTED };
        let addr = if who.family == FAMILY_V6 { who.peer.masked(RATE6_PREFIX) } else { who.peer };
        let key = RateKey { addr, svc: method_key(who.svc, m), family: who.family };
        if !limit::take(&key, limits, cfg, who.now) && !good::known(addr, who.family, who.now) {
            return Outcome { reason: Reason::SipMethodLimited, detail: m };
        }
    }
    Outcome { reason: pass, detail: 0 }
}

/// A source that reached a service with `allow_from` is in its list (the core program checked);
/// the global allow list never gets here.
#[inline(always)]
fn allow_listed(svc: u32) -> bool {
    SW_SERVICES.get(svc).is_some_and(|p| p.flags & policy::ALLOW_FROM != 0)
}

/// Reports a drop: every scanner hit (the daemon bans on it, and bans stop the next ones early),
/// the other drops at most once per jiffy on each CPU.
#[inline(always)]
fn report(who: &Handoff, out: &Outcome) {
    let now = clock::now();
    if out.reason != Reason::SipScanner {
        let Some(s) = SW_SIP_SCRATCH.get_ptr_mut(0) else { return };
        // SAFETY: this CPU's slot; the program runs to completion before the next packet here.
        let s = unsafe { &mut *s };
        if s.reported == now {
            return;
        }
        s.reported = now;
    }
    let addr: Addr6 = if who.family == FAMILY_V6 { who.peer.masked(RATE6_PREFIX) } else { who.peer };
    events::send(&RateEvent {
        kind: event::SIP_DROPPED,
        svc: who.svc,
        family: who.family,
        dropped: 1,
        ts: now,
        status: out.reason as u32,
        detail: out.detail,
        addr,
    });
}
