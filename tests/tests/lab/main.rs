//! The lab tier: `sipwall run` attached to a veth inside network namespaces the test creates,
//! with real peers where the protocol has one (Asterisk, Kamailio, SIPp, sipvicious, OpenSSH,
//! systemd-journald, an SMTP server and an https webhook receiver) and forged frames from the
//! other end. Needs root. Each test makes its own namespaces, bpffs and daemon, so tests run side
//! by side. `kernel_features` is the one the kernel-matrix tier also runs on every kernel.

mod alerts;
mod asterisk_lab;
mod attach;
mod detection;
mod feeds;
mod journal;
mod kernel_features;
mod package;
mod restart;
mod sip_lab;
mod sip_wire;
mod spoof_lab;
mod sshd;
