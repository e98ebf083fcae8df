//! The egress classifier: reads the SIP answers leaving the host and reports the failures
//! (403 Forbidden, 404 Not Found) to the daemon, per destination, for the `sip-wire` jail.
//! Detection that needs no log, for any SIP server. It never drops anything.

use aya_ebpf::{helpers::bpf_jiffies64, programs::TcContext};
use firewall_common::{
    addr::Addr6,
    rate::{event, event_stat, RateEvent, FAMILY_V4, FAMILY_V6},
    service::{policy, port_slot, IPPROTO_UDP},
};

use crate::{
    cursor::{be16, bytes},
    maps::{SW_EVENTS, SW_EVENT_STATS, SW_PORTS, SW_SERVICES},
    parse::{ethertype, ETH_P_IP, ETH_P_IPV6},
};

/// A UDP datagram leaving the host: where it goes, from which port, and where its payload is.
struct Outgoing {
    family: u32,
    /// The destination (IPv4 in `lo`, host order).
    dst: Addr6,
    sport: u16,
    payload: usize,
}

/// The UDP datagram in an outgoing frame; answers carry no IPv6 extension headers or IPv4
/// fragments worth reading, so those are passed over.
#[inline(always)]
fn outgoing(ctx: &TcContext) -> Option<Outgoing> {
    let (proto, off) = ethertype(ctx).ok()?;
    let (family, dst, udp_at) = match proto {
        ETH_P_IP => {
            let ip = bytes::<20>(ctx, off)?;
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IPPROTO_UDP || be16(ip, 6) & 0x3fff != 0 {
                return None;
            }
            let d = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
            (FAMILY_V4, Addr6 { hi: 0, lo: d as u64 }, off + ihl)
        }
        ETH_P_IPV6 => {
            let ip = bytes::<40>(ctx, off)?;
            if ip[0] >> 4 != 6 || ip[6] != IPPROTO_UDP {
                return None;
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&ip[24..40]);
            (FAMILY_V6, Addr6::from_be_bytes(a), off + 40)
        }
        _ => return None,
    };
    let udp = bytes::<8>(ctx, udp_at)?;
    Some(Outgoing { family, dst, sport: be16(udp, 0), payload: udp_at + 8 })
}

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
    let Some(out) = outgoing(ctx) else { return };
    let (idx, byte) = port_slot(true, out.sport);
    let svc = match SW_PORTS.get(idx) {
        Some(g) => g.svc[byte & 7] as u32,
        None => return,
    };
    if !SW_SERVICES.get(svc).is_some_and(|p| p.flags & policy::SIP != 0) {
        return;
    }
    let Some(head) = bytes::<12>(ctx, out.payload) else { return };
    let Some(status) = failure(head) else { return };
    let ev = RateEvent {
        kind: event::SIP_FAILURE,
        svc,
        family: out.family,
        dropped: 0,
        // SAFETY: no preconditions.
        ts: unsafe { bpf_jiffies64() },
        status,
        _pad: 0,
        addr: out.dst,
    };
    let slot = match SW_EVENTS.output::<RateEvent>(&ev, 0) {
        Ok(()) => event_stat::SENT,
        Err(_) => event_stat::LOST,
    };
    if let Some(c) = SW_EVENT_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot.
        unsafe { *c += 1 };
    }
}
