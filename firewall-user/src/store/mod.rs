//! Bans on disk: an SQLite database under `--state-dir`, written through on every change
//! (WAL, `synchronous = FULL`), so bans outlive restarts, crashes and reboots. Writes that arrive
//! together (a batch of detections, a ban storm) go in one group ([`Store::begin`],
//! [`Store::commit`]): one sync for the group instead of two per ban. Next to the bans
//! in force it keeps their history (every ban with its jail, failures and matched lines), which
//! escalation counts and `sipwall why` shows.

mod bans;
mod history;
mod settings;

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use rusqlite::Connection;

pub use self::history::HistoryEntry;

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

pub struct Store {
    conn: Connection,
    path: PathBuf,
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
}

#[cfg(test)]
mod tests;
