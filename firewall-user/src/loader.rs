//! Loading the XDP program with the capacities the rules ask for, and attaching it.

use std::path::Path;

use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{
        links::{FdLink, PinnedLink},
        tc::{self, TcAttachType},
        xdp::XdpLink,
        ProgramError, SchedClassifier, TestRun, TestRunOptions, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};
use firewall_common::{
    clock::ClockSample,
    maps,
    nets::SLOTS_PER_BUCKET,
    rate::{rate_slots, Bucket},
    reason::Counter,
};

use crate::{
    clock::KernelClock,
    pins::{Found, PinError, Pins},
    rules::Rules,
    shm::MappedArray,
    tables::{
        kernel::{mapped, take, KernelTables, NetSizes},
        TableError,
    },
    BPF_OBJECT,
};

/// The program's entry point in the object.
pub const PROGRAM: &str = "sipwall";
/// The do-nothing program measured next to it by `cargo xtask bench`.
pub const BASELINE_PROGRAM: &str = "sipwall_baseline";
/// Load-time switch of the drop trace (a global of the object).
pub const TRACE_GLOBAL: &str = "SIPWALL_TRACE";
/// The program that samples the kernel's clocks (run, never attached).
pub const CLOCK_PROGRAM: &str = "sipwall_clock";
/// The egress classifier that reports the SIP failures the host answers.
pub const EGRESS_PROGRAM: &str = "sipwall_egress";
/// The SIP inspector the XDP program tail-calls (slot `maps::TAIL_SIP` of `SW_TAIL`).
pub const SIP_PROGRAM: &str = "sipwall_sip";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("loading the XDP object: {0} (is this running as root on a kernel with BPF enabled?)")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("program `{0}` is missing from the XDP object")]
    MissingProgram(&'static str),
    #[error("the kernel verifier rejected the XDP program: {0}")]
    Verifier(#[source] Box<ProgramError>),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("sampling the kernel clock: {0}")]
    Clock(String),
    #[error("installing the SIP inspector in the XDP program's tail-call table: {0}")]
    Tail(String),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("reading the XDP object's maps: {0}")]
    Shapes(String),
    #[error("attaching to {iface} in {mode} mode: {source}{hint}")]
    Attach {
        iface: String,
        mode: &'static str,
        hint: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
}

/// Read-only views the daemon scrapes.
pub struct KernelStats {
    pub counters: PerCpuArray<MapData, Counter>,
    pub event_stats: PerCpuArray<MapData, u64>,
}

/// A loaded (not yet attached) program with its maps split by role.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub tables: KernelTables,
    pub stats: KernelStats,
    /// The bucket array (mapped read-only in spirit: only the program writes it), for counting
    /// the sources being tracked.
    pub rate: MappedArray,
    pub events: RingBuf<MapData>,
    /// How the program's jiffies relate to CLOCK_MONOTONIC.
    pub clock: KernelClock,
    pub origin: Origin,
}

/// Where the maps of a loaded program come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// New maps, not pinned (tests, benchmarks).
    Unpinned,
    /// New maps pinned in the staging directory, to be put in place once attached.
    Staged,
    /// The pinned maps of an earlier daemon, taken over with their contents.
    Adopted,
}

/// Lifts RLIMIT_MEMLOCK, which kernels before 5.11 charge BPF maps against.
fn raise_memlock() {
    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid struct; failure only matters on old kernels.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
}

/// Entries each network hash holds: room for the blocked prefixes and for the bans.
pub fn net_capacity(rules: &Rules) -> u32 {
    rules.block_capacity.saturating_add(rules.bans.capacity)
}

/// Loads the embedded object with the table sizes of `rules` and verifies the program.
pub fn load(rules: &Rules) -> Result<Loaded, LoadError> {
    load_object(rules, BPF_OBJECT, false)
}

/// Entries of the maps whose size the rules decide.
pub fn map_entries(rules: &Rules) -> Vec<(&'static str, u32)> {
    let sizes = NetSizes::new(net_capacity(rules));
    vec![
        (maps::NET4, sizes.net4_buckets * SLOTS_PER_BUCKET),
        (maps::NET4_META, sizes.net4_buckets),
        (maps::NET4_OVER, sizes.capacity),
        (maps::NET6, sizes.net6_buckets * SLOTS_PER_BUCKET),
        (maps::NET6_META, sizes.net6_buckets),
        (maps::NET6_OVER, sizes.capacity),
        (maps::RATE, rate_slots(rules.rate_limit.capacity)),
    ]
}

