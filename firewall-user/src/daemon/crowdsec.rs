//! sipwall and CrowdSec's Local API: a bouncer task pulls the decision stream and puts the
//! decisions in force as bans; a machine task pushes the bans of the jails as alerts with
//! decisions. A reload that changes `[crowdsec]` restarts both.
//!
//! When the Local API cannot be reached, the bans its decisions made stay in force (and in the
//! store) until they end; the pulls back off, and the next one that works asks for every
//! decision in force, so what was deleted meanwhile is lifted.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime},
};

use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};

use super::{alerts::Alert, lock, Shared};
use crate::{
    control::protocol::{CrowdsecView, RoleView},
    crowdsec::{
        alert,
        book::Book,
        lapi::{Lapi, LapiError},
    },
    datapath::clock,
    metrics::Metrics,
    rules::crowdsec::{Bouncer, Crowdsec, Machine, SCENARIO_PREFIX},
};

/// Bans waiting to be pushed at most; past that, new ones are dropped and counted.
pub const QUEUE: usize = 4096;
/// Alerts sent in one request at most.
const BATCH: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What the tasks report for `sipwall status`.
#[derive(Default)]
pub struct LinkStatus {
    pub bouncer_up: AtomicBool,
    pub machine_up: AtomicBool,
    /// Unix ms of the last pull that worked; 0 before the first.
    pub last_pull_ms: AtomicU64,
    pub pushed: AtomicU64,
    pub waiting: AtomicU64,
    pub bouncer_problem: Mutex<Option<String>>,
    pub machine_problem: Mutex<Option<String>>,
}

/// The link while `[crowdsec]` is set: its configuration, the decisions in force, and the
/// queue of bans to push.
pub struct Link {
    /// Tells this link from the one a reload replaced it with: a pull of the old one that ends
    /// after the change is not applied to the new one's book.
    pub generation: u64,
    pub config: Crowdsec,
    pub book: Book,
    pub status: Arc<LinkStatus>,
    push: Option<mpsc::Sender<Arc<Alert>>>,
}

