//! The decision, in the order of docs/architecture.md: parse, allow list, bans, blocked
//! networks, services (`allow_from`, rate limit), pass.

use firewall_common::{
    addr::Addr6,
    clock::before,
    config::RATE6_PREFIX,
    nets::class,
    rate::{RateKey, FAMILY_V4, FAMILY_V6},
    reason::Reason,
    service::{policy, port_slot},
};

use crate::{
    clock::now,
    good, limit,
    maps::{SW_CONFIG, SW_PORTS, SW_SERVICES},
    nets,
    parse::{L4Kind, Packet, Src, L4},
};

/// The service a TCP or UDP destination port belongs to (0: none).
#[inline(always)]
pub fn service_of(l4: L4) -> u32 {
    let is_udp = match l4.kind {
        L4Kind::Tcp => false,
        L4Kind::Udp => true,
        L4Kind::Fragment | L4Kind::Other => return 0,
    };
    service_of_port(is_udp, l4.dport)
}

/// The service a destination (or, leaving the host, source) port belongs to (0: none): the one
/// reading of `SW_PORTS`.
#[inline(always)]
pub fn service_of_port(is_udp: bool, port: u16) -> u32 {
    let (idx, byte) = port_slot(is_udp, port);
    match SW_PORTS.get(idx) {
        Some(g) => g.svc[byte & 7] as u32,
        None => 0,
    }
}

/// What happened to a packet. Every field is always set (see `parse::Src`).
pub struct Verdict {
    pub reason: Reason,
    /// The service the packet was addressed to (0: none).
    pub svc: u32,
    /// Its source, if the headers parsed (`parsed`), else zero.
    pub src: Src,
    pub parsed: bool,
}

impl Verdict {
    /// A frame whose headers did not parse.
    #[inline(always)]
    pub const fn unparsed(reason: Reason) -> Self {
        Verdict { reason, svc: 0, src: Src::NONE, parsed: false }
    }
}

/// The verdict on a parsed packet.
#[inline(always)]
pub fn decide(pkt: Packet) -> Verdict {
    let svc = service_of(pkt.l4);
    Verdict { reason: check(pkt.src, pkt.l4, svc), svc, src: pkt.src, parsed: true }
}

#[inline(always)]
fn check(src: Src, l4: L4, svc: u32) -> Reason {
    // One slot, always present; the verifier still wants the null check.
    let Some(cfg) = SW_CONFIG.get(0) else {
        return Reason::UnprotectedPort;
    };
    let cls = if src.v6 { nets::classify_v6(src.addr, cfg) } else { nets::classify_v4(src.addr_be, cfg) };
    if cls.flags & class::ALLOW != 0 {
        return Reason::Allowlisted;
    }
    if cls.flags & class::BAN != 0 && before(now(), cls.ban_expires) {
        return Reason::Banned;
    }
    if cls.flags & class::BLOCK != 0 {
        return Reason::Blocked;
    }
    match l4.kind {
        L4Kind::Fragment => return Reason::Fragment,
        L4Kind::Other => return Reason::OtherProtocol,
        L4Kind::Tcp | L4Kind::Udp => {}
    }
    let new_conn = l4.new_conn;
    if svc == 0 {
        return Reason::UnprotectedPort;
    }
    let Some(pol) = SW_SERVICES.get(svc) else {
        return Reason::UnprotectedPort;
    };
    if pol.flags & policy::ALLOW_FROM != 0 && cls.allow_from & (1 << svc) == 0 {
        return Reason::NotAllowed;
    }
    if pol.flags & policy::LIMIT != 0 && (new_conn || pol.flags & policy::LIMIT_ALL_TCP != 0) {
        let key = if src.v6 {
            RateKey { addr: src.addr.masked(RATE6_PREFIX), svc, family: FAMILY_V6 }
        } else {
            RateKey { addr: Addr6 { hi: 0, lo: u32::from_be(src.addr_be) as u64 }, svc, family: FAMILY_V4 }
        };
        // a known-good source's bucket may be emptied by packets forged with its address
        if !limit::take(&key, pol, cfg, now()) && !good::known(key.addr, key.family, now()) {
            return Reason::RateLimited;
        }
    }
    Reason::Accepted
}