/// Loads a given build of the XDP object with new, unpinned maps (tests; the benchmark
/// compares builds this way); `trace_drops` turns on one log record per dropped packet (see
/// `sipwall run --trace-drops`).
pub fn load_object(rules: &Rules, object: &[u8], trace_drops: bool) -> Result<Loaded, LoadError> {
    load_with(rules, object, trace_drops, None, Origin::Unpinned)
}

/// Loads the object with pinned maps: the ones under `pins` if they fit this program and
/// these rules (taken over with their contents), else new ones pinned in the staging directory
/// (`Pins::promote_staging` puts them in place once the program is attached to them).
pub fn load_pinned(rules: &Rules, object: &[u8], trace_drops: bool, pins: &Pins) -> Result<Loaded, LoadError> {
    pins.prepare()?;
    let shapes = crate::pins::shapes(object, &map_entries(rules)).map_err(LoadError::Shapes)?;
    match pins.check(&shapes) {
        Found::Reusable => {
            log::info!("taking over the tables pinned in {}", pins.maps_dir().display());
            return load_with(rules, object, trace_drops, Some(&pins.maps_dir()), Origin::Adopted);
        }
        Found::Nothing => log::info!("no tables pinned in {}: building new ones", pins.maps_dir().display()),
        Found::Incompatible(why) => log::warn!(
            "the tables pinned in {} cannot be reused ({why}): building new ones, which replace them once ready",
            pins.maps_dir().display()
        ),
    }
    pins.clear_staging()?;
    load_with(rules, object, trace_drops, Some(&pins.staging_dir()), Origin::Staged)
}

fn load_with(
    rules: &Rules,
    object: &[u8],
    trace_drops: bool,
    pin_dir: Option<&Path>,
    origin: Origin,
) -> Result<Loaded, LoadError> {
    raise_memlock();
    let sizes = NetSizes::new(net_capacity(rules));
    let trace = u32::from(trace_drops);
    let mut loader = EbpfLoader::new();
    loader.override_global(TRACE_GLOBAL, &trace, true);
    for (name, n) in map_entries(rules) {
        loader.map_max_entries(name, n);
    }
    let paths: Vec<(&str, std::path::PathBuf)> =
        pin_dir.map(|d| maps::ALL.iter().map(|n| (*n, d.join(n))).collect()).unwrap_or_default();
    for (name, path) in &paths {
        loader.map_pin_path(name, path.as_path());
    }
    let mut ebpf = loader.load(object).map_err(|e| LoadError::Object(Box::new(e)))?;
    for name in maps::ALL {
        if ebpf.map(name).is_none() {
            return Err(TableError::Missing(name).into());
        }
    }
    for name in [PROGRAM, BASELINE_PROGRAM, CLOCK_PROGRAM] {
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or(LoadError::MissingProgram(name))?
            .try_into()
            .map_err(|e| LoadError::Verifier(Box::new(e)))?;
        prog.load().map_err(|e| LoadError::Verifier(Box::new(e)))?;
    }
    egress_program(&mut ebpf)?.load().map_err(|e| LoadError::Verifier(Box::new(e)))?;
    load_inspector(&mut ebpf)?;
    let tables = KernelTables::take(&mut ebpf, &sizes, origin == Origin::Adopted)?;
    let stats =
        KernelStats { counters: take(&mut ebpf, maps::COUNTERS)?, event_stats: take(&mut ebpf, maps::EVENT_STATS)? };
    let rate = mapped(&mut ebpf, maps::RATE, size_of::<Bucket>(), rate_slots(rules.rate_limit.capacity))?;
    let events = take(&mut ebpf, maps::EVENTS)?;
    let clock_map: Array<MapData, ClockSample> = take(&mut ebpf, maps::CLOCK)?;
    let clock = calibrate(&mut ebpf, &clock_map)?;
    Ok(Loaded { ebpf, tables, stats, rate, events, clock, origin })
}

