//! Loading the XDP program with the capacities the rules ask for, taking over pinned tables,
//! and calibrating its clock. Attaching is in `attach`.

use std::path::Path;

use aya::{
    maps::{Array, MapData, PerCpuArray, ProgramArray, RingBuf},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use firewall_common::{
    clock::ClockSample,
    maps,
    nets::SLOTS_PER_BUCKET,
    programs,
    rate::{rate_slots, Bucket},
    reason::Counter,
};
use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};

use crate::{
    datapath::clock::KernelClock,
    datapath::egress,
    datapath::features::{Feature, Features, Refusal},
    datapath::pins::{Found, PinError, Pins},
    datapath::shm::MappedArray,
    datapath::tables::{
        kernel::{mapped, take, KernelTables, NetSizes},
        TableError,
    },
    rules::Rules,
    BPF_OBJECT,
};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("loading the XDP object: {0} (is this running as root on a kernel with BPF enabled?)")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("program `{0}` is missing from the XDP object")]
    MissingProgram(&'static str),
    #[error("program `{name}` in the XDP object is not of the expected type: {source}")]
    ProgramType {
        name: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("{0}; sipwall cannot run without it")]
    Refused(Refusal),
    #[error("keeping the {iface} attachment in a pinned link: {source}")]
    Link {
        iface: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("sampling the kernel clock: running {}: {source}", programs::CLOCK)]
    ClockRun {
        #[source]
        source: Box<ProgramError>,
    },
    #[error("sampling the kernel clock: reading {}: {source}", maps::CLOCK)]
    ClockRead {
        #[source]
        source: aya::maps::MapError,
    },
    #[error(transparent)]
    Calibration(#[from] crate::datapath::clock::CalibrationError),
    #[error("putting the SIP inspector's full inspection in {}: {source}", maps::SIP_STAGES)]
    Stages {
        #[source]
        source: aya::maps::MapError,
    },
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("reading the XDP object's maps: {0}")]
    Shapes(#[from] crate::datapath::pins::ShapeError),
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
    /// `SW_SIP_GOOD`, the known-good sources.
    pub good: crate::datapath::good::GoodMap,
    /// How the program's jiffies relate to CLOCK_MONOTONIC.
    pub clock: KernelClock,
    /// `SW_CLOCK`: the clock program's samples, and the test clock.
    pub clock_samples: Array<MapData, ClockSample>,
    pub origin: Origin,
    /// The optional programs the kernel accepted (`Feature::Tcx` is known only once attached).
    pub features: Features,
    /// The optional programs it refused, and why.
    pub refused: Vec<(Feature, Refusal)>,
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
    // failure only matters on old kernels, where loading then says what it lacks
    let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
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
    load_with(rules, object, Switches { trace_drops, test_clock: false }, None, Origin::Unpinned)
}

/// Like [`load_object`], with the test clock: the programs keep the kernel's time until slot
/// `CLOCK_TEST` of `SW_CLOCK` is set, and then read it from there.
pub fn load_with_test_clock(rules: &Rules, object: &[u8]) -> Result<Loaded, LoadError> {
    load_with(rules, object, Switches { trace_drops: false, test_clock: true }, None, Origin::Unpinned)
}

/// The object's load-time switches.
#[derive(Clone, Copy)]
struct Switches {
    trace_drops: bool,
    test_clock: bool,
}

/// Loads the object with pinned maps: the ones under `pins` if they fit this program and
/// these rules (taken over with their contents), else new ones pinned in the staging directory
/// (`Pins::promote_staging` puts them in place once the program is attached to them).
pub fn load_pinned(rules: &Rules, object: &[u8], trace_drops: bool, pins: &Pins) -> Result<Loaded, LoadError> {
    pins.prepare()?;
    let shapes = crate::datapath::pins::shapes(object, &map_entries(rules))?;
    match pins.check(&shapes) {
        Found::Reusable => {
            log::info!("taking over the tables pinned in {}", pins.maps_dir().display());
            let switches = Switches { trace_drops, test_clock: false };
            return load_with(rules, object, switches, Some(&pins.maps_dir()), Origin::Adopted);
        }
        Found::Nothing => log::info!("no tables pinned in {}: building new ones", pins.maps_dir().display()),
        Found::Incompatible(why) => log::warn!(
            "the tables pinned in {} cannot be reused ({why}): building new ones, which replace them once ready",
            pins.maps_dir().display()
        ),
    }
    pins.clear_staging()?;
    load_with(rules, object, Switches { trace_drops, test_clock: false }, Some(&pins.staging_dir()), Origin::Staged)
}

fn load_with(
    rules: &Rules,
    object: &[u8],
    switches: Switches,
    pin_dir: Option<&Path>,
    origin: Origin,
) -> Result<Loaded, LoadError> {
    raise_memlock();
    let sizes = NetSizes::new(net_capacity(rules));
    let (trace, test_clock) = (u32::from(switches.trace_drops), u32::from(switches.test_clock));
    let mut loader = EbpfLoader::new();
    loader.override_global(programs::global::TRACE, &trace, true);
    loader.override_global(programs::global::TEST_CLOCK, &test_clock, true);
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
    for name in [programs::XDP, programs::BASELINE, programs::CLOCK] {
        program(&mut ebpf, name)?.load().map_err(|e| LoadError::Refused(Refusal::new(name, &e)))?;
    }
    let mut features = Features::default();
    let mut refused = Vec::new();
    let mut outcome = |feature, r: Result<(), Refusal>| match r {
        Ok(()) => features.set(feature, true),
        Err(why) => refused.push((feature, why)),
    };
    let egress = egress::program(&mut ebpf)?.load().map_err(|e| Refusal::new(programs::EGRESS, &e));
    outcome(Feature::EgressClassifier, egress);
    outcome(Feature::SipInspector, load_inspector(&mut ebpf)?);
    let tables = KernelTables::take(&mut ebpf, &sizes, origin == Origin::Adopted)?;
    let stats =
        KernelStats { counters: take(&mut ebpf, maps::COUNTERS)?, event_stats: take(&mut ebpf, maps::EVENT_STATS)? };
    let rate = mapped(&mut ebpf, maps::RATE, size_of::<Bucket>(), rate_slots(rules.rate_limit.capacity))?;
    let events = take(&mut ebpf, maps::EVENTS)?;
    let good =
        crate::datapath::good::GoodMap::new(take(&mut ebpf, maps::SIP_GOOD)?, take(&mut ebpf, maps::SIP_GOOD_FILTER)?);
    let clock_samples: Array<MapData, ClockSample> = take(&mut ebpf, maps::CLOCK)?;
    let clock = calibrate(&mut ebpf, &clock_samples)?;
    Ok(Loaded { ebpf, tables, stats, rate, events, good, clock, clock_samples, origin, features, refused })
}

/// Loads the SIP inspector's two stages, the full inspection first, and chains them. A kernel
/// that refuses either costs the inspection, not the firewall: the `sip` service's packets then
/// pass on after the core checks, and the first stage stays unloaded, so it never goes into
/// `SW_TAIL`.
fn load_inspector(ebpf: &mut Ebpf) -> Result<Result<(), Refusal>, LoadError> {
    for name in [programs::SIP_FULL, programs::SIP] {
        if let Err(e) = program(ebpf, name)?.load() {
            return Ok(Err(Refusal::new(name, &e)));
        }
    }
    let full = program(ebpf, programs::SIP_FULL)?
        .fd()
        .map_err(|source| LoadError::ProgramType { name: programs::SIP_FULL, source: Box::new(source) })?;
    let full = full.try_clone().map_err(|e| LoadError::Stages { source: aya::maps::MapError::IoError(e) })?;
    let map = ebpf.map_mut(maps::SIP_STAGES).ok_or(TableError::Missing(maps::SIP_STAGES))?;
    let mut stages = ProgramArray::try_from(map).map_err(|source| LoadError::Stages { source })?;
    stages.set(maps::SIP_STAGE_FULL, &full, 0).map_err(|source| LoadError::Stages { source })?;
    Ok(Ok(()))
}

/// One sample of the kernel's jiffies and CLOCK_MONOTONIC, taken by the clock program.
pub fn sample(ebpf: &mut Ebpf, map: &Array<MapData, ClockSample>) -> Result<ClockSample, LoadError> {
    let prog = program(ebpf, programs::CLOCK)?;
    let frame = [0u8; 64];
    prog.test_run(TestRunOptions { data_in: Some(&frame), ..Default::default() })
        .map_err(|e| LoadError::ClockRun { source: Box::new(e) })?;
    map.get(&0, 0).map_err(|source| LoadError::ClockRead { source })
}

/// Finds the kernel's tick rate from two clock samples taken 100 ms apart. A busy host (or a
/// starved virtual machine) can run the tick late, so samples that fit no tick rate are taken
/// again over a window twice as long, up to 1.6 s.
pub fn calibrate(ebpf: &mut Ebpf, map: &Array<MapData, ClockSample>) -> Result<KernelClock, LoadError> {
    let mut window = std::time::Duration::from_millis(100);
    loop {
        let a = sample(ebpf, map)?;
        std::thread::sleep(window);
        let b = sample(ebpf, map)?;
        match KernelClock::from_samples(a, b) {
            Ok(c) => return Ok(c),
            Err(e) if window >= CALIBRATION_WINDOW_MAX => return Err(e.into()),
            Err(e) => log::debug!("{e}; sampling again over {} ms", 2 * window.as_millis()),
        }
        window *= 2;
    }
}

/// The longest window `calibrate` samples the clocks over.
const CALIBRATION_WINDOW_MAX: std::time::Duration = std::time::Duration::from_millis(1600);

/// The XDP program `name` of the object.
pub fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, LoadError> {
    ebpf.program_mut(name)
        .ok_or(LoadError::MissingProgram(name))?
        .try_into()
        .map_err(|source| LoadError::ProgramType { name, source: Box::new(source) })
}
