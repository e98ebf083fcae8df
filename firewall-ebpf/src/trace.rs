//! `sipwall run --trace-drops`: one log line per dropped packet, through aya-log. Off by
//! default; the switch is a load-time constant, so the verifier removes this code when off.

use aya_ebpf::{programs::XdpContext, Global};
use aya_log_ebpf::info;

use crate::verdict::Verdict;

/// Set to 1 by the loader to trace drops.
#[unsafe(no_mangle)]
static SIPWALL_TRACE: Global<u32> = Global::new(0);

#[inline(always)]
pub fn enabled() -> bool {
    SIPWALL_TRACE.load() != 0
}

#[inline(always)]
pub fn drop(ctx: &XdpContext, v: &Verdict) {
    let (s, svc, reason) = (&v.src, v.svc, v.reason.name());
    if !v.parsed {
        info!(ctx, "drop unparsed frame reason {}", reason);
    } else if s.v6 {
        let a = s.addr.to_be_bytes();
        info!(ctx, "drop {:i} service {} reason {}", a, svc, reason);
    } else {
        info!(ctx, "drop {:i} service {} reason {}", u32::from_be(s.addr_be), svc, reason);
    }
}
