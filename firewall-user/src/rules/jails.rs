//! `[jails.NAME]`, `[detectors.NAME]` (in `detectors`) and `[webhook]`: what turns log lines
//! and rate-limit reports into bans, in fail2ban's words (findtime, maxretry, bantime, ignore,
//! recidive).
//!
//! Five jails are built in and on unless `enabled = false`: `asterisk`, `sshd`, `recidive`,
//! `flood` and `sip-wire`. A `[jails.NAME]` section for one of them changes only the keys it sets.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use ipnet::IpNet;

mod detectors;

use self::detectors::read_detector;
use super::reader::{Durations, Reader, Section};
use crate::detection::detect::{custom::Spec, sshd::Mode};

/// What feeds a jail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetectorKind {
    Asterisk,
    Sshd(Mode),
    /// A `[detectors.NAME]` filter.
    Custom(String),
    /// Bans by the other jails.
    Recidive,
    /// The XDP program's rate-limit reports.
    Flood,
    /// The SIP failures (403, 404) the host answers, read on egress.
    SipWire,
    /// The SIP inspector's scanner-signature drops.
    Scanner,
}

impl DetectorKind {
    pub fn name(&self) -> &str {
        match self {
            DetectorKind::Asterisk => "asterisk",
            DetectorKind::Sshd(_) => "sshd",
            DetectorKind::Custom(n) => n,
            DetectorKind::Recidive => "recidive",
            DetectorKind::Flood => "flood",
            DetectorKind::SipWire => "sip-wire",
            DetectorKind::Scanner => "scanner",
        }
    }

    /// Whether the jail reads logs (and so needs `logpath`).
    pub fn reads_logs(&self) -> bool {
        !matches!(self, DetectorKind::Recidive | DetectorKind::Flood | DetectorKind::SipWire | DetectorKind::Scanner)
    }
}

/// A log source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogPath {
    File(PathBuf),
    /// `journal:UNIT` or `journal:FIELD=VALUE …` (journalctl matches).
    Journal(Vec<String>),
}

impl std::fmt::Display for LogPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogPath::File(p) => write!(f, "{}", p.display()),
            LogPath::Journal(m) => write!(f, "journal:{}", m.join(" ")),
        }
    }
}

impl LogPath {
    pub fn parse(text: &str) -> Result<LogPath, String> {
        if let Some(rest) = text.strip_prefix("journal:") {
            let matches: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            if matches.is_empty() {
                return Err(
                    "`journal:` needs a unit (journal:ssh.service) or matches (journal:SYSLOG_IDENTIFIER=sshd)".into(),
                );
            }
            for m in &matches {
                if let Some((field, _)) = m.split_once('=') {
                    if field.is_empty()
                        || !field.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
                    {
                        return Err(format!("`{m}`: a journal field name is upper case, like SYSLOG_IDENTIFIER=sshd"));
                    }
                } else if matches.len() > 1 {
                    return Err("a journal source is one unit, or FIELD=VALUE matches".into());
                }
            }
            return Ok(LogPath::Journal(matches));
        }
        if !text.starts_with('/') {
            return Err(format!("`{text}` must be an absolute path, or journal:UNIT"));
        }
        Ok(LogPath::File(PathBuf::from(text)))
    }

    /// What reading this source would miss. journald fills `_COMM` (like `_EXE` and
    /// `_SYSTEMD_UNIT`) from /proc when it takes an entry in, so an entry it takes after the
    /// sender ended has none: on a busy host, the failures of an sshd session that just closed.
    pub fn warning(&self) -> Option<String> {
        let LogPath::Journal(m) = self else { return None };
        let racy =
            m.iter().find(|m| ["_COMM=", "_EXE=", "_CMDLINE=", "_SYSTEMD_UNIT="].iter().any(|f| m.starts_with(f)))?;
        Some(format!(
            "`{racy}` misses entries that systemd-journald takes in after their sender exited (it reads the field in /proc), \
             as happens on a busy host; match the syslog tag with the sender's uid instead, like \
             `{SSHD_JOURNAL}`"
        ))
    }
}

