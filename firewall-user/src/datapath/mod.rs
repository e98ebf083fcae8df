//! The data path: the XDP program and what the daemon keeps in the kernel for it.
//!
//! [`loader`] loads the object (taking over pinned tables), calibrates the [`clock`], and
//! [`attach`] puts it on the interfaces through pinned links ([`pins`]); [`good`] keeps the known-good sources the rate
//! limits spare; [`egress`] adds the tc classifier that reads the SIP
//! answers leaving the host; [`features`] says what the running kernel accepted. The
//! [`enforcer`] owns the model of the rules and bans ([`bans`], [`services`], [`nets`]) and
//! writes it into the kernel [`tables`], whose large arrays are slot tables ([`slots`]) reached
//! through shared mappings ([`shm`]); [`fit`] tells whether rules fit those tables, and with
//! which line they stop fitting.

pub mod attach;
pub mod bans;
pub mod clock;
pub mod egress;
pub mod enforcer;
pub mod features;
pub mod fit;
pub mod good;
pub mod loader;
pub mod nets;
pub mod pins;
pub mod services;
pub mod shm;
pub mod slots;
pub mod tables;
