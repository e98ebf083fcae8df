//! What a kernel report says: its decoding, its log and jail lines, and its metric labels.

use firewall_common::{
    rate::{event, RateEvent},
    reason::Reason,
    sip::{
        policy::split_key,
        signature::{Field, MAX_SIGNATURES},
        Method,
    },
};
use prometheus::IntCounterVec;

use crate::rules::sip::SipRules;

/// A `RateEvent`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Over service `svc`'s rate limit (`method: None`) or one of its per-method SIP limits.
    RateLimited { svc: u32, method: Option<Method> },
    /// The host answered a SIP failure (`status`) to the source.
    SipFailure { status: u32 },
    /// The host challenged the source for credentials (401, 407).
    SipChallenge,
    /// The host answered the source, challenged before, with a success.
    SipSuccess,
    /// The SIP inspector found scanner signature `index` in `field`.
    Scanner { svc: u32, index: u32, field: Field },
    /// The SIP inspector dropped a packet for another reason (`None`: a reason this daemon does
    /// not know); `method` is the request's method where the reason is about one.
    SipDropped { svc: u32, reason: Option<Reason>, method: Method },
    /// A kind of event this daemon does not know (a newer kernel program).
    Unknown { kind: u32 },
}

pub fn decode(ev: &RateEvent) -> Report {
    match ev.kind {
        event::RATE_LIMITED => {
            let (svc, method) = split_key(ev.svc);
            Report::RateLimited { svc, method: (method != 0).then(|| Method::from_id(method)) }
        }
        event::SIP_FAILURE => Report::SipFailure { status: ev.status },
        event::SIP_CHALLENGE => Report::SipChallenge,
        event::SIP_SUCCESS => Report::SipSuccess,
        event::SIP_DROPPED => match Reason::from_u32(ev.status) {
            Some(Reason::SipScanner) => {
                Report::Scanner { svc: ev.svc, index: ev.detail & 0xff, field: Field::from_id((ev.detail >> 8) & 0xff) }
            }
            reason => Report::SipDropped { svc: ev.svc, reason, method: Method::from_id(ev.detail) },
        },
        kind => Report::Unknown { kind },
    }
}

/// The limit a rate-limit report is about: `sip rate limit`, `sip REGISTER limit`.
pub fn limit_name(service: &str, method: Option<Method>) -> String {
    match method {
        None => format!("{service} rate limit"),
        Some(m) => format!("{service} {} limit", m.name()),
    }
}

/// The text of signature `index` in the rules in force; `None` when they have no such index
/// (the kernel's table was replaced by a reload since) or it is past the table's size.
pub fn signature(rules: &SipRules, index: u32) -> Option<&str> {
    if index as usize >= MAX_SIGNATURES {
        return None;
    }
    rules.signature(index as usize)
}

/// `203.0.113.9: scanner signature "friendly-scanner" in User-Agent`.
pub fn scanner_line(source: &str, text: Option<&str>, index: u32, field: Field) -> String {
    match text {
        Some(t) => format!("{source}: scanner signature {t:?} in {}", field.name()),
        None => format!("{source}: scanner signature #{index} in {}", field.name()),
    }
}

/// The log line of a SIP drop that feeds no jail.
pub fn drop_line(source: &str, reason: Option<Reason>, method: Method) -> String {
    match reason {
        Some(Reason::SipNotSip) => format!("{source}: not SIP on the sip port, dropped"),
        Some(Reason::SipMethod) if method == Method::Unknown => {
            format!("{source}: SIP request with a method outside the RFC ones dropped (not in allowed_methods)")
        }
        Some(Reason::SipMethod) => format!("{source}: SIP method {} dropped (not in allowed_methods)", method.name()),
        Some(Reason::SipStealthOptions) => format!("{source}: OPTIONS dropped (stealth_options)"),
        Some(r) => format!("{source}: SIP packet dropped ({})", r.name()),
        None => format!("{source}: SIP packet dropped (a reason this daemon does not know)"),
    }
}

/// The `signature` label of `sipwall_sip_scanner_packets_total`.
pub const UNKNOWN_SIGNATURE: &str = "unknown";

/// Keeps the `signature` label values to the signatures of the rules in force (at most
/// `MAX_SIGNATURES`) and [`UNKNOWN_SIGNATURE`]: a series whose signature a reload removed goes
/// when a new one appears.
#[derive(Default)]
pub struct SignatureLabels {
    shown: Vec<String>,
}

impl SignatureLabels {
    /// The label for signature `text` (`None`: unknown), forgetting the series of signatures
    /// `rules` no longer has when `text` is new.
    pub fn label<'a>(&mut self, text: Option<&'a str>, rules: &SipRules, counter: &IntCounterVec) -> &'a str {
        let Some(t) = text else { return UNKNOWN_SIGNATURE };
        if !self.shown.iter().any(|s| s == t) {
            self.shown.retain(|s| {
                let current = (0..MAX_SIGNATURES as u32).any(|i| signature(rules, i) == Some(s.as_str()));
                if !current {
                    let _ = counter.remove_label_values(&[s]);
                }
                current
            });
            self.shown.push(t.to_owned());
        }
        t
    }
}
