//! The phases of `sipwall run`, in order: check what was asked, load (taking over pinned tables),
//! open the store, restore or adopt the bans, attach, assemble the daemon and start its tasks.
//! Each phase that fails leaves what an earlier daemon attached in place.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use aya::Ebpf;
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};

use super::{
    alerts::Alerts, detection, events, iface, lock, reload, save_service_ids, state::Daemon, tasks, trim_heap,
    RunError, RunOptions, Shared, LINK_MODES, SERVICE_IDS,
};
use crate::{
    control::server::{ControlSocket, Handler},
    datapath::attach::{self, Attached, LinkHold},
    datapath::egress,
    datapath::enforcer::Enforcer,
    datapath::features::{Feature, Features, Refusal},
    datapath::loader::{self, KernelStats, Loaded, Origin},
    datapath::pins::Pins,
    datapath::shm::MappedArray,
    datapath::tables::kernel::KernelTables,
    metrics::{http, Metrics},
    rules::Rules,
    store::{Opened, Store},
};

/// The drop trace's reader, with `--trace-drops`.
pub type DropLog = aya_log::EbpfLogger<&'static dyn log::Log>;

/// The rules and the interfaces to protect, once the kernel is known to be new enough and each
/// interface to carry Ethernet frames.
pub fn check(opts: &RunOptions) -> Result<(Rules, Vec<String>), RunError> {
    let (mut rules, warnings) = Rules::load_for_host(opts.config.as_deref()).map_err(RunError::Rules)?;
    for w in warnings {
        log::warn!("{w}");
    }
    super::feeds::saved_lists(&mut rules, &opts.state_dir);
    crate::datapath::features::check_kernel()?;
    let mut ifaces = if opts.ifaces.is_empty() {
        vec![iface::default_route_iface().ok_or(RunError::NoInterface)?]
    } else {
        opts.ifaces.clone()
    };
    let mut seen = HashSet::new();
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
    Ok((rules, ifaces))
}

/// Loads the program, filling its tables before it sees a packet; pinned tables of an earlier
/// daemon are taken over with what they hold, never emptied and refilled.
pub fn load(opts: &RunOptions, rules: &Rules, pins: &Pins) -> Result<(Loaded, Option<DropLog>), RunError> {
    let mut loaded = loader::load_pinned(rules, crate::BPF_OBJECT, opts.trace_drops, pins)?;
    for line in admit(std::mem::take(&mut loaded.refused), rules)? {
        log::error!("{line}");
    }
    let drop_log = if opts.trace_drops {
        log::warn!("--trace-drops: logging every dropped packet");
        Some(aya_log::EbpfLogger::init(&mut loaded.ebpf).map_err(RunError::Trace)?)
    } else {
        None
    };
    log::info!("kernel tick rate {} Hz", loaded.clock.hz);
    Ok((loaded, drop_log))
}

/// What to say of the optional programs the kernel refused: one line each, naming the program,
/// the kernel, the verifier's reason and what is lost; an error if the rules require one.
pub fn admit(refused: Vec<(Feature, Refusal)>, rules: &Rules) -> Result<Vec<String>, RunError> {
    let mut lines = Vec::new();
    for (feature, why) in refused {
        if feature == Feature::SipInspector && rules.sip.inspect_required {
            return Err(RunError::InspectorRefused(why));
        }
        lines.push(format!("{why}; {}", feature.loss()));
    }
    Ok(lines)
}

/// Opens the store. A broken one never stops enforcement: it is moved aside and the rules and
/// the pinned tables are enforced all the same.
pub fn open_store(opts: &RunOptions) -> Result<(Store, Opened), RunError> {
    let (store, opened) = Store::open_or_recover(&opts.state_dir)?;
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
    Ok((store, opened))
}

/// The enforcer over the loaded tables: the pinned tables of an earlier daemon are adopted as
/// they are, new ones get the stored bans.
pub fn restore_or_adopt(
    store: &mut Store,
    tables: KernelTables,
    rules: Rules,
    clock: crate::datapath::clock::KernelClock,
    origin: Origin,
    opts: &RunOptions,
) -> Result<Enforcer<KernelTables>, RunError> {
    let started = Instant::now();
    let ms = || started.elapsed().as_secs_f64() * 1e3;
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
        let (n, found) = (e.ban_count(), recovered.len());
        log::info!("took over the pinned tables with {n} bans ({found} found only in the kernel) in {:.0} ms", ms());
        ((e, skipped), unreadable)
    } else {
        let mut e = Enforcer::new(tables, rules, clock)?;
        let (r, unreadable) = store.with_bans(|saved| e.restore(saved))?;
        let (restored, skipped) = r?;
        log::info!("restored {restored} bans from {} in {:.0} ms", opts.state_dir.display(), ms());
        ((e, skipped), unreadable)
    };
    if unreadable > 0 {
        log::warn!("skipped {unreadable} unreadable bans in the store");
    }
    for b in &skipped {
        log::warn!("dropping the stored ban of {}: it is in the allow list now", b.target);
        let _ = store.delete_ban(&b.target);
    }
    save_service_ids(store, &enforcer);
    // loading went through large short-lived buffers: give their memory back to the system
    trim_heap();
    Ok(enforcer)
}

/// The interfaces the program is attached to, and the links that keep it there.
pub struct Attachments {
    pub attached: Vec<(String, Attached)>,
    pub links: Vec<LinkHold>,
}

