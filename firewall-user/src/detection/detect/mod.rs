//! Detectors: turn log lines into failures of a source address.
//!
//! A detector reads the address only from the field the daemon itself filled in (the transport
//! source), never from text an attacker controls (user names, From/Contact URIs, call ids). When
//! a line holds more than one address where the source could be and they differ, it bans no one
//! and reports the line as ambiguous: it may be an attempt to get someone else banned.

pub mod ami;
pub mod asterisk;
pub mod custom;
pub mod host;
pub mod prefix;
pub mod sshd;

use std::net::IpAddr;

/// Whether a failure could only be produced by someone who receives the host's packets at the
/// source address. Attackers forge source addresses: unproven evidence never bans a source on
/// every port, escalates or feeds `recidive` (docs/rules.md, "Proven and unproven evidence").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proof {
    /// It needed packets the host sent to the source: a completed TCP handshake, a challenge
    /// answered with the host's nonce, a request echoing the host's To-tag.
    Proven,
    /// One datagram, a SYN or a stray TCP segment could produce it.
    Unproven,
}

/// Whether failures of `rule` stay unproven whatever the address they name proved on the wire:
/// the address, or the whole record, may be the client's text (a line of Asterisk's security
/// log, an AMI event after one a client could have written).
pub fn never_proven(rule: &str) -> bool {
    rule == asterisk::SECURITY_LOG_EVENT || rule == ami::UNTRUSTED_EVENT
}

impl Proof {
    pub fn name(self) -> &'static str {
        match self {
            Proof::Proven => "proven",
            Proof::Unproven => "unproven",
        }
    }
}

/// A failed attempt by a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub host: IpAddr,
    /// The user or account tried, if the line names it (attacker-chosen: for display only).
    pub user: Option<String>,
    /// How many attempts this line stands for (sshd folds earlier ones of a connection in).
    pub attempts: u32,
    /// Which kind of message matched.
    pub rule: &'static str,
    /// What producing it took.
    pub proof: Proof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Failure(Failure),
    /// A failure whose source cannot be told for sure: several different addresses or host
    /// names could be it (at least two in all).
    Ambiguous {
        /// The addresses, sorted, each once.
        candidates: Vec<IpAddr>,
        /// The host names (never resolved), sorted, each once.
        names: Vec<String>,
        rule: &'static str,
    },
    /// A failure from a host name (sipwall never resolves names an attacker may control).
    Hostname {
        name: String,
        rule: &'static str,
    },
}

impl Event {
    /// A proven failure (see [`Proof`]).
    pub fn failure(host: IpAddr, user: Option<&str>, rule: &'static str) -> Event {
        Event::Failure(Failure { host, user: user.map(str::to_owned), attempts: 1, rule, proof: Proof::Proven })
    }

    /// A failure a forged packet could produce (see [`Proof`]).
    pub fn unproven(host: IpAddr, user: Option<&str>, rule: &'static str) -> Event {
        Event::Failure(Failure { host, user: user.map(str::to_owned), attempts: 1, rule, proof: Proof::Unproven })
    }

    pub fn host(&self) -> Option<IpAddr> {
        match self {
            Event::Failure(f) => Some(f.host),
            _ => None,
        }
    }
}

/// Reads one log source's lines, in order.
pub trait Detector: Send {
    /// Inspects one line; pushes the events it completes (multi-line detectors may complete an
    /// event begun by earlier lines).
    fn feed(&mut self, line: &str, out: &mut Vec<Event>);
}

/// The detector for a set of addresses found for one failure: one proven failure if they agree,
/// ambiguity otherwise.
pub fn settle(candidates: Vec<IpAddr>, user: Option<&str>, rule: &'static str) -> Option<Event> {
    settle_proof(candidates, user, rule, Proof::Proven)
}

/// [`settle`] for a failure whose [`Proof`] the detector has worked out.
pub fn settle_proof(candidates: Vec<IpAddr>, user: Option<&str>, rule: &'static str, proof: Proof) -> Option<Event> {
    let first = *candidates.first()?;
    if candidates.iter().all(|c| *c == first) {
        Some(Event::Failure(Failure { host: first, user: user.map(str::to_owned), attempts: 1, rule, proof }))
    } else {
        let mut c = candidates;
        c.sort();
        c.dedup();
        Some(Event::Ambiguous { candidates: c, names: Vec::new(), rule })
    }
}

