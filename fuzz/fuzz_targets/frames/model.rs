//! The verdict a frame should get, worked out from its bytes and the target's rules as
//! docs/architecture.md describes the data path: parse, allow list, bans, blocked networks,
//! services and `allow_from`, SIP inspection. Written apart from the XDP program; only the
//! limits the document leaves out are taken from it (`MAX_OFFSET`, six IPv6 extension
//! headers, two VLAN tags).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use firewall_common::reason::Reason::{self, *};
use ipnet::IpNet;

/// The rules the program runs with.
pub const RULES: &str = r#"
[allow]
sources = ["10.1.0.0/16", "fd00:1::/32"]

[block]
sources = ["10.2.0.0/16", "fd00:2::/32", "10.1.2.0/24"]

[services.ssh]
ports = ["22/tcp"]
allow_from = ["10.4.0.0/16", "fd00:4::/32"]

[services.sip]
ports = ["5060/udp", "5060/tcp"]

[services.web]
ports = ["80/tcp", "443/tcp", "8080/udp"]
"#;

/// Bans made before the first frame: addresses, networks, and one inside a blocked network
/// (the ban is the reason). The enforcer refuses bans inside the allow list.
pub const BANS: [&str; 4] = ["10.3.0.7/32", "10.3.1.0/24", "10.2.9.9/32", "fd00:3::/64"];
const ALLOW: [&str; 2] = ["10.1.0.0/16", "fd00:1::/32"];
const BLOCK: [&str; 3] = ["10.2.0.0/16", "fd00:2::/32", "10.1.2.0/24"];
const SSH_FROM: [&str; 2] = ["10.4.0.0/16", "fd00:4::/32"];

/// Sources the input can write into a frame: one of each kind and their neighbours.
pub const SOURCES_V4: [Ipv4Addr; 12] = [
    Ipv4Addr::new(10, 1, 0, 1),
    Ipv4Addr::new(10, 1, 2, 3),
    Ipv4Addr::new(10, 1, 3, 3),
    Ipv4Addr::new(10, 2, 0, 1),
    Ipv4Addr::new(10, 2, 9, 9),
    Ipv4Addr::new(10, 3, 0, 7),
    Ipv4Addr::new(10, 3, 0, 8),
    Ipv4Addr::new(10, 3, 1, 200),
    Ipv4Addr::new(10, 4, 5, 6),
    Ipv4Addr::new(10, 5, 0, 1),
    Ipv4Addr::new(192, 0, 2, 9),
    Ipv4Addr::new(0, 0, 0, 0),
];
pub const SOURCES_V6: [Ipv6Addr; 8] = [
    Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 1, 5, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 3, 0, 0, 0xffff, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 3, 0, 1, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 4, 0, 0, 0, 0, 0, 9),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::UNSPECIFIED,
];
/// Destination ports the input can write: every service's, and one no service names.
pub const PORTS: [u16; 6] = [22, 5060, 80, 443, 8080, 9999];

/// The reasons the SIP inspector may give an accepted packet to the `sip` service; which one
/// depends on the payload and on what the inspector remembers of the source. The rules have
/// no `method_limits` and `stealth_options` is off.
pub const SIP_UDP: [Reason; 5] = [Accepted, SipNotSip, SipScanner, SipMethod, SipRemembered];
/// Over TCP a payload that is no SIP message passes (a segment may continue a message).
pub const SIP_TCP: [Reason; 4] = [Accepted, SipScanner, SipMethod, SipRemembered];

/// Largest header offset the parser reads at (`cursor::MAX_OFFSET`).
const MAX_OFFSET: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    None,
    Ssh,
    Sip,
    Web,
}

/// What a frame should get: exactly one reason, or one of a set (SIP inspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub reasons: &'static [Reason],
    pub service: Service,
}

