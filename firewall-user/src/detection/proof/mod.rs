//! Proofs that a source receives the host's packets, from the SIP answers the egress classifier
//! reads and the requests the inspector shows the daemon (`firewall_common::proof`).
//!
//! - Each challenge or failure the host answers carries tokens only its receiver learns: the
//!   digest nonce of a 401/407 and the To-tag of the answer. They are kept per address and port.
//! - A later request from that address and port that carries one of them (the nonce in its
//!   credentials, the To-tag in the ACK of a failed INVITE) proves its transaction (address and
//!   Call-ID) and its address.
//! - A failure the host answered (403, 404) is proven when its transaction is, at once or within
//!   [`WAIT_MS`] (the ACK comes after); else it is unproven. A challenge no success followed is
//!   proven when its transaction is.
//! - A 2xx to a REGISTER or INVITE whose transaction was challenged and proven with the host's
//!   nonce makes its source known good for `[sip] known_good`.
//!
//! IPv6 sources count as their /64, as bans and rate limits do; tokens are kept per full address.

pub mod expiring;
pub mod message;

use std::{
    collections::{hash_map::RandomState, VecDeque},
    hash::BuildHasher,
    net::IpAddr,
};

use firewall_common::rate::RateEvent;

use self::{
    expiring::Expiring,
    message::{Message, Start},
};
use crate::detection::detect::{Event, Proof};

/// Where Asterisk (res_pjsip) writes the Call-ID of the request a line is about.
const CALL_ID_FIELD: &str = "(callid: ";

pub use firewall_common::proof::WAIT_MS;
/// How long a token the host sent can prove its receiver.
const TOKEN_MS: u64 = 5 * 60_000;
/// How long a proven transaction counts.
const CALL_MS: u64 = 10 * 60_000;
/// How long an address that proved itself counts as proven for the log evidence of
/// [`Proofs::host`].
const HOST_MS: u64 = 60 * 60_000;
/// Tokens kept per address and port (the newest).
const TOKENS_PER_PEER: usize = 8;
/// Entries in each table at most; failures waiting at most.
pub const CAPACITY: usize = 65_536;

/// What proved an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// The digest nonce of the host's challenge, in the request's credentials.
    Nonce,
    /// The To-tag of the host's answer (an ACK, an in-dialog request).
    ToTag,
}

impl Token {
    pub fn name(self) -> &'static str {
        match self {
            Token::Nonce => "nonce",
            Token::ToTag => "to_tag",
        }
    }
}

/// A known-good source: when it authenticated, and with which method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Good {
    pub since: u64,
    pub method: String,
}

/// A failure the host answered, waiting to learn whether its transaction is proven.
#[derive(Clone, Debug)]
pub struct Waiting {
    pub host: IpAddr,
    pub ev: RateEvent,
    call: u64,
    due: u64,
}

/// The transaction of an answer the daemon read: its Call-ID's hash and CSeq method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    id: u64,
    /// `REGISTER` or `INVITE`, the methods that authenticate a source; `None` for others.
    pub method: Option<&'static str>,
}

pub struct Proofs {
    /// Keys the hashes of tokens and Call-IDs, so that no one can aim at a collision.
    keys: RandomState,
    /// Tokens the host sent, per address and port.
    sent: Expiring<(IpAddr, u16), Vec<u64>>,
    /// Transactions (source, Call-ID) a request proved.
    calls: Expiring<(IpAddr, u64), Token>,
    /// Sources that proved themselves.
    hosts: Expiring<IpAddr, Token>,
    /// REGISTER and INVITE transactions the host challenged.
    challenged: Expiring<(IpAddr, u64), ()>,
    waiting: VecDeque<Waiting>,
    good: Expiring<IpAddr, Good>,
    /// How long a source stays known good (0: never).
    good_for_ms: u64,
    /// Proofs found, by token.
    pub found: [u64; 2],
}

/// The key a source is kept under: an IPv4 address, or the /64 of an IPv6 one.
pub fn key(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(_) => host,
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & !((1u128 << 64) - 1)).into()),
    }
}

impl Proofs {
    pub fn new(good_for_ms: u64, good_capacity: usize) -> Self {
        Proofs {
            keys: RandomState::new(),
            sent: Expiring::new(CAPACITY),
            calls: Expiring::new(CAPACITY),
            hosts: Expiring::new(CAPACITY),
            challenged: Expiring::new(CAPACITY),
            waiting: VecDeque::new(),
            good: Expiring::new(good_capacity),
            good_for_ms,
            found: [0; 2],
        }
    }

