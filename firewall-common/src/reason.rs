//! Why a packet got its verdict. Each reason has one action; `reason × service` indexes the
//! per-CPU counters and is the label set of `sipwall_packets_total` (bounded: never an address).

use crate::service::SERVICE_SLOTS;

/// The reasons, each with its value (its counter slot), its metric label and its action: the one
/// table the enum, `ALL`, `name` and `action` come from.
macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $label:literal, $action:ident;)+) => {
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[$doc])* $name = $value,)+
        }

        impl Reason {
            /// Every reason, in value order.
            pub const ALL: &[Reason] = &[$(Reason::$name),+];

            /// Whether a packet with this reason passes or is dropped.
            pub const fn action(self) -> Action {
                match self {
                    $(Reason::$name => Action::$action,)+
                }
            }

            /// Metric label.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Reason::$name => $label,)+
                }
            }
        }
    };
}

reasons! {
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    NonIp = 0, "non_ip", Pass;
    /// More VLAN tags than the two the parser reads; passed unparsed.
    VlanDepth = 1, "vlan_depth", Pass;
    /// Source in the global allow list.
    Allowlisted = 2, "allowlisted", Pass;
    /// Non-first fragment: only address checks apply, it has no ports.
    Fragment = 3, "fragment", Pass;
    /// IP protocol other than TCP and UDP, after the address checks.
    OtherProtocol = 4, "other_protocol", Pass;
    /// TCP/UDP to a port no service names.
    UnprotectedPort = 5, "unprotected_port", Pass;
    /// Service traffic within its `allow_from` list and rate limit.
    Accepted = 6, "accepted", Pass;
    /// Frame too short for its Ethernet or VLAN header.
    TruncatedL2 = 7, "truncated_l2", Drop;
    /// IPv4/IPv6 header shorter than the frame claims or cut off.
    TruncatedL3 = 8, "truncated_l3", Drop;
    /// Impossible IP header: wrong version, IHL below 5, total length below the header.
    InvalidL3 = 9, "invalid_l3", Drop;
    /// IPv6 extension header chain cut off or longer than the parser follows.
    Ipv6Extensions = 10, "ipv6_extensions", Drop;
    /// TCP or UDP header cut off.
    TruncatedL4 = 11, "truncated_l4", Drop;
    /// Impossible TCP or UDP header (data offset below 5, UDP length below 8).
    InvalidL4 = 12, "invalid_l4", Drop;
    /// Source banned (exact address or CIDR ban).
    Banned = 13, "banned", Drop;
    /// Source in a blocked network.
    Blocked = 14, "blocked", Drop;
    /// Source not in the service's `allow_from` list.
    NotAllowed = 15, "not_allowed", Drop;
    /// Source over the service's rate limit.
    RateLimited = 16, "rate_limited", Drop;
    /// UDP payload on a SIP port that is no SIP message, keep-alive or STUN.
    SipNotSip = 17, "sip_not_sip", Drop;
    /// SIP request carrying a scanner signature (User-Agent, From or Request-URI).
    SipScanner = 18, "sip_scanner", Drop;
    /// SIP request with a method outside `allowed_methods`.
    SipMethod = 19, "sip_method", Drop;
    /// OPTIONS from a source no allow list covers, with `stealth_options` on.
    SipStealthOptions = 20, "sip_stealth_options", Drop;
    /// Source over its per-method SIP limit (`method_limits`).
    SipMethodLimited = 21, "sip_method_limited", Drop;
    /// SIP request from a source inspected clean within `reinspect`: read as far as its
    /// method only, and within the method checks.
    SipRemembered = 22, "sip_remembered", Pass;
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
const _: () = assert!(size_of::<Counter>() == 16);

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
    fn actions_and_labels() {
        let drops: Vec<_> = Reason::ALL.iter().filter(|r| r.action() == Action::Drop).map(|r| r.name()).collect();
        assert_eq!(drops.len(), 15, "{drops:?}");
        assert_eq!(Reason::Accepted.action(), Action::Pass);
        assert_eq!(Reason::SipRemembered.action(), Action::Pass);
        assert_eq!(Reason::TruncatedL2.action(), Action::Drop);
        assert_eq!(Reason::SipMethodLimited.action(), Action::Drop);
        let labels: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(labels.len(), Reason::ALL.len(), "labels are unique");
    }

    #[test]
    fn counter_indices_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &r in Reason::ALL {
            for s in 0..SERVICE_SLOTS {
                let i = counter_index(r, s);
                assert!(i < COUNTER_SLOTS);
                assert!(seen.insert(i));
            }
        }
    }
}
