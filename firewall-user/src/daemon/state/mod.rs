//! The daemon's state behind one lock: enforcement, the ban store, the jails, kernel
//! statistics, metrics.

use std::{
    path::PathBuf,
    time::{Instant, SystemTime},
};

use firewall_common::maps::capacity;
use ipnet::IpNet;

use super::{
    alerts::{Alert, Alerts},
    detection::Detected,
};
use crate::{
    datapath::attach::Attached,
    datapath::clock,
    datapath::enforcer::{Applied, EnforceError, Enforcer},
    datapath::features::Features,
    datapath::good::GoodMap,
    datapath::tables::kernel::KernelTables,
    detection::jail::Engine,
    detection::proof::Proofs,
    metrics::Metrics,
    rules::{feeds::Feed, Rules},
    store::Store,
};

mod bans;
mod decisions;
mod judge;
mod persist;
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
    /// The webhook and mail senders.
    pub alerts: Alerts,
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
    /// Ban events of the open batch, told once it is saved.
    untold: Vec<std::sync::Arc<Alert>>,
    /// The feeds of the rules in force, for the task that runs them.
    pub feeds: tokio::sync::watch::Sender<Vec<Feed>>,
    /// `[crowdsec]` of the rules in force, for the task that runs the link.
    pub crowdsec_config: tokio::sync::watch::Sender<Option<crate::rules::crowdsec::Crowdsec>>,
    /// The link to CrowdSec's Local API while it runs.
    pub crowdsec: Option<super::crowdsec::Link>,
    /// Failures several sources of a jail reported, so that each counts once.
    twins: super::twins::Twins,
}

/// Least time between two attempts to bring a store that missed writes up to date.
const CATCH_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an unproven or ambiguous log detection waits for a proof.
const HOLD_MS: u64 = 2_000;
/// Log detections held at most; past that they are judged at once.
const HELD_MAX: usize = 65_536;

/// Log lines about skipped failures per minute; the metric counts them all.
const LOG_PER_MINUTE: u32 = 20;

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
    let mut v: Vec<IpNet> = rules.allowed().copied().collect();
    if rules.detection.ignoreself {
        v.extend(super::iface::local_addresses());
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
        alerts: Alerts,
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
            alerts,
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
            feeds: tokio::sync::watch::Sender::new(Vec::new()),
            crowdsec_config: tokio::sync::watch::Sender::new(None),
            crowdsec: None,
            twins: Default::default(),
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
    /// the kernel at once; its log line and alerts follow the
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
        self.sources.sync(&rules.detection, &rules.asterisk.ami_credentials, false, &self.metrics);
        if rules.alerts != *self.alerts.config() {
            // the old senders finish their queues (a digest is sent at once) and end
            log::info!("[webhook] or [mail] changed: restarting the alerts");
            self.alerts = Alerts::start(&rules.alerts, &self.metrics);
        }
        super::save_service_ids(&mut self.store, &self.enforcer);
        self.metrics.rules_loaded_timestamp.set(clock::unix_ms(SystemTime::now()) as i64 / 1000);
        self.feeds.send_replace(rules.block_feeds.clone());
        let crowdsec = rules.crowdsec.clone();
        self.crowdsec_config.send_if_modified(|c| {
            let changed = *c != crowdsec;
            *c = crowdsec;
            changed
        });
        Ok(applied)
    }

    /// Puts a feed's new list in force, all or nothing like a rules reload: when the tables
    /// cannot take it, nothing changes. `Ok(None)` when the rules in force no longer have the feed.
    pub fn apply_feed(&mut self, name: &str, nets: Vec<IpNet>) -> Result<Option<Applied>, EnforceError> {
        let cur = self.enforcer.rules();
        if !cur.block_feeds.iter().any(|f| f.name == name) {
            return Ok(None);
        }
        let mut rules = cur.clone();
        rules.set_feed(name, nets);
        self.enforcer.apply_rules(rules).map(Some)
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
