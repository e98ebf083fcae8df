//! The connections known from the log, oldest forgotten first. The table is looked up at a
//! random place on every sshd line, so an entry is kept to 16 bytes (IPv4 sources inline, other
//! sources aside): the smaller the table, the less often a lookup waits for memory.

use std::{collections::VecDeque, net::IpAddr};

use super::{table::Table, Src};

/// A connection: its syslog header (`host`, `ident`, `pid`) hashed to 64 bits. The header is
/// written by the logger, not the client, so nobody chooses collisions.
pub type Key = u64;

/// Connections remembered at most; the oldest are forgotten first.
pub const MAX_CONNECTIONS: usize = 16_384;

/// `Conn::flags`: a user was tried (its hash is in `user`).
const USER: u8 = 1 << 0;
/// Another user was tried since the first.
const SEVERAL_USERS: u8 = 1 << 1;
/// A failure was seen before its source was known.
const PENDING: u8 = 1 << 2;
/// The source is the IPv4 address in `src`.
const SRC_V4: u8 = 1 << 3;
/// The source is `Others::slots[src]`.
const SRC_OTHER: u8 = 1 << 4;

/// What is known of one connection so far.
#[derive(Debug, Clone, Copy, Default)]
struct Conn {
    /// Hash of the first user tried.
    user: u64,
    /// An IPv4 address or a place in `Others::slots`, as `flags` say.
    src: u32,
    flags: u8,
}

/// What a message found in its connection's state.
pub struct Seen {
    /// A failure was seen before its source was known.
    pub pending: bool,
    pub several_users: bool,
}

#[derive(Default)]
pub struct Conns {
    map: Table<Conn>,
    /// Keys in the order they were added (some since forgotten).
    order: VecDeque<Key>,
    others: Others,
}

impl Conns {
    /// Adds a connection not known yet, forgetting the oldest if there are too many.
    pub fn add(&mut self, key: Key, src: Option<&Src>, user: Option<u64>) {
        if self.map.len() >= MAX_CONNECTIONS {
            while let Some(old) = self.order.pop_front() {
                if self.remove(old) {
                    break;
                }
            }
        }
        let mut conn = Conn::default();
        if let Some(u) = user {
            conn = Conn { user: u, flags: USER, ..conn };
        }
        if let Some(s) = src {
            self.others.set_src(&mut conn, s);
        }
        self.order.push_back(key);
        self.map.insert_new(key, conn);
        if self.order.len() > 2 * MAX_CONNECTIONS {
            let map = &self.map;
            self.order.retain(|k| map.contains(*k));
        }
    }

    /// Updates a known connection with a message: the user tried and the source, if it names
    /// them; takes the pending failure (which a login clears). `None` if the connection is not
    /// known.
    pub fn update(&mut self, key: Key, src: Option<&Src>, user: Option<u64>, gained: bool) -> Option<Seen> {
        let conn = self.map.get_mut(key)?;
        if let Some(u) = user {
            if conn.flags & USER == 0 {
                conn.user = u;
                conn.flags |= USER;
            } else if conn.user != u {
                conn.flags |= SEVERAL_USERS;
            }
        }
        if let Some(s) = src {
            self.others.set_src(conn, s);
        }
        let seen =
            Seen { pending: conn.flags & PENDING != 0 && !gained, several_users: conn.flags & SEVERAL_USERS != 0 };
        conn.flags &= !PENDING;
        Some(seen)
    }

    /// The source known for a connection.
    pub fn src(&self, key: Key) -> Option<Src> {
        let conn = self.map.get(key)?;
        if conn.flags & SRC_V4 != 0 {
            Some(Src::Ip(IpAddr::V4(conn.src.into())))
        } else if conn.flags & SRC_OTHER != 0 {
            self.others.slots[conn.src as usize].clone()
        } else {
            None
        }
    }

    /// Connections known, and keys kept in order.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize) {
        (self.map.len(), self.order.len())
    }

    /// Notes a failure whose source is not known yet.
    pub fn set_pending(&mut self, key: Key) {
        if let Some(conn) = self.map.get_mut(key) {
            conn.flags |= PENDING;
        }
    }

    /// Forgets a connection; whether it was known.
    pub fn remove(&mut self, key: Key) -> bool {
        match self.map.remove(key) {
            Some(conn) => {
                self.others.release(&conn);
                true
            }
            None => false,
        }
    }
}

/// Sources other than IPv4 addresses (rare: IPv6, host names, ambiguous ones), by place.
#[derive(Default)]
struct Others {
    slots: Vec<Option<Src>>,
    /// Places free for reuse.
    free: Vec<u32>,
}

impl Others {
    fn set_src(&mut self, conn: &mut Conn, src: &Src) {
        if let Src::Ip(IpAddr::V4(a)) = src {
            self.release(conn);
            conn.src = u32::from(*a);
            conn.flags = (conn.flags & !SRC_OTHER) | SRC_V4;
        } else if conn.flags & SRC_OTHER != 0 {
            self.slots[conn.src as usize] = Some(src.clone());
        } else {
            conn.src = match self.free.pop() {
                Some(i) => {
                    self.slots[i as usize] = Some(src.clone());
                    i
                }
                None => {
                    self.slots.push(Some(src.clone()));
                    (self.slots.len() - 1) as u32
                }
            };
            conn.flags = (conn.flags & !SRC_V4) | SRC_OTHER;
        }
    }

    /// Frees the place of a connection's source, if it has one.
    fn release(&mut self, conn: &Conn) {
        if conn.flags & SRC_OTHER != 0 {
            self.slots[conn.src as usize] = None;
            self.free.push(conn.src);
        }
    }
}
