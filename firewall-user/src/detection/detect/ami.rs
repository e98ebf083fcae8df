//! Asterisk's security events, as records of the manager interface source (`sources::ami`).
//!
//! Asterisk 20 writes each event as `Event: NAME`, `Privilege: …`, the manager's optional
//! fields, then the event's fields in a fixed order: the required ones, then those of the
//! optional ones it has (`sec_events` in main/security_events.c, `append_event_str_from_json`).
//! Values go out unescaped, so a record is read only if it is exactly that layout: a field out
//! of place, twice, or unknown is what text injected through a value looks like. The address
//! is read from `RemoteAddress`, which the server fills in (`IPV4/UDP/192.0.2.1/5060`,
//! `IPV6/TCP/2001:db8::1/5060`, no brackets: `ast_json_ipaddr` in main/json.c).
//!
//! What proves the address (see [`Proof`]), from Asterisk 20.20.1's sources:
//!
//! - `AMI` (main/manager.c) and `PJSIP` (res/res_pjsip/security_events.c) put the transport's
//!   source in `RemoteAddress` (`s->session->addr`; `rdata->pkt_info.src_name`): over TCP, TLS,
//!   WS or WSS that took a handshake, so the event is proven.
//! - Over UDP nothing in the event proves it. pjsip's `ChallengeSent` never carries the nonce:
//!   `ast_sip_report_auth_challenge_sent` compares the scheme with `"digest"` case-sensitively
//!   (res/res_pjsip/security_events.c:221) while pjproject writes `Digest`
//!   (sip_auth_server.c:309, sip_auth_parser.c:57), so `Challenge` is always empty. And a nonce
//!   echoed from the address would still prove nothing: pjsip sends the 401 to the top Via's
//!   `maddr` when there is one (`pjsip_get_response_addr`, sip_util.c:1728), so a forger gets the
//!   nonce made for the address it forges.
//! - `SIP` (chan_sip, channels/sip/security_events.c) reports the dialog's `p->sa`, which
//!   `check_via` sets to the top Via's `maddr` (channels/chan_sip.c:19221-19243) over UDP, TCP and
//!   TLS alike, while with `rport` the answers go to the real source (`sip_real_dst`): the client
//!   picks the address, so no chan_sip event is proven, whatever the transport.
//! - Another service (a third-party module) is not known to fill the field from the transport.
//!
//! chan_sip also decodes `%0D%0A` in the user name it puts in `AccountID` (up to 255 bytes), so
//! a forged request can write whole events after its own (see `sources::ami`). From a record
//! that is not a valid AMI or PJSIP event (a chan_sip event, the source's `GAP_RECORD`, anything
//! unreadable) until the source's next `SYNC_RECORD`, nothing is proven. Line breaks fit in two
//! more values, too short for a record of the exact layout: pjsip's unescaped From user in
//! `InvalidAccountID` (36 bytes, `name` in pjsip_distributor.c) and the action of the HTTP
//! manager in `RequestNotAllowed` (55 bytes after `Action: `, `report_req_not_allowed`).

use std::net::IpAddr;

use super::{host, Detector, Event, Failure, Proof};
use crate::detection::sources::ami::SYNC_RECORD;

/// The rule of a failure event that nothing can prove: a chan_sip event (its address is the
/// Via header's `maddr`), or any event between a record a client could have written and the
/// next sync. [`never_proven`](super::never_proven) keeps wire proofs from upgrading it.
pub const UNTRUSTED_EVENT: &str = "ami-untrusted-event";

/// What an event says about its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failure,
    /// A failure only before a login (`AccountID` empty): manager.c reports an empty message of
    /// a logged-in client as `RequestBadFormat` too (do_message, process_message).
    FailureUnlessLoggedIn,
    Success,
    /// Informational, the client's configuration, or the server's own limits.
    Other,
}

/// One event's layout: its fields after `RemoteAddress`, required then optional, and whether
/// `AccountID` is among the common required fields (everywhere but `RequestBadFormat`).
struct Layout {
    name: &'static str,
    kind: Kind,
    account_required: bool,
    required: &'static [&'static str],
    optional: &'static [&'static str],
}

const MS: &[&str] = &["Module", "SessionTV"];

