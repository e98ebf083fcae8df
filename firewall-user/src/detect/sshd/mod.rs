//! OpenSSH's sshd (and sshd-session), from syslog files or the journal.
//!
//! Some failures are only known as such once the connection ends (a wrong public key is a
//! failure only if no key is accepted later) and some lines name no source (`Disconnecting: Too
//! many authentication failures`). As fail2ban does with its connection id (`MLFID`), state is
//! kept per connection, keyed by the syslog header `host sshd[pid]`, which the logger writes and
//! the client cannot.

mod messages;

use std::{
    collections::VecDeque,
    hash::{Hash, Hasher},
};

use rustc_hash::{FxHashMap, FxHasher};

pub use messages::{classify, Msg, Src};

use super::{prefix, Detector, Event, Failure};

/// Which messages count, as fail2ban's sshd filter `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Authentication failures.
    #[default]
    Normal,
    /// Also scanners that disconnect before authenticating (no identification, bad protocol,
    /// connections closed in the pre-authentication phase).
    Ddos,
    /// Also clients that offer no usable authentication method or algorithm.
    Extra,
    /// All of the above.
    Aggressive,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "normal" => Ok(Mode::Normal),
            "ddos" => Ok(Mode::Ddos),
            "extra" => Ok(Mode::Extra),
            "aggressive" => Ok(Mode::Aggressive),
            _ => Err(format!("unknown sshd mode `{s}`: expected normal, ddos, extra or aggressive")),
        }
    }
}

/// Connections remembered at most; the oldest are forgotten first.
const MAX_CONNECTIONS: usize = 16_384;

/// What is known of one connection so far.
#[derive(Debug, Default)]
struct Conn {
    src: Option<Src>,
    /// Hash of the first user tried, and whether another was tried since.
    user: Option<u64>,
    several_users: bool,
    /// A failure was seen before its source was known.
    pending: bool,
    /// The last message was not a failure by itself.
    nofail: bool,
    /// The last message was a successful login.
    gained: bool,
}

/// A connection: its syslog header (`host`, `ident`, `pid`) hashed to 64 bits. The header is
/// written by the logger, not the client, so nobody chooses collisions.
type Key = u64;

pub struct Sshd {
    mode: Mode,
    conns: FxHashMap<Key, Conn>,
    order: VecDeque<Key>,
}

fn user_hash(u: &str) -> u64 {
    let mut s = FxHasher::default();
    u.hash(&mut s);
    s.finish()
}

fn key(h: &prefix::Header) -> Key {
    let mut s = FxHasher::default();
    (h.host, h.ident, h.pid).hash(&mut s);
    s.finish()
}

impl Sshd {
    pub fn new(mode: Mode) -> Sshd {
        Sshd { mode, conns: FxHashMap::default(), order: VecDeque::new() }
    }

    fn remember(&mut self, key: Key, conn: Conn) {
        if self.conns.len() >= MAX_CONNECTIONS {
            while let Some(old) = self.order.pop_front() {
                if self.conns.remove(&old).is_some() {
                    break;
                }
            }
        }
        self.order.push_back(key);
        self.conns.insert(key, conn);
        if self.order.len() > 2 * MAX_CONNECTIONS {
            let conns = &self.conns;
            self.order.retain(|k| conns.contains_key(k));
        }
    }

    /// Merges a message into its connection's state and says what it amounts to: `Some(src)`
    /// for a failure by `src`, `None` for nothing (yet).
    fn merge(&mut self, key: Key, m: Msg) -> Option<Event> {
        let mut nofail = m.nofail || m.gained;
        let mut gained = m.gained;
        let (src, pending, users_differ) = match self.conns.get_mut(&key) {
            Some(c) => {
                if let Some(u) = m.user {
                    let h = user_hash(u);
                    match c.user {
                        None => c.user = Some(h),
                        Some(first) if first != h => c.several_users = true,
                        _ => {}
                    }
                }
                if gained {
                    c.pending = false;
                }
                c.nofail = nofail;
                c.gained = gained;
                if m.src.is_some() {
                    c.src = m.src.clone();
                }
                let state = (c.src.clone(), std::mem::take(&mut c.pending), c.several_users);
                if m.forget {
                    self.conns.remove(&key);
                }
                state
            }
            None => {
                if !m.forget {
                    let conn = Conn {
                        src: m.src.clone(),
                        user: m.user.map(user_hash),
                        several_users: false,
                        nofail,
                        gained,
                        pending: false,
                    };
                    self.remember(key, conn);
                }
                (m.src.clone(), false, false)
            }
        };
        if pending || users_differ {
            // earlier failures or several users tried: this is no harmless step any more
            nofail = false;
            gained = false;
        }
        if let Some(c) = self.conns.get_mut(&key) {
            c.nofail = nofail;
            c.gained = gained;
        }
        if nofail {
            return None;
        }
        let Some(src) = src else {
            if let Some(c) = self.conns.get_mut(&key) {
                c.pending = true;
            }
            return None;
        };
        Some(match src {
            Src::Ip(host) => {
                Event::Failure(Failure { host, user: m.user.map(str::to_owned), attempts: 1, rule: m.rule })
            }
            Src::Name(name) => Event::Hostname { name, rule: m.rule },
            Src::Ambiguous(candidates) => Event::Ambiguous { candidates, rule: m.rule },
        })
    }
}

fn is_sshd(ident: &str) -> bool {
    matches!(ident, "sshd" | "sshd-session" | "sshd-auth")
}

impl Detector for Sshd {
    fn feed(&mut self, line: &str, out: &mut Vec<Event>) {
        let h = prefix::syslog(line);
        if h.ident.is_some_and(|i| !is_sshd(i)) {
            return;
        }
        let Some(m) = classify(h.msg, self.mode) else { return };
        out.extend(self.merge(key(&h), m));
    }
}

#[cfg(test)]
mod tests;
