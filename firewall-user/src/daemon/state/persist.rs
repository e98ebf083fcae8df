//! Keeping the store up to date: a write it misses leaves the ban in force, and the bans in
//! force are written again once it takes writes (or once a store can be made on disk).

use std::{path::PathBuf, time::Instant};

use super::{Daemon, CATCH_UP_EVERY};
use crate::{
    datapath::bans::Ban,
    detection::jail::BanOrder,
    store::{HistoryEntry, Store, StoreError},
};

impl Daemon {
    /// Notes a store write's result: the first failure while the store is behind is logged,
    /// and the metric says the store no longer holds every ban in force.
    pub(super) fn stored<T>(&mut self, r: Result<T, StoreError>, what: impl FnOnce() -> String) {
        if let Err(e) = r {
            if self.store_behind.is_none() {
                log::error!("{}: {e}; bans stay in force, and the store catches up once it takes writes", what());
            }
            self.store_fell_behind();
        }
    }

    /// The store is in memory: one in `dir` replaces it as soon as it can be made.
    pub fn store_in_memory(&mut self, dir: PathBuf) {
        self.store_dir = Some(dir);
        self.store_fell_behind();
    }

    /// The store missed writes (or holds only what this run wrote): the bans in force are
    /// written again at the next attempt.
    pub fn store_fell_behind(&mut self) {
        self.store_behind.get_or_insert_with(Instant::now);
        self.metrics.store_healthy.set(0);
    }

    /// Writes every ban in force into a store that missed writes, once [`CATCH_UP_EVERY`] has
    /// passed since the last attempt.
    pub fn catch_up_store(&mut self) {
        let Some(since) = self.store_behind else { return };
        if since.elapsed() < CATCH_UP_EVERY {
            return;
        }
        if let Some(dir) = &self.store_dir {
            match Store::open(dir) {
                Ok(s) => {
                    // its earlier bans are in force already (or were skipped): this run's set replaces them
                    self.store = s;
                    self.store_dir = None;
                }
                Err(e) => {
                    log::debug!("the store still cannot be opened: {e}");
                    self.store_behind = Some(Instant::now());
                    return;
                }
            }
        }
        match self.store.replace_all(self.enforcer.bans()) {
            Ok(()) => {
                log::info!("the store holds the {} bans in force again", self.enforcer.ban_count());
                self.store_behind = None;
                self.metrics.store_healthy.set(1);
            }
            Err(e) => {
                log::debug!("the store still cannot be written: {e}");
                self.store_behind = Some(Instant::now());
            }
        }
    }

    /// Adds a ban to the history (for escalation and `sipwall why`).
    pub(super) fn record(&self, b: &Ban, order: Option<&BanOrder>) {
        let h = HistoryEntry {
            target: b.target,
            jail: order.map(|o| o.jail.clone()).unwrap_or_else(|| b.source.clone()),
            created_unix_ms: b.created_unix_ms,
            expires_unix_ms: b.expires_unix_ms,
            failures: order.map_or(0, |o| o.failures),
            earlier: order.map_or(0, |o| o.earlier),
            reason: b.reason.clone(),
            lines: order.map(|o| o.lines.clone()).unwrap_or_default(),
            users: order.map(|o| o.users.clone()).unwrap_or_default(),
        };
        if let Err(e) = self.store.add_history(&h) {
            log::error!("the ban of {} could not be added to the history: {e}", b.target);
        }
    }
}
