//! Loading the XDP program with the capacities the rules ask for, and attaching it.

use aya::{
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{ProgramError, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use firewall_common::{
    maps,
    rate::{Bucket, RateKey},
    reason::Counter,
};

use crate::{
    rules::Rules,
    tables::{
        kernel::{take, KernelTables},
        TableError,
    },
    BPF_OBJECT,
};

/// The program's entry point in the object.
pub const PROGRAM: &str = "sipwall";
/// The do-nothing program measured next to it by `cargo xtask bench`.
pub const BASELINE_PROGRAM: &str = "sipwall_baseline";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("loading the XDP object: {0} (is this running as root on a kernel with BPF enabled?)")]
    Object(#[source] aya::EbpfError),
    #[error("program `{0}` is missing from the XDP object")]
    MissingProgram(&'static str),
    #[error("the kernel verifier rejected the XDP program: {0}")]
    Verifier(#[source] ProgramError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("attaching to {iface} in {mode} mode: {source}{hint}")]
    Attach {
        iface: String,
        mode: &'static str,
        hint: &'static str,
        #[source]
        source: ProgramError,
    },
}

/// Read-only views the daemon scrapes, and the event stream.
pub struct KernelStats {
    pub counters: PerCpuArray<MapData, Counter>,
    pub event_stats: PerCpuArray<MapData, u64>,
    pub rate: HashMap<MapData, RateKey, Bucket>,
}

/// A loaded (not yet attached) program with its maps split by role.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub tables: KernelTables,
    pub stats: KernelStats,
    pub events: RingBuf<MapData>,
}

/// Lifts RLIMIT_MEMLOCK, which kernels before 5.11 charge BPF maps against.
fn raise_memlock() {
    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid struct; failure only matters on old kernels.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
}

/// Loads the object with the table sizes of `rules` and verifies the program.
pub fn load(rules: &Rules) -> Result<Loaded, LoadError> {
    raise_memlock();
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(maps::BANS_V4, rules.bans.capacity)
        .map_max_entries(maps::BANS_V6, rules.bans.capacity)
        .map_max_entries(maps::NET4, rules.block_capacity)
        .map_max_entries(maps::NET6, rules.block_capacity)
        .map_max_entries(maps::RATE, rules.rate_limit.capacity)
        .load(BPF_OBJECT)
        .map_err(LoadError::Object)?;
    for name in maps::ALL {
        if ebpf.map(name).is_none() {
            return Err(TableError::Missing(name).into());
        }
    }
    for name in [PROGRAM, BASELINE_PROGRAM] {
        let prog: &mut Xdp =
            ebpf.program_mut(name).ok_or(LoadError::MissingProgram(name))?.try_into().map_err(LoadError::Verifier)?;
        prog.load().map_err(LoadError::Verifier)?;
    }
    let tables = KernelTables::take(&mut ebpf, rules.block_capacity, rules.bans.capacity)?;
    let stats = KernelStats {
        counters: take(&mut ebpf, maps::COUNTERS)?,
        event_stats: take(&mut ebpf, maps::EVENT_STATS)?,
        rate: take(&mut ebpf, maps::RATE)?,
    };
    let events = take(&mut ebpf, maps::EVENTS)?;
    Ok(Loaded { ebpf, tables, stats, events })
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
    ebpf.program_mut(name).ok_or(LoadError::MissingProgram(name))?.try_into().map_err(LoadError::Verifier)
}

/// Attaches the program to `iface`. Returns the mode in use.
pub fn attach(ebpf: &mut Ebpf, iface: &str, mode: AttachMode) -> Result<Attached, LoadError> {
    let prog = program(ebpf, PROGRAM)?;
    let native = |prog: &mut Xdp| prog.attach(iface, XdpMode::Driver);
    let skb = |prog: &mut Xdp| prog.attach(iface, XdpMode::Skb);
    match mode {
        AttachMode::Native => native(prog).map(|_| Attached::Native).map_err(|source| LoadError::Attach {
            iface: iface.into(),
            mode: "native",
            hint: "; the driver may lack XDP support: try --xdp-mode skb",
            source,
        }),
        AttachMode::Skb => skb(prog).map(|_| Attached::Skb).map_err(|source| LoadError::Attach {
            iface: iface.into(),
            mode: "skb",
            hint: "",
            source,
        }),
        AttachMode::Auto => match native(prog) {
            Ok(_) => Ok(Attached::Native),
            Err(e) => {
                if let ProgramError::UnknownInterface { .. } = e {
                    return Err(LoadError::Attach {
                        iface: iface.into(),
                        mode: "native",
                        hint: "; check the name with `ip link`",
                        source: e,
                    });
                }
                log::warn!("{iface}: native XDP unavailable ({e}); using skb (generic) mode, which is slower");
                skb(prog).map(|_| Attached::Skb).map_err(|source| LoadError::Attach {
                    iface: iface.into(),
                    mode: "skb",
                    hint: "",
                    source,
                })
            }
        },
    }
}