const fn exact(r: Reason) -> &'static [Reason] {
    match r {
        NonIp => &[NonIp],
        VlanDepth => &[VlanDepth],
        Allowlisted => &[Allowlisted],
        Fragment => &[Fragment],
        OtherProtocol => &[OtherProtocol],
        UnprotectedPort => &[UnprotectedPort],
        Accepted => &[Accepted],
        TruncatedL2 => &[TruncatedL2],
        TruncatedL3 => &[TruncatedL3],
        InvalidL3 => &[InvalidL3],
        Ipv6Extensions => &[Ipv6Extensions],
        TruncatedL4 => &[TruncatedL4],
        InvalidL4 => &[InvalidL4],
        Banned => &[Banned],
        Blocked => &[Blocked],
        NotAllowed => &[NotAllowed],
        _ => panic!("not a reason of the main program"),
    }
}

fn nets<const N: usize>(list: [&str; N]) -> [IpNet; N] {
    list.map(|n| n.parse().expect("a network"))
}

fn within(a: IpAddr, list: &[IpNet]) -> bool {
    list.iter().any(|n| n.contains(&a))
}

/// Layer 4 as the parser reads it.
enum L4 {
    Fragment,
    Other,
    Tcp(u16),
    Udp(u16),
}

/// `n` bytes at `at`, as `cursor::bytes` reads them.
fn bytes(f: &[u8], at: usize, n: usize) -> Option<&[u8]> {
    if at > MAX_OFFSET || at + n > f.len() {
        return None;
    }
    Some(&f[at..at + n])
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn is_vlan(proto: u16) -> bool {
    matches!(proto, 0x8100 | 0x88a8 | 0x9100)
}

/// The network protocol after Ethernet and up to two VLAN tags, and where its header starts.
pub fn network(f: &[u8]) -> Result<(u16, usize), Reason> {
    let eth = bytes(f, 0, 14).ok_or(TruncatedL2)?;
    let (mut proto, mut off) = (be16(eth, 12), 14);
    for _ in 0..2 {
        if !is_vlan(proto) {
            break;
        }
        proto = be16(bytes(f, off, 4).ok_or(TruncatedL2)?, 2);
        off += 4;
    }
    if is_vlan(proto) {
        return Err(VlanDepth);
    }
    Ok((proto, off))
}

fn l4(f: &[u8], off: usize, proto: u8) -> Result<L4, Reason> {
    match proto {
        6 => {
            let tcp = bytes(f, off, 20).ok_or(TruncatedL4)?;
            let doff = usize::from(tcp[12] >> 4) * 4;
            if doff < 20 {
                return Err(InvalidL4);
            }
            if off + doff > f.len() {
                return Err(TruncatedL4);
            }
            Ok(L4::Tcp(be16(tcp, 2)))
        }
        17 => {
            let udp = bytes(f, off, 8).ok_or(TruncatedL4)?;
            if be16(udp, 4) < 8 {
                return Err(InvalidL4);
            }
            Ok(L4::Udp(be16(udp, 2)))
        }
        _ => Ok(L4::Other),
    }
}

fn parse(f: &[u8]) -> Result<(IpAddr, L4), Reason> {
    let (proto, off) = network(f)?;
    match proto {
        0x0800 => {
            let ip = bytes(f, off, 20).ok_or(TruncatedL3)?;
            if ip[0] >> 4 != 4 {
                return Err(InvalidL3);
            }
            let (ihl, total) = (usize::from(ip[0] & 0x0f) * 4, usize::from(be16(ip, 2)));
            if ihl < 20 || total < ihl {
                return Err(InvalidL3);
            }
            if off + total > f.len() {
                return Err(TruncatedL3);
            }
            let src = IpAddr::from([ip[12], ip[13], ip[14], ip[15]]);
            if be16(ip, 6) & 0x1fff != 0 {
                return Ok((src, L4::Fragment));
            }
            Ok((src, l4(f, off + ihl, ip[9])?))
        }
        0x86dd => {
            let ip = bytes(f, off, 40).ok_or(TruncatedL3)?;
            if ip[0] >> 4 != 6 {
                return Err(InvalidL3);
            }
            if off + 40 + usize::from(be16(ip, 4)) > f.len() {
                return Err(TruncatedL3);
            }
            let src = IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).expect("16 bytes"));
            let (mut next, mut off) = (ip[6], off + 40);
            for _ in 0..6 {
                match next {
                    0 | 43 | 60 => {
                        let h = bytes(f, off, 2).ok_or(Ipv6Extensions)?;
                        (next, off) = (h[0], off + (usize::from(h[1]) + 1) * 8);
                    }
                    51 => {
                        let h = bytes(f, off, 2).ok_or(Ipv6Extensions)?;
                        (next, off) = (h[0], off + (usize::from(h[1]) + 2) * 4);
                    }
                    44 => {
                        let h = bytes(f, off, 8).ok_or(Ipv6Extensions)?;
                        if be16(h, 2) >> 3 != 0 {
                            return Ok((src, L4::Fragment));
                        }
                        (next, off) = (h[0], off + 8);
                    }
                    _ => break,
                }
            }
            if matches!(next, 0 | 43 | 60 | 51 | 44) {
                return Err(Ipv6Extensions);
            }
            Ok((src, l4(f, off, next)?))
        }
        _ => Err(NonIp),
    }
}

