//! `[jails.NAME]` and `[detectors.NAME]` (in `detectors`): what turns log lines
//! and rate-limit reports into bans, in fail2ban's words (findtime, maxretry, bantime, ignore,
//! recidive).
//!
//! Five jails are built in and on unless `enabled = false`: `asterisk`, `sshd`, `recidive`,
//! `flood` and `sip-wire`. A `[jails.NAME]` section for one of them changes only the keys it sets.

mod detectors;
mod jail;
mod kind;
mod logpath;

use std::{collections::BTreeMap, time::Duration};

use ipnet::IpNet;

use self::{detectors::read_detector, jail::read_jail};
pub use self::{
    detectors::{CompileError, Compiles, Spec},
    kind::{DetectorKind, Mode},
    logpath::{LogPath, SSHD_JOURNAL},
};
use super::reader::{Reader, Section};

/// fail2ban's `bantime.increment`: repeat offenders are banned longer.
#[derive(Clone, Debug, PartialEq)]
pub struct Increment {
    /// bantime × factor × 2^(earlier bans), when no `multipliers` are given.
    pub factor: f64,
    /// bantime × multipliers[earlier bans] (the last one repeats).
    pub multipliers: Vec<u32>,
    /// The longest ban escalation may reach.
    pub maxtime: Option<Duration>,
    /// How far back earlier bans count.
    pub window: Duration,
    /// Count earlier bans by every jail, not only this one.
    pub overalljails: bool,
}

impl Eq for Increment {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jail {
    pub name: String,
    pub enabled: bool,
    pub detector: DetectorKind,
    pub logpath: Vec<LogPath>,
    pub findtime: Duration,
    pub maxretry: u32,
    /// `None`: forever.
    pub bantime: Option<Duration>,
    /// Never banned by this jail (on top of the global allow list).
    pub ignore: Vec<IpNet>,
    pub increment: Option<Increment>,
    /// `flood` only: the services whose reports count (all when empty).
    pub services: Vec<String>,
    /// Ban on unproven evidence too (a forged packet can produce it: see docs/rules.md).
    pub trust_unproven: bool,
}

/// Everything about detection in the rules file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Detection {
    pub jails: Vec<Jail>,
    pub detectors: BTreeMap<String, Spec>,
    /// Addresses of this host's own interfaces are never banned (fail2ban's `ignoreself`).
    pub ignoreself: bool,
}

impl Detection {
    pub fn enabled(&self) -> impl Iterator<Item = &Jail> {
        self.jails.iter().filter(|j| j.enabled)
    }

    pub fn jail(&self, name: &str) -> Option<&Jail> {
        self.jails.iter().find(|j| j.name == name)
    }
}

const DAY: u64 = 86_400;

fn default_increment() -> Increment {
    Increment {
        factor: 1.0,
        multipliers: Vec::new(),
        maxtime: Some(Duration::from_secs(7 * DAY)),
        window: Duration::from_secs(7 * DAY),
        overalljails: false,
    }
}

/// The built-in jails (defaults of the hardening guides for Asterisk and OpenSSH hosts).
pub fn builtin() -> Vec<Jail> {
    let jail = |name: &str, detector, logpath: &[&str], findtime: u64, maxretry, bantime: u64, inc: bool| Jail {
        name: name.into(),
        enabled: true,
        detector,
        logpath: logpath.iter().map(|p| LogPath::parse(p).expect("built-in log path")).collect(),
        findtime: Duration::from_secs(findtime),
        maxretry,
        bantime: Some(Duration::from_secs(bantime)),
        ignore: Vec::new(),
        increment: inc.then(default_increment),
        services: Vec::new(),
        trust_unproven: false,
    };
    vec![
        jail(
            "asterisk",
            DetectorKind::Asterisk,
            &["/var/log/asterisk/messages", "/var/log/asterisk/security"],
            600,
            3,
            6 * 3600,
            true,
        ),
        jail("sshd", DetectorKind::Sshd(Mode::Normal), &[SSHD_JOURNAL], 120, 10, 1200, true),
        jail("recidive", DetectorKind::Recidive, &[], DAY, 5, 7 * DAY, false),
        jail("flood", DetectorKind::Flood, &[], 60, 10, 600, true),
        jail("sip-wire", DetectorKind::SipWire, &[], 600, 10, 6 * 3600, true),
        // one scanner packet is proof enough
        jail("scanner", DetectorKind::Scanner, &[], 600, 1, DAY, true),
    ]
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some('a'..='z'))
        && n.len() <= 32
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// One string or an array of them.
fn string_or_list(r: &mut Reader, s: &Section, key: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let item = s.table.get(key)?;
    if item.is_str() {
        return s.string(r, key).map(|v| vec![v]);
    }
    s.strings(r, key)
}

pub fn read(r: &mut Reader, root: &Section, services: &[&str]) -> Detection {
    let mut det = Detection { jails: builtin(), detectors: BTreeMap::new(), ignoreself: true };
    if let Some(s) = root.table(r, "detectors", "detectors") {
        for (name, table, span) in s.tables(r) {
            let path = format!("detectors.{name}");
            let sec = Section { table, path: &path, span: span.clone() };
            if let Some(spec) = read_detector(r, &sec, name, span) {
                det.detectors.insert(name.to_owned(), spec);
            }
        }
    }
    if let Some(s) = root.table(r, "jails", "jails") {
        for (name, table, span) in s.tables(r) {
            let path = format!("jails.{name}");
            let sec = Section { table, path: &path, span: span.clone() };
            read_jail(r, &sec, name, span, &mut det, services);
        }
    }
    det
}
