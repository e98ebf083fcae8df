//! The UDP datagram or TCP segment in a frame, for the programs that read payloads (the SIP
//! inspector, the egress classifier): the peer's address, the local port and where the payload
//! starts. Later IPv4 fragments and IPv6 extension headers are passed over: such packets carry no
//! SIP start line worth reading.

use firewall_common::{
    addr::Addr6,
    rate::{FAMILY_V4, FAMILY_V6},
    service::{IPPROTO_TCP, IPPROTO_UDP},
};

use crate::{
    cursor::{be16, bytes, Frame},
    parse::{ethertype, ETH_P_IP, ETH_P_IPV6},
};

/// Which way the frame goes: the peer is the source of an inbound frame and the destination of
/// an outbound one; the local port the other way round.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Way {
    In,
    Out,
}

pub struct Segment {
    pub family: u32,
    /// The peer (IPv4 in `lo`, host order).
    pub peer: Addr6,
    /// The host's own address, the same way.
    pub local: Addr6,
    pub port: u16,
    /// The peer's port.
    pub peer_port: u16,
    pub tcp: bool,
    /// Offset of the payload in the frame.
    pub payload: usize,
    /// Where the payload ends as the headers say (Ethernet padding may follow); may lie past
    /// the frame's end when the headers lie.
    pub end: usize,
}

#[inline(always)]
pub fn segment(ctx: &impl Frame, way: Way) -> Option<Segment> {
    let (proto, off) = ethertype(ctx).ok()?;
    let (family, (peer, local), l4, at, ip_end) = match proto {
        ETH_P_IP => {
            let ip = bytes::<20>(ctx, off)?;
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            // a first fragment carries the header and the start of the payload
            if ip[0] >> 4 != 4 || ihl < 20 || be16(ip, 6) & 0x1fff != 0 {
                return None;
            }
            let v4 =
                |p: usize| Addr6 { hi: 0, lo: u32::from_be_bytes([ip[p], ip[p + 1], ip[p + 2], ip[p + 3]]) as u64 };
            let ends = if way == Way::In { (v4(12), v4(16)) } else { (v4(16), v4(12)) };
            (FAMILY_V4, ends, ip[9], off + ihl, off + be16(ip, 2) as usize)
        }
        ETH_P_IPV6 => {
            let ip = bytes::<40>(ctx, off)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let v6 = |p: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[p..p + 16]);
                Addr6::from_be_bytes(a)
            };
            let ends = if way == Way::In { (v6(8), v6(24)) } else { (v6(24), v6(8)) };
            (FAMILY_V6, ends, ip[6], off + 40, off + 40 + be16(ip, 4) as usize)
        }
        _ => return None,
    };
    // both headers start with the source and destination ports
    let (port_at, peer_at) = if way == Way::In { (2, 0) } else { (0, 2) };
    let (tcp, h, payload, end) = match l4 {
        IPPROTO_UDP => {
            let h = bytes::<8>(ctx, at)?;
            (false, &h[..], at + 8, at + be16(h, 4) as usize)
        }
        IPPROTO_TCP => {
            let h = bytes::<20>(ctx, at)?;
            (true, &h[..4], at + ((h[12] >> 4) as usize) * 4, ip_end)
        }
        _ => return None,
    };
    let (port, peer_port) = (be16(h, port_at), be16(h, peer_at));
    Some(Segment { family, peer, local, port, peer_port, tcp, payload, end })
}
