//! Bans on disk: an SQLite database under `--state-dir`, written through on every change
//! (WAL, `synchronous = FULL`), so bans outlive restarts, crashes and reboots. Writes that arrive
//! together (a batch of detections, a ban storm) go in one group ([`Store::begin`],
//! [`Store::commit`]): one sync for the group instead of two per ban. Next to the bans
//! in force it keeps their history (every ban with its jail, failures and matched lines), which
//! escalation counts and `sipwall why` shows.

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{datapath::bans::Ban, detection::jail::Jails};

pub const DB_FILE: &str = "sipwall.db";
const SCHEMA_VERSION: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ban store {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "ban store {path} has schema version {found}, newer than this sipwall ({SCHEMA_VERSION}): upgrade sipwall"
    )]
    TooNew { path: PathBuf, found: i64 },
}

/// A ban as the `bans` table's columns: target, expiry, creation, reason, source.
fn row(b: &Ban) -> (String, Option<i64>, i64, &str, &str) {
    (b.target.to_string(), b.expires_unix_ms.map(|v| v as i64), b.created_unix_ms as i64, &b.reason, &b.source)
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// One ban as the history remembers it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub target: IpNet,
    /// The jail, or `manual`.
    pub jail: String,
    pub created_unix_ms: u64,
    pub expires_unix_ms: Option<u64>,
    pub failures: u32,
    /// Earlier bans that made this one longer.
    pub earlier: u32,
    pub reason: String,
    /// The log lines that led to it.
    pub lines: Vec<String>,
    pub users: Vec<String>,
}

impl crate::detection::jail::History for Store {
    fn count(&self, target: &IpNet, of: Jails<'_>, since_ms: u64) -> u32 {
        self.count_history(target, of, since_ms).unwrap_or_else(|e| {
            log::error!("reading the ban history: {e}; counting no earlier bans");
            0
        })
    }
}

/// What [`Store::open_or_recover`] had to do.
#[derive(Debug)]
pub enum Opened {
    /// The store opened and passed its check.
    Healthy,
    /// The store was unreadable or corrupt: moved aside to `kept`, a new one started.
    MovedAside { error: StoreError, kept: PathBuf },
    /// Not even a new store could be made on disk (a read-only or failing disk): bans live in
    /// memory until the next start.
    InMemory { error: StoreError },
}

