//! Asterisk: chan_sip, chan_pjsip and res_pjsip, chan_iax2, the manager (AMI), the security
//! event log, and FreePBX's "Rejecting unknown SIP connection" dialplan log.
//!
//! The message is found after Asterisk's own prefix (`LEVEL[tid][C-call]: file.c:line func:`),
//! which an attacker cannot write, and each message type is parsed from the end a field at a
//! time, so From/Contact/user/call-id text cannot move the address read.

use std::net::IpAddr;

use super::{
    find, find_all, host, prefix, rfind, settle_proof, split_once, split_space, Detector, Event,
    Proof::{self, Proven, Unproven},
};

#[derive(Default)]
pub struct Asterisk;

const LEVELS: [&str; 5] = ["NOTICE", "SECURITY", "WARNING", "ERROR", "VERBOSE"];

// What each message proves about the address it names (see `Proof`), all rows in one place.
// `Proven` needs packets the host sent to that very address: a TCP handshake (AMI) or IAX2's
// call token; a security log line proves nothing (`SECURITY_LOG_EVENT`). A SIP digest answered
// over UDP is no such proof, as the lab Asterisk 20.20.1 shows (../shared/asterisk): pjsip logs
// `Failed to authenticate` for one forged REGISTER carrying a made-up nonce (verify() in
// res_pjsip_authenticator_digest.c checks the nonce only when the response is right), and chan_sip
// logs `Wrong password` for a forged address answering a nonce sent to another one (a REGISTER's
// dialog is found by Call-ID alone, __find_call in chan_sip.c). Neither log line names the
// transport; AMI's events do (`detect::ami`).

/// chan_sip `Registration from 'TO' failed for 'ADDR:PORT' - REASON` (handle_request_register).
const REGISTRATION_REASONS: [(&str, Proof); 7] = [
    // the nonce answered may have gone to another address
    ("Wrong password", Unproven),
    // decided before any nonce is looked at
    ("Username/auth name mismatch", Unproven),
    ("No matching peer found", Unproven),
    ("Not a local domain", Unproven),
    ("Device does not match ACL", Unproven),
    ("Peer is not supposed to register", Unproven),
    ("ACL error (permit/deny)", Unproven),
];

/// res_pjsip `Request 'M' from 'F' failed for 'ADDR:PORT' (callid: C) - REASON` (pjsip_distributor.c).
const PJSIP_REASONS: [(&str, Proof); 5] = [
    // any Authorization header with a wrong response, nonce made up or not
    ("Failed to authenticate", Unproven),
    // endpoint_lookup() and the ACLs run before any challenge: the first REGISTER of an unknown
    // user is already "No matching endpoint found"
    ("No matching endpoint found", Unproven),
    ("Not match Endpoint ACL", Unproven),
    ("Not match Endpoint Contact ACL", Unproven),
    ("Error to authenticate", Unproven),
];

/// res_security_log `SecurityEvent="KIND"`, whatever the transport (see [`SECURITY_LOG_EVENT`]).
/// The password events come with the log lines above, which name the packet's source.
const SECURITY_EVENTS: [(&str, Proof); 4] = [
    ("ChallengeResponseFailed", Unproven),
    ("InvalidPassword", Unproven),
    ("InvalidAccountID", Unproven),
    ("FailedACL", Unproven),
];

/// chan_iax2 `Host ADDR MESSAGE` (UDP); the same messages from manager.c (`ADDR MESSAGE`, AMI)
/// come over TCP and are all `Proven`.
const IAX2_MESSAGES: [(&str, Proof); 3] = [
    // an AUTHREP from ADDR belongs to a call begun from ADDR (frames are matched by address and
    // the caller's call number), which by default (requirecalltoken) needed the call token sent
    // to ADDR; where requirecalltoken=no, a forged NEW and AUTHREP would do
    ("failed to authenticate as ", Proven),
    ("failed MD5 authentication for '", Proven),
    ("tried to authenticate with nonexistent user '", Unproven),
];

/// chan_iax2 `No registration for peer 'P' (from ADDR)`: a REGREQ naming an unknown peer.
const IAX2_PEER: Proof = Unproven;
/// chan_sip and res_pjsip `Call from …` to a missing extension: one INVITE.
const CALL_REJECTED: Proof = Unproven;
/// Old chan_sip's `hacking attempt detected 'ADDR'`: a malformed request.
const HACKING: Proof = Unproven;
/// FreePBX's dialplan `Rejecting unknown SIP connection from ADDR`: one INVITE.
const UNKNOWN_CONNECTION: Proof = Unproven;

