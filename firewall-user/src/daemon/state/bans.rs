//! Bans, unbans and expiries as the daemon makes them: in the kernel first, then on disk, then
//! told (a JSON log line, the webhook and the mail) once the batch is saved.

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use ipnet::IpNet;

use super::Daemon;
use crate::{
    daemon::alerts::Alert,
    datapath::bans::Ban,
    datapath::clock,
    datapath::enforcer::{BanChange, EnforceError},
    datapath::tables::TableError,
    detection::jail::BanOrder,
    rules::alerts::EventKind,
};

/// The `reason` label of a refused ban.
fn refusal(e: &EnforceError) -> &'static str {
    match e {
        EnforceError::Table(TableError::Full { .. }) => "full",
        EnforceError::AllowListed { .. } => "allow_listed",
        _ => "error",
    }
}

impl Daemon {
    /// Logs a ban, unban or expiry (one JSON line, ready for Loki and friends) and hands it to
    /// the alerts: now, or after the open batch is saved.
    fn announce(&mut self, kind: EventKind, b: &Ban, order: Option<&BanOrder>) {
        // a CrowdSec decision is told where it was made; each pull logs what it changed
        if b.source == crate::crowdsec::SOURCE {
            return;
        }
        let now = clock::unix_ms(SystemTime::now());
        self.untold.push(Arc::new(Alert::new(kind, b, order, now)));
        if !self.batching {
            self.tell();
        }
    }

    pub(super) fn tell(&mut self) {
        for a in std::mem::take(&mut self.untold) {
            log::info!(target: "sipwall::bans", "{}", a.json(false));
            self.alerts.send(&a);
            if let Some(link) = &self.crowdsec {
                link.offer(&a, &self.metrics);
            }
        }
    }

    /// Bans in the kernel first, then records the ban on disk.
    pub fn ban(
        &mut self,
        net: IpNet,
        expires: Option<u64>,
        reason: &str,
        source: &str,
    ) -> Result<(Ban, BanChange), EnforceError> {
        let (b, change) = self
            .enforcer
            .ban(net, expires, reason, source)
            .inspect_err(|e| self.metrics.bans_refused.with_label_values(&[source, refusal(e)]).inc())?;
        let saved = self.store.put_ban(&b);
        self.stored(saved, || format!("the ban of {} is in force but could not be saved", b.target));
        self.record(&b, None);
        self.metrics.ban_actions.with_label_values(&["ban", source]).inc();
        self.announce(if change == BanChange::Added { EventKind::Ban } else { EventKind::Reban }, &b, None);
        Ok((b, change))
    }

    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, EnforceError> {
        let Some(b) = self.enforcer.unban(net)? else { return Ok(None) };
        let saved = self.store.delete_ban(&b.target);
        self.stored(saved, || format!("{} is unbanned but the store still lists it", b.target));
        self.metrics.ban_actions.with_label_values(&["unban", "manual"]).inc();
        self.announce(EventKind::Unban, &b, None);
        Ok(Some(b))
    }

    /// A ban the enforcer refused (a full table, say): counted, and logged at most
    /// [`LOG_PER_MINUTE`](super::LOG_PER_MINUTE) times a minute, so a ban storm against a full
    /// table cannot flood the log.
    pub(super) fn refused(&mut self, source: &str, target: &IpNet, e: &EnforceError) {
        self.metrics.bans_refused.with_label_values(&[source, refusal(e)]).inc();
        if self.refused_logged.allow() {
            log::error!("{source}: cannot ban {target}: {e} (further refusals this minute are only counted)");
        }
    }

    /// Carries out a jail's ban order (and recidive's, if this ban completes one).
    pub fn apply(&mut self, order: BanOrder, read_at: Option<Instant>, now: u64) {
        let expires = order.bantime.map(|d| now.saturating_add(d.as_millis() as u64));
        // a longer ban in force stays as it is
        if let Some(cur) = self.enforcer.bans_exact(&order.target) {
            let longer = match (cur.expires_unix_ms, expires) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(c), Some(e)) => c >= e,
            };
            if longer {
                log::info!("{}: {} reached the ban threshold but a longer ban is in force", order.jail, order.target);
                return;
            }
        }
        let (b, change) = match self.enforcer.ban(order.target, expires, &order.reason, &order.jail) {
            Ok(x) => x,
            Err(e) => return self.refused(&order.jail, &order.target, &e),
        };
        if let Some(t) = read_at {
            self.metrics.ban_latency.observe(t.elapsed().as_secs_f64());
        }
        let saved = self.store.put_ban(&b);
        self.stored(saved, || format!("the ban of {} is in force but could not be saved", b.target));
        self.record(&b, Some(&order));
        self.metrics.bans_total.with_label_values(&[&order.jail]).inc();
        self.metrics.ban_actions.with_label_values(&["ban", &order.jail]).inc();
        let kind = if change == BanChange::Added { EventKind::Ban } else { EventKind::Reban };
        self.announce(kind, &b, Some(&order));
        if let Some(r) = self.engine.banned(&order, now, &self.store) {
            self.apply(r, None, now);
        }
    }

    /// Removes expired bans; returns how many.
    pub fn sweep(&mut self) -> usize {
        let now = clock::unix_ms(SystemTime::now());
        if self.enforcer.next_expiry().is_none_or(|e| e > now) {
            return 0;
        }
        match self.enforcer.sweep(now) {
            Ok(gone) => {
                for b in &gone {
                    let saved = self.store.delete_ban(&b.target);
                    self.stored(saved, || {
                        format!("the expired ban of {} could not be removed from the store", b.target)
                    });
                    self.metrics.ban_actions.with_label_values(&["expire", &b.source]).inc();
                    self.announce(EventKind::Expire, b, None);
                }
                gone.len()
            }
            Err(e) => {
                log::error!("lifting expired bans: {e}");
                0
            }
        }
    }
}
