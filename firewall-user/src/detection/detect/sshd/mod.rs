//! OpenSSH's sshd (and sshd-session), from syslog files or the journal.
//!
//! Some failures are only known as such once the connection ends (a wrong public key is a
//! failure only if no key is accepted later) and some lines name no source (`Disconnecting: Too
//! many authentication failures`). As fail2ban does with its connection id (`MLFID`), state is
//! kept per connection, keyed by the syslog header `host sshd[pid]`, which the logger writes and
//! the client cannot.

mod conns;
mod messages;
mod table;

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use conns::{Conns, Key};

pub use messages::{classify, Msg, Src};

use super::{prefix, Detector, Event, Failure, Proof};
pub use crate::rules::jails::Mode;

pub struct Sshd {
    mode: Mode,
    conns: Conns,
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
        Sshd { mode, conns: Conns::default() }
    }

    /// Merges a message into its connection's state and says what it amounts to: `Some(src)`
    /// for a failure by `src`, `None` for nothing (yet).
    fn merge(&mut self, key: Key, m: Msg) -> Option<Event> {
        let user = m.user.map(user_hash);
        let src = match self.conns.update(key, m.src.as_ref(), user, m.gained) {
            Some(seen) => {
                // earlier failures or several users tried: this is no harmless step any more
                let nofail = (m.nofail || m.gained) && !(seen.pending || seen.several_users);
                let src = if nofail { None } else { m.src.or_else(|| self.conns.src(key)) };
                if m.forget {
                    self.conns.remove(key);
                }
                if nofail {
                    return None;
                }
                src
            }
            None => {
                if !m.forget {
                    self.conns.add(key, m.src.as_ref(), user);
                }
                if m.nofail || m.gained {
                    return None;
                }
                m.src
            }
        };
        let Some(src) = src else {
            self.conns.set_pending(key);
            return None;
        };
        Some(match src {
            Src::Ip(host) => Event::Failure(Failure {
                host,
                user: m.user.map(str::to_owned),
                attempts: 1,
                rule: m.rule,
                proof: Proof::Proven,
            }),
            Src::Name(name) => Event::Hostname { name, rule: m.rule },
            Src::Ambiguous(candidates, names) => Event::Ambiguous { candidates, names, rule: m.rule },
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
