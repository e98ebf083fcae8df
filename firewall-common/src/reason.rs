//! Why a packet got its verdict. Each reason has one action; `reason × service` indexes the
//! per-CPU counters and is the label set of `sipwall_packets_total` (bounded: never an address).

use crate::service::SERVICE_SLOTS;

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    // pass
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    NonIp = 0,
    /// More VLAN tags than the two the parser reads; passed unparsed.
    VlanDepth = 1,
    /// Source in the global allow list.
    Allowlisted = 2,
    /// Non-first fragment: only address checks apply, it has no ports.
    Fragment = 3,
    /// IP protocol other than TCP and UDP, after the address checks.
    OtherProtocol = 4,
    /// TCP/UDP to a port no service names.
    UnprotectedPort = 5,
    /// Service traffic within its `allow_from` list and rate limit.
    Accepted = 6,
    // drop
    /// Frame too short for its Ethernet or VLAN header.
    TruncatedL2 = 7,
    /// IPv4/IPv6 header shorter than the frame claims or cut off.
    TruncatedL3 = 8,
    /// Impossible IP header: wrong version, IHL below 5, total length below the header.
    InvalidL3 = 9,
    /// IPv6 extension header chain cut off or longer than the parser follows.
    Ipv6Extensions = 10,
    /// TCP or UDP header cut off.
    TruncatedL4 = 11,
    /// Impossible TCP or UDP header (data offset below 5, UDP length below 8).
    InvalidL4 = 12,
    /// Source banned (exact address or CIDR ban).
    Banned = 13,
    /// Source in a blocked network.
    Blocked = 14,
    /// Source not in the service's `allow_from` list.
    NotAllowed = 15,
    /// Source over the service's rate limit.
    RateLimited = 16,
    /// UDP payload on a SIP port that is no SIP message, keep-alive or STUN.
    SipNotSip = 17,
    /// SIP request carrying a scanner signature (User-Agent, From or Request-URI).
    SipScanner = 18,
    /// SIP request with a method outside `allowed_methods`.
    SipMethod = 19,
    /// OPTIONS from a source no allow list covers, with `stealth_options` on.
    SipStealthOptions = 20,
    /// Source over its per-method SIP limit (`method_limits`).
    SipMethodLimited = 21,
    // pass
    /// SIP request from a source inspected clean within `reinspect`: read as far as its
    /// method only, and within the method checks.
    SipRemembered = 22,
}

/// Reason slots reserved in the counter array (room to add reasons without a layout change).
pub const REASON_SLOTS: u32 = 32;
/// Entries in `SW_COUNTERS`.
pub const COUNTER_SLOTS: u32 = REASON_SLOTS * SERVICE_SLOTS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Pass,
    Drop,
}

impl Reason {
    pub const ALL: [Reason; 23] = [
        Reason::NonIp,
        Reason::VlanDepth,
        Reason::Allowlisted,
        Reason::Fragment,
        Reason::OtherProtocol,
        Reason::UnprotectedPort,
        Reason::Accepted,
        Reason::TruncatedL2,
        Reason::TruncatedL3,
        Reason::InvalidL3,
        Reason::Ipv6Extensions,
        Reason::TruncatedL4,
        Reason::InvalidL4,
        Reason::Banned,
        Reason::Blocked,
        Reason::NotAllowed,
        Reason::RateLimited,
        Reason::SipNotSip,
        Reason::SipScanner,
        Reason::SipMethod,
        Reason::SipStealthOptions,
        Reason::SipMethodLimited,
        Reason::SipRemembered,
    ];

    pub const fn action(self) -> Action {
        if (self as u32) < Reason::TruncatedL2 as u32 || matches!(self, Reason::SipRemembered) {
            Action::Pass
        } else {
            Action::Drop
        }
    }

    /// Metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::NonIp => "non_ip",
            Reason::VlanDepth => "vlan_depth",
            Reason::Allowlisted => "allowlisted",
            Reason::Fragment => "fragment",
            Reason::OtherProtocol => "other_protocol",
            Reason::UnprotectedPort => "unprotected_port",
            Reason::Accepted => "accepted",
            Reason::TruncatedL2 => "truncated_l2",
            Reason::TruncatedL3 => "truncated_l3",
            Reason::InvalidL3 => "invalid_l3",
            Reason::Ipv6Extensions => "ipv6_extensions",
            Reason::TruncatedL4 => "truncated_l4",
            Reason::InvalidL4 => "invalid_l4",
            Reason::Banned => "banned",
            Reason::Blocked => "blocked",
            Reason::NotAllowed => "not_allowed",
            Reason::RateLimited => "rate_limited",
            Reason::SipNotSip => "sip_not_sip",
            Reason::SipScanner => "sip_scanner",
            Reason::SipMethod => "sip_method",
            Reason::SipStealthOptions => "sip_stealth_options",
            Reason::SipMethodLimited => "sip_method_limited",
            Reason::SipRemembered => "sip_remembered",
        }
    }

    pub const fn from_u32(v: u32) -> Option<Reason> {
        if (v as usize) < Self::ALL.len() {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }
}

impl Action {
    pub const fn name(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "drop",
        }
    }
}

/// Index of `(reason, service)` in `SW_COUNTERS`.
#[inline(always)]
pub const fn counter_index(reason: Reason, svc: u32) -> u32 {
    (reason as u32) * SERVICE_SLOTS + (svc & (SERVICE_SLOTS - 1))
}

/// Value of `SW_COUNTERS` (per CPU; the daemon sums at scrape time).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}
const _: () = assert!(core::mem::size_of::<Counter>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_dense_and_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Reason::from_u32(i as u32), Some(*r));
        }
        assert!(Reason::ALL.len() as u32 <= REASON_SLOTS);
        assert_eq!(Reason::from_u32(Reason::ALL.len() as u32), None);
    }

    #[test]
    fn actions_split_at_the_first_drop_reason() {
        assert_eq!(Reason::Accepted.action(), Action::Pass);
        assert_eq!(Reason::TruncatedL2.action(), Action::Drop);
        assert_eq!(Reason::RateLimited.action(), Action::Drop);
    }

    #[test]
    fn counter_indices_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            for s in 0..SERVICE_SLOTS {
                let i = counter_index(r, s);
                assert!(i < COUNTER_SLOTS);
                assert!(seen.insert(i));
            }
        }
    }
}
