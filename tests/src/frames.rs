//! Ethernet frames for the tests, built with etherparse; the odd ones (fragments, extension
//! headers, broken headers) by hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, TcpHeader};

pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
pub const DST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn builder(src: IpAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match src {
        IpAddr::V4(s) => PacketBuilder::ipv4(s.octets(), DST4.octets(), 64),
        IpAddr::V6(s) => PacketBuilder::ipv6(s.octets(), DST6.octets(), 64),
    }
}

/// Puts an IP packet into an Ethernet frame with the given VLAN tags (outer first; any number).
pub fn wrap(ip_packet: &[u8], vlans: &[u16]) -> Vec<u8> {
    let ethertype = if ip_packet[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for (i, id) in vlans.iter().enumerate() {
        // 802.1ad outer tag, 802.1Q inner tags
        let tpid: u16 = if i == 0 && vlans.len() > 1 { 0x88a8 } else { 0x8100 };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&(ethertype as u16).to_be_bytes());
    f.extend_from_slice(ip_packet);
    f
}

pub fn udp(src: &str, dport: u16) -> Vec<u8> {
    udp_vlan(src, dport, &[])
}

pub fn udp_vlan(src: &str, dport: u16, vlans: &[u16]) -> Vec<u8> {
    let payload = b"OPTIONS sip:100@192.0.2.1 SIP/2.0\r\n\r\n";
    let b = builder(ip(src)).udp(40000, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    wrap(&out, vlans)
}

/// A UDP datagram leaving the host from port `sport` to `dst` with `payload` (a SIP answer).
pub fn answer(dst: &str, sport: u16, payload: &[u8]) -> Vec<u8> {
    let b = match ip(dst) {
        IpAddr::V4(d) => PacketBuilder::ipv4(DST4.octets(), d.octets(), 64),
        IpAddr::V6(d) => PacketBuilder::ipv6(DST6.octets(), d.octets(), 64),
    }
    .udp(sport, 40000);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    wrap(&out, &[])
}

/// A TCP segment; `flags` uses the TCP header bits (0x02 SYN, 0x10 ACK).
pub fn tcp(src: &str, dport: u16, flags: u8) -> Vec<u8> {
    let b = builder(ip(src)).tcp(40000, dport, 1, 64240);
    let b = if flags & 0x02 != 0 { b.syn() } else { b };
    let b = if flags & 0x10 != 0 { b.ack(1) } else { b };
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    wrap(&out, &[])
}

pub fn syn(src: &str, dport: u16) -> Vec<u8> {
    tcp(src, dport, 0x02)
}

/// An ICMP(v6) echo request: neither TCP nor UDP.
pub fn icmp(src: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match ip(src) {
        IpAddr::V4(_) => builder(ip(src)).icmpv4_echo_request(1, 1).write(&mut out, b"ping").unwrap(),
        IpAddr::V6(_) => builder(ip(src)).icmpv6_echo_request(1, 1).write(&mut out, b"ping").unwrap(),
    }
    wrap(&out, &[])
}

pub fn arp() -> Vec<u8> {
    let mut f = eth_header(0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0; 20]);
    f
}

pub fn eth_header(ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet with full control over the header: `ihl` in words, options zero-filled,
/// `frag` is the flags+offset field, `total` overrides the total length.
pub struct V4 {
    pub src: Ipv4Addr,
    pub ihl: u8,
    pub version: u8,
    pub frag: u16,
    pub proto: u8,
    pub total: Option<u16>,
    pub l4: Vec<u8>,
}

impl V4 {
    pub fn new(src: &str, proto: u8, l4: Vec<u8>) -> Self {
        let IpAddr::V4(src) = ip(src) else { panic!("IPv4 only") };
        Self { src, ihl: 5, version: 4, frag: 0, proto, total: None, l4 }
    }

    pub fn frame(&self) -> Vec<u8> {
        let hl = self.ihl as usize * 4;
        let mut h = vec![0u8; hl.max(20)];
        h[0] = (self.version << 4) | (self.ihl & 0x0f);
        let total = self.total.unwrap_or((hl.max(20) + self.l4.len()) as u16);
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&self.frag.to_be_bytes());
        h[8] = 64;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&DST4.octets());
        let c = checksum(&h[..hl.clamp(20, 60)]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = eth_header(0x0800);
        f.extend_from_slice(&h);
        f.extend_from_slice(&self.l4);
        f
    }
}

/// A UDP header (and a small payload) to `dport`; checksum left zero (legal for IPv4).
pub fn udp_l4(dport: u16, len_field: Option<u16>) -> Vec<u8> {
    // a SIP keep-alive: what the SIP inspector lets pass on the sip port
    let payload = b"\r\n\r\n";
    let len = len_field.unwrap_or(8 + payload.len() as u16);
    let mut u = Vec::new();
    u.extend_from_slice(&40000u16.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A TCP header to `dport` with a chosen data offset (in words).
pub fn tcp_l4(dport: u16, doff: u8, flags: u8) -> Vec<u8> {
    let mut h = TcpHeader::new(40000, dport, 1, 1024);
    h.syn = flags & 0x02 != 0;
    h.ack = flags & 0x10 != 0;
    let mut b = h.to_bytes().to_vec();
    b[12] = doff << 4;
    b
}

/// An IPv6 packet: `exts` are (next-header-number, bytes) pairs chained in order before `l4`.
pub fn v6(src: &str, exts: &[(u8, Vec<u8>)], l4_proto: u8, l4: &[u8], payload_len: Option<u16>) -> Vec<u8> {
    let IpAddr::V6(src) = ip(src) else { panic!("IPv6 only") };
    let mut body = Vec::new();
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let mut e = bytes.clone();
        e[0] = exts.get(i + 1).map_or(l4_proto, |n| n.0);
        body.extend_from_slice(&e);
    }
    body.extend_from_slice(l4);
    let first = exts.first().map_or(l4_proto, |e| e.0);
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&payload_len.unwrap_or(body.len() as u16).to_be_bytes());
    h.push(first);
    h.push(64);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&DST6.octets());
    let mut f = eth_header(0x86dd);
    f.extend_from_slice(&h);
    f.extend_from_slice(&body);
    f
}

/// An 8-byte option-style extension header (hop-by-hop, destination options, routing).
pub fn ext8() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

/// A fragment header with the given offset (in 8-byte units) and more-fragments flag.
pub fn frag6(offset: u16, more: bool) -> Vec<u8> {
    let field = (offset << 3) | u16::from(more);
    let mut f = vec![0, 0];
    f.extend_from_slice(&field.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 42]);
    f
}

/// A frame from `src` to `dst` between the given MACs: UDP, or a TCP SYN when `syn` is set.
/// The payload rides along in both (a SYN may carry data).
pub fn l4_frame(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    dport: u16,
    syn_tcp: bool,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(smac, dmac);
    let b = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut out = Vec::new();
    if syn_tcp {
        b.tcp(40000, dport, 1, 64240).syn().write(&mut out, payload).unwrap();
    } else {
        b.udp(40000, dport).write(&mut out, payload).unwrap();
    }
    out
}

/// `frame` (Ethernet, untagged IPv4 without options or IPv6 without extension headers, then
/// UDP or TCP) sent from source port `port`; checksums are not checked on the paths tested.
pub fn from_port(mut frame: Vec<u8>, port: u16) -> Vec<u8> {
    let l4 = if frame[12..14] == [0x86, 0xdd] { 14 + 40 } else { 14 + 20 };
    frame[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
    frame
}