/// An event for the failure of `host`, proven or not.
fn failure(host: IpAddr, rule: &'static str, proof: Proof) -> Event {
    match proof {
        Proven => Event::failure(host, None, rule),
        Unproven => Event::unproven(host, None, rule),
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The message after Asterisk's prefix, or `None` if the line is not an Asterisk log line.
pub fn message(line: &str) -> Option<&str> {
    // Asterisk's own files start with its timestamp (or the level); through syslog or the
    // journal, its prefix follows the syslog header
    let mut s = match line.as_bytes().first() {
        Some(b'[') => prefix::strip_time(line),
        Some(c) if c.is_ascii_uppercase() && LEVELS.iter().any(|l| line.starts_with(l)) => line,
        // RFC 5424, or a syslog header naming Asterisk
        Some(b'<') => through_syslog(line),
        _ => {
            // after the timestamp: another program's line is looked at from here (where its
            // header starts), so its header needs no parsing unless it may name Asterisk
            let rest = prefix::strip_time(line);
            if names_asterisk(rest) {
                through_syslog(line)
            } else {
                rest
            }
        }
    };
    // LEVEL [tid] [C-callid] [:]
    let level = LEVELS.iter().find(|l| s.starts_with(**l))?;
    s = s[level.len()..].trim_start_matches(' ');
    for _ in 0..2 {
        if let Some(rest) = s.strip_prefix('[') {
            let (inner, after) = split_once(rest, "]")?;
            if !(inner.bytes().all(|c| c.is_ascii_digit()) || inner.starts_with("C-")) {
                return None;
            }
            s = after;
        }
    }
    s = s.strip_prefix(':').unwrap_or(s).strip_prefix(' ')?;
    // source: "file.c:" [line] [" in"] [" func:"], or a dialplan "Ext. exten:" [prio] [" in @ ctx:"]
    let (src, rest) = split_once(s, ":")?;
    let dialplan = src.starts_with("Ext. ");
    if !dialplan && !src.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')) {
        return None;
    }
    let rest = &rest[rest.bytes().take_while(u8::is_ascii_digit).count()..];
    if let Some(after) = rest.strip_prefix(' ') {
        // an optional " [in ]func:" (or " in @ context:" for dialplan lines)
        let (word, tail) = split_space(after).unwrap_or((after, ""));
        if word == "in" {
            if let Some((func, msg)) = split_once(tail, ": ") {
                if is_ident(func) || (dialplan && func.starts_with('@')) {
                    return Some(msg);
                }
            }
        } else if let Some(func) = word.strip_suffix(':') {
            if is_ident(func) {
                return Some(tail);
            }
        }
        return Some(after);
    }
    None
}

/// Where Asterisk's prefix is looked for in a line through syslog or the journal: after the
/// header of an `asterisk` line, after the timestamp of another program's.
fn through_syslog(line: &str) -> &str {
    let h = prefix::syslog(line);
    match (h.ident, h.host) {
        (Some(i), _) if i.starts_with("asterisk") => prefix::strip_time(h.msg),
        (Some(_), Some(host)) => &line[host.as_ptr() as usize - line.as_ptr() as usize..],
        _ => prefix::strip_time(line),
    }
}

/// Whether one of the first two words (where a syslog header names the program) holds
/// `asterisk`.
fn names_asterisk(rest: &str) -> bool {
    let end = match split_space(rest) {
        Some((first, after)) => first.len() + 1 + split_space(after).map_or(after.len(), |(second, _)| second.len()),
        None => rest.len(),
    };
    // `asterisk` holds no space: it is in one of the two words or not in both
    find(&rest[..end], "asterisk").is_some()
}

/// The text before `SEP REASON` at the end of `s`, and the reason's proof.
fn before_reason<'a>(s: &'a str, sep: &str, reasons: &[(&str, Proof)]) -> Option<(&'a str, Proof)> {
    let t = s.trim_end();
    reasons.iter().find_map(|&(r, p)| Some((t.strip_suffix(r)?.strip_suffix(sep)?, p)))
}

/// `Registration from 'TO' failed for 'ADDR:PORT' - REASON`: the To header is the attacker's, but
/// ADDR and REASON, both the server's, follow it and hold no quote; the last `' failed for '` is
/// the real one whatever the To header holds.
fn registration(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("Registration from '")?;
    let (before, proof) = before_reason(body, "' - ", &REGISTRATION_REASONS)?;
    let at = rfind(before, "' failed for '")?;
    let a = host::addr_port(&before[at + "' failed for '".len()..])?;
    Some(failure(a, "asterisk-registration", proof))
}

