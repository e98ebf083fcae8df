//! sipwall's daemon library: rules, table compilation, loader, control socket, metrics.

pub mod duration;
pub mod rules;

/// The XDP program, built by `build.rs`.
pub const BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sipwall.bpf.o"));
pub mod bans;
pub mod cli;
pub mod clock;
#[cfg(test)]
mod contract;
pub mod control;
pub mod daemon;
pub mod detect;
pub mod egress;
pub mod enforcer;
pub mod features;
pub mod jail;
pub mod loader;
pub mod metrics;
pub mod nets;
pub mod pins;
pub mod proof;
pub mod services;
pub mod shm;
pub mod slots;
pub mod sources;
pub mod store;
pub mod tables;
