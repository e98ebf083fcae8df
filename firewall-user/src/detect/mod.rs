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

// Substring searches for the detectors' hot paths: SIMD `memchr` for one byte of the needle,
// then a comparison, with no per-call searcher setup. The byte is the needle's first that is not
// a space (spaces are everywhere in log lines). A match of a valid UTF-8 needle always starts
// and ends on character boundaries, so the slices taken from it are sound.

/// Where `pat` is anchored: its first byte other than a space (0 if it is all spaces).
fn anchor(p: &[u8]) -> usize {
    p.iter().position(|&b| b != b' ').unwrap_or(0)
}

pub fn find(s: &str, pat: &str) -> Option<usize> {
    let (h, p) = (s.as_bytes(), pat.as_bytes());
    if p.is_empty() {
        return Some(0);
    }
    let k = anchor(p);
    let mut from = k;
    while from < h.len() {
        let j = from + memchr::memchr(p[k], &h[from..])?;
        if h[j - k..].starts_with(p) {
            return Some(j - k);
        }
        from = j + 1;
    }
    None
}

pub fn rfind(s: &str, pat: &str) -> Option<usize> {
    let (h, p) = (s.as_bytes(), pat.as_bytes());
    if p.len() > h.len() {
        return None;
    }
    if p.is_empty() {
        return Some(h.len());
    }
    let k = anchor(p);
    // the anchor of a match lies in k..=h.len() - p.len() + k
    let mut hi = h.len() - p.len() + k + 1;
    while hi > k {
        let j = k + memchr::memrchr(p[k], &h[k..hi])?;
        if h[j - k..].starts_with(p) {
            return Some(j - k);
        }
        hi = j;
    }
    None
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
