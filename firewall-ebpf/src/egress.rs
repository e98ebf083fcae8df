//! The egress classifier: reads the SIP answers leaving the host and reports the failures
//! (403 Forbidden, 404 Not Found) to the daemon, per destination, for the `sip-wire` jail.
//! Detection that needs no log, for any SIP server. It never drops anything.
//!
//! Challenges (401, 407) are reported too, and so is the first success (2xx) to a destination
//! challenged before (`SW_CHALLENGED` remembers which): a client that knows its password
//! answers its challenge and succeeds, a password guesser collects challenges. The daemon
//! counts a challenge no success followed as a failure.
//!
//! Each report carries the answer's text ([`SipAnswer`]): its nonce and To-tag reach only the
//! real owner of the address, so a later request that carries them proves the address (see
//! `firewall_common::proof`). The destination of a challenge or failure is awaited
//! (`SW_SIP_AWAIT`) and forgotten as inspected clean, so its next requests reach the daemon.

use core::ffi::c_void;

use aya_ebpf::{helpers::bpf_skb_load_bytes, programs::TcContext, EbpfContext};
use firewall_common::{
    maps::capacity,
    proof::{SipAnswer, ANSWER_MASK},
    rate::{event, RateEvent, RateKey},
    service::policy,
    sip::{clean::Source, word::opaque, INSPECT_LEN},
};

use crate::{
    clock,
    cursor::bytes,
    events,
    maps::{SW_CHALLENGED, SW_EVENTS, SW_SERVICES, SW_SIP_AWAIT, SW_SIP_CLEAN},
    transport::{segment, Segment, Way},
    verdict,
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

/// Bytes of an outgoing packet read directly: the headers and the start of the answer.
const HEAD_LEN: u32 = 256;

#[inline(always)]
pub fn account(ctx: &TcContext) {
    // a packet whose payload lies in pages (UDP GSO, large and zero-copy sends) has its first
    // bytes pulled into the linear part, where direct reads see them
    let linear = (ctx.data_end() - ctx.data()) as u32;
    let total = ctx.len();
    if linear < total && linear < HEAD_LEN {
        let _ = ctx.pull_data(if total < HEAD_LEN { total } else { HEAD_LEN });
    }
    let Some(out) = segment(ctx, Way::Out) else { return };
    if out.tcp {
        return;
    }
    let svc = verdict::service_of_port(true, out.port);
    if SW_SERVICES.get(svc).is_none_or(|p| p.flags & policy::SIP == 0) {
        return;
    }
    let Some(head) = bytes::<12>(ctx, out.payload) else { return };
    let Some((kind, status)) = answer(head) else { return };
    let key = RateKey { addr: out.peer, svc, family: out.family };
    let now = clock::now();
    match kind {
        event::SIP_CHALLENGE => {
            // a full table forgets the least recently challenged: at worst a success unreported
            let _ = SW_CHALLENGED.insert(key, 0, 0);
            awaited(&out, now);
        }
        event::SIP_SUCCESS => {
            // only the first success after a challenge (removing it fails for the others)
            if SW_CHALLENGED.remove(key).is_err() {
                return;
            }
        }
        _ => awaited(&out, now),
    }
    let ev = RateEvent { kind, svc, family: out.family, dropped: 0, ts: now, status, detail: 0, addr: out.peer };
    report(ctx, &out, &ev);
}

/// The destination's requests go to the daemon for a while, and through the full inspection.
#[inline(always)]
fn awaited(out: &Segment, now: u64) {
    let source = Source { addr: out.peer, family: out.family, port: out.peer_port, tcp: 0, _pad: 0 };
    // a full table forgets the source answered longest ago: at worst a proof missed
    let _ = SW_SIP_AWAIT.insert(source, now, 0);
    if let Some(slot) = SW_SIP_CLEAN.get_ptr_mut(source.slot(capacity::SIP_CLEAN - 1)) {
        // SAFETY: a slot of a shared array (see the inspector's first stage); emptied only if
        // it holds this source.
        unsafe {
            if (*slot).source.same(&source) {
                (*slot).source.family = 0;
            }
        }
    }
}

/// Sends `ev` with the answer's text.
#[inline(always)]
fn report(ctx: &TcContext, out: &Segment, ev: &RateEvent) {
    let Some(mut entry) = SW_EVENTS.reserve::<SipAnswer>(0) else {
        events::count(false);
        return;
    };
    let a = entry.as_mut_ptr();
    let total = ctx.len() as usize;
    let end = if out.end < total { out.end } else { total };
    let len = end.saturating_sub(out.payload);
    let len = if len > INSPECT_LEN { INSPECT_LEN } else { len };
    // 1 to ANSWER_MASK + 1 by its shape, whatever the verifier learns from the tests above
    let n = ((opaque(len.wrapping_sub(1)) & ANSWER_MASK) + 1) as u32;
    // SAFETY: `a` points at reserved ring buffer memory the size of a SipAnswer, and the copy
    // fits in its text.
    unsafe {
        (*a).ev = *ev;
        (*a).peer = out.peer;
        (*a).peer_port = out.peer_port;
        (*a)._pad = 0;
        let to = (*a).text.as_mut_ptr() as *mut c_void;
        let r = bpf_skb_load_bytes(ctx.as_ptr() as *const _, out.payload as u32, to, n);
        // a payload shorter than its header says: the daemon reads no text
        (*a).len = if r == 0 && len > 0 { n as u16 } else { 0 };
    }
    entry.submit(0);
    events::count(true);
}
