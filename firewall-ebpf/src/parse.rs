//! Ethernet, VLAN, IPv4, IPv6 (with extension headers), TCP and UDP. Each step either yields the
//! next header or a final reason (`Err`): nothing is passed or dropped without one.

use firewall_common::{
    addr::Addr6,
    reason::Reason,
    service::{IPPROTO_TCP, IPPROTO_UDP},
};

use crate::cursor::{be16, bytes, frame_len, Frame};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag still emitted by some switches.
const ETH_P_QINQ1: u16 = 0x9100;
const MAX_VLAN_TAGS: usize = 2;

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;
/// Extension headers followed before giving up (RFC 8200 §4.1 order has at most 6 before L4).
const MAX_V6_EXT: usize = 6;

/// The source address. Plain fields, all always set: an enum's unused payload would leave
/// registers the verifier calls uninitialised when the compiler moves it around.
#[derive(Clone, Copy)]
pub struct Src {
    pub v6: bool,
    /// IPv4 source, network order, as on the wire (0 for IPv6).
    pub addr_be: u32,
    /// IPv6 source (zero for IPv4).
    pub addr: Addr6,
}

impl Src {
    pub const NONE: Src = Src { v6: false, addr_be: 0, addr: Addr6 { hi: 0, lo: 0 } };
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum L4Kind {
    /// Non-first fragment: no ports to look at.
    Fragment,
    /// Neither TCP nor UDP.
    Other,
    Tcp,
    Udp,
}

#[derive(Clone, Copy)]
pub struct L4 {
    pub kind: L4Kind,
    /// Destination port (0 unless TCP or UDP).
    pub dport: u16,
    /// A TCP connection attempt (SYN without ACK); always true for UDP.
    pub new_conn: bool,
}

impl L4 {
    const fn of(kind: L4Kind) -> Self {
        Self { kind, dport: 0, new_conn: false }
    }
}

#[derive(Clone, Copy)]
pub struct Packet {
    pub src: Src,
    pub l4: L4,
}

#[inline(always)]
fn is_vlan(proto: u16) -> bool {
    proto == ETH_P_8021Q || proto == ETH_P_8021AD || proto == ETH_P_QINQ1
}

#[inline(always)]
pub fn parse(ctx: &impl Frame) -> Result<Packet, Reason> {
    let (proto, off) = ethertype(ctx)?;
    match proto {
        ETH_P_IP => parse_v4(ctx, off),
        ETH_P_IPV6 => parse_v6(ctx, off),
        _ => Err(Reason::NonIp),
    }
}

/// The frame's protocol after Ethernet and up to `MAX_VLAN_TAGS` VLAN tags, and its offset.
#[inline(always)]
pub fn ethertype(ctx: &impl Frame) -> Result<(u16, usize), Reason> {
    let eth = bytes::<14>(ctx, 0).ok_or(Reason::TruncatedL2)?;
    let mut proto = be16(eth, 12);
    let mut off = 14usize;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(proto) {
            break;
        }
        let tag = bytes::<4>(ctx, off).ok_or(Reason::TruncatedL2)?;
        proto = be16(tag, 2);
        off += 4;
    }
    if is_vlan(proto) {
        return Err(Reason::VlanDepth);
    }
    Ok((proto, off))
}

#[inline(always)]
fn parse_v4(ctx: &impl Frame, off: usize) -> Result<Packet, Reason> {
    let ip = bytes::<20>(ctx, off).ok_or(Reason::TruncatedL3)?;
    if ip[0] >> 4 != 4 {
        return Err(Reason::InvalidL3);
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total = be16(ip, 2) as usize;
    if ihl < 20 || total < ihl {
        return Err(Reason::InvalidL3);
    }
    if off + total > frame_len(ctx) {
        return Err(Reason::TruncatedL3);
    }
    let src =
        Src { v6: false, addr_be: u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]), addr: Addr6 { hi: 0, lo: 0 } };
    let frag_offset = be16(ip, 6) & 0x1fff;
    if frag_offset != 0 {
        return Ok(Packet { src, l4: L4::of(L4Kind::Fragment) });
    }
    let l4 = parse_l4(ctx, off + ihl, ip[9])?;
    Ok(Packet { src, l4 })
}

#[inline(always)]
fn parse_v6(ctx: &impl Frame, off: usize) -> Result<Packet, Reason> {
    let ip = bytes::<40>(ctx, off).ok_or(Reason::TruncatedL3)?;
    if ip[0] >> 4 != 6 {
        return Err(Reason::InvalidL3);
    }
    // A zero payload length only appears with a jumbo payload option; nothing to check then.
    let payload = be16(ip, 4) as usize;
    if off + 40 + payload > frame_len(ctx) {
        return Err(Reason::TruncatedL3);
    }
    let mut a = [0u8; 16];
    a.copy_from_slice(&ip[8..24]);
    let src = Src { v6: true, addr_be: 0, addr: Addr6::from_be_bytes(a) };
    let mut next = ip[6];
    let mut off = off + 40;
    for _ in 0..MAX_V6_EXT {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let h = bytes::<2>(ctx, off).ok_or(Reason::Ipv6Extensions)?;
                next = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            NEXTHDR_AUTH => {
                let h = bytes::<2>(ctx, off).ok_or(Reason::Ipv6Extensions)?;
                next = h[0];
                off += (h[1] as usize + 2) * 4;
            }
            NEXTHDR_FRAGMENT => {
                let h = bytes::<8>(ctx, off).ok_or(Reason::Ipv6Extensions)?;
                if be16(h, 2) >> 3 != 0 {
                    return Ok(Packet { src, l4: L4::of(L4Kind::Fragment) });
                }
                next = h[0];
                off += 8;
            }
            _ => break,
        }
    }
    if matches!(next, NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH | NEXTHDR_FRAGMENT) {
        return Err(Reason::Ipv6Extensions);
    }
    let l4 = parse_l4(ctx, off, next)?;
    Ok(Packet { src, l4 })
}

#[inline(always)]
fn parse_l4(ctx: &impl Frame, off: usize, proto: u8) -> Result<L4, Reason> {
    match proto {
        IPPROTO_TCP => {
            let tcp = bytes::<20>(ctx, off).ok_or(Reason::TruncatedL4)?;
            let doff = ((tcp[12] >> 4) as usize) * 4;
            if doff < 20 {
                return Err(Reason::InvalidL4);
            }
            if off + doff > frame_len(ctx) {
                return Err(Reason::TruncatedL4);
            }
            let flags = tcp[13];
            let new_conn = flags & 0x02 != 0 && flags & 0x10 == 0;
            Ok(L4 { kind: L4Kind::Tcp, dport: be16(tcp, 2), new_conn })
        }
        IPPROTO_UDP => {
            let udp = bytes::<8>(ctx, off).ok_or(Reason::TruncatedL4)?;
            if be16(udp, 4) < 8 {
                return Err(Reason::InvalidL4);
            }
            Ok(L4 { kind: L4Kind::Udp, dport: be16(udp, 2), new_conn: true })
        }
        _ => Ok(L4::of(L4Kind::Other)),
    }
}
