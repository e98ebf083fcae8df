//! Bans on disk: an SQLite database under `--state-dir`, written through on every change
//! (WAL, `synchronous = FULL`), so bans outlive restarts, crashes and reboots.

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension};

use crate::bans::Ban;

pub const DB_FILE: &str = "sipwall.db";
const SCHEMA_VERSION: i64 = 1;

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

impl Store {
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
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bans (
                target TEXT PRIMARY KEY,
                expires_unix_ms INTEGER,
                created_unix_ms INTEGER NOT NULL,
                reason TEXT NOT NULL,
                source TEXT NOT NULL
            );
            PRAGMA user_version = 1;",
        )
        .map_err(db)?;
        Ok(Self { conn, path })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db { path: self.path.clone(), source }
    }

    pub fn put_ban(&self, b: &Ban) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO bans (target, expires_unix_ms, created_unix_ms, reason, source)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(target) DO UPDATE SET expires_unix_ms = ?2, created_unix_ms = ?3, reason = ?4, source = ?5",
                params![b.target.to_string(), b.expires_unix_ms.map(|v| v as i64), b.created_unix_ms as i64, b.reason, b.source],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn delete_ban(&self, target: &IpNet) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM bans WHERE target = ?1", params![target.to_string()])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Replaces every stored ban (one transaction).
    pub fn replace_all<'a>(&mut self, bans: impl Iterator<Item = &'a Ban>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let db = |source| StoreError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute("DELETE FROM bans", []).map_err(db)?;
        {
            let mut st = tx
                .prepare("INSERT INTO bans (target, expires_unix_ms, created_unix_ms, reason, source) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(db)?;
            for b in bans {
                st.execute(params![
                    b.target.to_string(),
                    b.expires_unix_ms.map(|v| v as i64),
                    b.created_unix_ms as i64,
                    b.reason,
                    b.source
                ])
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)
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
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
