//! Detection: from evidence to bans, with fail2ban's semantics.
//!
//! [`sources`] follow log files and the journal; [`detect`] turns a line into a failure of an
//! address (Asterisk, sshd, translated fail2ban filters); [`jail`] counts failures within
//! findtime and bans at maxretry, for bantime, with recidive's escalation; [`proof`] keeps what
//! the wire showed of each source, so that evidence a forged packet could produce never bans
//! an address that did not prove it receives the host's packets.

pub mod detect;
pub mod jail;
pub mod proof;
pub mod sources;