    /// Takes a new `[sip] known_good`; sources known good stay so until their time runs out.
    pub fn set_good_for(&mut self, ms: u64) {
        self.good_for_ms = ms;
    }

    fn hash(&self, s: &str) -> u64 {
        self.keys.hash_one(s)
    }

    /// The host answered `peer`:`port` with `text`: keeps its tokens. `None` if the text is no
    /// SIP answer with a Call-ID.
    pub fn answered(&mut self, peer: IpAddr, port: u16, text: &[u8], now: u64) -> Option<Call> {
        let m = message::read(text)?;
        if !matches!(m.start, Start::Answer(_)) {
            return None;
        }
        let tokens: Vec<u64> = m.nonces.iter().chain(m.to_tag.iter()).map(|t| self.hash(t)).collect();
        if !tokens.is_empty() {
            let mut list = self.sent.remove(&(peer, port)).unwrap_or_default();
            list.extend(tokens);
            let excess = list.len().saturating_sub(TOKENS_PER_PEER);
            list.drain(..excess);
            self.sent.put((peer, port), list, now + TOKEN_MS);
        }
        Some(call_of(self, &m))
    }

    /// The host challenged `host` in transaction `call`.
    pub fn challenged(&mut self, host: IpAddr, call: Call, now: u64) {
        if call.method.is_some() {
            self.challenged.put((key(host), call.id), (), now + CALL_MS);
        }
    }

    /// The host answered `host` a failure (`ev`) in `call`: `Some(Proven)` if the transaction is
    /// proven already, else `None`: it waits for a proof (see [`Proofs::request`], [`Proofs::due`]).
    pub fn failure(&mut self, host: IpAddr, call: Call, ev: RateEvent, now: u64) -> Option<Proof> {
        if self.calls.get(&(key(host), call.id), now).is_some() {
            return Some(Proof::Proven);
        }
        if self.waiting.len() >= CAPACITY {
            // the oldest is judged now, unproven
            self.waiting.pop_front();
        }
        self.waiting.push_back(Waiting { host, ev, call: call.id, due: now + WAIT_MS });
        None
    }

    /// Whether transaction `call` of `host` is proven.
    pub fn call(&self, host: IpAddr, call: Call, now: u64) -> Proof {
        match self.calls.get(&(key(host), call.id), now) {
            Some(_) => Proof::Proven,
            None => Proof::Unproven,
        }
    }

    /// Whether the evidence of `event`, read in `line`, is settled: proven or resolved now, or
    /// nothing a proof could change. `call_ids` says that the line's `(callid: …)` is written by
    /// the server (Asterisk's), not text a client chose.
    ///
    /// An unproven failure whose line names its transaction that way (pjsip) is proven when its
    /// source proved that transaction; otherwise (chan_sip, other detectors) when its source
    /// proved itself within the hour. A known-good source settles it at once: the address a
    /// forger aims at is the one that authenticated, and unproven evidence never counts
    /// against it. An ambiguous line names its source only through such a Call-ID, and only
    /// when it names no host name, which could be the source too.
    pub fn settle(&self, event: &mut Event, line: &str, call_ids: bool, now: u64) -> bool {
        match event {
            Event::Failure(f) if f.proof == Proof::Unproven => {
                if self.good(f.host, now).is_some() {
                    return true;
                }
                let proven = if call_ids && line.contains(CALL_ID_FIELD) {
                    self.resolve(line, &[f.host], now).is_some()
                } else {
                    self.host(f.host, now).is_some()
                };
                if proven {
                    f.proof = Proof::Proven;
                }
                proven
            }
            Event::Ambiguous { candidates, names, rule } if names.is_empty() && call_ids => {
                match self.resolve(line, candidates, now) {
                    Some(host) => {
                        *event = Event::failure(host, None, rule);
                        true
                    }
                    None => false,
                }
            }
            _ => true,
        }
    }

    /// Whether `host` proved itself within the last hour: log evidence that one datagram could
    /// produce counts as proven then.
    pub fn host(&self, host: IpAddr, now: u64) -> Option<Token> {
        self.hosts.get(&key(host), now).copied()
    }

