//! `sipwall run --trace-drops`: one log line per dropped packet, through aya-log. Off by
//! default; the switch is a load-time constant, so the verifier removes this code when off.

use aya_ebpf::{programs::XdpContext, Global};
use aya_log_ebpf::info;
use firewall_common::reason::Reason;

use crate::parse::Src;

/// Set to 1 by the loader to trace drops.
#[unsafe(no_mangle)]
static SIPWALL_TRACE: Global<u32> = Global::new(0);

#[inline(always)]
pub fn enabled() -> bool {
    SIPWALL_TRACE.load() != 0
}

#[inline(always)]
pub fn drop(ctx: &XdpContext, reason: Reason, svc: u32, src: Option<Src>) {
    match src {
        Some(s) if s.v6 => {
            let a = s.addr.to_be_bytes();
            info!(ctx, "drop {:i} service {} reason {}", a, svc, reason.name());
        }
        Some(s) => info!(ctx, "drop {:i} service {} reason {}", u32::from_be(s.addr_be), svc, reason.name()),
        None => info!(ctx, "drop unparsed frame reason {}", reason.name()),
    }
}
