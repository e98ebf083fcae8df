//! The programs and globals of the object, by the names the loader finds them under. The eBPF
//! crate names each after its function or static; a test reads the built object and checks that
//! it holds exactly these (`firewall-user/src/contract.rs`).

/// The XDP program attached to each interface.
pub const XDP: &str = "sipwall";
/// The do-nothing program measured next to it by `cargo xtask bench`.
pub const BASELINE: &str = "sipwall_baseline";
/// The program that samples the kernel's clocks (run, never attached).
pub const CLOCK: &str = "sipwall_clock";
/// The SIP inspector's first stage, which the XDP program tail-calls (the `sip` service's slot
/// of `SW_TAIL`).
pub const SIP: &str = "sipwall_sip";
/// The SIP inspector's full inspection, which the first stage tail-calls (`SW_SIP_STAGES`).
pub const SIP_FULL: &str = "sipwall_sip_full";
/// The tc egress classifier that reads the SIP answers leaving the host.
pub const EGRESS: &str = "sipwall_egress";

/// Every program of the object.
pub const ALL: [&str; 6] = [XDP, BASELINE, CLOCK, SIP, SIP_FULL, EGRESS];
/// The programs that see traffic, whose verifier work the tests and the benchmark report.
pub const TRAFFIC: [&str; 4] = [XDP, SIP, SIP_FULL, EGRESS];

/// Load-time switches: globals of the object, set before it is loaded.
pub mod global {
    /// The drop trace.
    pub const TRACE: &str = "SIPWALL_TRACE";
    /// The test clock: the programs read the time from slot `maps::CLOCK_TEST` of `SW_CLOCK`
    /// while it is not 0. Tests only.
    pub const TEST_CLOCK: &str = "SIPWALL_TEST_CLOCK";

    /// Every global of the object.
    pub const ALL: [&str; 2] = [TRACE, TEST_CLOCK];
}