/// The built-in sshd jail's source: root's entries tagged `sshd` or (OpenSSH 9.8 and later)
/// `sshd-session`. The tag is the sender's choice, `_UID` journald's: only root can log these.
pub const SSHD_JOURNAL: &str = "journal:_UID=0 SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session";

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub timeout: Duration,
    pub retries: u32,
}

/// Everything about detection in the rules file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Detection {
    pub jails: Vec<Jail>,
    pub detectors: BTreeMap<String, Spec>,
    pub webhook: Option<Webhook>,
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

const JAIL_KEYS: &[&str] = &[
    "enabled",
    "detector",
    "mode",
    "logpath",
    "findtime",
    "maxretry",
    "bantime",
    "ignore",
    "increment",
    "services",
    "trust_unproven",
];
const INCREMENT_KEYS: &[&str] = &["enabled", "factor", "multipliers", "maxtime", "window", "overalljails"];
const BUILTIN_DETECTORS: &[&str] = &["asterisk", "sshd", "recidive", "flood", "sip-wire", "scanner"];

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
    let mut det = Detection { jails: builtin(), detectors: BTreeMap::new(), webhook: None, ignoreself: true };
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
    if let Some(s) = root.table(r, "webhook", "webhook") {
        s.check_keys(r, &["url", "timeout", "retries"]);
        let url = s.string(r, "url");
        if url.is_none() && !s.has("url") {
            r.error(s.span.clone(), "[webhook] needs `url`, like url = \"http://127.0.0.1:8080/sipwall\"");
        }
        if let Some((u, sp)) = &url {
            if !u.starts_with("http://") {
                r.error(
                    Some(sp.clone()),
                    "the webhook `url` must start with http:// (put a TLS proxy in front for https)",
                );
            }
        }
        let timeout = s.duration(r, "timeout", Durations::Positive).flatten().unwrap_or(Duration::from_secs(5));
        let retries = s.uint(r, "retries", 0, 100).unwrap_or(5) as u32;
        det.webhook = url.map(|(url, _)| Webhook { url, timeout, retries });
    }
    det
}

