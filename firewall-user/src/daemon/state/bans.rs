//! Bans, unbans and expiries as the daemon makes them: in the kernel first, then on disk, then
//! told (a JSON log line and the webhook) once the batch is saved.

use std::time::{Instant, SystemTime};

use ipnet::IpNet;
use serde_json::json;

use super::Daemon;
use crate::{
    datapath::bans::Ban,
    datapath::clock,
    datapath::enforcer::{BanChange, EnforceError},
    datapath::tables::TableError,
    detection::jail::BanOrder,
    duration,
};

/// The `reason` label of a refused ban.
fn refusal(e: &EnforceError) -> &'static str {
    match e {
        EnforceError::Table(TableError::Full { .. }) => "full",
        EnforceError::AllowListed { .. } => "allow_listed",
        _ => "error",
    }
}

/// A ban, unban or expiry as JSON: one structured log line (ready for Loki and friends) and the
/// webhook's body.
fn ban_event(event: &str, b: &Ban, order: Option<&BanOrder>) -> serde_json::Value {
    let mut v = json!({
        "event": event,
        "target": b.target.to_string(),
        "expires": b.expires_unix_ms.map(|ms| humantime::format_rfc3339_seconds(clock::from_unix_ms(ms)).to_string()),
        "reason": b.reason,
        "source": b.source,
    });
    if let Some(o) = order {
        v["jail"] = json!(o.jail);
        v["failures"] = json!(o.failures);
        v["earlier_bans"] = json!(o.earlier);
        v["bantime"] = json!(duration::format(o.bantime));
        v["users"] = json!(o.users);
        v["evidence"] = json!(o.evidence.name());
    }
    v
}

impl Daemon {
    /// Logs a ban, unban or expiry, and sends it to the webhook if `notify`: now, or after the
    /// open batch is saved.
    fn announce(&mut self, event: &str, b: &Ban, order: Option<&BanOrder>, notify: bool) {
        self.untold.push((ban_event(event, b, order), notify));
        if !self.batching {
            self.tell();
        }
    }

    pub(super) fn tell(&mut self) {
        for (v, notify) in self.untold.drain(..) {
            log::info!(target: "sipwall::bans", "{v}");
            if notify {
                if let Some(n) = &self.notifier {
                    n.send(v.to_string());
                }
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
        self.announce(if change == BanChange::Added { "ban" } else { "reban" }, &b, None, false);
        Ok((b, change))
    }

    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, EnforceError> {
        let Some(b) = self.enforcer.unban(net)? else { return Ok(None) };
        let saved = self.store.delete_ban(&b.target);
        self.stored(saved, || format!("{} is unbanned but the store still lists it", b.target));
        self.metrics.ban_actions.with_label_values(&["unban", "manual"]).inc();
        self.announce("unban", &b, None, false);
        Ok(Some(b))
    }

    /// A ban the enforcer refused (a full table, say): counted, and logged at most
    /// [`LOG_PER_MINUTE`](super::LOG_PER_MINUTE) times a minute, so a ban storm against a full
    /// table cannot flood the log.
    fn refused(&mut self, source: &str, target: &IpNet, e: &EnforceError) {
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
        self.announce(if change == BanChange::Added { "ban" } else { "reban" }, &b, Some(&order), true);
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
                    self.announce("expire", b, None, false);
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