impl Store {
    /// Opens the store under `dir`; one that cannot be opened or fails SQLite's check is moved
    /// aside (kept for inspection, never deleted) and a new one started, so a broken file never
    /// stops enforcement. Errors only when the state directory itself cannot be made.
    pub fn open_or_recover(dir: &Path) -> Result<(Self, Opened), StoreError> {
        let error = match Self::open(dir).and_then(|s| s.check().map(|_| s)) {
            Ok(s) => return Ok((s, Opened::Healthy)),
            Err(e @ StoreError::Dir { .. }) => return Err(e),
            Err(e) => e,
        };
        let path = dir.join(DB_FILE);
        let now = crate::datapath::clock::unix_ms(std::time::SystemTime::now()) / 1000;
        // never over an earlier broken store
        let stamp = (0..)
            .map(|n| if n == 0 { now.to_string() } else { format!("{now}-{n}") })
            .find(|s| !dir.join(format!("{DB_FILE}.broken-{s}")).exists())
            .expect("a free name");
        let kept = dir.join(format!("{DB_FILE}.broken-{stamp}"));
        let moved = std::fs::rename(&path, &kept);
        for side in ["-wal", "-shm"] {
            let from = dir.join(format!("{DB_FILE}{side}"));
            if from.exists() {
                let _ = std::fs::rename(&from, dir.join(format!("{DB_FILE}.broken-{stamp}{side}")));
            }
        }
        if moved.is_ok() {
            if let Ok(s) = Self::open(dir) {
                return Ok((s, Opened::MovedAside { error, kept }));
            }
        }
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Db { path: path.clone(), source })?;
        Self::init(&conn).map_err(|source| StoreError::Db { path: path.clone(), source })?;
        Ok((Self { conn, path }, Opened::InMemory { error }))
    }

    /// SQLite's quick check of the whole file: a store corrupt past its header fails here
    /// rather than halfway through reading the bans.
    fn check(&self) -> Result<(), StoreError> {
        let verdict: String =
            self.conn.pragma_query_value(None, "quick_check", |r| r.get(0)).map_err(|e| self.err(e))?;
        if verdict != "ok" {
            return Err(self.err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(verdict),
            )));
        }
        Ok(())
    }

    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::Dir { path: dir.into(), source })?;
        let path = dir.join(DB_FILE);
        let db = |source| StoreError::Db { path: path.clone(), source };
        let conn = Connection::open(&path).map_err(db)?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path, found: version });
        }
        Self::init(&conn).map_err(db)?;
        Ok(Self { conn, path })
    }

    /// Brings a database of an earlier version (or a new one) to this version, in one
    /// transaction.
    fn init(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE IF NOT EXISTS bans (
                target TEXT PRIMARY KEY,
                expires_unix_ms INTEGER,
                created_unix_ms INTEGER NOT NULL,
                reason TEXT NOT NULL,
                source TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS history (
                id INTEGER PRIMARY KEY,
                target TEXT NOT NULL,
                jail TEXT NOT NULL,
                created_unix_ms INTEGER NOT NULL,
                expires_unix_ms INTEGER,
                failures INTEGER NOT NULL,
                earlier INTEGER NOT NULL,
                reason TEXT NOT NULL,
                lines TEXT NOT NULL,
                users TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS history_by_target ON history (target, created_unix_ms);
            CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            PRAGMA user_version = 2;
            COMMIT;",
        )
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db { path: self.path.clone(), source }
    }

    /// Opens a group of writes that [`Store::commit`] makes durable together. Reads see the
    /// group's writes at once; nothing of it is on disk before the commit. A group already open
    /// is kept.
    pub fn begin(&self) -> Result<(), StoreError> {
        if !self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.err(e))
    }

    /// Commits the open group, if any: one sync for all its writes. A commit that fails rolls
    /// the group back; the caller rewrites what it must (the daemon: every ban in force).
    pub fn commit(&self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            // none open, or SQLite rolled it back on an error its write already reported
            return Ok(());
        }
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.err(e)
        })
    }

    pub fn put_ban(&self, b: &Ban) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO bans (target, expires_unix_ms, created_unix_ms, reason, source)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(target) DO UPDATE SET expires_unix_ms = ?2, created_unix_ms = ?3, reason = ?4, source = ?5",
            )
            .and_then(|mut st| st.execute(row(b)))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn delete_ban(&self, target: &IpNet) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("DELETE FROM bans WHERE target = ?1")
            .and_then(|mut st| st.execute(params![target.to_string()]))
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Replaces every stored ban (one transaction).
    pub fn replace_all<B: std::borrow::Borrow<Ban>>(
        &mut self,
        bans: impl IntoIterator<Item = B>,
    ) -> Result<(), StoreError> {
        self.commit()?;
        let path = self.path.clone();
        let db = |source| StoreError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute("DELETE FROM bans", []).map_err(db)?;
        {
            let mut st = tx
                .prepare("INSERT INTO bans (target, expires_unix_ms, created_unix_ms, reason, source) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(db)?;
            for b in bans {
                let b = b.borrow();
                st.execute(row(b)).map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    /// Hands every stored ban to `f` one at a time (millions of them never sit in memory at
    /// once); rows that no longer parse are skipped and counted (the second value).
    pub fn with_bans<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = Ban>) -> R) -> Result<(R, usize), StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT target, expires_unix_ms, created_unix_ms, reason, source FROM bans")
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        let mut bad = 0usize;
        let mut failed = None;
        let mut iter = std::iter::from_fn(|| loop {
            let row = match rows.next() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => {
                    failed = Some(e);
                    return None;
                }
            };
            let get = || -> rusqlite::Result<Ban> {
                let target = row.get_ref(0)?.as_str().map_err(|_| rusqlite::Error::InvalidQuery)?;
                Ok(Ban {
                    target: target.parse().map_err(|_| rusqlite::Error::InvalidQuery)?,
                    expires_unix_ms: row.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                    created_unix_ms: row.get::<_, i64>(2)? as u64,
                    reason: row.get(3)?,
                    source: row.get(4)?,
                })
            };
            match get() {
                Ok(b) => return Some(b),
                Err(_) => bad += 1,
            }
        });
        let r = f(&mut iter);
        match failed {
            Some(e) => Err(self.err(e)),
            None => Ok((r, bad)),
        }
    }

    /// Every stored ban; rows that no longer parse are skipped and counted.
    pub fn load_bans(&self) -> Result<(Vec<Ban>, usize), StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT target, expires_unix_ms, created_unix_ms, reason, source FROM bans")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let (mut out, mut bad) = (Vec::new(), 0);
        for row in rows {
            let (target, expires, created, reason, source) = row.map_err(|e| self.err(e))?;
            match target.parse::<IpNet>() {
                Ok(target) => out.push(Ban {
                    target,
                    expires_unix_ms: expires.map(|v| v as u64),
                    created_unix_ms: created as u64,
                    reason,
                    source,
                }),
                Err(_) => bad += 1,
            }
        }
        Ok((out, bad))
    }

    /// Records a ban in the history; returns its id.
    pub fn add_history(&self, h: &HistoryEntry) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO history (target, jail, created_unix_ms, expires_unix_ms, failures, earlier, reason, lines, users)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    h.target.to_string(),
                    h.jail,
                    h.created_unix_ms as i64,
                    h.expires_unix_ms.map(|v| v as i64),
                    h.failures,
                    h.earlier,
                    h.reason,
                    serde_json::to_string(&h.lines).expect("strings serialize"),
                    serde_json::to_string(&h.users).expect("strings serialize"),
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Bans of `target` since `since_ms` by the jails `of`.
    pub fn count_history(&self, target: &IpNet, of: Jails<'_>, since_ms: u64) -> Result<u32, StoreError> {
        const ALL: &str = "SELECT COUNT(*) FROM history WHERE target = ?1 AND created_unix_ms >= ?2";
        let (t, since) = (target.to_string(), since_ms as i64);
        let n: i64 = match of {
            Jails::All => self.conn.query_row(ALL, params![t, since], |r| r.get(0)),
            Jails::Only(j) => self.conn.query_row(&format!("{ALL} AND jail = ?3"), params![t, since, j], |r| r.get(0)),
            Jails::Others(j) => self.conn.query_row(
                &format!("{ALL} AND jail NOT IN (?3, ?4)"),
                params![t, since, j, crate::detection::jail::MANUAL],
                |r| r.get(0),
            ),
        }
        .map_err(|e| self.err(e))?;
        Ok(n as u32)
    }

    /// The latest `limit` bans of `target`, newest first.
    pub fn history(&self, target: &IpNet, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT jail, created_unix_ms, expires_unix_ms, failures, earlier, reason, lines, users FROM history
                 WHERE target = ?1 ORDER BY created_unix_ms DESC, id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![target.to_string(), limit], |r| {
                let lines: String = r.get(6)?;
                let users: String = r.get(7)?;
                Ok(HistoryEntry {
                    target: *target,
                    jail: r.get(0)?,
                    created_unix_ms: r.get::<_, i64>(1)? as u64,
                    expires_unix_ms: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    failures: r.get(3)?,
                    earlier: r.get(4)?,
                    reason: r.get(5)?,
                    lines: serde_json::from_str(&lines).unwrap_or_default(),
                    users: serde_json::from_str(&users).unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Forgets history older than `before_ms`; returns how many bans were forgotten.
    pub fn purge_history(&self, before_ms: u64) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM history WHERE created_unix_ms < ?1", params![before_ms as i64])
            .map_err(|e| self.err(e))
    }

    /// Settings the daemon keeps for its next start (service ids, attach modes), by key prefix.
    pub fn settings(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![prefix], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map(|(k, v)| (k[prefix.len()..].to_owned(), v)))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Replaces the settings under `prefix` with `values` (one transaction).
    pub fn set_settings(&mut self, prefix: &str, values: &[(String, String)]) -> Result<(), StoreError> {
        self.commit()?;
        let path = self.path.clone();
        let db = |source| StoreError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute("DELETE FROM settings WHERE substr(key, 1, length(?1)) = ?1", params![prefix]).map_err(db)?;
        for (k, v) in values {
            tx.execute("INSERT INTO settings (key, value) VALUES (?1, ?2)", params![format!("{prefix}{k}"), v])
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    pub fn ban(&self, target: &IpNet) -> Result<Option<Ban>, StoreError> {
        self.conn
            .query_row(
                "SELECT expires_unix_ms, created_unix_ms, reason, source FROM bans WHERE target = ?1",
                params![target.to_string()],
                |r| {
                    Ok(Ban {
                        target: *target,
                        expires_unix_ms: r.get::<_, Option<i64>>(0)?.map(|v| v as u64),
                        created_unix_ms: r.get::<_, i64>(1)? as u64,
                        reason: r.get(2)?,
                        source: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(t: &str, exp: Option<u64>) -> Ban {
        Ban {
            target: t.parse().unwrap(),
            expires_unix_ms: exp,
            created_unix_ms: 5,
            reason: "r".into(),
            source: "manual".into(),
        }
    }

    #[test]
    fn bans_round_trip_and_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("sipwall-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).unwrap();
            s.put_ban(&ban("198.51.100.1/32", Some(1000))).unwrap();
            s.put_ban(&ban("2001:db8::/64", None)).unwrap();
            s.put_ban(&ban("198.51.100.1/32", Some(2000))).unwrap();
            assert!(s.delete_ban(&"2001:db8::/64".parse().unwrap()).unwrap());
            assert!(!s.delete_ban(&"2001:db8::/64".parse().unwrap()).unwrap());
        }
        let mut s = Store::open(&dir).unwrap();
        let (bans, bad) = s.load_bans().unwrap();
        assert_eq!((bans, bad), (vec![ban("198.51.100.1/32", Some(2000))], 0));
        s.replace_all([ban("10.0.0.0/8", None)].iter()).unwrap();
        assert_eq!(s.load_bans().unwrap().0, vec![ban("10.0.0.0/8", None)]);
        let h = |jail: &str, at: u64| HistoryEntry {
            target: "198.51.100.1/32".parse().unwrap(),
            jail: jail.into(),
            created_unix_ms: at,
            expires_unix_ms: Some(at + 1000),
            failures: 3,
            earlier: 0,
            reason: "r".into(),
            lines: vec!["a line".into()],
            users: vec![],
        };
        for (j, at) in [("asterisk", 10), ("sshd", 20), ("asterisk", 30)] {
            s.add_history(&h(j, at)).unwrap();
        }
        let t = "198.51.100.1/32".parse().unwrap();
        assert_eq!(s.count_history(&t, Jails::Only("asterisk"), 0).unwrap(), 2);

        assert_eq!(s.count_history(&t, Jails::Others("asterisk"), 0).unwrap(), 1);

        assert_eq!(s.count_history(&t, Jails::All, 15).unwrap(), 2);
        let newest = s.history(&t, 2).unwrap();
        assert_eq!(newest, vec![h("asterisk", 30), h("sshd", 20)]);
        assert_eq!(s.purge_history(25).unwrap(), 2);
        s.set_settings("service.", &[("sip".into(), "1".into()), ("ssh".into(), "2".into())]).unwrap();
        s.set_settings("link.", &[("eth0".into(), "native".into())]).unwrap();
        s.set_settings("service.", &[("sip".into(), "3".into())]).unwrap();
        assert_eq!(s.settings("service.").unwrap(), vec![("sip".to_owned(), "3".to_owned())]);
        assert_eq!(s.settings("link.").unwrap(), vec![("eth0".to_owned(), "native".to_owned())]);
        assert_eq!(s.count_history(&t, Jails::All, 0).unwrap(), 1);
        s.add_history(&h(crate::detection::jail::MANUAL, 40)).unwrap();
        s.add_history(&h("sshd", 50)).unwrap();
        assert_eq!(s.count_history(&t, Jails::Others("asterisk"), 0).unwrap(), 1, "by hand: not counted");
        assert_eq!(s.count_history(&t, Jails::All, 0).unwrap(), 3);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_group_of_writes_reaches_the_disk_at_its_commit_and_reads_see_it_before() {
        let dir = std::env::temp_dir().join(format!("sipwall-store-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Store::open(&dir).unwrap();
        // another process reading the file, as `sipwall` commands do
        let other = || -> i64 {
            let c = Connection::open(dir.join(DB_FILE)).unwrap();
            c.query_row("SELECT COUNT(*) FROM bans", [], |r| r.get(0)).unwrap()
        };
        s.commit().unwrap();
        s.begin().unwrap();
        s.begin().unwrap();
        for i in 0..100 {
            s.put_ban(&ban(&format!("198.51.100.{i}/32"), None)).unwrap();
        }
        assert!(s.delete_ban(&"198.51.100.0/32".parse().unwrap()).unwrap());
        let t: IpNet = "198.51.100.7/32".parse().unwrap();
        s.add_history(&HistoryEntry {
            target: t,
            jail: "sshd".into(),
            created_unix_ms: 10,
            expires_unix_ms: None,
            failures: 1,
            earlier: 0,
            reason: "r".into(),
            lines: vec![],
            users: vec![],
        })
        .unwrap();
        assert_eq!(s.count_history(&t, Jails::All, 0).unwrap(), 1, "the group's own writes are read back");
        assert_eq!(s.load_bans().unwrap().0.len(), 99);
        assert_eq!(other(), 0, "nothing of an open group is on disk");
        s.commit().unwrap();
        assert_eq!(other(), 99);
        // writes that need a transaction of their own close the open group first
        s.begin().unwrap();
        s.put_ban(&ban("203.0.113.1/32", None)).unwrap();
        s.set_settings("service.", &[("sip".into(), "1".into())]).unwrap();
        assert_eq!(other(), 100);
        s.begin().unwrap();
        s.replace_all([ban("10.0.0.0/8", None)].iter()).unwrap();
        s.commit().unwrap();
        assert_eq!(Store::open(&dir).unwrap().load_bans().unwrap().0, vec![ban("10.0.0.0/8", None)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn broken(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".broken-"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_corrupt_store_is_moved_aside_and_a_new_one_started() {
        let dir = std::env::temp_dir().join(format!("sipwall-store-broken-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // garbage where the database should be
        std::fs::write(dir.join(DB_FILE), b"this is not an SQLite database, it is garbage".repeat(100)).unwrap();
        let (s, opened) = Store::open_or_recover(&dir).unwrap();
        let Opened::MovedAside { error, kept } = opened else { panic!("{opened:?}") };
        assert!(error.to_string().contains("not a database"), "{error}");
        assert!(std::fs::read(&kept).unwrap().starts_with(b"this is not an SQLite"), "kept as it was");
        s.put_ban(&ban("198.51.100.1/32", None)).unwrap();
        drop(s);
        let (s, opened) = Store::open_or_recover(&dir).unwrap();
        assert!(matches!(opened, Opened::Healthy), "{opened:?}");
        assert_eq!(s.load_bans().unwrap().0.len(), 1);
        drop(s);

        // a valid header over damaged pages: found by the check, not halfway through the bans
        {
            let s = Store::open(&dir).unwrap();
            for i in 0..2000u32 {
                s.put_ban(&ban(&format!("10.{}.{}.1/32", i / 256, i % 256), None)).unwrap();
            }
            s.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
        }
        let mut bytes = std::fs::read(dir.join(DB_FILE)).unwrap();
        let page = 4096;
        assert!(bytes.len() > 4 * page);
        for b in &mut bytes[2 * page..3 * page] {
            *b = 0xA5;
        }
        std::fs::write(dir.join(DB_FILE), &bytes).unwrap();
        let (s, opened) = Store::open_or_recover(&dir).unwrap();
        assert!(matches!(opened, Opened::MovedAside { .. }), "{opened:?}");
        assert_eq!(s.load_bans().unwrap().0.len(), 0);
        assert_eq!(broken(&dir).iter().filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm")).count(), 2);

        // a store that cannot be written at all: in memory, never a failed start
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(dir.join(DB_FILE)).unwrap(); // a directory where the file should be
        std::fs::write(dir.join(DB_FILE).join("x"), b"x").unwrap();
        let mut perms = std::fs::metadata(&dir).unwrap().permissions();
        perms.set_mode(0o500);
        std::fs::set_permissions(&dir, perms).unwrap();
        let res = Store::open_or_recover(&dir);
        let mut perms = std::fs::metadata(&dir).unwrap().permissions();
        perms.set_mode(0o700);
        std::fs::set_permissions(&dir, perms).unwrap();
        let (s, opened) = res.unwrap();
        // root may rename in a read-only directory; either way the daemon gets a store
        assert!(matches!(opened, Opened::InMemory { .. } | Opened::MovedAside { .. }), "{opened:?}");
        s.put_ban(&ban("198.51.100.2/32", None)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
