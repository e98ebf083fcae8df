//! fail2ban's multi-line failures by id (`filter.py` `_mergeFailure`): lines with the same
//! `<F-MLFID>` (sshd's syslog prefix `host sshd[pid]:`, one per connection) pool what they
//! matched, so that a failure line without an address gets it from an earlier line of the same
//! connection. `<F-MLFFORGET>` ends the connection, `<F-MLFGAINED>` (a login) clears pending
//! failures, and a failure seen before its address waits (`mlfpending`) for a line naming it.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// What the matched groups said: group name → text (groups that did not take part are absent).
pub type Groups = HashMap<String, String>;

/// fail2ban keeps at most 100 connections, each for at most 5 minutes (`Utils.Cache`).
const MAX_IDS: usize = 100;
const MAX_AGE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Entry {
    groups: Groups,
    users: Vec<String>,
    at: Instant,
}

/// The connections a detector has seen, by id.
#[derive(Debug, Default)]
pub struct Connections {
    by_id: HashMap<String, Entry>,
}

fn truthy(g: &Groups, k: &str) -> bool {
    g.get(k).is_some_and(|v| !v.is_empty())
}

fn add_user(users: &mut Vec<String>, user: Option<&String>) {
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        if !users.contains(u) {
            users.push(u.clone());
        }
    }
}

/// Where a merged line leaves the connection's failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Merged {
    /// A failure with these groups (host and user among them).
    Failure(Groups),
    /// No failure (yet): a `nofail` line, or a failure still waiting for its address.
    Nothing,
}

impl Connections {
    /// Merges the groups of a line of connection `id` into what the connection said before.
    pub fn merge(&mut self, id: &str, mut fail: Groups, now: Instant) -> Merged {
        let mut flags = 0u8;
        if truthy(&fail, "mlfgained") {
            flags |= 8 | 1;
            if !truthy(&fail, "nofail") {
                let v = fail["mlfgained"].clone();
                fail.insert("nofail".into(), v);
            }
        } else if truthy(&fail, "nofail") {
            flags |= 1;
        }
        if fail.remove("mlfforget").is_some_and(|v| !v.is_empty()) {
            flags |= 2;
        }
        self.by_id.retain(|_, e| now.duration_since(e.at) < MAX_AGE);
        let (mut entry, keep) = match self.by_id.remove(id) {
            Some(mut e) => {
                add_user(&mut e.users, fail.get("user"));
                if e.groups.remove("nofail").is_some_and(|v| !v.is_empty()) {
                    flags |= 4;
                }
                if e.groups.remove("mlfgained").is_some_and(|v| !v.is_empty()) {
                    flags |= 4;
                }
                if flags & 8 != 0 {
                    e.groups.remove("mlfpending");
                }
                e.groups.extend(fail);
                e.at = now;
                (e, flags & 2 == 0)
            }
            None => {
                let mut users = Vec::new();
                add_user(&mut users, fail.get("user"));
                (Entry { groups: fail, users, at: now }, flags & 2 == 0)
            }
        };
        let g = &mut entry.groups;
        if g.remove("mlfpending").is_some() || entry.users.len() > 1 {
            // failures were pending, or several users were tried: not a harmless line any more
            g.remove("nofail");
            g.remove("mlfgained");
        }
        let merged = if truthy(g, "nofail") {
            Merged::Nothing
        } else if ["ip4", "ip6", "dns", "fid"].iter().any(|k| g.contains_key(*k)) {
            Merged::Failure(g.clone())
        } else {
            g.insert("mlfpending".into(), "1".into());
            Merged::Nothing
        };
        if keep {
            if self.by_id.len() >= MAX_IDS {
                if let Some(oldest) = self.by_id.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone()) {
                    self.by_id.remove(&oldest);
                }
            }
            self.by_id.insert(id.to_owned(), entry);
        }
        merged
    }
}
