//! What the SIP inspector enforces: the `[sip]` section of the rules, compiled by the daemon
//! into `SW_SIP[0]`.

use super::{Method, MethodSet};
use crate::service::ServicePolicy;

/// `SipPolicy::flags` bits.
pub mod sip_flag {
    /// Inspect requests to the `sip` service at all (`inspect`).
    pub const INSPECT: u32 = 1 << 0;
    /// Drop OPTIONS from sources no allow list covers (`stealth_options`).
    pub const STEALTH_OPTIONS: u32 = 1 << 1;
}

/// Slots of `SipPolicy::limits`: one per [`Method`] id.
pub const METHOD_SLOTS: usize = 16;
const _: () = assert!(Method::ALL.len() <= METHOD_SLOTS);

/// Value of `SW_SIP[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipPolicy {
    pub flags: u32,
    /// Requests with another method are dropped (`allowed_methods`).
    pub allowed: MethodSet,
    /// Methods with a per-source limit of their own in `limits` (`method_limits`), one bit per
    /// method id.
    pub limited: u32,
    /// Fingerprint of the signatures: entries of `SW_SIP_CLEAN` written under another one are
    /// stale (see [`super::clean`]).
    pub epoch: u32,
    /// Jiffies a source inspected clean has its requests read only as far as the method
    /// (`reinspect`); 0: every request is inspected in full.
    pub reinspect: u64,
    /// Per-source token buckets by method id, on top of the service's; only `rate`, `capacity`
    /// and `fill` are read.
    pub limits: [ServicePolicy; METHOD_SLOTS],
}
const _: () = assert!(size_of::<SipPolicy>() == 24 + 32 * METHOD_SLOTS);

impl Default for SipPolicy {
    fn default() -> Self {
        SipPolicy {
            flags: 0,
            allowed: MethodSet::STANDARD,
            limited: 0,
            epoch: 0,
            reinspect: 0,
            limits: [ServicePolicy::default(); METHOD_SLOTS],
        }
    }
}

/// `RateKey::svc` of a per-method bucket: the service id with the method id in bits 8..16,
/// so the method's bucket is apart from the service's.
#[inline(always)]
pub const fn method_key(svc: u32, method: u32) -> u32 {
    svc | (method & 0xff) << 8
}

/// The service and method ids in a `RateKey::svc` or `RateEvent::svc` (method 0: the service's
/// own limit).
#[inline(always)]
pub const fn split_key(key: u32) -> (u32, u32) {
    (key & 0xff, (key >> 8) & 0xff)
}
