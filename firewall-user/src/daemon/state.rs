//! The daemon's state behind one lock: enforcement, the ban store, kernel statistics, metrics.

use std::{path::PathBuf, time::SystemTime};

use firewall_common::{maps, rate::rate_slots};
use ipnet::IpNet;
use serde_json::json;

use crate::{
    bans::Ban,
    clock,
    control::protocol::{BanView, Request, Response},
    duration,
    enforcer::{Applied, BanChange, EnforceError, Enforcer},
    loader::{self, Attached, KernelStats},
    metrics::{kernel, Metrics},
    rules::{cidr, Rules},
    store::Store,
    tables::kernel::KernelTables,
};

pub struct Daemon {
    pub enforcer: Enforcer<KernelTables>,
    pub store: Store,
    pub stats: KernelStats,
    pub metrics: Metrics,
    pub config: Option<PathBuf>,
    pub attached: Vec<(String, Attached)>,
    /// Buckets in use, counted off the lock by the metrics task.
    pub rate_in_use: usize,
}

/// One structured log line per ban, unban and expiry (JSON, ready for Loki and friends).
fn log_ban_event(event: &str, b: &Ban) {
    let line = json!({
        "event": event,
        "target": b.target.to_string(),
        "expires": b.expires_unix_ms.map(|ms| humantime::format_rfc3339_seconds(clock::from_unix_ms(ms)).to_string()),
        "reason": b.reason,
        "source": b.source,
    });
    log::info!(target: "sipwall::bans", "{line}");
}

impl Daemon {
    pub fn new(
        enforcer: Enforcer<KernelTables>,
        store: Store,
        stats: KernelStats,
        metrics: Metrics,
        config: Option<PathBuf>,
        attached: Vec<(String, Attached)>,
    ) -> Self {
        let d = Self { enforcer, store, stats, metrics, config, attached, rate_in_use: 0 };
        d.metrics.rules_loaded_timestamp.set(clock::unix_ms(SystemTime::now()) as i64 / 1000);
        d
    }

    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Ban { target, duration, reason } => {
                self.ban_request(&target, duration.as_deref(), reason.as_deref())
            }
            Request::Unban { target } => self.unban_request(&target),
            Request::List => {
                let now = clock::unix_ms(SystemTime::now());
                let mut bans: Vec<BanView> = self.enforcer.bans().map(|b| BanView::of(b, now)).collect();
                bans.sort_by(|a, b| a.target.cmp(&b.target));
                let n = bans.len();
                Response { ok: true, message: format!("{n} ban{}", if n == 1 { "" } else { "s" }), bans }
            }
        }
    }

    fn ban_request(&mut self, target: &str, dur: Option<&str>, reason: Option<&str>) -> Response {
        let net = match cidr::parse(target) {
            Ok((n, _)) => n,
            Err(e) => return Response::error(e),
        };
        let expires = match dur.map(duration::parse).transpose() {
            Ok(Some(Some(d))) => Some(clock::unix_ms(SystemTime::now() + d)),
            Ok(_) => None,
            Err(e) => return Response::error(e),
        };
        match self.ban(net, expires, reason.unwrap_or("manual ban"), "manual") {
            Ok((b, change)) => {
                let what = if change == BanChange::Added { "banned" } else { "ban updated:" };
                let until = match b.expires_unix_ms {
                    Some(ms) => format!("until {}", humantime::format_rfc3339_seconds(clock::from_unix_ms(ms))),
                    None => "until unbanned".to_owned(),
                };
                let mut r = Response::ok(format!("{what} {} {until}", b.target));
                r.bans.push(BanView::of(&b, clock::unix_ms(SystemTime::now())));
                r
            }
            Err(e) => Response::error(e.to_string()),
        }
    }

    fn unban_request(&mut self, target: &str) -> Response {
        let net = match cidr::parse(target) {
            Ok((n, _)) => n,
            Err(e) => return Response::error(e),
        };
        match self.unban(net) {
            Ok(Some(b)) => Response::ok(format!("unbanned {}", b.target)),
            Ok(None) => {
                let covering: Vec<String> =
                    self.enforcer.bans_covering(&net).iter().map(|b| b.target.to_string()).collect();
                if covering.is_empty() {
                    Response::error(format!("{net} is not banned"))
                } else {
                    Response::error(format!(
                        "{net} is not banned itself but is covered by: {}; unban that",
                        covering.join(", ")
                    ))
                }
            }
            Err(e) => Response::error(e.to_string()),
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
        let (b, change) = self.enforcer.ban(net, expires, reason, source)?;
        if let Err(e) = self.store.put_ban(&b) {
            log::error!("ban of {} is in force but could not be saved: {e}", b.target);
        }
        self.metrics.ban_actions.with_label_values(&["ban", source]).inc();
        log_ban_event(if change == BanChange::Added { "ban" } else { "reban" }, &b);
        Ok((b, change))
    }

    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, EnforceError> {
        let Some(b) = self.enforcer.unban(net)? else { return Ok(None) };
        if let Err(e) = self.store.delete_ban(&b.target) {
            log::error!("{} is unbanned but the store still lists it: {e}", b.target);
        }
        self.metrics.ban_actions.with_label_values(&["unban", "manual"]).inc();
        log_ban_event("unban", &b);
        Ok(Some(b))
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
                    if let Err(e) = self.store.delete_ban(&b.target) {
                        log::error!("expired ban of {} could not be removed from the store: {e}", b.target);
                    }
                    self.metrics.ban_actions.with_label_values(&["expire", &b.source]).inc();
                    log_ban_event("expire", b);
                }
                gone.len()
            }
            Err(e) => {
                log::error!("lifting expired bans: {e}");
                0
            }
        }
    }

    /// Applies reloaded rules. Table capacities are fixed at load time: changed ones are kept
    /// at their current values until the next restart.
    pub fn reload(&mut self, mut rules: Rules) -> Result<Applied, EnforceError> {
        let cur = self.enforcer.rules();
        for (what, old, new) in [
            ("[bans] capacity", cur.bans.capacity, &mut rules.bans.capacity),
            ("[block] capacity", cur.block_capacity, &mut rules.block_capacity),
            ("[rate_limit] capacity", cur.rate_limit.capacity, &mut rules.rate_limit.capacity),
        ] {
            if old != *new {
                log::warn!("{what} changed from {old} to {new}: table sizes change at the next restart");
                *new = old;
            }
        }
        let applied = self.enforcer.apply_rules(rules)?;
        self.metrics.rules_loaded_timestamp.set(clock::unix_ms(SystemTime::now()) as i64 / 1000);
        Ok(applied)
    }

    pub fn render_metrics(&mut self) -> String {
        let m = &self.metrics;
        m.bans_active.set(self.enforcer.ban_count() as i64);
        let (net4, net6) = self.enforcer.nets().entries();
        let rules = self.enforcer.rules();
        let nets_cap = loader::net_capacity(rules);
        let rate_slots = rate_slots(rules.rate_limit.capacity);
        let rate = self.rate_in_use;
        for (map, entries, cap) in
            [(maps::NET4, net4, nets_cap), (maps::NET6, net6, nets_cap), (maps::RATE, rate, rate_slots)]
        {
            m.map_entries.with_label_values(&[map]).set(entries as i64);
            m.map_capacity.with_label_values(&[map]).set(cap as i64);
        }
        let counters = kernel::read_counters(&self.stats.counters);
        let events = kernel::read_event_stats(&self.stats.event_stats);
        let services = self.enforcer.services();
        let fams = kernel::families(&counters, events, |id| services.name(id).map(str::to_owned));
        m.render(fams)
    }
}
