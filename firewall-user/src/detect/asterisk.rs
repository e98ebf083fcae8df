//! Asterisk: chan_sip, chan_pjsip and res_pjsip, chan_iax2, the manager (AMI), the security
//! event log, and FreePBX's "Rejecting unknown SIP connection" dialplan log.
//!
//! The message is found after Asterisk's own prefix (`LEVEL[tid][C-call]: file.c:line func:`),
//! which an attacker cannot write, and each message type is parsed from the end a field at a
//! time, so From/Contact/user/call-id text cannot move the address read.

use std::net::IpAddr;

use super::{find, find_all, host, prefix, rfind, settle, split_once, split_space, Detector, Event};

#[derive(Default)]
pub struct Asterisk;

const LEVELS: [&str; 5] = ["NOTICE", "SECURITY", "WARNING", "ERROR", "VERBOSE"];

const REGISTRATION_REASONS: [&str; 7] = [
    "Wrong password",
    "Username/auth name mismatch",
    "No matching peer found",
    "Not a local domain",
    "Device does not match ACL",
    "Peer is not supposed to register",
    "ACL error (permit/deny)",
];

const PJSIP_REASONS: [&str; 5] = [
    "No matching endpoint found",
    "Not match Endpoint ACL",
    "Not match Endpoint Contact ACL",
    "Failed to authenticate",
    "Error to authenticate",
];

const SECURITY_EVENTS: [&str; 4] = ["InvalidAccountID", "ChallengeResponseFailed", "InvalidPassword", "FailedACL"];

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

/// Strips `suffix` and trailing spaces/dots from the end of `s`.
fn ends_with_any<'a>(s: &'a str, reasons: &[&str]) -> Option<&'a str> {
    let t = s.trim_end();
    reasons.iter().find_map(|r| t.strip_suffix(r))
}

fn registration(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("Registration from '")?;
    let before_reason = ends_with_any(body, &REGISTRATION_REASONS)?.strip_suffix("' - ")?;
    // the address is the last field: after the last "' failed for '"
    let at = rfind(before_reason, "' failed for '")?;
    let a = host::addr_port(&before_reason[at + "' failed for '".len()..])?;
    Some(Event::failure(a, None, "asterisk-registration"))
}

/// `Call from 'X' ([PROTO:]ADDR:PORT) to extension 'E' rejected because extension not found…`
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
    settle(candidates, None, "asterisk-call-rejected")
}

fn iax_or_manager(msg: &str) -> Option<Event> {
    let (rule, rest) = match msg.strip_prefix("Host ") {
        Some(r) => ("asterisk-iax2-auth", r),
        None => ("asterisk-manager-auth", msg),
    };
    let (addr, tail) = split_space(rest)?;
    let known = [
        "failed to authenticate as '",
        "failed MD5 authentication for '",
        "tried to authenticate with nonexistent user '",
    ];
    if !known.iter().any(|k| tail.starts_with(k)) {
        return None;
    }
    Some(Event::failure(host::addr(addr)?, None, rule))
}

fn iax_no_registration(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("No registration for peer '")?;
    let inner = body.trim_end().strip_suffix(')')?;
    let at = rfind(inner, " (from ")?;
    Some(Event::failure(host::addr(&inner[at + " (from ".len()..])?, None, "asterisk-iax2-peer"))
}

fn hacking(msg: &str) -> Option<Event> {
    let a = msg.strip_prefix("hacking attempt detected '")?.trim_end().strip_suffix('\'')?;
    Some(Event::failure(host::addr_port(a)?, None, "asterisk-hacking-attempt"))
}

fn rejecting_unknown(msg: &str) -> Option<Event> {
    // the dialplan logs the whole message in quotes, at the end of the line
    let t = msg.trim_end().strip_suffix('"')?;
    let at = t.rfind("\"Rejecting unknown SIP connection from ")?;
    let a = &t[at + "\"Rejecting unknown SIP connection from ".len()..];
    Some(Event::failure(host::addr_port(a)?, None, "asterisk-unknown-connection"))
}

/// `Request ['M' ]from 'F' failed for 'ADDR:PORT' (callid: C) - REASON`
fn pjsip_request(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("Request ")?;
    ends_with_any(body, &PJSIP_REASONS)?;
    let mut candidates = Vec::new();
    for i in find_all(body, "' failed for '") {
        let rest = &body[i + "' failed for '".len()..];
        let Some(end) = find(rest, "' (callid: ") else { continue };
        if let Some(a) = host::addr_port(&rest[..end]) {
            candidates.push(a);
        }
    }
    settle(candidates, None, "asterisk-pjsip-request")
}

/// `RemoteAddress="IPV4/UDP/ADDR/PORT"` → ADDR.
fn remote_address(v: &str) -> Option<IpAddr> {
    let mut parts = v.split('/');
    let (fam, _proto, addr, port) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if !(fam == "IPV4" || fam == "IPV6") || !host::is_port(port) || parts.next().is_some() {
        return None;
    }
    host::addr(addr)
}

/// Fields the server writes after RemoteAddress for the event types whose earlier fields
/// (AccountID, SessionID) an attacker sets but whose later ones it cannot.
const TRAILING_SERVER_FIELDS: [&str; 3] = ["ACLName", "SessionTV", "Module"];

fn security_event(msg: &str) -> Option<Event> {
    let body = msg.strip_prefix("SecurityEvent=\"")?;
    let (kind, _) = split_once(body, "\"")?;
    if !SECURITY_EVENTS.contains(&kind) {
        return None;
    }
    const KEY: &str = ",RemoteAddress=\"";
    let mut candidates = Vec::new();
    for i in find_all(body, KEY) {
        let rest = &body[i + KEY.len()..];
        if let Some(end) = find(rest, "\"") {
            if let Some(a) = remote_address(&rest[..end]) {
                candidates.push((i, i + KEY.len() + end + 1, a));
            }
        }
    }
    // For InvalidAccountID and FailedACL nothing an attacker writes follows RemoteAddress: the
    // last one that only server fields follow is the real one.
    if matches!(kind, "InvalidAccountID" | "FailedACL") {
        for (_, end, a) in candidates.iter().rev() {
            if only_server_fields(&body[*end..]) {
                return Some(Event::failure(*a, None, "asterisk-security-event"));
            }
        }
    }
    settle(candidates.into_iter().map(|c| c.2).collect(), None, "asterisk-security-event")
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
