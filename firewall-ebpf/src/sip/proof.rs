//! What the first stage adds for the daemon's proofs (see `firewall_common::proof`): whether a
//! TCP segment belongs to a connection whose handshake completed, and the requests of the
//! sources the host awaits a proof from. Both run only for requests handed on to the full
//! inspection, and before it, so the second stage's verification does not multiply with them.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{
        bpf_sock_tuple, bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1, bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2,
        BPF_F_CURRENT_NETNS,
    },
    helpers::{bpf_sk_lookup_tcp, bpf_sk_release},
    programs::XdpContext,
    EbpfContext,
};
use firewall_common::{
    addr::Addr6,
    rate::FAMILY_V6,
    sip::{clean::Source, SipScratch},
};

use crate::{
    events,
    maps::{SW_CONFIG, SW_EVENTS, SW_SIP_AWAIT},
    transport::Segment,
};

/// `BPF_TCP_ESTABLISHED`: the listener a segment of no connection finds is in another state.
const TCP_ESTABLISHED: u32 = 1;

/// Whether the TCP segment `seg` belongs to a connection whose handshake completed: its sender
/// received the host's SYN-ACK, so its address is its own.
#[inline(always)]
pub fn established(ctx: &XdpContext, seg: &Segment) -> bool {
    // SAFETY: a zeroed C struct of plain integers.
    let mut t: bpf_sock_tuple = unsafe { core::mem::zeroed() };
    let size = if seg.family == FAMILY_V6 {
        t.__bindgen_anon_1.ipv6 = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2 {
            saddr: words(seg.peer),
            daddr: words(seg.local),
            sport: seg.peer_port.to_be(),
            dport: seg.port.to_be(),
        };
        size_of::<bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2>()
    } else {
        t.__bindgen_anon_1.ipv4 = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1 {
            saddr: (seg.peer.lo as u32).to_be(),
            daddr: (seg.local.lo as u32).to_be(),
            sport: seg.peer_port.to_be(),
            dport: seg.port.to_be(),
        };
        size_of::<bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1>()
    };
    // SAFETY: the tuple lives on the stack for the call; a socket found is released below.
    unsafe {
        let sk = bpf_sk_lookup_tcp(ctx.as_ptr(), &mut t, size as u32, BPF_F_CURRENT_NETNS as u64, 0);
        if sk.is_null() {
            return false;
        }
        let state = (*sk).state;
        bpf_sk_release(sk as *mut c_void);
        state == TCP_ESTABLISHED
    }
}

/// An IPv6 address as the four big-endian words of a socket tuple.
#[inline(always)]
fn words(a: Addr6) -> [u32; 4] {
    let b = a.to_be_bytes();
    let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

/// Sends the copied request to the daemon, whole, if the host awaits a proof from its sender
/// (address and port): it challenged it or answered it a failure within `Config::proof_wait`.
#[inline(always)]
pub fn show_if_awaited(s: &SipScratch, seg: &Segment, now: u64) {
    let source = Source { addr: seg.peer, family: seg.family, port: seg.peer_port, tcp: 0, _pad: 0 };
    // SAFETY: a plain read of a hash value.
    let Some(at) = (unsafe { SW_SIP_AWAIT.get(source) }) else { return };
    let Some(cfg) = SW_CONFIG.get(0) else { return };
    if now.wrapping_sub(*at) > cfg.proof_wait {
        return;
    }
    events::count(SW_EVENTS.output::<SipScratch>(s, 0).is_ok());
}
