//! The inspector's first stage, `sipwall_sip`: the method of a request from a source inspected
//! clean within `[sip] reinspect` is all it reads; anything else is copied for the full
//! inspection and handed on.

use core::ffi::c_void;

use aya_ebpf::{helpers::bpf_xdp_load_bytes, programs::XdpContext, EbpfContext};
use firewall_common::{
    maps::{capacity, SIP_STAGE_FULL},
    reason::Reason,
    sip::{
        clean::{Clean, Source},
        method, seal, sip_flag,
        word::opaque,
        Handoff, Method, INSPECT_LEN, SCRATCH_MASK,
    },
};

use super::{conclude, enforce, finish, proof, Outcome};
use crate::{
    clock,
    cursor::{bytes, frame_len},
    maps::{SW_SIP, SW_SIP_CLEAN, SW_SIP_SCRATCH, SW_SIP_STAGES},
    parse,
    transport::{segment, Segment, Way},
    verdict,
};

#[inline(always)]
pub fn inspect(ctx: &XdpContext) -> u32 {
    let Some(seg) = segment(ctx, Way::In) else {
        // nothing to read (IPv6 extension headers): the core program accepted it; counted
        // under its service, which the full parser finds
        let svc = parse::parse(ctx).map(|p| verdict::service_of(p.l4)).unwrap_or(0);
        return finish(ctx, svc, Reason::Accepted);
    };
    let svc = verdict::service_of_port(!seg.tcp, seg.port);
    let now = clock::now();
    let source = Source { addr: seg.peer, family: seg.family, port: seg.peer_port, tcp: seg.tcp as u8, _pad: 0 };
    let slot = source.slot(capacity::SIP_CLEAN - 1);
    let who = Handoff {
        peer: seg.peer,
        family: seg.family,
        svc,
        tcp: seg.tcp as u8,
        established: 0,
        port: seg.peer_port,
        slot,
        now,
    };
    let out = match first_look(ctx, &seg, &source, &who) {
        Some(out) => out,
        None => {
            // SAFETY: a tail call returns only when it fails.
            unsafe { SW_SIP_STAGES.tail_call(ctx, SIP_STAGE_FULL) };
            // an empty stage slot (the daemon fills it before the inspector goes in use): the
            // core program's verdict stands
            Outcome::ACCEPTED
        }
    };
    conclude(ctx, &who, &out)
}

/// The outcome, if this stage reaches one; `None` when the packet was handed on to the full
/// inspection.
#[inline(always)]
fn first_look(ctx: &XdpContext, seg: &Segment, source: &Source, who: &Handoff) -> Option<Outcome> {
    let Some(pol) = SW_SIP.get(0) else { return Some(Outcome::ACCEPTED) };
    if pol.flags & sip_flag::INSPECT == 0 {
        return Some(Outcome::ACCEPTED);
    }
    // a request from a source inspected clean is read only as far as its method; anything
    // else (a response, a keep-alive, a continued TCP message, junk) is inspected in full
    let m = leading_method(ctx, seg);
    let request = m != Method::Unknown as u32;
    // the slot is masked into the array: there is always one
    let Some(slot) = SW_SIP_CLEAN.get_ptr_mut(who.slot) else { return Some(Outcome::ACCEPTED) };
    // SAFETY: a slot of a shared array; a write racing with another CPU's costs at most one
    // request its full inspection, or lets one request of a source being inspected skip it.
    let slot = unsafe { &mut *slot };
    if pol.reinspect != 0 && request && slot.fresh(source, pol.epoch, pol.reinspect, who.now) {
        return Some(enforce(who, pol, m, Reason::SipRemembered));
    }
    if pol.reinspect != 0 && request {
        // remembered before the inspection and forgotten (whoever holds the slot by then) if
        // it finds a signature or no start line: a write after the inspection on the path of
        // the requests that pass would double the verifier's walk of the inspection
        *slot = Clean { source: *source, at: who.now, epoch: pol.epoch, _pad: 0 };
    }
    if !hand_on(ctx, seg, who, request) {
        return Some(Outcome::ACCEPTED);
    }
    None
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

/// Copies the payload into this CPU's scratch buffer with `who`, for the full inspection;
/// `false` for an empty payload or a failed copy. A TCP segment's handoff says whether its
/// connection is established; a UDP request from a source awaited for a proof goes to the
/// daemon.
#[inline(always)]
fn hand_on(ctx: &XdpContext, seg: &Segment, who: &Handoff, request: bool) -> bool {
    let frame = frame_len(ctx);
    let end = if seg.end < frame { seg.end } else { frame };
    if seg.payload >= end {
        return false;
    }
    let len = end - seg.payload;
    let len = if len > INSPECT_LEN { INSPECT_LEN } else { len };
    let Some(s) = SW_SIP_SCRATCH.get_ptr_mut(0) else { return false };
    // SAFETY: this CPU's slot; the program (and the one it tail-calls) runs to completion
    // before the next packet here.
    let s = unsafe { &mut *s };
    // 1 to SCRATCH_MASK + 1 by its shape alone (len is at least 1 here): a verifier that
    // learns no lower bound from a test against zero still sees a size the helper accepts
    let n = ((opaque(len - 1) & SCRATCH_MASK) + 1) as u32;
    // SAFETY: n <= SCRATCH_MASK + 1 < the buffer's size.
    let r =
        unsafe { bpf_xdp_load_bytes(ctx.as_ptr() as *mut _, seg.payload as u32, s.buf.as_mut_ptr() as *mut c_void, n) };
    if r != 0 {
        return false;
    }
    seal(&mut s.buf, n as usize);
    s.state.reset(n as usize);
    s.handoff = *who;
    if seg.tcp {
        s.handoff.established = proof::established(ctx, seg) as u8;
    } else if request {
        proof::show_if_awaited(s, seg, who.now);
    }
    true
}
