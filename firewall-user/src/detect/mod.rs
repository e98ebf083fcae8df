//! Detectors: turn log lines into failures of a source address.
//!
//! A detector reads the address only from the field the daemon itself filled in (the transport
//! source), never from text an attacker controls (user names, From/Contact URIs, call ids). When
//! a line holds more than one address where the source could be and they differ, it bans no one
//! and reports the line as ambiguous: it may be an attempt to get someone else banned.

pub mod asterisk;
pub mod custom;
pub mod host;
pub mod prefix;
pub mod sshd;

use std::net::IpAddr;

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Failure(Failure),
    /// A failure whose source cannot be told for sure: several different addresses could be it.
    Ambiguous {
        candidates: Vec<IpAddr>,
        rule: &'static str,
    },
    /// A failure from a host name (sipwall never resolves names an attacker may control).
    Hostname {
        name: String,
        rule: &'static str,
    },
}

impl Event {
    pub fn failure(host: IpAddr, user: Option<&str>, rule: &'static str) -> Event {
        Event::Failure(Failure { host, user: user.map(str::to_owned), attempts: 1, rule })
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

/// The detector for a set of addresses found for one failure: one failure if they agree,
/// ambiguity otherwise.
pub fn settle(candidates: Vec<IpAddr>, user: Option<&str>, rule: &'static str) -> Option<Event> {
    let first = *candidates.first()?;
    if candidates.iter().all(|c| *c == first) {
        Some(Event::failure(first, user, rule))
    } else {
        let mut c = candidates;
        c.sort();
        c.dedup();
        Some(Event::Ambiguous { candidates: c, rule })
    }
}

/// All positions of `pat` in `s`.
pub fn find_all<'a>(s: &'a str, pat: &'a str) -> impl Iterator<Item = usize> + 'a {
    memchr::memmem::find_iter(s.as_bytes(), pat.as_bytes())
}

// Substring searches for the detectors' hot paths (SIMD, no per-call searcher setup). A match
// of a valid UTF-8 needle always starts and ends on character boundaries, so the slices are
// sound.

pub fn find(s: &str, pat: &str) -> Option<usize> {
    memchr::memmem::find(s.as_bytes(), pat.as_bytes())
}

pub fn rfind(s: &str, pat: &str) -> Option<usize> {
    memchr::memmem::rfind(s.as_bytes(), pat.as_bytes())
}

pub fn split_once<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    let i = find(s, pat)?;
    Some((&s[..i], &s[i + pat.len()..]))
}

pub fn rsplit_once<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    let i = rfind(s, pat)?;
    Some((&s[..i], &s[i + pat.len()..]))
}

/// Splits at the first space.
pub fn split_space(s: &str) -> Option<(&str, &str)> {
    let i = memchr::memchr(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

/// Splits at the last space.
pub fn rsplit_space(s: &str) -> Option<(&str, &str)> {
    let i = memchr::memrchr(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests;
