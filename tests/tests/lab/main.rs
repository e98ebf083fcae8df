//! The lab tier: `sipwall run` attached to a veth inside network namespaces the test creates,
//! with real peers where the protocol has one (Asterisk, Kamailio, SIPp, sipvicious, OpenSSH,
//! systemd-journald, an SMTP server and an https webhook receiver) and forged frames from the
//! other end. Needs root. Each test makes its own namespaces, bpffs and daemon, so tests run side
//! by side. `kernel_features` is the one the kernel-matrix tier also runs on every kernel.
//! `crowdsec` runs no sipwall: it checks the CrowdSec peers on their own (a private Local API
//! and Debian's crowdsec-firewall-bouncer), for the labs where daemons share bans through that API.

mod alerts;
mod asterisk_ami;
mod asterisk_lab;
mod attach;
mod crowdsec;
mod detection;
mod feeds;
mod fleet;
mod journal;
mod kernel_features;
mod package;
mod restart;
mod sip_lab;
mod sip_wire;
mod spoof_lab;
mod sshd;
