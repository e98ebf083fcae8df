//! `sipwall run`: load, apply the rules, attach, and serve until told to stop.

pub mod challenges;
pub mod detection;
pub mod events;
pub mod iface;
pub mod inspect;
pub mod reload;
pub mod state;
pub mod webhook;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use firewall_common::rate::Bucket;
use tokio::signal::unix::{signal, SignalKind};

use self::state::Daemon;
use crate::{
    control::server::{ControlSocket, Handler},
    egress,
    enforcer::Enforcer,
    features::{Feature, Refusal},
    loader::{self, AttachMode, Loaded, Origin},
    metrics::{http, Metrics},
    pins::Pins,
    rules::{Rejected, Rules},
    shm::{MappedArray, Words},
    store::{Opened, Store},
};

pub struct RunOptions {
    pub ifaces: Vec<String>,
    pub config: Option<PathBuf>,
    pub xdp_mode: AttachMode,
    pub metrics_addr: SocketAddr,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// Log every dropped packet (debugging; costs a log record per drop).
    pub trace_drops: bool,
    /// Read log files from their start instead of their end (replaying old logs).
    pub from_start: bool,
    /// Where maps and links are pinned.
    pub pin_dir: PathBuf,
    /// Detach and unpin on SIGTERM/SIGINT instead of leaving the program enforcing.
    pub detach_on_exit: bool,
}

/// Returns freed heap memory to the system (glibc keeps it otherwise).
pub fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

/// Trims the heap a little later, once a large answer has been sent and freed.
pub fn schedule_trim() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(2));
        trim_heap();
    });
}

/// Store settings: service name → id, interface → attach mode.
const SERVICE_IDS: &str = "service.";
const LINK_MODES: &str = "link.";