const fn layout(name: &'static str, kind: Kind, required: &'static [&'static str]) -> Layout {
    Layout { name, kind, account_required: true, required, optional: MS }
}

/// Every security event of Asterisk 20 (include/asterisk/security_events_defs.h), laid out as
/// main/security_events.c writes it. Which are failures of the source, and why:
const LAYOUTS: [Layout; 15] = [
    // denied by an ACL (pjsip endpoint or contact ACL, chan_sip, a manager user's permit/deny)
    Layout { optional: &["Module", "ACLName", "SessionTV"], ..layout("FailedACL", Kind::Failure, &[]) },
    // an unknown user: pjsip `No matching endpoint found`, chan_sip, the manager
    layout("InvalidAccountID", Kind::Failure, &[]),
    // a limit a real client reaches too: chan_sip's call-limit, a second manager login of a user
    // without allowmultiplelogin (a client reconnecting before its old session is gone)
    layout("SessionLimit", Kind::Other, &[]),
    // the server's own state; no module of Asterisk 20 sends these two
    layout("MemoryLimit", Kind::Other, &[]),
    layout("LoadAverageLimit", Kind::Other, &[]),
    // pjsip's registrar refusing an endpoint it identified: its configuration
    layout("RequestNotSupported", Kind::Other, &["RequestType"]),
    // a manager action other than Login, Logoff or Challenge before logging in
    Layout {
        optional: &["Module", "SessionTV", "RequestParams"],
        ..layout("RequestNotAllowed", Kind::Failure, &["RequestType"])
    },
    // an authentication refused for its method; no module of Asterisk 20 sends it
    layout("AuthMethodNotAllowed", Kind::Failure, &["AuthMethod"]),
    // a manager message without Action (a scanner's HTTP request, say)
    Layout {
        account_required: false,
        optional: &["Module", "SessionTV", "AccountID", "RequestParams"],
        ..layout("RequestBadFormat", Kind::FailureUnlessLoggedIn, &["RequestType"])
    },
    layout("SuccessfulAuth", Kind::Success, &["UsingPassword"]),
    // no module of Asterisk 20 sends it; a client behind NAT would
    layout("UnexpectedAddress", Kind::Other, &["ExpectedAddress"]),
    // a digest response or a manager MD5 key that was wrong
    layout("ChallengeResponseFailed", Kind::Failure, &["Challenge", "Response", "ExpectedResponse"]),
    // a wrong password: chan_sip's digest, the manager's plain secret
    Layout {
        optional: &["Module", "SessionTV", "Challenge", "ReceivedChallenge", "ReceivedHash"],
        ..layout("InvalidPassword", Kind::Failure, &[])
    },
    layout("ChallengeSent", Kind::Other, &["Challenge"]),
    // chan_sip: a peer on a transport it is not configured for
    layout("InvalidTransport", Kind::Other, &["AttemptedTransport"]),
];

/// The names of the security events, which the source hands on.
pub const SECURITY_EVENTS: [&str; 15] = {
    let mut names = [""; 15];
    let mut i = 0;
    while i < LAYOUTS.len() {
        names[i] = LAYOUTS[i].name;
        i += 1;
    }
    names
};

/// The manager's own fields after `Privilege`, each optional, in its order
/// (`__manager_event_sessions_va`: timestampevents, debug, systemname).
const MANAGER_FIELDS: [&str; 6] = ["Timestamp", "SequenceNumber", "File", "Line", "Func", "SystemName"];
const COMMON_HEAD: [&str; 4] = ["EventTV", "Severity", "Service", "EventVersion"];
const COMMON_TAIL: [&str; 3] = ["SessionID", "LocalAddress", "RemoteAddress"];

/// The transports `RemoteAddress` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
    /// Asterisk writes none where the driver knows none.
    Unknown,
}

impl Transport {
    /// Whether the transport needed a handshake.
    pub fn connected(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss)
    }
}

/// `IPV4/UDP/192.0.2.1/5060`, `IPV6/TCP/2001:db8::1/5060` or, without a transport,
/// `IPV4/192.0.2.1/5060`. The family must match the address; brackets are refused (Asterisk
/// writes none), an IPv6 zone (`%eth0`) is dropped.
pub fn remote_address(v: &str) -> Option<(IpAddr, Transport)> {
    let mut parts = v.split('/');
    let (family, second, third) = (parts.next()?, parts.next()?, parts.next()?);
    let (transport, addr, port) = match (parts.next(), parts.next()) {
        (None, _) => (Transport::Unknown, second, third),
        (Some(port), None) => {
            let t = match second {
                "UDP" => Transport::Udp,
                "TCP" => Transport::Tcp,
                "TLS" => Transport::Tls,
                "WS" => Transport::Ws,
                "WSS" => Transport::Wss,
                _ => return None,
            };
            (t, third, port)
        }
        _ => return None,
    };
    if !host::is_port(port) || port.parse::<u16>().is_err() {
        return None;
    }
    let addr = match (family, addr.split_once('%')) {
        ("IPV6", Some((a, zone))) if !zone.is_empty() => a,
        (_, None) => addr,
        _ => return None,
    };
    let ip = host::addr(addr)?;
    let text_v6 = addr.contains(':');
    match family {
        "IPV4" if !text_v6 => Some((ip, transport)),
        "IPV6" if text_v6 => Some((ip, transport)),
        _ => None,
    }
}

