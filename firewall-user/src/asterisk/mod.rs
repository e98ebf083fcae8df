//! Asterisk's configuration read the way Asterisk resolves it ([`conf`]), and what sipwall
//! must know from it ([`discover()`]): the SIP and IAX ports, the RTP range, and the trunks
//! that must never be banned, each with the file and line it came from.

mod addr;
mod chan_sip;
mod comments;
pub mod conf;
pub mod discover;
mod found;
mod glob;
mod http;
mod iax;
mod modules;
mod parse;
mod pjsip;
mod rtp;
#[cfg(test)]
mod tests;
mod wizard;

pub use self::{
    conf::{ConfError, Config, Entry, Level, Note, Origin, Section},
    discover::discover,
    found::{Discovered, Listener, Protocol, RtpRange, Transport, Trunk, TrunkKind},
};
