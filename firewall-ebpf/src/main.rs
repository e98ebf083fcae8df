//! sipwall's XDP program: parse, classify the source, enforce services, count.
#![no_std]
#![no_main]

mod clock;
mod cursor;
mod egress;
mod events;
mod good;
mod limit;
mod maps;
mod nets;
mod parse;
mod sip;
mod stats;
mod trace;
mod transport;
mod verdict;

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use firewall_common::reason::{Action, Reason};
use verdict::Verdict;

/// The data path; see docs/architecture.md for the order of the checks.
#[xdp]
pub fn sipwall(ctx: XdpContext) -> u32 {
    match parse::parse(&ctx) {
        // finished on its own: a frame that did not parse carries no source to the end
        Err(reason) => finish(&ctx, &Verdict::unparsed(reason)),
        Ok(pkt) => {
            let v = verdict::decide(pkt);
            if v.reason == Reason::Accepted {
                // The service's slot in SW_TAIL: the SIP inspector for the `sip` service, empty
                // for the others. On success the inspector finishes the packet; on failure (an
                // empty slot) this program goes on. No branch on the service: each would double
                // the verifier's work on the accepted paths.
                // SAFETY: a tail call returns only when it fails.
                unsafe { maps::SW_TAIL.tail_call(&ctx, v.svc) };
            }
            finish(&ctx, &v)
        }
    }
}

/// The SIP inspector's first stage (see `sip`), tail-called for accepted traffic to the `sip`
/// service.
#[xdp]
pub fn sipwall_sip(ctx: XdpContext) -> u32 {
    sip::gate::inspect(&ctx)
}

/// The SIP inspector's full inspection, tail-called by `sipwall_sip`.
#[xdp]
pub fn sipwall_sip_full(ctx: XdpContext) -> u32 {
    sip::full::inspect(&ctx)
}

/// Counts the verdict and turns it into an XDP action.
#[inline(always)]
fn finish(ctx: &XdpContext, v: &Verdict) -> u32 {
    stats::count(ctx, v.reason, v.svc);
    match v.reason.action() {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => {
            if trace::enabled() {
                trace::drop(ctx, v);
            }
            xdp_action::XDP_DROP
        }
    }
}

/// The egress classifier: reports the SIP failures the host answers (see `egress`); passes
/// everything.
#[classifier]
pub fn sipwall_egress(ctx: TcContext) -> i32 {
    egress::account(&ctx);
    TC_ACT_OK
}

/// Samples jiffies and CLOCK_MONOTONIC together into `SW_CLOCK`; the daemon runs it with
/// BPF_PROG_TEST_RUN to convert ban expiries and rates into jiffies. Never attached.
#[xdp]
pub fn sipwall_clock(_ctx: XdpContext) -> u32 {
    clock::sample();
    xdp_action::XDP_PASS
}

/// Baseline for `cargo xtask bench`: the cost of running any XDP program at all.
#[xdp]
pub fn sipwall_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
