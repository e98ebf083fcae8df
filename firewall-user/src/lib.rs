//! The `sipwall` daemon as a library, in the order a packet and a log line meet it:
//!
//! - [`datapath`]: the XDP program, loaded, attached and fed: the kernel tables and the model
//!   of what they hold (allow, block, bans, services, rate limits);
//! - [`detection`]: log sources, detectors, jails with fail2ban's semantics, and the wire
//!   proofs that tell forged evidence from real;
//! - [`daemon`]: `sipwall run`, which ties both together, with [`control`] (the socket the CLI
//!   talks to), [`cli`], [`rules`] (the rules file), [`store`] (bans kept across restarts) and
//!   [`metrics`].

pub mod asterisk;
pub mod cli;
#[cfg(test)]
mod contract;
pub mod control;
pub mod crowdsec;
pub mod daemon;
pub mod datapath;
pub mod detection;
pub mod duration;
pub mod feeds;
pub mod metrics;
pub mod rules;
pub mod store;

/// The XDP program, built by `build.rs`.
pub const BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sipwall.bpf.o"));

/// The benchmark's traffic generator (`firewall_common::trafficgen`), built by `build.rs` beside
/// the XDP program; empty when the build took a prebuilt object (`SIPWALL_BPF_OBJECT`). The
/// daemon never uses it: a constant, it is in no binary that does not read it.
pub const TRAFFICGEN_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/trafficgen.bpf.o"));