/// Loads the SIP inspector. A kernel that refuses it (too old for `bpf_loop`, or a verifier
/// with less effective pruning) costs the inspection, not the firewall: the error is logged and
/// the `sip` service's packets pass on after the core checks.
fn load_inspector(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let prog = program(ebpf, SIP_PROGRAM)?;
    if let Err(e) = prog.load() {
        log::error!(
            "the kernel refused the SIP inspector ({e}); [sip] inspection is off, everything else is enforced. \
             Linux 5.17 or later is needed for it"
        );
    }
    Ok(())
}

/// One sample of the kernel's jiffies and CLOCK_MONOTONIC, taken by the clock program.
fn sample(ebpf: &mut Ebpf, map: &Array<MapData, ClockSample>) -> Result<ClockSample, LoadError> {
    let prog = program(ebpf, CLOCK_PROGRAM)?;
    let frame = [0u8; 64];
    prog.test_run(TestRunOptions { data_in: Some(&frame), ..Default::default() })
        .map_err(|e| LoadError::Clock(format!("running {CLOCK_PROGRAM}: {e}")))?;
    map.get(&0, 0).map_err(|e| LoadError::Clock(format!("reading {}: {e}", maps::CLOCK)))
}

/// Finds the kernel's tick rate from two clock samples 100 ms apart (three tries).
pub fn calibrate(ebpf: &mut Ebpf, map: &Array<MapData, ClockSample>) -> Result<KernelClock, LoadError> {
    let mut last = String::new();
    for _ in 0..3 {
        let a = sample(ebpf, map)?;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let b = sample(ebpf, map)?;
        match KernelClock::from_samples(a, b) {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
    }
    Err(LoadError::Clock(last))
}

pub fn egress_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, LoadError> {
    ebpf.program_mut(EGRESS_PROGRAM)
        .ok_or(LoadError::MissingProgram(EGRESS_PROGRAM))?
        .try_into()
        .map_err(|e| LoadError::Verifier(Box::new(e)))
}

/// Attaches the egress classifier to `iface` (TCX on Linux 6.6 and later, else a `clsact`
/// qdisc, added if missing). It lasts as long as the daemon: SIP answers are read only while
/// someone is there to count them.
pub fn attach_egress(ebpf: &mut Ebpf, iface: &str) -> Result<(), LoadError> {
    let prog = egress_program(ebpf)?;
    let first = prog.attach(iface, TcAttachType::Egress);
    let attached = match first {
        Ok(_) => Ok(()),
        // before TCX, a classifier needs the interface's clsact qdisc
        Err(_) => {
            if let Err(e) = tc::qdisc_add_clsact(iface) {
                log::debug!("{iface}: adding the clsact qdisc: {e}");
            }
            prog.attach(iface, TcAttachType::Egress).map(|_| ())
        }
    };
    attached.map_err(|source| LoadError::Attach {
        iface: iface.to_owned(),
        mode: "tc egress",
        hint: "",
        source: Box::new(source),
    })
}

/// How to attach: `auto` tries the driver first and falls back to generic (skb) mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    Auto,
    Native,
    Skb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    Native,
    Skb,
}

impl Attached {
    pub fn name(self) -> &'static str {
        match self {
            Attached::Native => "native",
            Attached::Skb => "skb",
        }
    }
}

pub fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, LoadError> {
    ebpf.program_mut(name)
        .ok_or(LoadError::MissingProgram(name))?
        .try_into()
        .map_err(|e| LoadError::Verifier(Box::new(e)))
}

/// Attaches the program to `iface` (the link is owned by the program). Returns the mode in use.
pub fn attach(ebpf: &mut Ebpf, iface: &str, mode: AttachMode) -> Result<Attached, LoadError> {
    attach_id(ebpf, iface, mode).map(|(m, _)| m)
}

