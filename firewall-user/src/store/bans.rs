//! The `bans` table: the bans in force, written one at a time, replaced whole, and read back.

use ipnet::IpNet;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::datapath::bans::Ban;

/// A ban as the `bans` table's columns: target, expiry, creation, reason, source.
fn row(b: &Ban) -> (String, Option<i64>, i64, &str, &str) {
    (b.target.to_string(), b.expires_unix_ms.map(|v| v as i64), b.created_unix_ms as i64, &b.reason, &b.source)
}

impl Store {
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