/// The rules' networks, parsed once.
pub struct Model {
    allow: [IpNet; 2],
    bans: [IpNet; 4],
    block: [IpNet; 3],
    ssh_from: [IpNet; 2],
}

impl Model {
    pub fn new() -> Self {
        Self { allow: nets(ALLOW), bans: nets(BANS), block: nets(BLOCK), ssh_from: nets(SSH_FROM) }
    }

    pub fn expect(&self, f: &[u8]) -> Expect {
        let (src, l4) = match parse(f) {
            Ok(p) => p,
            Err(r) => return Expect { reasons: exact(r), service: Service::None },
        };
        let service = match l4 {
            L4::Tcp(22) => Service::Ssh,
            L4::Tcp(5060) | L4::Udp(5060) => Service::Sip,
            L4::Tcp(80 | 443) | L4::Udp(8080) => Service::Web,
            _ => Service::None,
        };
        let reason = if within(src, &self.allow) {
            Allowlisted
        } else if within(src, &self.bans) {
            Banned
        } else if within(src, &self.block) {
            Blocked
        } else {
            match (l4, service) {
                (L4::Fragment, _) => Fragment,
                (L4::Other, _) => OtherProtocol,
                (_, Service::None) => UnprotectedPort,
                (_, Service::Ssh) if !within(src, &self.ssh_from) => NotAllowed,
                (L4::Udp(_), Service::Sip) => return Expect { reasons: &SIP_UDP, service },
                (L4::Tcp(_), Service::Sip) => return Expect { reasons: &SIP_TCP, service },
                _ => Accepted,
            }
        };
        Expect { reasons: exact(reason), service }
    }
}

/// Writes the source and destination port the input chose into the frame, where its headers
/// have them (IPv4, or IPv6 with TCP or UDP right after the fixed header).
pub fn steer(f: &mut [u8], src: u8, port: u8) {
    let Ok((proto, off)) = network(f) else { return };
    let (l4_at, is_l4) = match proto {
        0x0800 if f.len() >= off + 20 => {
            if let Some(a) = SOURCES_V4.get(usize::from(src) % 16) {
                f[off + 12..off + 16].copy_from_slice(&a.octets());
            }
            (off + usize::from(f[off] & 0x0f) * 4, matches!(f[off + 9], 6 | 17))
        }
        0x86dd if f.len() >= off + 40 => {
            if let Some(a) = SOURCES_V6.get(usize::from(src) % 16) {
                f[off + 8..off + 24].copy_from_slice(&a.octets());
            }
            (off + 40, matches!(f[off + 6], 6 | 17))
        }
        _ => return,
    };
    if let (true, Some(p)) = (is_l4 && f.len() >= l4_at + 4, PORTS.get(usize::from(port) % 8)) {
        f[l4_at + 2..l4_at + 4].copy_from_slice(&p.to_be_bytes());
    }
}
