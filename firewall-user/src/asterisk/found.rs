//! What discovery reports: the ports Asterisk listens on, its RTP range, the trunks that must
//! never be banned, and notes, each with where it was written.

use std::{fmt, net::IpAddr, path::PathBuf};

use ipnet::IpNet;

use super::conf::{Level, Note, Origin};

/// The layer-4 protocol sipwall filters on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// What is spoken on a listening port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    SipUdp,
    SipTcp,
    SipTls,
    /// SIP over WebSocket, on Asterisk's HTTP server.
    SipWs,
    /// SIP over secure WebSocket, on Asterisk's HTTPS server.
    SipWss,
    Iax2,
}

impl Protocol {
    pub fn transport(self) -> Transport {
        match self {
            Protocol::SipUdp | Protocol::Iax2 => Transport::Udp,
            _ => Transport::Tcp,
        }
    }

    /// `sip` or `iax`, as [`Discovered::describe`] starts a listener's line.
    pub fn service(self) -> &'static str {
        match self {
            Protocol::Iax2 => "iax",
            _ => "sip",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::SipUdp => "udp",
            Protocol::SipTcp => "tcp",
            Protocol::SipTls => "tls",
            Protocol::SipWs => "ws",
            Protocol::SipWss => "wss",
            Protocol::Iax2 => "iax2",
        }
    }
}

/// A port Asterisk listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub protocol: Protocol,
    pub port: u16,
    /// The address bound (`0.0.0.0` or `::` for all).
    pub bind: IpAddr,
    /// Which part of Asterisk listens: `pjsip transport transport-udp`, `chan_sip`, …
    pub source: String,
    /// The line that set the address or port; `None` when it is Asterisk's default.
    pub origin: Option<Origin>,
}

impl Listener {
    pub fn transport(&self) -> Transport {
        self.protocol.transport()
    }
}

/// The UDP ports RTP media uses (both ends included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpRange {
    pub first: u16,
    pub last: u16,
    /// The `rtpstart`/`rtpend` line; `None` for Asterisk's default (5000-31000).
    pub origin: Option<Origin>,
}

/// Where a trunk's address comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrunkKind {
    /// pjsip `type=identify`, `match=`.
    Identify,
    /// pjsip `type=registration`, `server_uri=` or `outbound_proxy=`.
    Registration,
    /// pjsip `type=aor`, a static `contact=`.
    AorContact,
    /// pjsip_wizard.conf `type=wizard`: `remote_hosts=` and the objects it makes.
    Wizard,
    /// sip.conf peer or friend with a fixed `host=`.
    SipPeer,
    /// sip.conf `register =>`.
    SipRegister,
    /// iax.conf peer or friend with a fixed `host=`.
    IaxPeer,
    /// iax.conf `register =>`.
    IaxRegister,
}

impl fmt::Display for TrunkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrunkKind::Identify => "pjsip identify",
            TrunkKind::Registration => "pjsip registration",
            TrunkKind::AorContact => "pjsip aor contact",
            TrunkKind::Wizard => "pjsip wizard",
            TrunkKind::SipPeer => "sip peer",
            TrunkKind::SipRegister => "sip register",
            TrunkKind::IaxPeer => "iax peer",
            TrunkKind::IaxRegister => "iax register",
        })
    }
}

/// An address Asterisk trusts or talks to on its own: never to be banned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    /// The section it is in (`[itsp]`), or `general` for a `register =>` line.
    pub name: String,
    pub kind: TrunkKind,
    /// The host or network as written (for `register =>`, only its host part: the rest
    /// holds a secret).
    pub text: String,
    /// The networks it stands for: a literal address as a /32 or /128, a network as written,
    /// every address a name resolves to; empty when a name does not resolve.
    pub nets: Vec<IpNet>,
    pub origin: Origin,
}

/// Everything discovery found in one Asterisk configuration directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    pub dir: PathBuf,
    /// Every configuration file read, relative to `dir` when inside it.
    pub files: Vec<PathBuf>,
    pub listeners: Vec<Listener>,
    /// `None` when modules.conf keeps res_rtp_asterisk from loading.
    pub rtp: Option<RtpRange>,
    pub trunks: Vec<Trunk>,
    pub notes: Vec<Note>,
}

impl Discovered {
    /// Every trunk network, each once, in order.
    pub fn trunk_nets(&self) -> Vec<IpNet> {
        let mut nets: Vec<IpNet> = self.trunks.iter().flat_map(|t| t.nets.iter().copied()).collect();
        nets.sort();
        nets.dedup();
        nets
    }

    /// Whether a note says Asterisk refuses part of the configuration.
    pub fn has_errors(&self) -> bool {
        self.notes.iter().any(|n| n.level == Level::Error)
    }

    /// One line per listener, the RTP range, each trunk and each note, for `sipwall check`
    /// and `sipwall status`:
    ///
    /// ```text
    /// sip: 5060/udp on 0.0.0.0 (chan_sip udp, sip.conf:12)
    /// rtp: 10000-20000/udp (rtp.conf:3)
    /// trunk itsp (pjsip identify, pjsip.conf:42): sip.provider.example → 203.0.113.5, 203.0.113.6
    /// ```
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.listeners {
            let at = l.origin.as_ref().map_or_else(|| "Asterisk's default".to_owned(), Origin::to_string);
            out.push(format!(
                "{}: {}/{} on {} ({}, {at})",
                l.protocol.service(),
                l.port,
                l.transport(),
                l.bind,
                l.source
            ));
        }
        if let Some(r) = &self.rtp {
            let at = r.origin.as_ref().map_or_else(|| "Asterisk's default".to_owned(), Origin::to_string);
            out.push(format!("rtp: {}-{}/udp ({at})", r.first, r.last));
        }
        for t in &self.trunks {
            let nets = if t.nets.is_empty() {
                "no address".to_owned()
            } else {
                t.nets.iter().map(|n| show_net(*n)).collect::<Vec<_>>().join(", ")
            };
            out.push(format!("trunk {} ({}, {}): {} → {nets}", t.name, t.kind, t.origin, t.text));
        }
        out.extend(self.notes.iter().map(Note::to_string));
        out
    }
}

/// A single address without its /32 or /128.
fn show_net(n: IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}