fn read_jail(
    r: &mut Reader,
    s: &Section,
    name: &str,
    span: Option<std::ops::Range<usize>>,
    det: &mut Detection,
    services: &[&str],
) {
    s.check_keys(r, JAIL_KEYS);
    if !valid_name(name) {
        r.error(
            span.clone(),
            format!("jail name `{name}` must start with a-z and hold only a-z, 0-9, `_` or `-` (at most 32)"),
        );
    }
    let existing = det.jails.iter().position(|j| j.name == name);
    let mut jail = match existing {
        Some(i) => det.jails[i].clone(),
        None => {
            if !s.has("detector") {
                r.error(
                    span.clone(),
                    format!("[jails.{name}] needs `detector`: asterisk, sshd, or a [detectors.NAME] of this file"),
                );
            }
            Jail {
                name: name.to_owned(),
                enabled: true,
                detector: DetectorKind::Asterisk,
                logpath: Vec::new(),
                findtime: Duration::from_secs(600),
                maxretry: 3,
                bantime: Some(Duration::from_secs(600)),
                ignore: Vec::new(),
                increment: None,
                services: Vec::new(),
                trust_unproven: false,
            }
        }
    };
    if let Some(e) = s.bool(r, "enabled") {
        jail.enabled = e;
    }
    if let Some((d, sp)) = s.string(r, "detector") {
        jail.detector = match d.as_str() {
            "asterisk" => DetectorKind::Asterisk,
            "sshd" => DetectorKind::Sshd(Mode::Normal),
            "recidive" => DetectorKind::Recidive,
            "flood" => DetectorKind::Flood,
            "sip-wire" => DetectorKind::SipWire,
            "scanner" => DetectorKind::Scanner,
            other if det.detectors.contains_key(other) => DetectorKind::Custom(other.to_owned()),
            other => {
                let mut known: Vec<&str> = BUILTIN_DETECTORS.to_vec();
                known.extend(det.detectors.keys().map(String::as_str));
                r.error(Some(sp), format!("unknown detector `{other}`; expected one of: {}", known.join(", ")));
                jail.detector.clone()
            }
        };
    }
    if let Some((m, sp)) = s.string(r, "mode") {
        match (&jail.detector, m.parse::<Mode>()) {
            (DetectorKind::Sshd(_), Ok(mode)) => jail.detector = DetectorKind::Sshd(mode),
            (DetectorKind::Sshd(_), Err(e)) => r.error(Some(sp), e),
            _ => r.error(Some(sp), "`mode` applies to the sshd detector only"),
        }
    }
    if let Some(list) = string_or_list(r, s, "logpath") {
        jail.logpath.clear();
        for (text, sp) in list {
            match LogPath::parse(&text) {
                Ok(p) => {
                    if let Some(w) = p.warning() {
                        r.warn(Some(sp), w);
                    }
                    jail.logpath.push(p)
                }
                Err(e) => r.error(Some(sp), e),
            }
        }
    }
    if let Some(Some(d)) = s.duration(r, "findtime", Durations::Positive) {
        jail.findtime = d;
    }
    if let Some(n) = s.uint(r, "maxretry", 1, 1_000_000) {
        jail.maxretry = n as u32;
    }
    if let Some(d) = s.duration(r, "bantime", Durations::OrForever) {
        jail.bantime = d;
    }
    if let Some(list) = super::cidr_list(r, s, "ignore") {
        jail.ignore = list;
    }
    if let Some(t) = s.bool(r, "trust_unproven") {
        jail.trust_unproven = t;
    }
    if let Some(list) = s.strings(r, "services") {
        if jail.detector != DetectorKind::Flood {
            r.error(s.value_span("services"), "`services` applies to the flood detector only");
        }
        for (n, sp) in &list {
            if !services.contains(&n.as_str()) {
                r.error(Some(sp.clone()), format!("service `{n}` is not defined in [services]"));
            }
        }
        jail.services = list.into_iter().map(|(n, _)| n).collect();
    }
    match s.table.get("increment") {
        Some(item) if item.is_bool() => {
            jail.increment = s.bool(r, "increment").unwrap_or(false).then(default_increment);
        }
        Some(_) => {
            if let Some(inc) = s.table(r, "increment", "increment") {
                jail.increment = read_increment(r, &inc, jail.increment.clone());
            }
        }
        None => {}
    }
    if jail.enabled && jail.detector.reads_logs() && jail.logpath.is_empty() {
        r.error(span, format!("[jails.{name}] reads logs: it needs `logpath` (files, or journal:UNIT)"));
    }
    if !jail.detector.reads_logs() && s.has("logpath") {
        r.error(
            s.value_span("logpath"),
            format!("the {} detector reads no logs: remove `logpath`", jail.detector.name()),
        );
    }
    match existing {
        Some(i) => det.jails[i] = jail,
        None => det.jails.push(jail),
    }
}

fn read_increment(r: &mut Reader, s: &Section, current: Option<Increment>) -> Option<Increment> {
    s.check_keys(r, INCREMENT_KEYS);
    let mut inc = current.unwrap_or_else(default_increment);
    if s.bool(r, "enabled") == Some(false) {
        return None;
    }
    if let Some(item) = s.table.get("factor") {
        match item.as_float().or_else(|| item.as_integer().map(|i| i as f64)) {
            Some(f) if f > 0.0 && f <= 1000.0 => inc.factor = f,
            _ => r.error(s.value_span("factor"), "`factor` must be a number above 0 (at most 1000)"),
        }
    }
    if let Some(item) = s.table.get("multipliers") {
        let parsed: Option<Vec<u32>> = item.as_array().and_then(|a| {
            a.iter().map(|v| v.as_integer().filter(|i| (1..=100_000).contains(i)).map(|i| i as u32)).collect()
        });
        match parsed {
            Some(m) if !m.is_empty() => inc.multipliers = m,
            _ => r.error(
                s.value_span("multipliers"),
                "`multipliers` must be a list of whole numbers from 1, like [1, 2, 4, 8, 16]",
            ),
        }
    }
    if let Some(d) = s.duration(r, "maxtime", Durations::OrForever) {
        inc.maxtime = d;
    }
    if let Some(Some(d)) = s.duration(r, "window", Durations::Positive) {
        inc.window = d;
    }
    if let Some(b) = s.bool(r, "overalljails") {
        inc.overalljails = b;
    }
    Some(inc)
}
