//! The decision, in the order of docs/architecture.md: parse, allow list, bans, blocked
//! networks, services (`allow_from`, rate limit), pass.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, programs::XdpContext};
use firewall_common::{
    addr::Addr6,
    config::{Config, RATE6_PREFIX},
    nets::{class, NetClass},
    rate::{RateKey, FAMILY_V4, FAMILY_V6},
    reason::Reason,
    service::{policy, port_slot},
};

use crate::{
    limit,
    maps::{SW_CONFIG, SW_PORTS, SW_SERVICES},
    nets,
    parse::{parse, Src, L4},
};

/// CLOCK_MONOTONIC at jiffy resolution: cheap, and precise enough for bans and buckets.
#[inline(always)]
fn now() -> u64 {
    unsafe { bpf_ktime_get_coarse_ns() }
}

#[inline(always)]
fn service_of(l4: L4) -> u32 {
    let (is_udp, port) = match l4 {
        L4::Tcp { dport, .. } => (false, dport),
        L4::Udp { dport } => (true, dport),
        L4::Fragment | L4::Other => return 0,
    };
    let (idx, byte) = port_slot(is_udp, port);
    match SW_PORTS.get(idx) {
        Some(g) => g.svc[byte & 7] as u32,
        None => 0,
    }
}

/// The verdict's reason and the service the packet was addressed to (0: none).
#[inline(always)]
pub fn decide(ctx: &XdpContext) -> (Reason, u32) {
    let pkt = match parse(ctx) {
        Ok(p) => p,
        Err(r) => return (r, 0),
    };
    let svc = service_of(pkt.l4);
    (check(pkt.src, pkt.l4, svc), svc)
}

#[inline(always)]
fn check(src: Src, l4: L4, svc: u32) -> Reason {
    let zero = Config::default();
    let cfg = SW_CONFIG.get(0).unwrap_or(&zero);
    let (cls, ban, key) = match src {
        Src::V4 { addr_be } => (
            nets::classify_v4(addr_be),
            nets::ban_v4(addr_be),
            RateKey { addr: Addr6 { hi: 0, lo: u32::from_be(addr_be) as u64 }, svc, family: FAMILY_V4 },
        ),
        Src::V6 { addr } => (
            nets::classify_v6(addr, cfg),
            nets::ban_v6(addr, cfg),
            RateKey { addr: addr.masked(RATE6_PREFIX), svc, family: FAMILY_V6 },
        ),
    };
    if cls.flags & class::ALLOW != 0 {
        return Reason::Allowlisted;
    }
    let mut now_ns = 0u64;
    if let Some(expires) = ban {
        now_ns = now();
        if expires > now_ns {
            return Reason::Banned;
        }
    }
    if banned_by_class(&cls, &mut now_ns) {
        return Reason::Banned;
    }
    if cls.flags & class::BLOCK != 0 {
        return Reason::Blocked;
    }
    let new_conn = match l4 {
        L4::Fragment => return Reason::Fragment,
        L4::Other => return Reason::OtherProtocol,
        L4::Tcp { new_conn, .. } => new_conn,
        L4::Udp { .. } => true,
    };
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
        if now_ns == 0 {
            now_ns = now();
        }
        if !limit::take(&key, pol, now_ns) {
            return Reason::RateLimited;
        }
    }
    Reason::Accepted
}

#[inline(always)]
fn banned_by_class(cls: &NetClass, now_ns: &mut u64) -> bool {
    if cls.flags & class::BAN == 0 {
        return false;
    }
    if *now_ns == 0 {
        *now_ns = now();
    }
    cls.ban_expires_ns > *now_ns
}
