//! sipwall's XDP program: parse, classify the source, enforce services, count.
#![no_std]
#![no_main]

mod cursor;
mod limit;
mod maps;
mod nets;
mod parse;
mod stats;
mod verdict;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use firewall_common::reason::Action;

/// The data path; see docs/architecture.md for the order of the checks.
#[xdp]
pub fn sipwall(ctx: XdpContext) -> u32 {
    let (reason, svc) = verdict::decide(&ctx);
    stats::count(&ctx, reason, svc);
    match reason.action() {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => xdp_action::XDP_DROP,
    }
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