/// `Call from 'X' ([PROTO:]ADDR:PORT) to extension 'E' rejected because extension not found…`
///
/// Both X (the From user) and E (the request URI's user, which chan_sip `ast_uri_decode`s: any
/// `%XX` becomes that byte) are the attacker's, on both sides of the address: a fake
/// `' (ADDR) to extension '` can stand in either, and differing addresses leave the line
/// ambiguous.
fn call_rejected(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("Call from '")?;
    find(body, "' rejected because extension not found in context '")?;
    let mut candidates = Vec::new();
    for i in find_all(body, "' (") {
        let rest = &body[i + 3..];
        let Some(end) = find(rest, ") to extension '") else { continue };
        let mut addr = &rest[..end];
        for proto in ["UDP:", "TCP:", "TLS:", "WS:", "WSS:"] {
            addr = addr.strip_prefix(proto).unwrap_or(addr);
        }
        if let Some(a) = host::addr_port(addr) {
            candidates.push(a);
        }
    }
    settle_proof(candidates, None, "asterisk-call-rejected", CALL_REJECTED)
}

/// chan_iax2 `Host ADDR[:PORT] MESSAGE` and manager.c `ADDR MESSAGE`: the address comes first,
/// straight after the server's prefix.
fn iax_or_manager(msg: &str) -> Option<Event> {
    let (iax2, rest) = match msg.strip_prefix("Host ") {
        Some(r) => (true, r),
        None => (false, msg),
    };
    let (addr, tail) = split_space(rest)?;
    let &(_, proof) = IAX2_MESSAGES.iter().find(|(m, _)| tail.starts_with(m))?;
    let a = host::addr_port(addr)?;
    Some(if iax2 { failure(a, "asterisk-iax2-auth", proof) } else { failure(a, "asterisk-manager-auth", Proven) })
}

fn iax_no_registration(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("No registration for peer '")?;
    let inner = body.trim_end().strip_suffix(')')?;
    let at = rfind(inner, " (from ")?;
    Some(failure(host::addr(&inner[at + " (from ".len()..])?, "asterisk-iax2-peer", IAX2_PEER))
}

fn hacking(msg: &str) -> Option<Event> {
    let a = msg.strip_prefix("hacking attempt detected '")?.trim_end().strip_suffix('\'')?;
    Some(failure(host::addr_port(a)?, "asterisk-hacking-attempt", HACKING))
}

fn rejecting_unknown(msg: &str) -> Option<Event> {
    // the dialplan logs the whole message in quotes, at the end of the line
    let t = msg.trim_end().strip_suffix('"')?;
    let at = t.rfind("\"Rejecting unknown SIP connection from ")?;
    let a = &t[at + "\"Rejecting unknown SIP connection from ".len()..];
    Some(failure(host::addr_port(a)?, "asterisk-unknown-connection", UNKNOWN_CONNECTION))
}

/// `Request 'M' from 'F' failed for 'ADDR:PORT' (callid: C) - REASON[ after N tries in T ms]`
/// (log_failed_request in pjsip_distributor.c).
///
/// Only ADDR and REASON are the server's. F is the From header as pjproject prints it: the
/// display name verbatim, URI parameters such as `user=` unescaped. C is the Call-ID header, which
/// pjproject takes whole up to the end of its line, spaces and quotes included (`parse_hdr_call_id`
/// reads `pjsip_NOT_NEWLINE`), although RFC 3261 allows no space in it. So a complete fake
/// `' failed for 'ADDR' (callid: ` can stand before the real one and after it, and neither end of
/// the line tells them apart: differing addresses leave the line ambiguous.
fn pjsip_request(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("Request ")?;
    let (before, proof) = before_reason(without_tries(body), ") - ", &PJSIP_REASONS)?;
    let mut candidates = Vec::new();
    for i in find_all(before, "' failed for '") {
        let rest = &before[i + "' failed for '".len()..];
        let Some(end) = find(rest, "' (callid: ") else { continue };
        if let Some(a) = host::addr_port(&rest[..end]) {
            candidates.push(a);
        }
    }
    settle_proof(candidates, None, "asterisk-pjsip-request", proof)
}

/// `s` without the ` after N tries in T ms` pjsip appends once a source has sent
/// `unidentified_request_count` unidentified requests.
fn without_tries(s: &str) -> &str {
    let t = s.trim_end();
    let Some(r) = t.strip_suffix(" ms") else { return t };
    let Some(at) = rfind(r, " after ") else { return t };
    let numbers = r[at + " after ".len()..].split_once(" tries in ");
    let number = |n: &str| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    match numbers {
        Some((n, ms)) if number(n) && number(ms) => &t[..at],
        _ => t,
    }
}