impl Link {
    /// Queues a ban for the machine task when it is one to push; never waits.
    pub fn offer(&self, a: &Arc<Alert>, m: &Metrics) {
        let (Some(tx), Some(machine)) = (&self.push, &self.config.machine) else { return };
        let now = clock::unix_ms(SystemTime::now());
        match alert::pushable(a, |j| machine.pushes(j), now) {
            Ok(()) => {
                if tx.try_send(a.clone()).is_err() {
                    m.crowdsec_pushed.with_label_values(&["dropped"]).inc();
                } else {
                    self.status.waiting.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err("unproven") => m.crowdsec_pushed.with_label_values(&["unproven"]).inc(),
            Err(_) => {}
        }
    }
}

impl Link {
    /// The link for `sipwall status`.
    pub fn view(&self) -> CrowdsecView {
        let st = &self.status;
        let get = |m: &Mutex<Option<String>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut roles = Vec::new();
        if self.config.bouncer.is_some() {
            let last = match st.last_pull_ms.load(Ordering::Relaxed) {
                0 => "no pull has worked yet".to_owned(),
                ms => format!("last pull {}", humantime::format_rfc3339_seconds(clock::from_unix_ms(ms))),
            };
            roles.push(RoleView {
                role: "bouncer".into(),
                up: st.bouncer_up.load(Ordering::Relaxed),
                detail: format!("{} decisions held, {last}", self.book.len()),
                problem: get(&st.bouncer_problem),
            });
        }
        if let Some(m) = &self.config.machine {
            roles.push(RoleView {
                role: "machine".into(),
                up: st.machine_up.load(Ordering::Relaxed),
                detail: format!(
                    "as {}: {} bans pushed, {} waiting",
                    m.login,
                    st.pushed.load(Ordering::Relaxed),
                    st.waiting.load(Ordering::Relaxed)
                ),
                problem: get(&st.machine_problem),
            });
        }
        CrowdsecView { api_url: self.config.api_url.clone(), roles }
    }
}

fn problem(slot: &Mutex<Option<String>>, p: Option<String>) {
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = p;
}

/// Runs the link of the rules in force; starts, restarts or stops it when a reload changes
/// `[crowdsec]`.
pub async fn run(d: Shared, mut config: watch::Receiver<Option<Crowdsec>>) {
    let m = {
        let g = lock(&d);
        let m = &g.metrics;
        (m.crowdsec_up.clone(), m.crowdsec_pulls.clone(), m.crowdsec_pushed.clone(), m.crowdsec_decisions.clone())
    };
    let (up, pulls, pushed, decisions) = m;
    loop {
        let wanted = config.borrow_and_update().clone();
        let mut tasks = JoinSet::new();
        up.reset();
        decisions.reset();
        match wanted.map(|c| Lapi::new(&c).map(|l| (c, l))) {
            None => lock(&d).crowdsec = None,
            Some(Err(e)) => {
                log::error!("{e}; sipwall is not linked to CrowdSec");
                lock(&d).crowdsec = None;
            }
            Some(Ok((c, lapi))) => {
                let lapi = Arc::new(lapi);
                let status = Arc::new(LinkStatus::default());
                let (tx, rx) = match &c.machine {
                    Some(_) => {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        (Some(tx), Some(rx))
                    }
                    None => (None, None),
                };
                let jails: Vec<String> = lock(&d).engine.jails.iter().map(|j| j.spec.name.clone()).collect();
                log::info!("{}", c.describe());
                // the link is in place before the tasks run: a pull's answer always has a book
                static GENERATION: AtomicU64 = AtomicU64::new(0);
                let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
                let link =
                    Link { generation, config: c.clone(), book: Book::default(), status: status.clone(), push: tx };
                lock(&d).crowdsec = Some(link);
                if let Some(b) = c.bouncer.clone() {
                    up.with_label_values(&["bouncer"]).set(0);
                    let link = (generation, status.clone());
                    tasks.spawn(bouncer(d.clone(), lapi.clone(), b, link, (up.clone(), pulls.clone())));
                }
                if let (Some(m), Some(rx)) = (c.machine.clone(), rx) {
                    up.with_label_values(&["machine"]).set(0);
                    let scenarios =
                        jails.iter().filter(|j| m.pushes(j)).map(|j| format!("{SCENARIO_PREFIX}{j}")).collect();
                    tasks.spawn(machine(lapi, m, scenarios, rx, status.clone(), (up.clone(), pushed.clone())));
                }
            }
        }
        if config.changed().await.is_err() {
            return;
        }
        tasks.abort_all();
        log::info!("[crowdsec] changed: reconnecting to the Local API");
    }
}

/// `sipwall_crowdsec_up`, and the role's counter: the pulls or the pushes.
type RoleMetrics = (prometheus::IntGaugeVec, prometheus::IntCounterVec);

/// Pulls the decision stream every `update_frequency`; after a failure, backs off and asks for
/// every decision again.
async fn bouncer(
    d: Shared,
    lapi: Arc<Lapi>,
    b: Bouncer,
    (generation, status): (u64, Arc<LinkStatus>),
    (up, pulls): RoleMetrics,
) {
    let mut startup = true;
    let mut backoff = BACKOFF_MIN;
    loop {
        match lapi.stream(&b.key, startup).await {
            Ok(stream) => {
                let d2 = d.clone();
                let took =
                    tokio::task::spawn_blocking(move || lock(&d2).take_decisions(stream, startup, generation)).await;
                if !matches!(took, Ok(Some(_))) {
                    // a panic while applying, or the link being replaced: ask for everything again
                    startup = true;
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                pulls.with_label_values(&["ok"]).inc();
                up.with_label_values(&["bouncer"]).set(1);
                if !status.bouncer_up.swap(true, Ordering::Relaxed) && !startup {
                    log::info!("crowdsec: the decision stream answers again");
                }
                status.last_pull_ms.store(clock::unix_ms(SystemTime::now()), Ordering::Relaxed);
                problem(&status.bouncer_problem, None);
                startup = false;
                backoff = BACKOFF_MIN;
                tokio::time::sleep(b.every).await;
            }
            Err(e) => {
                pulls.with_label_values(&[e.reason()]).inc();
                up.with_label_values(&["bouncer"]).set(0);
                status.bouncer_up.store(false, Ordering::Relaxed);
                let hint = match e {
                    LapiError::Denied(_) => {
                        format!("; check the key in {} (`cscli bouncers add NAME` makes one)", b.key_file.display())
                    }
                    _ => String::new(),
                };
                log::warn!(
                    "crowdsec: pulling decisions: {e}{hint}; the bans of earlier decisions stay in force; retrying in {}s",
                    backoff.as_secs()
                );
                problem(&status.bouncer_problem, Some(e.to_string()));
                startup = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Pushes queued bans as alerts, a batch at a time; logs in again when the token is refused,
/// and keeps a batch, retrying with backoff, while the Local API cannot take it.
async fn machine(
    lapi: Arc<Lapi>,
    m: Machine,
    scenarios: Vec<String>,
    mut rx: mpsc::Receiver<Arc<Alert>>,
    status: Arc<LinkStatus>,
    (up, pushed): RoleMetrics,
) {
    let mut token: Option<String> = None;
    let mut backoff = BACKOFF_MIN;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        status.waiting.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        loop {
            let now = clock::unix_ms(SystemTime::now());
            let alerts: Vec<serde_json::Value> =
                batch.iter().filter(|a| alert::pushable(a, |_| true, now).is_ok()).map(|a| alert::of(a, now)).collect();
            if alerts.is_empty() {
                break;
            }
            let fresh = token.is_none();
            let res = async {
                if token.is_none() {
                    token = Some(lapi.login(&m, &scenarios).await?);
                }
                lapi.push(token.as_deref().unwrap_or_default(), &serde_json::Value::Array(alerts.clone())).await
            }
            .await;
            match res {
                Ok(()) => {
                    let n = alerts.len() as u64;
                    pushed.with_label_values(&["sent"]).inc_by(n);
                    status.pushed.fetch_add(n, Ordering::Relaxed);
                    up.with_label_values(&["machine"]).set(1);
                    if !status.machine_up.swap(true, Ordering::Relaxed) {
                        log::info!("crowdsec: pushing bans as machine {}", m.login);
                    }
                    problem(&status.machine_problem, None);
                    backoff = BACKOFF_MIN;
                    break;
                }
                // an expired token: log in again at once
                Err(LapiError::Denied(_)) if !fresh => token = None,
                // the Local API refuses these alerts themselves: sending them again would stop
                // every later push behind them
                Err(LapiError::Status(code, why)) if code.is_client_error() && code.as_u16() != 429 => {
                    pushed.with_label_values(&["rejected"]).inc_by(alerts.len() as u64);
                    log::warn!(
                        "crowdsec: the Local API refused {} bans ({code}: {why}); they are dropped",
                        alerts.len()
                    );
                    problem(&status.machine_problem, Some(format!("alerts refused: {code}")));
                    break;
                }
                Err(e) => {
                    token = None;
                    pushed.with_label_values(&["failed"]).inc_by(alerts.len() as u64);
                    up.with_label_values(&["machine"]).set(0);
                    status.machine_up.store(false, Ordering::Relaxed);
                    let hint = match e {
                        LapiError::Denied(_) => format!(
                            "; check the login and password in {} (`cscli machines add NAME --auto -f FILE` writes them)",
                            m.credentials_file.display()
                        ),
                        _ => String::new(),
                    };
                    log::warn!(
                        "crowdsec: pushing {} bans: {e}{hint}; retrying in {}s",
                        alerts.len(),
                        backoff.as_secs()
                    );
                    problem(&status.machine_problem, Some(e.to_string()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