/// A log line as text, if it is valid UTF-8 (SIMD validation: most lines are short ASCII).
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// All positions of `pat` in `s`.
pub fn find_all<'a>(s: &'a str, pat: &'a str) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let i = from + find(s.get(from..)?, pat)?;
        from = i + pat.len().max(1);
        Some(i)
    })
}

// Substring searches for the detectors' hot paths: a search for one byte of the needle, then a
// comparison, with no per-call searcher setup. The byte is the needle's first that is not a
// space (spaces are everywhere in log lines). A match of a valid UTF-8 needle always starts and
// ends on character boundaries, so the slices taken from it are sound.

/// Where `pat` is anchored: its first byte other than a space (0 if it is all spaces).
fn anchor(p: &[u8]) -> usize {
    p.iter().position(|&b| b != b' ').unwrap_or(0)
}

/// Bytes looked at a word at a time before handing over to SIMD `memchr`: most fields of a log
/// line are short, and there a call into `memchr` costs more than it saves.
const NEAR: usize = 16;

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each byte of `w` that equals `b`, the others clear (SWAR: eight bytes
/// compared at once, with no carry between them).
#[inline]
fn matches_in(w: [u8; 8], b: u8) -> u64 {
    let x = u64::from_le_bytes(w) ^ (u64::from(b) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The first position of byte `b` in `h`.
#[inline]
fn byte_pos(b: u8, h: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < NEAR {
        let Some(w) = h.get(at..at + 8) else {
            return h[at..].iter().position(|&c| c == b).map(|i| at + i);
        };
        let m = matches_in(w.try_into().expect("eight bytes"), b);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    memchr::memchr(b, &h[NEAR..]).map(|i| i + NEAR)
}

/// The last position of byte `b` in `h`.
#[inline]
fn byte_rpos(b: u8, h: &[u8]) -> Option<usize> {
    let mut end = h.len();
    while h.len() - end < NEAR {
        let Some(at) = end.checked_sub(8) else {
            return h[..end].iter().rposition(|&c| c == b);
        };
        let m = matches_in(h[at..end].try_into().expect("eight bytes"), b);
        if m != 0 {
            return Some(at + 7 - m.leading_zeros() as usize / 8);
        }
        end = at;
    }
    memchr::memrchr(b, &h[..end])
}

/// Whether `h` holds `p` at `at`, compared in line: most candidate positions differ within a
/// byte or two, where a call to `memcmp` would cost more than the comparison.
#[inline]
fn holds_at(h: &[u8], at: usize, p: &[u8]) -> bool {
    h.len() - at >= p.len() && h[at..at + p.len()].iter().zip(p).all(|(a, b)| a == b)
}

#[inline]
pub fn find(s: &str, pat: &str) -> Option<usize> {
    let (h, p) = (s.as_bytes(), pat.as_bytes());
    if p.len() > h.len() {
        return None;
    }
    match p {
        [] => return Some(0),
        [b] => return byte_pos(*b, h),
        _ => {}
    }
    let k = anchor(p);
    let mut from = k;
    while from < h.len() {
        let j = from + byte_pos(p[k], &h[from..])?;
        if holds_at(h, j - k, p) {
            return Some(j - k);
        }
        from = j + 1;
    }
    None
}

#[inline]
pub fn rfind(s: &str, pat: &str) -> Option<usize> {
    let (h, p) = (s.as_bytes(), pat.as_bytes());
    if p.len() > h.len() {
        return None;
    }
    match p {
        [] => return Some(h.len()),
        [b] => return byte_rpos(*b, h),
        _ => {}
    }
    let k = anchor(p);
    // the anchor of a match lies in k..=h.len() - p.len() + k
    let mut hi = h.len() - p.len() + k + 1;
    while hi > k {
        let j = k + byte_rpos(p[k], &h[k..hi])?;
        if holds_at(h, j - k, p) {
            return Some(j - k);
        }
        hi = j;
    }
    None
}

#[inline]
pub fn split_once<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    let i = find(s, pat)?;
    Some((&s[..i], &s[i + pat.len()..]))
}

#[inline]
pub fn rsplit_once<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    let i = rfind(s, pat)?;
    Some((&s[..i], &s[i + pat.len()..]))
}

/// Splits at the first space.
#[inline]
pub fn split_space(s: &str) -> Option<(&str, &str)> {
    let i = byte_pos(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

/// Splits at the last space.
#[inline]
pub fn rsplit_space(s: &str) -> Option<(&str, &str)> {
    let i = byte_rpos(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests;
