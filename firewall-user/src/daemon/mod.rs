//! `sipwall run`: load, apply the rules, attach, and serve until told to stop.

pub mod alerts;
pub mod challenges;
pub mod crowdsec;
pub mod detection;
pub mod events;
pub mod feeds;
pub mod iface;
pub mod inspect;
mod notify;
pub mod reload;
mod startup;
pub mod state;
mod tasks;
pub mod twins;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::signal::unix::{signal, SignalKind};

use self::{
    startup::{Attachments, Inputs, Parts},
    state::Daemon,
};
use crate::{
    control::server::ControlSocket,
    datapath::attach::{self, AttachMode},
    datapath::enforcer::Enforcer,
    datapath::features::Refusal,
    datapath::loader::{self, Loaded, Origin},
    datapath::pins::Pins,
    metrics::{http, Metrics},
    rules::Rejected,
    store::Store,
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
pub fn save_service_ids(store: &mut Store, e: &Enforcer<crate::datapath::tables::kernel::KernelTables>) {
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
    Apply(#[from] crate::datapath::enforcer::EnforceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Pin(#[from] crate::datapath::pins::PinError),
    #[error(transparent)]
    Control(#[from] crate::control::server::BindError),
    #[error("starting the drop trace: {0}")]
    Trace(#[source] aya_log::Error),
    #[error(transparent)]
    Kernel(#[from] crate::datapath::features::TooOld),
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

pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    let (rules, ifaces) = startup::check(&opts)?;
    // endpoints first: a port in use or a bad socket path fails before anything is attached
    let listener =
        http::bind(opts.metrics_addr).await.map_err(|source| RunError::Metrics { addr: opts.metrics_addr, source })?;
    let control = ControlSocket::bind(&opts.socket)?;
    let pins = Pins::new(&opts.pin_dir);
    let (loaded, drop_log) = startup::load(&opts, &rules, &pins)?;
    let Loaded { mut ebpf, tables, stats, rate, events, good, clock, origin, mut features, .. } = loaded;
    let (mut store, opened) = startup::open_store(&opts)?;
    let enforcer = startup::restore_or_adopt(&mut store, tables, rules, clock, origin, &opts)?;
    let metrics = Metrics::default();
    let Attachments { attached, links } =
        startup::attach(&mut ebpf, &ifaces, &opts, &pins, &mut store, &metrics, &mut features)?;
    if origin == Origin::Staged {
        pins.promote_staging()?;
    }

    let mut tasks = Vec::new();
    let (det_tx, det_rx) = tokio::sync::mpsc::channel(detection::QUEUE);
    let parts = Parts { enforcer, store, opened, metrics, attached, good, features };
    let daemon = startup::assemble(parts, &opts, det_tx);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let inputs = Inputs { listener, control, stats, rate, events, det_rx, drop_log };
    startup::spawn(&daemon, inputs, &opts, (reload_tx.clone(), reload_rx), &mut tasks);
    // the handlers before the ready signal: a reload or stop the service manager sends once it is
    // told must not meet the default actions
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    let mut int = signal(SignalKind::interrupt()).expect("signal handler");
    let mut hup = signal(SignalKind::hangup()).expect("signal handler");
    let on: Vec<String> = lock(&daemon).attached.iter().map(|(name, _)| name.clone()).collect();
    notify::ready(&format!("enforcing on {}", on.join(", ")));

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
    stop(&daemon, tasks, &opts, &pins, (links, ebpf)).await
}

/// Stops the tasks and the log sources. The program stays attached, enforcing the pinned
/// tables, unless `--detach-on-exit` asks otherwise.
async fn stop(
    daemon: &Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    opts: &RunOptions,
    pins: &Pins,
    (links, ebpf): (Vec<attach::LinkHold>, aya::Ebpf),
) -> Result<(), RunError> {
    notify::stopping();
    lock(daemon).sources.stop_all();
    for t in tasks {
        t.abort();
        let _ = t.await;
    }
    if opts.detach_on_exit {
        log::info!("stopping: detaching the XDP program and removing its pins");
        pins.remove_all()?;
        drop(links);
        drop(ebpf);
        for (name, _) in &lock(daemon).attached {
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

#[cfg(test)]
mod tests {
    use super::{startup::admit, RunError};
    use crate::{
        datapath::features::{Feature, Refusal},
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
}
