//! The inspector's second stage, `sipwall_sip_full`: classifies the payload the first stage
//! copied (start line, header block, signature search) and applies `[sip]` to it.

use core::ffi::c_void;

use aya_ebpf::{helpers::bpf_loop, programs::XdpContext};
use firewall_common::{
    proof::SCANNER_PROVEN,
    reason::Reason,
    sip::{sip_flag, Handoff, SignatureTable, SipScratch, Step, MAX_HEADER_STEPS, MAX_SEARCH_STEPS},
};

use super::{conclude, enforce, finish, Outcome};
use crate::maps::{SW_SIP, SW_SIP_CLEAN, SW_SIP_SCRATCH, SW_SIP_SIGNATURES};

#[inline(always)]
pub fn inspect(ctx: &XdpContext) -> u32 {
    // the one slot of a per-CPU array: always there
    let Some(scratch) = SW_SIP_SCRATCH.get_ptr_mut(0) else { return finish(ctx, 0, Reason::Accepted) };
    // SAFETY: this CPU's slot, filled by the first stage for this packet.
    let who = unsafe { (*scratch).handoff };
    let mut out = judge(scratch, &who);
    if out.reason == Reason::SipScanner && who.established != 0 {
        out.detail |= SCANNER_PROVEN;
    }
    conclude(ctx, &who, &out)
}

#[inline(always)]
fn judge(scratch: *mut SipScratch, who: &Handoff) -> Outcome {
    let Some(pol) = SW_SIP.get(0) else { return Outcome::ACCEPTED };
    if pol.flags & sip_flag::INSPECT == 0 {
        return Outcome::ACCEPTED;
    }
    let Some(table) = SW_SIP_SIGNATURES.get(0) else { return Outcome::ACCEPTED };
    classify(scratch, table);
    // SAFETY: as in `inspect`; read back after the callbacks wrote it.
    let c = unsafe { (*scratch).state };
    if !c.is_sip() {
        // a TCP segment may continue a message that began in an earlier one
        if who.tcp != 0 {
            return Outcome::ACCEPTED;
        }
        // junk forgets whoever holds the slot: a source that sends it is inspected in full
        // again, and a method name followed by no start line is no request that passed
        forget(who);
        return Outcome { reason: Reason::SipNotSip, detail: 0 };
    }
    let Some(m) = c.method_id() else { return Outcome::ACCEPTED };
    if let Some((signature, field)) = c.hit() {
        forget(who);
        return Outcome { reason: Reason::SipScanner, detail: signature | field << 8 };
    }
    enforce(who, pol, m, Reason::Accepted)
}

/// Empties the sender's `SW_SIP_CLEAN` slot, whoever holds it.
#[inline(always)]
fn forget(who: &Handoff) {
    if let Some(slot) = SW_SIP_CLEAN.get_ptr_mut(who.slot) {
        // SAFETY: a slot of a shared array (see the first stage).
        unsafe { (*slot).source.family = 0 };
    }
}

/// Runs the classifier over the copied payload: the start line here, the header block and the
/// signature search in `bpf_loop` callbacks.
#[inline(always)]
fn classify(scratch: *mut SipScratch, table: &SignatureTable) {
    // SAFETY: this CPU's slot.
    let s = unsafe { &mut *scratch };
    if s.state.first(&s.buf) == Step::Continue {
        // the callbacks get the two map values through their context, which never changes:
        // their state is in the scratch value
        let mut maps = Maps { scratch, table };
        let maps = (&raw mut maps).cast::<c_void>();
        // SAFETY: `maps` outlives the calls.
        unsafe {
            bpf_loop(MAX_HEADER_STEPS as u32, header_block as *mut c_void, maps, 0);
            bpf_loop(MAX_SEARCH_STEPS as u32, search_field as *mut c_void, maps, 0);
        }
    }
}

/// The callbacks' context: this CPU's scratch value and the signature table.
#[repr(C)]
struct Maps {
    scratch: *mut SipScratch,
    table: *const SignatureTable,
}

/// Up to 128 bytes of the header block and the next line to read per call; 1 stops the loop.
extern "C" fn header_block(_index: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: `classify` passes a live `Maps`; the scratch slot is this CPU's.
    let s = unsafe { &mut *(*(ctx as *mut Maps)).scratch };
    stop(s.state.headers(&s.buf))
}

/// One step of the signature search (a value, up to a word start that may begin a signature,
/// and the compare there); 1 stops the loop. Its stack and the program's must stay within the
/// kernel's 512 bytes: the search's loop keeps its state in registers and in the map.
extern "C" fn search_field(_index: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: as in `header_block`.
    let (s, table) = unsafe {
        let m = &*(ctx as *mut Maps);
        (&mut *m.scratch, &*m.table)
    };
    stop(s.state.search(&s.buf, table))
}

#[inline(always)]
fn stop(step: Step) -> i64 {
    match step {
        Step::Continue => 0,
        Step::Done => 1,
    }
}