/// `RemoteAddress="IPV4/UDP/ADDR/PORT"` (or `IPV4/ADDR/PORT` where Asterisk knows no transport)
/// → ADDR, and whether the transport is a connection (TCP, TLS, WS, WSS).
fn remote_address(v: &str) -> Option<(IpAddr, bool)> {
    let mut parts = v.split('/');
    let (fam, second, third) = (parts.next()?, parts.next()?, parts.next()?);
    let (proto, addr, port) = match (parts.next(), parts.next()) {
        (None, _) => (None, second, third),
        (Some(port), None) => (Some(second), third, port),
        _ => return None,
    };
    if !(fam == "IPV4" || fam == "IPV6") || !host::is_port(port) {
        return None;
    }
    let connected = matches!(proto, Some("TCP" | "TLS" | "WS" | "WSS"));
    Some((host::addr(addr)?, connected))
}

/// The rule of a `SecurityEvent` line of Asterisk's security log. Such a line is never proven,
/// not by its transport and not by what the address it names proved on the wire:
///
/// - chan_sip's events (`Service="SIP"`) name the dialog's address, which `check_via`
///   (channels/chan_sip.c:19221-19243) takes from the top Via header's `maddr`, the client's
///   choice, over UDP, TCP and TLS alike;
/// - chan_sip writes the request URI's user, URL-decoded, into `AccountID`: a `%0D%0A` there
///   starts a new line of the file, prefix and all, so a line of any service, transport and
///   address may be a client's text.
///
/// The `messages` lines of the same failures name the packet's source and stay provable; AMI
/// gives the events with their transport (`detect::ami`).
pub const SECURITY_LOG_EVENT: &str = "asterisk-security-event";

/// Fields the server writes after RemoteAddress for the event types whose earlier fields
/// (AccountID, SessionID) an attacker sets but whose later ones it cannot.
const TRAILING_SERVER_FIELDS: [&str; 3] = ["ACLName", "SessionTV", "Module"];

/// `SecurityEvent="KIND",…,AccountID="…",SessionID="…",LocalAddress="…",RemoteAddress="…"[,…]`.
///
/// Values go in unescaped: AccountID and SessionID (the Call-ID, spaces and quotes allowed) can
/// carry fake `RemoteAddress` fields. For InvalidAccountID and FailedACL only server fields follow
/// the real one, so the last RemoteAddress followed by nothing else is it. ChallengeResponseFailed
/// (Response) and InvalidPassword (ReceivedChallenge, ReceivedHash) end in attacker fields: a fake
/// can follow the real one, and differing addresses leave the line ambiguous.
fn security_event(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("SecurityEvent=\"")?;
    let (kind, _) = split_once(body, "\"")?;
    let &(_, proof) = SECURITY_EVENTS.iter().find(|(k, _)| *k == kind)?;
    const KEY: &str = ",RemoteAddress=\"";
    let mut candidates = Vec::new();
    for i in find_all(body, KEY) {
        let rest = &body[i + KEY.len()..];
        if let Some(end) = find(rest, "\"") {
            if let Some((a, connected)) = remote_address(&rest[..end]) {
                candidates.push((i + KEY.len() + end + 1, a, connected));
            }
        }
    }
    // never proven, whatever the transport: see SECURITY_LOG_EVENT
    let rule = SECURITY_LOG_EVENT;
    if matches!(kind, "InvalidAccountID" | "FailedACL") {
        for &(end, a, _) in candidates.iter().rev() {
            if only_server_fields(&body[end..]) {
                return Some(failure(a, rule, proof));
            }
        }
    }
    settle_proof(candidates.into_iter().map(|c| c.1).collect(), None, rule, proof)
}

/// Whether `s` is a run of `,Name="value"` fields all named in `TRAILING_SERVER_FIELDS`,
/// values free of quotes.
fn only_server_fields(s: &str) -> bool {
    let mut rest = s.trim_end();
    while !rest.is_empty() {
        let Some(r) = rest.strip_prefix(',') else { return false };
        let Some((name, r)) = r.split_once("=\"") else { return false };
        if !TRAILING_SERVER_FIELDS.contains(&name) {
            return false;
        }
        let Some((_, r)) = split_once(r, "\"") else { return false };
        rest = r;
    }
    true
}

impl Detector for Asterisk {
    fn feed(&mut self, line: &str, out: &mut Vec<Event>) {
        let Some(msg) = message(line) else { return };
        let parsed = match msg.as_bytes().first() {
            Some(b'R') => registration(msg).or_else(|| pjsip_request(msg)),
            Some(b'C') => call_rejected(msg),
            Some(b'S') => security_event(msg),
            Some(b'N') => iax_no_registration(msg),
            Some(b'h') => hacking(msg),
            Some(b'"') => rejecting_unknown(msg),
            _ => iax_or_manager(msg),
        };
        out.extend(parsed);
    }
}

#[cfg(test)]
mod tests;