fn attach_id(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: AttachMode,
) -> Result<(Attached, aya::programs::xdp::XdpLinkId), LoadError> {
    let prog = program(ebpf, PROGRAM)?;
    let native = |prog: &mut Xdp| prog.attach(iface, XdpMode::Driver);
    let skb = |prog: &mut Xdp| prog.attach(iface, XdpMode::Skb);
    match mode {
        AttachMode::Native => native(prog).map(|id| (Attached::Native, id)).map_err(|source| LoadError::Attach {
            iface: iface.into(),
            mode: "native",
            hint: "; the driver may lack XDP support: try --xdp-mode skb",
            source: Box::new(source),
        }),
        AttachMode::Skb => skb(prog).map(|id| (Attached::Skb, id)).map_err(|source| LoadError::Attach {
            iface: iface.into(),
            mode: "skb",
            hint: "",
            source: Box::new(source),
        }),
        AttachMode::Auto => match native(prog) {
            Ok(id) => Ok((Attached::Native, id)),
            Err(e) => {
                if let ProgramError::UnknownInterface { .. } = e {
                    return Err(LoadError::Attach {
                        iface: iface.into(),
                        mode: "native",
                        hint: "; check the name with `ip link`",
                        source: Box::new(e),
                    });
                }
                log::warn!("{iface}: native XDP unavailable ({e}); using skb (generic) mode, which is slower");
                skb(prog).map(|id| (Attached::Skb, id)).map_err(|source| LoadError::Attach {
                    iface: iface.into(),
                    mode: "skb",
                    hint: "",
                    source: Box::new(source),
                })
            }
        },
    }
}

/// Keeps an attachment alive: dropping a link that is not pinned detaches the program.
pub enum LinkHold {
    /// Pinned: stays attached after the daemon exits.
    Pinned(PinnedLink),
    /// Could not be pinned (an attachment through netlink): ends with the daemon.
    Unpinned(XdpLink),
    /// An existing pinned link now running this program (owned by the program).
    Updated,
}

/// Attaches to `iface` through a pinned link: an existing one is switched to this program in
/// one step (`bpf_link_update`: no packet sees no program), else a new one is made and pinned.
/// `recorded` is the mode of the existing link, as the daemon last noted it.
pub fn attach_pinned(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: AttachMode,
    pins: &Pins,
    recorded: Option<Attached>,
) -> Result<(Attached, LinkHold), LoadError> {
    let path = pins.link(iface);
    if path.exists() {
        let prog = program(ebpf, PROGRAM)?;
        let updated = PinnedLink::from_pin(&path)
            .map_err(|e| e.to_string())
            .and_then(|p| XdpLink::try_from(FdLink::from(p)).map_err(|e| e.to_string()))
            .and_then(|link| prog.attach_to_link(link).map_err(|e| e.to_string()));
        match updated {
            Ok(_) => {
                let m = recorded.unwrap_or(Attached::Native);
                if mode != AttachMode::Auto && mode.wanted() != Some(m) {
                    log::warn!(
                        "{iface}: keeping the {} attachment already in place; `sipwall detach` first to change the mode",
                        m.name()
                    );
                }
                return Ok((m, LinkHold::Updated));
            }
            Err(e) => {
                log::warn!("{iface}: the pinned link cannot be reused ({e}); attaching anew");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let (m, id) = attach_id(ebpf, iface, mode)?;
    let prog = program(ebpf, PROGRAM)?;
    let link = prog.take_link(id).map_err(|e| LoadError::Verifier(Box::new(e)))?;
    match FdLink::try_from(link) {
        Ok(fd) => match fd.pin(&path) {
            Ok(p) => Ok((m, LinkHold::Pinned(p))),
            Err(e) => Err(LoadError::Pin(PinError::Io { path, source: std::io::Error::other(e.to_string()) })),
        },
        Err(e) => {
            log::warn!("{iface}: attached without a BPF link ({e}); the program will detach when sipwall stops");
            Err(LoadError::Attach {
                iface: iface.into(),
                mode: m.name(),
                hint: "; this kernel lacks BPF links for XDP (Linux 5.9+)",
                source: Box::new(ProgramError::AlreadyAttached),
            })
        }
    }
}

impl AttachMode {
    fn wanted(self) -> Option<Attached> {
        match self {
            AttachMode::Auto => None,
            AttachMode::Native => Some(Attached::Native),
            AttachMode::Skb => Some(Attached::Skb),
        }
    }
}

/// Removes the pinned link of an interface no longer protected (the program detaches from it).
pub fn detach_pinned(pins: &Pins, iface: &str) -> Result<(), LoadError> {
    let path = pins.link(iface);
    match PinnedLink::from_pin(&path) {
        Ok(p) => {
            let _ = p.unpin();
            Ok(())
        }
        Err(_) => std::fs::remove_file(&path).map_err(|source| LoadError::Pin(PinError::Io { path, source })),
    }
}
