//! A minimal reader for the fixture captures: classic pcap, Ethernet, IPv4/IPv6, UDP/TCP. Also
//! compiled into the kernel tests (tests/tests/verdict/sip_inspect.rs), which run the captured frames
//! through the XDP program.

use std::net::IpAddr;

pub struct Packet {
    pub src: IpAddr,
    pub dst_port: u16,
    pub tcp: bool,
    pub payload: Vec<u8>,
    /// The whole captured frame (Ethernet on).
    pub frame: Vec<u8>,
}

/// Reads `tests/fixtures/sip/<name>` and returns its UDP and TCP payloads in capture order.
pub fn load(name: &str) -> Vec<Packet> {
    let path = format!("{}/../tests/fixtures/sip/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {path}: {e}"));
    parse(&data).unwrap_or_else(|| panic!("{path} is not a little-endian Ethernet pcap"))
}

fn parse(data: &[u8]) -> Option<Vec<Packet>> {
    let u32_at = |p: usize| data.get(p..p + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    if !matches!(u32_at(0)?, 0xa1b2_c3d4 | 0xa1b2_3c4d) || u32_at(20)? != 1 {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 24;
    while p < data.len() {
        let caplen = u32_at(p + 8)? as usize;
        let frame = data.get(p + 16..p + 16 + caplen)?;
        p += 16 + caplen;
        if let Some(pkt) = transport(frame) {
            out.push(pkt);
        }
    }
    Some(out)
}

fn transport(frame: &[u8]) -> Option<Packet> {
    let be16 = |b: &[u8], p: usize| b.get(p..p + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let (src, proto, l4, l4_len) = match be16(frame, 12)? {
        0x0800 => {
            let ip = frame.get(14..)?;
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let total = be16(ip, 2)? as usize;
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            (IpAddr::from(src), ip[9], ip.get(ihl..total)?, total - ihl)
        }
        0x86dd => {
            let ip = frame.get(14..)?;
            let plen = be16(ip, 4)? as usize;
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            (IpAddr::from(src), ip[6], ip.get(40..40 + plen)?, plen)
        }
        _ => return None,
    };
    let dst_port = be16(l4, 2)?;
    let (tcp, off) = match proto {
        17 => (false, 8),
        6 => (true, (l4.get(12)? >> 4) as usize * 4),
        _ => return None,
    };
    Some(Packet { src, dst_port, tcp, payload: l4.get(off..l4_len)?.to_vec(), frame: frame.to_vec() })
}