    /// The one address among `candidates` (the addresses an ambiguous Asterisk line names) that
    /// proved the transaction the line names by its `(callid: …)`: a client-chosen field can
    /// name another address, but not a transaction of that address the host saw proven.
    pub fn resolve(&self, line: &str, candidates: &[IpAddr], now: u64) -> Option<IpAddr> {
        const OPEN: &str = CALL_ID_FIELD;
        debug_assert!(!candidates.is_empty());
        // a Call-ID as Asterisk logs it may hold spaces: every span from an opening to a
        // following `) - ` is tried
        let starts: Vec<usize> = line.match_indices(OPEN).map(|(i, _)| i + OPEN.len()).take(8).collect();
        let ends: Vec<usize> = line.match_indices(") - ").map(|(i, _)| i).take(8).collect();
        let mut found = None;
        for c in candidates {
            let proven = starts.iter().any(|&s| {
                ends.iter().any(|&e| e > s && self.calls.get(&(key(*c), self.hash(&line[s..e])), now).is_some())
            });
            if proven {
                if found.is_some_and(|f| f != *c) {
                    return None;
                }
                found = Some(*c);
            }
        }
        found
    }

    /// A request from `peer`:`port` (`text`): if it carries a token the host sent there, its
    /// transaction and address are proven, and the failures of that transaction waiting for a
    /// proof are returned, now proven.
    pub fn request(&mut self, peer: IpAddr, port: u16, text: &[u8], now: u64) -> Vec<Waiting> {
        let Some(m) = message::read(text) else { return Vec::new() };
        if !matches!(m.start, Start::Request(_)) {
            return Vec::new();
        }
        let Some(sent) = self.sent.get(&(peer, port), now) else { return Vec::new() };
        let carries = |t: &str| sent.contains(&self.hash(t));
        let token = if m.nonces.iter().any(|n| carries(n)) {
            Token::Nonce
        } else if m.to_tag.is_some_and(carries) {
            Token::ToTag
        } else {
            return Vec::new();
        };
        self.found[token as usize] += 1;
        let (host, call) = (key(peer), self.hash(m.call_id));
        // a nonce proof is not replaced by a weaker one
        if self.calls.get(&(host, call), now) != Some(&Token::Nonce) {
            self.calls.put((host, call), token, now + CALL_MS);
        }
        self.hosts.put(host, token, now + HOST_MS);
        let (proven, rest): (VecDeque<Waiting>, VecDeque<Waiting>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| key(w.host) == host && w.call == call);
        self.waiting = rest;
        proven.into()
    }

    /// The host answered `host` a success in `call`: if the transaction is a REGISTER or INVITE
    /// the host challenged and the source answered with the host's nonce, the source is known
    /// good; returns until when (unix ms).
    pub fn succeeded(&mut self, host: IpAddr, call: Call, now: u64) -> Option<u64> {
        let k = (key(host), call.id);
        let method = call.method?;
        if self.good_for_ms == 0
            || self.challenged.get(&k, now).is_none()
            || self.calls.get(&k, now) != Some(&Token::Nonce)
        {
            return None;
        }
        let until = now + self.good_for_ms;
        let since = self.good.get(&key(host), now).map_or(now, |g| g.since);
        self.good.put(key(host), Good { since, method: method.to_owned() }, until);
        Some(until)
    }

    /// Whether `host` is known good at `now`, and until when.
    pub fn good(&self, host: IpAddr, now: u64) -> Option<(&Good, u64)> {
        let k = key(host);
        Some((self.good.get(&k, now)?, self.good.until(&k, now)?))
    }

    pub fn good_count(&self) -> usize {
        self.good.len()
    }

    /// The failures whose wait for a proof ended: unproven.
    pub fn due(&mut self, now: u64) -> Vec<Waiting> {
        let n = self.waiting.iter().take_while(|w| w.due <= now).count();
        self.waiting.drain(..n).collect()
    }

    /// Forgets what expired; returns the sources no longer known good.
    pub fn expire(&mut self, now: u64) -> Vec<IpAddr> {
        self.sent.expire(now);
        self.calls.expire(now);
        self.hosts.expire(now);
        self.challenged.expire(now);
        self.good.expire(now)
    }

    /// Every known-good source, with until when.
    pub fn good_sources(&self) -> impl Iterator<Item = (IpAddr, &Good, u64)> {
        self.good.iter().map(|(k, g, u)| (*k, g, u))
    }
}

fn call_of(p: &Proofs, m: &Message<'_>) -> Call {
    let method = ["REGISTER", "INVITE"].into_iter().find(|x| m.cseq_method.is_some_and(|c| c.eq_ignore_ascii_case(x)));
    Call { id: p.hash(m.call_id), method }
}

#[cfg(test)]
mod tests;