/// A record read as its event's layout.
struct Record<'a> {
    layout: &'static Layout,
    service: &'a str,
    account: Option<&'a str>,
    remote: (IpAddr, Transport),
}

/// Reads `record` if it is exactly one of Asterisk's security events.
fn parse(record: &str) -> Option<Record<'_>> {
    let mut lines = record.split('\n').map(|l| l.split_once(": ")).peekable();
    let (key, name) = lines.next()??;
    let layout = LAYOUTS.iter().find(|l| key == "Event" && l.name == name)?;
    if lines.next()??.0 != "Privilege" {
        return None;
    }
    let account: &[&str] = if layout.account_required { &["AccountID"] } else { &[] };
    let required = COMMON_HEAD.iter().chain(account).chain(&COMMON_TAIL).chain(layout.required);
    let expected = MANAGER_FIELDS
        .iter()
        .map(|k| (*k, false))
        .chain(required.map(|k| (*k, true)))
        .chain(layout.optional.iter().map(|k| (*k, false)));
    let (mut service, mut account, mut remote) = (None, None, None);
    for (want, needed) in expected {
        let (key, value) = match lines.peek() {
            Some(Some((key, value))) if *key == want => (*key, *value),
            Some(None) => return None,
            _ if needed => return None,
            _ => continue,
        };
        lines.next();
        match key {
            "Service" => service = Some(value),
            "AccountID" => account = Some(value),
            "RemoteAddress" => remote = Some(remote_address(value)?),
            _ => {}
        }
    }
    if lines.next().is_some() {
        return None;
    }
    Some(Record { layout, service: service?, account, remote: remote? })
}

/// A source that authenticated (a `SuccessfulAuth`): what the daemon may take as known good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    pub host: IpAddr,
    /// The account (for display only).
    pub user: Option<String>,
    /// `PJSIP`, `AMI` or `SIP`.
    pub service: String,
    pub proof: Proof,
}

/// The detector of the manager interface's security events.
#[derive(Debug, Default)]
pub struct AmiSecurity {
    /// Since the last sync, a record came that may have carried injected events.
    doubtful: bool,
}

impl AmiSecurity {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`Detector::feed`], which also returns the authentication a `SuccessfulAuth` reports.
    pub fn read(&mut self, record: &str, out: &mut Vec<Event>) -> Option<Success> {
        if record == SYNC_RECORD {
            self.doubtful = false;
            return None;
        }
        // `GAP_RECORD` and whatever else is no event layout
        let r = match parse(record) {
            Some(r) => r,
            None => {
                self.doubtful = true;
                return None;
            }
        };
        let trusted = matches!(r.service, "AMI" | "PJSIP");
        let (host, transport) = r.remote;
        let provable = trusted && !self.doubtful;
        let proof = if provable && transport.connected() { Proof::Proven } else { Proof::Unproven };
        // what cannot be proven here must not be proven later by its address's wire proofs
        let rule = if provable { r.layout.name } else { UNTRUSTED_EVENT };
        self.doubtful |= !trusted;
        let user = r.account.filter(|a| !a.is_empty()).map(str::to_owned);
        let failure = match r.layout.kind {
            Kind::Failure => true,
            Kind::FailureUnlessLoggedIn => user.is_none(),
            Kind::Success => return Some(Success { host, user, service: r.service.to_owned(), proof }),
            Kind::Other => false,
        };
        if failure {
            out.push(Event::Failure(Failure { host, user, attempts: 1, rule, proof }));
        }
        None
    }
}

impl Detector for AmiSecurity {
    fn feed(&mut self, line: &str, out: &mut Vec<Event>) {
        self.read(line, out);
    }
}

#[cfg(test)]
mod tests;