/// Keeps the service ids, so a daemon taking over the tables reads the port map the same way.
pub fn save_service_ids(store: &mut Store, e: &Enforcer<crate::tables::kernel::KernelTables>) {
    let ids: Vec<(String, String)> = e.services().names().map(|(n, i)| (n.to_owned(), i.to_string())).collect();
    if let Err(err) = store.set_settings(SERVICE_IDS, &ids) {
        log::warn!("saving the service ids: {err}");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Rules(Rejected),
    #[error("no default route to attach to: pass --iface")]
    NoInterface,
    #[error(transparent)]
    NoEthernet(#[from] iface::NoEthernet),
    #[error(transparent)]
    Load(#[from] loader::LoadError),
    #[error("applying the rules: {0}")]
    Apply(#[from] crate::enforcer::EnforceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Pin(#[from] crate::pins::PinError),
    #[error(transparent)]
    Control(#[from] crate::control::server::BindError),
    #[error("starting the drop trace: {0}")]
    Trace(#[source] aya_log::Error),
    #[error(transparent)]
    Kernel(#[from] crate::features::TooOld),
    #[error("{0}; the rules set `inspect = true` in [sip], so sipwall does not start without the SIP inspector (leave `inspect` out to run without it on this kernel)")]
    InspectorRefused(Refusal),
    #[error("serving metrics on {addr}: {source} (pass --metrics-addr)")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub type Shared = Arc<Mutex<Daemon>>;

/// Locks the daemon state; a panic in another holder is not a reason to stop enforcing.
pub fn lock(d: &Shared) -> std::sync::MutexGuard<'_, Daemon> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

/// What to say of the optional programs the kernel refused: one line each, naming the program,
/// the kernel, the verifier's reason and what is lost; an error if the rules require one.
fn admit(refused: Vec<(Feature, Refusal)>, rules: &Rules) -> Result<Vec<String>, RunError> {
    let mut lines = Vec::new();
    for (feature, why) in refused {
        if feature == Feature::SipInspector && rules.sip.inspect_required {
            return Err(RunError::InspectorRefused(why));
        }
        lines.push(format!("{why}; {}", feature.loss()));
    }
    Ok(lines)
}

fn read_rules(config: &Option<PathBuf>) -> Result<Rules, RunError> {
    let (rules, warnings) = match config {
        Some(p) => Rules::load(p).map_err(RunError::Rules)?,
        None => (Rules::default_rules(), Vec::new()),
    };
    for w in warnings {
        log::warn!("{w}");
    }
    Ok(rules)
}

pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    let rules = read_rules(&opts.config)?;
    crate::features::check_kernel()?;
    let mut ifaces = if opts.ifaces.is_empty() {
        vec![iface::default_route_iface().ok_or(RunError::NoInterface)?]
    } else {
        opts.ifaces.clone()
    };
    let mut seen = std::collections::HashSet::new();
    ifaces.retain(|i| seen.insert(i.clone()));
    for name in &ifaces {
        iface::check_ethernet(name)?;
    }
    log::info!(
        "rules from {}: {} services, {} allow-listed and {} blocked prefixes",
        rules.origin,
        rules.services.len(),
        rules.allow.len(),
        rules.blocked().count()
    );

    // Endpoints first: a port in use or a bad socket path fails before anything is attached.
    let listener =
        http::bind(opts.metrics_addr).await.map_err(|source| RunError::Metrics { addr: opts.metrics_addr, source })?;
    let control = ControlSocket::bind(&opts.socket)?;

    // Tables are filled before the program sees its first packet; pinned tables of an earlier
    // daemon are taken over with what they hold, never emptied and refilled.
    let pins = Pins::new(&opts.pin_dir);
    let Loaded { mut ebpf, tables, stats, rate, events, mut good, clock, origin, mut features, refused, .. } =
        loader::load_pinned(&rules, crate::BPF_OBJECT, opts.trace_drops, &pins)?;
    for line in admit(refused, &rules)? {
        log::error!("{line}");
    }
    let drop_log = if opts.trace_drops {
        log::warn!("--trace-drops: logging every dropped packet");
        Some(aya_log::EbpfLogger::init(&mut ebpf).map_err(RunError::Trace)?)
    } else {
        None
    };
    log::info!("kernel tick rate {} Hz", clock.hz);
    // a broken store never stops enforcement: it is moved aside and the rules and the pinned
    // tables are enforced all the same
    let (mut store, opened) = Store::open_or_recover(&opts.state_dir)?;
    match &opened {
        Opened::Healthy => {}
        Opened::MovedAside { error, kept } => log::error!(
            "{error}: moved it aside to {} (kept for inspection) and started a new store; \
             bans it held that the pinned tables do not are lost",
            kept.display()
        ),
        Opened::InMemory { error } => log::error!(
            "{error}, and no new store can be made in {}: bans are kept in memory until one can",
            opts.state_dir.display()
        ),
    }
    let started = std::time::Instant::now();
    let ((enforcer, skipped), unreadable) = if origin == Origin::Adopted {
        let ids = store
            .settings(SERVICE_IDS)?
            .into_iter()
            .filter_map(|(name, id)| id.parse().ok().map(|id| (name, id)))
            .collect();
        let (r, unreadable) = store.with_bans(|saved| Enforcer::adopt(tables, rules, clock, ids, saved))?;
        let (e, recovered, skipped) = r?;
        for b in &recovered {
            log::warn!("{} is banned in the kernel but was not in the store: keeping the ban and saving it", b.target);
            if let Err(err) = store.put_ban(b) {
                log::error!("saving the recovered ban of {}: {err}", b.target);
            }
        }
        log::info!(
            "took over the pinned tables with {} bans ({} found only in the kernel) in {:.0} ms",
            e.ban_count(),
            recovered.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        ((e, skipped), unreadable)
    } else {
        let mut e = Enforcer::new(tables, rules, clock)?;
        let (r, unreadable) = store.with_bans(|saved| e.restore(saved))?;
        let (restored, skipped) = r?;
        log::info!(
            "restored {restored} bans from {} in {:.0} ms",
            opts.state_dir.display(),
            started.elapsed().as_secs_f64() * 1e3
        );
        ((e, skipped), unreadable)
    };
    if unreadable > 0 {
        log::warn!("skipped {unreadable} unreadable bans in the store");
    }
    for b in &skipped {
        log::warn!("dropping the stored ban of {}: it is in the allow list now", b.target);
        let _ = store.delete_ban(&b.target);
    }
    save_service_ids(&mut store, &enforcer);
    // loading went through large short-lived buffers: give their memory back to the system
    trim_heap();

    let metrics = Metrics::default();
    let mut attached = Vec::new();
    let mut links = Vec::new();
    let (mut hooks, mut egress_missing) = (Vec::new(), false);
    let modes: std::collections::HashMap<String, String> = store.settings(LINK_MODES)?.into_iter().collect();
    for name in &ifaces {
        let recorded = modes.get(name).and_then(|m| match m.as_str() {
            "native" => Some(loader::Attached::Native),
            "skb" => Some(loader::Attached::Skb),
            _ => None,
        });
        let (mode, hold) = loader::attach_pinned(&mut ebpf, name, opts.xdp_mode, &pins, recorded)?;
        match hold {
            loader::LinkHold::Updated => log::info!("{name}: the pinned {} link now runs this program", mode.name()),
            _ => {
                log::info!("attached to {name} in {} mode (link pinned in {})", mode.name(), pins.links_dir().display())
            }
        }
        metrics.xdp_attached.with_label_values(&[name, mode.name()]).set(1);
        attached.push((name.clone(), mode));
        links.push(hold);
        // detection without logs: a failure here costs the sip-wire jail its input, not enforcement
        if features.has(Feature::EgressClassifier) {
            match egress::attach(&mut ebpf, name) {
                Ok(hook) => {
                    log::info!("{name}: reading the SIP answers leaving the host (tc egress, {hook:?})");
                    hooks.push(hook);
                }
                Err(e) => {
                    log::warn!("{name}: {e}; the sip-wire jail gets no reports from it");
                    egress_missing = true;
                }
            }
        }
    }
    if egress_missing {
        features.set(Feature::EgressClassifier, false);
    }
    features.set(Feature::Tcx, !hooks.is_empty() && hooks.iter().all(|h| *h == egress::Hook::Tcx));
    for stale in pins.pinned_links() {
        if !ifaces.contains(&stale) {
            log::info!("{stale} is no longer protected: removing its pinned link");
            if let Err(e) = loader::detach_pinned(&pins, &stale) {
                log::warn!("{stale}: {e}");
            }
        }
    }
    let modes: Vec<(String, String)> = attached.iter().map(|(n, m)| (n.clone(), m.name().to_owned())).collect();
    if let Err(e) = store.set_settings(LINK_MODES, &modes) {
        log::warn!("saving the attach modes: {e}");
    }
    if origin == Origin::Staged {
        pins.promote_staging()?;
    }

    let (det_tx, det_rx) = tokio::sync::mpsc::channel(detection::QUEUE);
    let mut tasks = Vec::new();
    let notifier = enforcer.rules().detection.webhook.clone().map(|hook| {
        log::info!("ban notifications go to {}", hook.url);
        let (n, task) = webhook::Notifier::start(hook, metrics.webhook.clone());
        tasks.push(task);
        n
    });
    let sources = detection::Sources::new(det_tx.clone());
    let daemon: Shared =
        Arc::new(Mutex::new(Daemon::new(enforcer, store, metrics, opts.config.clone(), attached, sources, notifier)));
    {
        let mut g = lock(&daemon);
        let g = &mut *g;
        g.kernel = crate::features::release();
        match opened {
            Opened::Healthy => {}
            // the operator has a broken file to look at: the metric stays down until a restart
            Opened::MovedAside { .. } => g.metrics.store_healthy.set(0),
            Opened::InMemory { .. } => g.store_in_memory(opts.state_dir.clone()),
        }
        // sources an earlier daemon knew good prove themselves again at their next registration
        good.clear();
        g.good_map = Some(good);
        for (f, on) in features.all() {
            g.metrics.feature_enabled.with_label_values(&[f.name()]).set(i64::from(on));
        }
        g.features = features;
        g.sources.sync(&g.enforcer.rules().detection, opts.from_start, &g.metrics);
        let jails: Vec<String> = g.engine.jails.iter().map(|j| j.spec.name.clone()).collect();
        log::info!("jails: {}", if jails.is_empty() { "none".to_owned() } else { jails.join(", ") });
    }
    log::info!("metrics on http://{}/metrics, control socket {}", opts.metrics_addr, opts.socket.display());

    let render: http::Render = {
        let d = daemon.clone();
        Arc::new(move || {
            // about 700 per-CPU lookups: made before the lock, so a scrape never stalls
            // detection, bans or the control socket
            let counters = crate::metrics::kernel::read_counters(&stats.counters);
            let events = crate::metrics::kernel::read_event_stats(&stats.event_stats);
            lock(&d).render_metrics(counters, events)
        })
    };
    let handler: Handler = {
        let d = daemon.clone();
        Arc::new(move |req| lock(&d).handle(req))
    };
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    tasks.extend([
        tokio::spawn(http::serve(listener, render)),
        tokio::spawn(control.serve(handler)),
        tokio::spawn(sweeper(daemon.clone())),
        tokio::spawn(rate_census(rate, daemon.clone())),
        tokio::spawn(events::read(events, daemon.clone())),
        tokio::spawn(reload::run(daemon.clone(), opts.config.clone(), reload_tx.clone(), reload_rx)),
        tokio::spawn(detection::run(det_rx, daemon.clone())),
        tokio::spawn(housekeeping(daemon.clone())),
    ]);
    if let Some(logger) = drop_log {
        tasks.push(tokio::spawn(events::trace(logger)));
    }

    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    let mut int = signal(SignalKind::interrupt()).expect("signal handler");
    let mut hup = signal(SignalKind::hangup()).expect("signal handler");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                log::info!("SIGHUP: reloading rules");
                let _ = reload_tx.try_send(reload::Trigger::Signal);
            }
        }
    }
    lock(&daemon).sources.stop_all();
    for t in tasks {
        t.abort();
        let _ = t.await;
    }
    if opts.detach_on_exit {
        log::info!("stopping: detaching the XDP program and removing its pins");
        pins.remove_all()?;
        drop(links);
        drop(ebpf);
        for (name, _) in &lock(&daemon).attached {
            log::info!("detached from {name}");
        }
    } else {
        log::info!(
            "stopping; the XDP program stays attached and keeps enforcing the tables pinned in {} \
             (`sipwall detach` removes it)",
            pins.root().display()
        );
        drop(links);
        drop(ebpf);
    }
    Ok(())
}

/// Counts the buckets in use once a minute, reading the bucket array through a mapping made
/// for the count and dropped after it.
async fn rate_census(rate: MappedArray, d: Shared) {
    let mut rate = Some(rate);
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let Some(mut r) = rate.take() else { return };
        match tokio::task::spawn_blocking(move || {
            let n = buckets_in_use(&r);
            r.unmap();
            (r, n)
        })
        .await
        {
            Ok((r, n)) => {
                lock(&d).rate_in_use = n;
                rate = Some(r);
            }
            Err(_) => return,
        }
    }
}

/// Slots whose key is set: a bucket is 8 words, the key's family the high half of one.
pub fn buckets_in_use(words: &impl Words) -> usize {
    (0..words.len() / 8).filter(|i| words.load(i * 8 + Bucket::FAMILY_WORD) >> 32 != 0).count()
}

/// History kept at least, for escalation and `sipwall why`.
const HISTORY_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// Once a minute, forgets failures older than their jail's findtime; once a day, history older
/// than the longest escalation window (and at least 30 days).
async fn housekeeping(d: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut minutes = 0u64;
    loop {
        tick.tick().await;
        let d = d.clone();
        let purge = minutes.is_multiple_of(24 * 60);
        minutes += 1;
        let _ = tokio::task::spawn_blocking(move || {
            let mut g = lock(&d);
            let now = crate::clock::unix_ms(std::time::SystemTime::now());
            g.engine.expire(now);
            if purge {
                let keep = g
                    .enforcer
                    .rules()
                    .detection
                    .jails
                    .iter()
                    .filter_map(|j| j.increment.as_ref().map(|i| i.window))
                    .chain([HISTORY_KEPT])
                    .max()
                    .unwrap_or(HISTORY_KEPT);
                match g.store.purge_history(now.saturating_sub(keep.as_millis() as u64)) {
                    Ok(n) if n > 0 => log::info!("forgot {n} bans older than {}", crate::duration::format(Some(keep))),
                    Ok(_) => {}
                    Err(e) => log::warn!("purging the ban history: {e}"),
                }
            }
        })
        .await;
    }
}

/// Lifts expired bans (the kernel already ignores them) and forgets them in the store; turns
/// SIP challenges no success followed into failures.
async fn sweeper(d: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = d.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut g = lock(&d);
            g.catch_up_store();
            g.batch(|g| {
                g.sweep();
                events::unanswered(g);
            });
            g.enforcer.let_go();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use firewall_common::rate::{Bucket, RateKey, FAMILY_V6};

    use super::{admit, buckets_in_use, RunError};
    use crate::{
        features::{Feature, Refusal},
        rules::Rules,
    };

    fn refusal() -> Refusal {
        Refusal {
            program: "sipwall_sip_full",
            release: "6.1.0-57-amd64".into(),
            error: "Permission denied (os error 13)".into(),
            log_tail: "2442: (63) *(u32 *)(r8 +28) = r3 | R8 unbounded memory access".into(),
        }
    }

    #[test]
    fn a_refused_inspector_is_one_line_unless_the_rules_require_it() {
        let mut rules = Rules::default_rules();
        let lines = admit(vec![(Feature::SipInspector, refusal())], &rules).unwrap();
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert!(l.starts_with("Linux 6.1.0-57-amd64 refused `sipwall_sip_full` (Permission denied"), "{l}");
        assert!(l.contains("the verifier's last words: 2442: (63)"), "{l}");
        assert!(l.contains("R8 unbounded memory access; [sip] inspection is off"), "{l}");
        rules.sip.inspect_required = true;
        let err = admit(vec![(Feature::SipInspector, refusal())], &rules).unwrap_err();
        assert!(matches!(err, RunError::InspectorRefused(_)));
        assert!(err.to_string().contains("`inspect = true`"), "{err}");
        // the egress classifier is never required
        let lines = admit(vec![(Feature::EgressClassifier, refusal())], &rules).unwrap();
        assert!(lines[0].ends_with("the sip-wire jail gets no reports; everything else is enforced"), "{}", lines[0]);
    }

    #[test]
    fn counts_buckets_with_a_key() {
        let b = Bucket { key: RateKey { svc: 3, family: FAMILY_V6, ..RateKey::default() }, ..Bucket::default() };
        // SAFETY: Bucket is plain old data of 8 words.
        let words: [u64; 8] = unsafe { std::mem::transmute(b) };
        let mut table = vec![0u64; 8 * 4];
        table[8..16].copy_from_slice(&words);
        table[24..32].copy_from_slice(&words);
        assert_eq!(buckets_in_use(&table), 2);
    }
}
