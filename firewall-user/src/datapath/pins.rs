//! The maps and XDP links pinned in a BPF filesystem (`--pin-dir`, default
//! `/sys/fs/bpf/sipwall`), so the program keeps enforcing while the daemon is stopped or
//! restarting, and a new daemon (or a new version of the program) takes over the same tables.
//!
//! ```text
//! PIN_DIR/maps/SW_*      the maps in use
//! PIN_DIR/maps_new/SW_*  maps being built when the pinned ones cannot be reused
//! PIN_DIR/links/IFACE    one XDP link per protected interface (`.` written `%2e`: the BPF
//!                        filesystem refuses dots in names)
//! ```

use std::{
    io,
    path::{Path, PathBuf},
};

use aya::maps::{Array, Map, MapData, MapInfo};
use firewall_common::{
    config::{Config, LAYOUT},
    maps,
};
use nix::{
    mount::{mount, MsFlags},
    sys::statfs::{statfs, BPF_FS_MAGIC},
};

pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/sipwall";

/// What the pinned maps must look like to be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapShape {
    pub name: &'static str,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

/// What was found under the pin directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// No maps pinned: a first start, or after a reboot.
    Nothing,
    /// Maps an earlier daemon left, fit to be taken over.
    Reusable,
    /// Maps that cannot be reused, and why.
    Incompatible(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{dir} is not on a BPF filesystem and none could be mounted at /sys/fs/bpf ({why}); mount one (mount -t bpf bpf /sys/fs/bpf) or pass --pin-dir")]
    NoBpfFs { dir: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PinError + '_ {
    move |source| PinError::Io { path: path.to_owned(), source }
}

fn is_bpffs(p: &Path) -> bool {
    statfs(p).is_ok_and(|st| st.filesystem_type() == BPF_FS_MAGIC)
}

pub struct Pins {
    root: PathBuf,
}

impl Pins {
    pub fn new(root: &Path) -> Pins {
        Pins { root: root.to_owned() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn maps_dir(&self) -> PathBuf {
        self.root.join("maps")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("maps_new")
    }

    pub fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }

    pub fn link(&self, iface: &str) -> PathBuf {
        self.links_dir().join(iface.replace('%', "%25").replace('.', "%2e"))
    }

    /// Makes sure the directory is on a BPF filesystem (mounting one at /sys/fs/bpf if that is
    /// where it goes and nothing is mounted there) and creates its subdirectories.
    pub fn prepare(&self) -> Result<(), PinError> {
        let base = self.root.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/")).to_owned();
        if !is_bpffs(&base) {
            let sys = Path::new("/sys/fs/bpf");
            if !self.root.starts_with(sys) {
                return Err(PinError::NoBpfFs { dir: self.root.clone(), why: "the directory is elsewhere".into() });
            }
            if let Err(e) = mount(Some("bpf"), sys, Some("bpf"), MsFlags::empty(), None::<&str>) {
                let why = io::Error::from(e).to_string();
                return Err(PinError::NoBpfFs { dir: self.root.clone(), why });
            }
            log::info!("mounted a BPF filesystem at /sys/fs/bpf");
        }
        for d in [self.root.clone(), self.maps_dir(), self.links_dir()] {
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(())
    }

    /// Whether the pinned maps can be taken over by a program whose maps look like `want`.
    pub fn check(&self, want: &[MapShape]) -> Found {
        let dir = self.maps_dir();
        let present: Vec<&MapShape> = want.iter().filter(|m| dir.join(m.name).exists()).collect();
        if present.is_empty() {
            return Found::Nothing;
        }
        if present.len() < want.len() {
            let missing: Vec<&str> = want.iter().filter(|m| !dir.join(m.name).exists()).map(|m| m.name).collect();
            return Found::Incompatible(format!("maps {} are not pinned", missing.join(", ")));
        }
        for m in want {
            let info = match MapInfo::from_pin(dir.join(m.name)) {
                Ok(i) => i,
                Err(e) => return Found::Incompatible(format!("{}: {e}", m.name)),
            };
            let got = (info.key_size(), info.value_size(), info.max_entries(), info.map_flags());
            let exp = (m.key_size, m.value_size, m.max_entries, m.flags);
            if got != exp {
                return Found::Incompatible(format!(
                    "{} is pinned with key/value/entries/flags {got:?}, this program needs {exp:?} (a capacity in the rules changed, or the program did)",
                    m.name
                ));
            }
        }
        match pinned_layout(&dir) {
            Ok(l) if l == LAYOUT || l == 0 => Found::Reusable,
            Ok(l) => Found::Incompatible(format!("the tables were filled by another layout ({l}, this is {LAYOUT})")),
            Err(e) => Found::Incompatible(format!("reading {}: {e}", maps::CONFIG)),
        }
    }

    /// Empties the staging directory (left over from an attempt that did not finish).
    pub fn clear_staging(&self) -> Result<(), PinError> {
        let s = self.staging_dir();
        if s.exists() {
            remove_dir(&s)?;
        }
        std::fs::create_dir_all(&s).map_err(io_err(&s))
    }

    /// Puts the maps built in the staging directory in place of the pinned ones.
    pub fn promote_staging(&self) -> Result<(), PinError> {
        let (maps, staging) = (self.maps_dir(), self.staging_dir());
        if maps.exists() {
            remove_dir(&maps)?;
        }
        std::fs::rename(&staging, &maps).map_err(io_err(&staging))
    }

    /// Interfaces with a pinned link.
    pub fn pinned_links(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.links_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().replace("%2e", ".").replace("%25", "%"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Removes every pin: the program is detached once no process holds its links, and the
    /// maps are freed once nothing uses them.
    pub fn remove_all(&self) -> Result<(), PinError> {
        if self.root.exists() {
            remove_dir(&self.root)?;
        }
        Ok(())
    }
}

/// Removes a directory of pins (unlinking a pin drops the kernel's reference).
fn remove_dir(d: &Path) -> Result<(), PinError> {
    std::fs::remove_dir_all(d).map_err(io_err(d))
}

/// The `layout` of the pinned config map.
fn pinned_layout(dir: &Path) -> Result<u64, String> {
    let data = MapData::from_pin(dir.join(maps::CONFIG)).map_err(|e| e.to_string())?;
    let a: Array<MapData, Config> = Array::try_from(Map::Array(data)).map_err(|e| e.to_string())?;
    a.get(&0, 0).map(|c| c.layout).map_err(|e| e.to_string())
}

/// Why the shapes of an object's maps could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    #[error(transparent)]
    Parse(#[from] aya_obj::ParseError),
    #[error("map {0} is missing from the object")]
    Missing(&'static str),
}

/// The shapes of the maps in `object` with the given entry counts.
pub fn shapes(object: &[u8], max_entries: &[(&'static str, u32)]) -> Result<Vec<MapShape>, ShapeError> {
    let obj = aya_obj::Object::parse(object)?;
    let mut out = Vec::new();
    for &name in maps::ALL {
        let m = obj.maps.get(name).ok_or(ShapeError::Missing(name))?;
        let max = max_entries.iter().find(|(n, _)| *n == name).map_or(m.max_entries(), |(_, v)| *v);
        out.push(MapShape {
            name,
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: max,
            flags: m.map_flags(),
        });
    }
    Ok(out)
}
