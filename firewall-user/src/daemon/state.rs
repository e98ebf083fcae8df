//! The daemon's state behind one lock: enforcement, the ban store, the jails, kernel
//! statistics, metrics.

use std::{
    path::PathBuf,
    time::{Instant, SystemTime},
};

use firewall_common::{
    maps::{self, capacity},
    rate::rate_slots,
    reason::Reason,
};
use ipnet::IpNet;
use serde_json::json;

use super::{detection::Detected, webhook::Notifier};
use crate::{
    control::protocol::{BanView, Request, Response},
    datapath::attach::Attached,
    datapath::bans::Ban,
    datapath::clock,
    datapath::enforcer::{Applied, BanChange, EnforceError, Enforcer},
    datapath::features::Features,
    datapath::good::GoodMap,
    datapath::loader,
    datapath::tables::kernel::KernelTables,
    detection::detect::{Event, Proof},
    detection::jail::{BanOrder, Engine, Outcome},
    detection::proof::Proofs,
    duration,
    metrics::{kernel, Metrics},
    rules::{cidr, jails::DetectorKind, Rules},
    store::HistoryEntry,
    store::{Store, StoreError},
};

mod judge;
mod render;
mod requests;

pub struct Daemon {
    pub enforcer: Enforcer<KernelTables>,
    pub store: Store,
    pub metrics: Metrics,
    pub config: Option<PathBuf>,
    pub attached: Vec<(String, Attached)>,
    /// Buckets in use, counted off the lock by the metrics task.
    pub rate_in_use: usize,
    pub engine: Engine,
    pub sources: super::detection::Sources,
    pub notifier: Option<Notifier>,
    /// Skipped failures logged in the current minute (the rest are only counted).
    skipped_logged: LogBudget,
    /// Refused bans logged in the current minute.
    refused_logged: LogBudget,
    /// SIP challenges the host answered, waiting for a success (`sip-wire`).
    pub challenges: super::challenges::Challenges,
    /// What the SIP answers and requests proved, and the known-good sources.
    pub proofs: Proofs,
    /// The known-good sources as the XDP program sees them.
    pub good_map: Option<GoodMap>,
    /// Log detections waiting, for at most [`HOLD_MS`], for their source to prove itself: the
    /// request a line is about reaches the daemon through the kernel, the line through the log,
    /// and either may come first.
    held: std::collections::VecDeque<(Detected, u64)>,
    /// The running kernel's release, and the optional parts it accepted.
    pub kernel: String,
    pub features: Features,
    /// The store missed a write (a full or failing disk): the bans in force are written again
    /// once it takes writes, at most every [`CATCH_UP_EVERY`].
    store_behind: Option<Instant>,
    /// The state directory, while the store lives in memory because none could be made there.
    store_dir: Option<PathBuf>,
    /// Inside [`Daemon::batch`]: the store's writes form one group.
    batching: bool,
    /// Ban events of the open batch (and whether the webhook wants each), told once it is saved.
    untold: Vec<(serde_json::Value, bool)>,
}

/// Least time between two attempts to bring a store that missed writes up to date.
const CATCH_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an unproven or ambiguous log detection waits for a proof.
const HOLD_MS: u64 = 2_000;
/// Log detections held at most; past that they are judged at once.
const HELD_MAX: usize = 65_536;

/// Log lines about skipped failures per minute; the metric counts them all.
const LOG_PER_MINUTE: u32 = 20;

/// The `reason` label of a refused ban.
fn refusal(e: &EnforceError) -> &'static str {
    match e {
        EnforceError::Table(crate::datapath::tables::TableError::Full { .. }) => "full",
        EnforceError::AllowListed { .. } => "allow_listed",
        _ => "error",
    }
}

/// Lines of one kind logged in the current minute: past [`LOG_PER_MINUTE`], only counted.
#[derive(Default)]
struct LogBudget {
    minute: u64,
    used: u32,
}

impl LogBudget {
    fn allow(&mut self) -> bool {
        self.allow_at(clock::unix_ms(SystemTime::now()))
    }

    fn allow_at(&mut self, now_ms: u64) -> bool {
        let minute = now_ms / 60_000;
        if self.minute != minute {
            *self = LogBudget { minute, used: 0 };
        }
        self.used += 1;
        self.used <= LOG_PER_MINUTE
    }
}

