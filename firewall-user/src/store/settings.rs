//! The `settings` table: what the daemon keeps for its next start (service ids, attach modes).

use rusqlite::params;

use super::{Store, StoreError};

impl Store {
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
}
