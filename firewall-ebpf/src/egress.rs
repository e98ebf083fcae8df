//! The egress classifier: reads the SIP answers leaving the host and reports the failures
//! (403 Forbidden, 404 Not Found) to the daemon, per destination, for the `sip-wire` jail.
//! Detection that needs no log, for any SIP server. It never drops anything.

use aya_ebpf::{helpers::bpf_jiffies64, programs::TcContext};
use firewall_common::{
    rate::{event, RateEvent},
    service::{policy, port_slot},
};

use crate::{
    cursor::bytes,
    events,
    maps::{SW_PORTS, SW_SERVICES},
    transport::{segment, Way},
};

/// `SIP/2.0 `, the first eight bytes of an answer, read as one little-endian word.
const SIP_20: u64 = u64::from_le_bytes(*b"SIP/2.0 ");

/// The status of a SIP failure worth a report, from the start of a UDP payload.
#[inline(always)]
fn failure(head: &[u8; 12]) -> Option<u32> {
    let word = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
    if word != SIP_20 || head[11] != b' ' {
        return None;
    }
    match (head[8], head[9], head[10]) {
        (b'4', b'0', b'3') => Some(403),
        (b'4', b'0', b'4') => Some(404),
        _ => None,
    }
}

#[inline(always)]
pub fn account(ctx: &TcContext) {
    let Some(out) = segment(ctx, Way::Out) else { return };
    if out.tcp {
        return;
    }
    let (idx, byte) = port_slot(true, out.port);
    let svc = match SW_PORTS.get(idx) {
        Some(g) => g.svc[byte & 7] as u32,
        None => return,
    };
    if !SW_SERVICES.get(svc).is_some_and(|p| p.flags & policy::SIP != 0) {
        return;
    }
    let Some(head) = bytes::<12>(ctx, out.payload) else { return };
    let Some(status) = failure(head) else { return };
    events::send(&RateEvent {
        kind: event::SIP_FAILURE,
        svc,
        family: out.family,
        dropped: 0,
        // SAFETY: no preconditions.
        ts: unsafe { bpf_jiffies64() },
        status,
        detail: 0,
        addr: out.peer,
    });
}