/// The sources no jail may ban: the allow list and, with `ignoreself`, this host's addresses.
pub fn never_banned(rules: &Rules) -> Vec<IpNet> {
    let mut v = rules.allow.clone();
    if rules.detection.ignoreself {
        v.extend(super::iface::local_addresses());
    }
    v
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        enforcer: Enforcer<KernelTables>,
        store: Store,
        metrics: Metrics,
        config: Option<PathBuf>,
        attached: Vec<(String, Attached)>,
        sources: super::detection::Sources,
        notifier: Option<Notifier>,
    ) -> Self {
        let rules = enforcer.rules();
        let engine = Engine::new(&rules.detection, never_banned(rules), rules.bans.ipv6_prefix);
        let proofs = Proofs::new(rules.sip.known_good.as_millis() as u64, capacity::SIP_GOOD as usize);
        let d = Self {
            enforcer,
            store,
            metrics,
            config,
            attached,
            rate_in_use: 0,
            engine,
            sources,
            notifier,
            skipped_logged: LogBudget::default(),
            refused_logged: LogBudget::default(),
            challenges: Default::default(),
            proofs,
            good_map: None,
            held: Default::default(),
            kernel: String::new(),
            features: Features::default(),
            store_behind: None,
            store_dir: None,
            batching: false,
            untold: Vec::new(),
        };
        d.metrics.store_healthy.set(1);
        d.metrics.rules_loaded_timestamp.set(clock::unix_ms(SystemTime::now()) as i64 / 1000);
        d.report_lists();
        d
    }

    /// Logs the blocklist files that could not be read whole and sets their health metric.
    fn report_lists(&self) {
        const SHOWN: usize = 5;
        let m = &self.metrics.blocklist_healthy;
        m.reset();
        for f in &self.enforcer.rules().block_files {
            let file = f.path.display().to_string();
            m.with_label_values(&[&file]).set(i64::from(f.faults.is_empty()));
            if f.faults.is_empty() {
                continue;
            }
            for fault in f.faults.iter().take(SHOWN) {
                log::error!("{fault}");
            }
            if f.faults.len() > SHOWN {
                log::error!("{file}: {} more faults", f.faults.len() - SHOWN);
            }
            if f.kept {
                log::error!(
                    "blocklist {file} is faulty: its last good version ({} networks) stays in force",
                    f.nets.len()
                );
            } else {
                log::error!(
                    "blocklist {file} is faulty and has no earlier good version: the {} networks that could be read apply",
                    f.nets.len()
                );
            }
        }
    }

    /// Runs `f` with the store's writes grouped: one commit, so one sync, for all the bans it
    /// makes, and the kernel tables' mappings kept from one ban to the next (the sweeper lets
    /// them go within a second). Each ban goes to
    /// the kernel at once; its log line and webhook call follow the
    /// commit, so a ban told is a ban saved (or, with a failing disk, one the store will catch up
    /// on). Nested calls join the open batch.
    pub fn batch<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        if self.batching {
            return f(self);
        }
        self.batching = true;
        self.enforcer.hold_mappings(true);
        let begun = self.store.begin();
        let out = f(self);
        self.enforcer.hold_mappings(false);
        let committed = begun.and_then(|()| self.store.commit());
        self.batching = false;
        self.stored(committed, || "a group of ban changes could not be saved".to_owned());
        self.tell();
        out
    }

    /// Logs a ban, unban or expiry, and sends it to the webhook if `notify`: now, or after the
    /// open batch is saved.
    fn announce(&mut self, event: &str, b: &Ban, order: Option<&BanOrder>, notify: bool) {
        self.untold.push((ban_event(event, b, order), notify));
        if !self.batching {
            self.tell();
        }
    }

    fn tell(&mut self) {
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

    /// Notes a store write's result: the first failure while the store is behind is logged,
    /// and the metric says the store no longer holds every ban in force.
    fn stored<T>(&mut self, r: Result<T, StoreError>, what: impl FnOnce() -> String) {
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
    fn record(&self, b: &Ban, order: Option<&BanOrder>) {
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

    /// A ban the enforcer refused (a full table, say): counted, and logged at most
    /// [`LOG_PER_MINUTE`] times a minute, so a ban storm against a full table cannot flood the log.
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
        rules.keep_good_lists(self.enforcer.rules());
        let applied = self.enforcer.apply_rules(rules)?;
        self.report_lists();
        let rules = self.enforcer.rules();
        self.engine.reconfigure(&rules.detection, never_banned(rules), rules.bans.ipv6_prefix);
        self.proofs.set_good_for(rules.sip.known_good.as_millis() as u64);
        self.sources.sync(&rules.detection, false, &self.metrics);
        super::save_service_ids(&mut self.store, &self.enforcer);
        self.metrics.rules_loaded_timestamp.set(clock::unix_ms(SystemTime::now()) as i64 / 1000);
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_log_lines_is_cut_to_the_minute_budget() {
        let mut b = LogBudget::default();
        let minute = 29_000_000 * 60_000;
        let logged = (0..10_000).filter(|i| b.allow_at(minute + i)).count();
        assert_eq!(logged, LOG_PER_MINUTE as usize);
        assert!(b.allow_at(minute + 60_000), "the next minute logs again");
    }
}
