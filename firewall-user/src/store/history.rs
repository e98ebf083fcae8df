//! The `history` table: every ban a jail issued, which escalation and `recidive` count and
//! `sipwall why` shows.

use ipnet::IpNet;
use rusqlite::params;

use super::{Store, StoreError};
use crate::detection::jail::{History, Jails, MANUAL};

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

impl History for Store {
    fn count(&self, target: &IpNet, of: Jails<'_>, since_ms: u64) -> u32 {
        self.count_history(target, of, since_ms).unwrap_or_else(|e| {
            log::error!("reading the ban history: {e}; counting no earlier bans");
            0
        })
    }
}

impl Store {
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
            Jails::Others(j) => {
                self.conn
                    .query_row(&format!("{ALL} AND jail NOT IN (?3, ?4)"), params![t, since, j, MANUAL], |r| r.get(0))
            }
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
}
