//! Types and map names shared by the XDP program and the `sipwall` daemon.
//!
//! Every map key and value is `#[repr(C)]`, has explicit padding and a size checked at compile
//! time, so both sides agree on the layout byte for byte.
#![cfg_attr(not(any(test, feature = "user")), no_std)]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

pub mod addr;
pub mod config;
pub mod maps;
pub mod nets;
pub mod programs;
pub mod proof;
pub mod rate;
pub mod reason;
pub mod service;
pub mod sip;
pub mod trafficgen;

pub mod clock;

/// One token of a rate-limit bucket, in nano-tokens: refill arithmetic stays in integers.
pub const NANO_TOKENS: u64 = 1_000_000_000;

/// Ban expiry meaning "never expires".
pub const FOREVER: u64 = u64::MAX;

/// `aya::Pod` impls for the types that cross the map boundary (userspace only).
#[cfg(feature = "user")]
mod pod {
    use crate::{
        addr::*,
        clock::*,
        config::*,
        nets::*,
        proof::GoodKey,
        rate::*,
        reason::*,
        service::*,
        sip::{clean::Source, SignatureTable, SipPolicy},
    };
    macro_rules! pod {
        ($($t:ty),+ $(,)?) => {
            // SAFETY: each type is `#[repr(C)]`, `Copy`, with explicit padding fields and its size
            // asserted at compile time: every bit pattern of its bytes is a valid value.
            $(unsafe impl aya::Pod for $t {})+
        };
    }
    pod!(
        Addr6,
        Config,
        NetClass,
        Slot4,
        Slot6,
        ClockSample,
        Net6Key,
        Net6Lengths,
        RateKey,
        Bucket,
        RateEvent,
        Counter,
        ServicePolicy,
        PortGroup,
        SipPolicy,
        SignatureTable,
        GoodKey,
        Source
    );
}
