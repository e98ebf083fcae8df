//! The egress classifier: reads the SIP answers leaving the host and reports the failures
//! (403 Forbidden, 404 Not Found) to the daemon, per destination, for the `sip-wire` jail.
//! Detection that needs no log, for any SIP server. It never drops anything.
//!
//! Challenges (401, 407) are reported too, and so is the first success (2xx) to a destination
//! challenged before (`SW_CHALLENGED` remembers which): a client that knows its password
//! answers its challenge and succeeds, a password guesser collects challenges. The daemon
//! counts a challenge no success followed as a failure.

use aya_ebpf::programs::TcContext;
use firewall_common::{
    rate::{event, RateEvent, RateKey},
    service::{policy, port_slot},
};

use crate::{
    clock,
    cursor::bytes,
    events,
    maps::{SW_CHALLENGED, SW_PORTS, SW_SERVICES},
    transport::{segment, Way},
};

/// `SIP/2.0 `, the first eight bytes of an answer, read as one little-endian word.
const SIP_20: u64 = u64::from_le_bytes(*b"SIP/2.0 ");

/// The event kind and status of an answer worth a look, from the start of a UDP payload.
#[inline(always)]
fn answer(head: &[u8; 12]) -> Option<(u32, u32)> {
    let word = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
    if word != SIP_20 || head[11] != b' ' {
        return None;
    }
    match (head[8], head[9], head[10]) {
        (b'4', b'0', b'3') => Some((event::SIP_FAILURE, 403)),
        (b'4', b'0', b'4') => Some((event::SIP_FAILURE, 404)),
        (b'4', b'0', b'1') => Some((event::SIP_CHALLENGE, 401)),
        (b'4', b'0', b'7') => Some((event::SIP_CHALLENGE, 407)),
        (b'2', b'0'..=b'9', b'0'..=b'9') => {
            Some((event::SIP_SUCCESS, 200 + (head[9] - b'0') as u32 * 10 + (head[10] - b'0') as u32))
        }
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
    let Some((kind, status)) = answer(head) else { return };
    let key = RateKey { addr: out.peer, svc, family: out.family };
    match kind {
        event::SIP_CHALLENGE => {
            // a full table forgets the least recently challenged: at worst a success unreported
            let _ = SW_CHALLENGED.insert(&key, &0, 0);
        }
        event::SIP_SUCCESS => {
            // only the first success after a challenge (removing it fails for the others)
            if SW_CHALLENGED.remove(&key).is_err() {
                return;
            }
        }
        _ => {}
    }
    events::send(&RateEvent {
        kind,
        svc,
        family: out.family,
        dropped: 0,
        ts: clock::now(),
        status,
        detail: 0,
        addr: out.peer,
    });
}