/// Attaches the program to each interface through a pinned link (switching an existing one in
/// one step), the egress classifier beside it, and removes the links of interfaces no longer
/// protected.
pub fn attach(
    ebpf: &mut Ebpf,
    ifaces: &[String],
    opts: &RunOptions,
    pins: &Pins,
    store: &mut Store,
    metrics: &Metrics,
    features: &mut Features,
) -> Result<Attachments, RunError> {
    let mut out = Attachments { attached: Vec::new(), links: Vec::new() };
    let (mut hooks, mut egress_missing) = (Vec::new(), false);
    let modes: HashMap<String, String> = store.settings(LINK_MODES)?.into_iter().collect();
    for name in ifaces {
        let recorded = modes.get(name).and_then(|m| match m.as_str() {
            "native" => Some(Attached::Native),
            "skb" => Some(Attached::Skb),
            _ => None,
        });
        let (mode, hold) = attach::attach_pinned(ebpf, name, opts.xdp_mode, pins, recorded)?;
        match hold {
            LinkHold::Updated => log::info!("{name}: the pinned {} link now runs this program", mode.name()),
            LinkHold::Pinned(_) => {
                log::info!("attached to {name} in {} mode (link pinned in {})", mode.name(), pins.links_dir().display())
            }
        }
        metrics.xdp_attached.with_label_values(&[name, mode.name()]).set(1);
        out.attached.push((name.clone(), mode));
        out.links.push(hold);
        // detection without logs: a failure here costs the sip-wire jail its input, not enforcement
        if features.has(Feature::EgressClassifier) {
            match egress::attach(ebpf, name) {
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
            if let Err(e) = attach::detach_pinned(pins, &stale) {
                log::warn!("{stale}: {e}");
            }
        }
    }
    let modes: Vec<(String, String)> = out.attached.iter().map(|(n, m)| (n.clone(), m.name().to_owned())).collect();
    if let Err(e) = store.set_settings(LINK_MODES, &modes) {
        log::warn!("saving the attach modes: {e}");
    }
    Ok(out)
}

/// Everything the daemon is assembled from, once attached.
pub struct Parts {
    pub enforcer: Enforcer<KernelTables>,
    pub store: Store,
    pub opened: Opened,
    pub metrics: Metrics,
    pub attached: Vec<(String, Attached)>,
    pub good: crate::datapath::good::GoodMap,
    pub features: Features,
}

/// The daemon's shared state, its log sources and alert senders started.
pub fn assemble(parts: Parts, opts: &RunOptions, det_tx: mpsc::Sender<detection::Detected>) -> Shared {
    let Parts { enforcer, store, opened, metrics, attached, mut good, features } = parts;
    let alerts = Alerts::start(&enforcer.rules().alerts, &metrics);
    let sources = detection::Sources::new(det_tx);
    let daemon: Shared =
        Arc::new(Mutex::new(Daemon::new(enforcer, store, metrics, opts.config.clone(), attached, sources, alerts)));
    {
        let mut g = lock(&daemon);
        let g = &mut *g;
        g.kernel = crate::datapath::features::release();
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
        let rules = g.enforcer.rules();
        g.sources.sync(&rules.detection, &rules.asterisk.ami_credentials.clone(), opts.from_start, &g.metrics);
        let jails: Vec<String> = g.engine.jails.iter().map(|j| j.spec.name.clone()).collect();
        log::info!("jails: {}", if jails.is_empty() { "none".to_owned() } else { jails.join(", ") });
    }
    daemon
}

/// What the daemon's tasks read from the kernel and the world.
pub struct Inputs {
    pub listener: TcpListener,
    pub control: ControlSocket,
    pub stats: KernelStats,
    pub rate: MappedArray,
    pub events: aya::maps::RingBuf<aya::maps::MapData>,
    pub det_rx: mpsc::Receiver<detection::Detected>,
    pub drop_log: Option<DropLog>,
}

/// Starts the daemon's tasks: metrics, control socket, sweeper, bucket census, kernel events,
/// rules reloads, log detection and housekeeping.
pub fn spawn(
    daemon: &Shared,
    inputs: Inputs,
    opts: &RunOptions,
    reload: (mpsc::Sender<reload::Trigger>, mpsc::Receiver<reload::Trigger>),
    tasks: &mut Vec<JoinHandle<()>>,
) {
    let Inputs { listener, control, stats, rate, events, det_rx, drop_log } = inputs;
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
    let (reload_tx, reload_rx) = reload;
    tasks.extend([
        tokio::spawn(http::serve(listener, render)),
        tokio::spawn(control.serve(handler)),
        tokio::spawn(tasks::sweeper(daemon.clone())),
        tokio::spawn(tasks::rate_census(rate, daemon.clone())),
        tokio::spawn(events::read(events, daemon.clone())),
        tokio::spawn(reload::run(daemon.clone(), opts.config.clone(), reload_tx, reload_rx)),
        tokio::spawn(detection::run(det_rx, daemon.clone())),
        tokio::spawn(tasks::housekeeping(daemon.clone())),
    ]);
    if let Some(logger) = drop_log {
        tasks.push(tokio::spawn(events::trace(logger)));
    }
    let feeds = {
        let g = lock(daemon);
        g.feeds.send_replace(g.enforcer.rules().block_feeds.clone());
        g.feeds.subscribe()
    };
    tasks.push(tokio::spawn(super::feeds::run(daemon.clone(), opts.state_dir.clone(), feeds)));
    let crowdsec = {
        let g = lock(daemon);
        g.crowdsec_config.send_replace(g.enforcer.rules().crowdsec.clone());
        g.crowdsec_config.subscribe()
    };
    tasks.push(tokio::spawn(super::crowdsec::run(daemon.clone(), crowdsec)));
}
