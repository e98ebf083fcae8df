//! One fail2ban jail as a `[jails.NAME]`: its filter as a built-in detector or a pasted one, its
//! log sources for its backend, its times, `ignoreip` and `bantime.increment`; everything else
//! becomes a note saying why it is not carried.

use std::{collections::BTreeMap, path::Path};

use ipnet::IpNet;

use super::{
    config::Config,
    filter::{self, Context, FILTER_KEYS},
    glob, increment,
    model::{DetectorOut, JailOut, Note},
    values,
};
use crate::rules::jails::{LogPath, SSHD_JOURNAL};

/// Options of a jail that only its actions read: covered by the note about the action.
const ACTION_KEYS: &[&str] =
    &["port", "protocol", "chain", "banaction", "banaction_allports", "mta", "destemail", "sender"];

/// Options read here (the rest of a jail's own options gets a note).
const READ_KEYS: &[&str] = &[
    "enabled",
    "filter",
    "mode",
    "backend",
    "logpath",
    "findtime",
    "maxretry",
    "bantime",
    "ignoreip",
    "action",
    "bantime.increment",
    "bantime.factor",
    "bantime.multipliers",
    "bantime.maxtime",
    "bantime.rndtime",
    "bantime.overalljails",
    "bantime.formula",
    "maxmatches",
    "logencoding",
    "usedns",
    "ignoreself",
    "ignorecommand",
];

/// A translated jail, before names are made unique and `ignoreip` is split into `[allow]`.
pub struct Translated {
    pub jail: JailOut,
    pub detector: Option<DetectorOut>,
    /// The built-in sipwall jail it configures (`asterisk`, `sshd`, `recidive`), if any.
    pub builtin: Option<&'static str>,
}

/// Whether the filters of stock fail2ban files become sipwall's own detectors.
pub struct Options {
    pub paste_filters: bool,
    /// `dbpurgeage` of fail2ban.conf, in seconds.
    pub window: Option<u64>,
}

pub(super) struct Jail<'a> {
    pub(super) cfg: &'a Config,
    pub(super) name: &'a str,
    notes: &'a mut Vec<Note>,
    vars: BTreeMap<String, String>,
}

impl Jail<'_> {
    fn at(&self, key: &str) -> Option<(std::path::PathBuf, usize)> {
        self.cfg.origin(self.name, key).map(|v| (v.file.clone(), v.line))
    }

    pub(super) fn note(&mut self, key: &str, text: String) {
        let at = self.at(key);
        self.notes.push(Note { jail: Some(self.name.to_owned()), at, text });
    }

    /// The interpolated value; a value that cannot be interpolated is noted and left out.
    pub(super) fn get(&mut self, key: &str) -> Option<String> {
        match self.cfg.get(self.name, key, &self.vars)? {
            Ok(v) => Some(v),
            Err(e) => {
                self.note(key, format!("`{key}`: {e}"));
                None
            }
        }
    }

    fn time(&mut self, key: &str) -> Option<Option<u64>> {
        let v = self.get(key)?;
        match values::seconds(&v) {
            Ok(s) => Some(s),
            Err(e) => {
                self.note(key, format!("`{key}`: {e}"));
                None
            }
        }
    }
}

/// Translates the enabled jail `name`; `None` when it cannot be (the notes say why).
pub fn translate(cfg: &Config, dir: &Path, name: &str, opts: &Options, notes: &mut Vec<Note>) -> Option<Translated> {
    let mut j = Jail { cfg, name, notes, vars: BTreeMap::new() };
    let filter_text = j.get("filter").unwrap_or_else(|| name.to_owned());
    let (filter_name, filter_opts) = match values::name_and_options(&filter_text) {
        Ok(f) => f,
        Err(e) => {
            j.note("filter", format!("the jail: its filter {e}"));
            return None;
        }
    };
    if filter_name.is_empty() {
        j.note("filter", "the jail: it has no filter".into());
        return None;
    }
    let backend_text = j.get("backend").unwrap_or_else(|| "auto".into());
    let (backend, backend_opts) =
        values::name_and_options(&backend_text).unwrap_or((backend_text.clone(), Default::default()));
    let journal = backend.starts_with("systemd");
    if !backend_opts.is_empty() {
        j.note(
            "backend",
            format!("backend options `{backend_text}`: sipwall reads the system journal through journalctl"),
        );
    }
    if !matches!(backend.as_str(), "auto" | "polling" | "pyinotify" | "gamin" | "systemd") {
        j.note("backend", format!("backend `{backend}`: unknown; the jail's logpath is read as files"));
    }
    let mut overrides = BTreeMap::new();
    for key in FILTER_KEYS {
        if cfg.section(name).is_some_and(|s| s.contains_key(*key)) {
            if let Some(v) = j.get(key) {
                overrides.insert((*key).to_owned(), v);
            }
        }
    }
    let mut jail = JailOut::disabled(name, &format!("fail2ban jail [{name}], filter {filter_text}"));
    jail.enabled = true;
    let mut detector = None;
    let mut builtin = None;
    let mut journalmatch = overrides.get("journalmatch").cloned();
    if filter_name == "recidive" {
        builtin = Some("recidive");
        jail.detector = Some("recidive".into());
        jail.comments.push("counts the bans of the other jails in sipwall's ban history, not fail2ban.log".into());
    } else {
        let cx = Context { options: &filter_opts, journal, overrides: &overrides };
        let resolved = match filter::resolve(dir, &filter_name, &cx) {
            Ok(r) => r,
            Err(e) => {
                j.note("filter", format!("the jail: {e}"));
                return None;
            }
        };
        journalmatch = journalmatch.or(resolved.journalmatch.clone());
        let only_mode = filter_opts.keys().all(|k| k == "mode");
        // a jail's own journalmatch chooses what is read, not what a line means
        let regex_set = overrides.keys().any(|k| k != "journalmatch");
        let stock = !opts.paste_filters && !resolved.customised && !regex_set && only_mode;
        let mode = filter_opts.get("mode").map(String::as_str).unwrap_or("normal");
        match filter_name.as_str() {
            "asterisk" if stock => {
                builtin = Some("asterisk");
                jail.detector = Some("asterisk".into());
                jail.comments.push(in_place(&filter_name));
            }
            "sshd" if stock && matches!(mode, "normal" | "ddos" | "extra" | "aggressive") => {
                builtin = Some("sshd");
                jail.detector = Some("sshd".into());
                jail.mode = Some(mode.to_owned());
                jail.comments.push(in_place(&filter_name));
            }
            _ => {
                let mut d = resolved.detector;
                d.name = filter_name.clone();
                d.comments.push(format!("fail2ban filter.d/{filter_name}, for [{name}] ({filter_text})"));
                jail.detector = Some(d.name.clone());
                detector = Some(d);
            }
        }
    }
    if builtin == Some("sshd") && !journal {
        jail.comments.push(
            "a log file takes lines from any local user (`logger -t sshd`); sipwall's own sshd source is \
             journal:_UID=0 SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session (docs/rules.md)"
                .into(),
        );
    }
    if builtin != Some("recidive") {
        jail.logpath = logpath(&mut j, journal, builtin == Some("sshd"), journalmatch.as_deref(), &mut jail.comments);
        if jail.logpath.is_empty() {
            j.note("logpath", "the jail: none of its log sources can be read by sipwall".into());
            return None;
        }
    }
    if builtin.is_some_and(|b| b == name) {
        jail.detector = None;
    }
    match j.time("findtime") {
        Some(Some(t)) if t > 0 => jail.findtime = Some(t),
        Some(_) => j.note("findtime", "`findtime`: sipwall counts failures within a positive time".into()),
        None => {}
    }
    if let Some(v) = j.get("maxretry") {
        match v.trim().parse::<u32>() {
            Ok(n) if n >= 1 => jail.maxretry = Some(n),
            _ => j.note("maxretry", format!("`maxretry = {v}`: not a number from 1")),
        }
    }
    jail.bantime = j.time("bantime");
    if jail.bantime == Some(Some(0)) {
        j.note("bantime", "`bantime = 0`: sipwall bans for a positive time".into());
        jail.bantime = None;
    }
    // what fail2ban's server uses when the configuration sets nothing
    let unset = |key: &str| cfg.raw(name, key, &BTreeMap::new()).is_none();
    if unset("findtime") {
        jail.findtime = Some(600);
    }
    if unset("maxretry") {
        jail.maxretry = Some(3);
    }
    if unset("bantime") {
        jail.bantime = Some(Some(600));
    }
    jail.ignore = ignoreip(&mut j);
    jail.increment = Some(increment::read(&mut j, opts.window));
    other_options(&mut j);
    Some(Translated { jail, detector, builtin })
}

/// The log sources: files for the polling backends, the filter's `journalmatch` for systemd.
fn logpath(
    j: &mut Jail,
    journal: bool,
    sshd: bool,
    journalmatch: Option<&str>,
    comments: &mut Vec<String>,
) -> Vec<String> {
    if journal {
        if sshd {
            return vec![SSHD_JOURNAL.to_owned()];
        }
        let Some(m) = journalmatch else {
            j.note(
                "backend",
                "backend systemd without a journalmatch: sipwall reads only chosen journal entries".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for g in values::journal_alternatives(m) {
            let source = match g.as_slice() {
                [unit] if unit.starts_with("_SYSTEMD_UNIT=") => format!("journal:{}", &unit["_SYSTEMD_UNIT=".len()..]),
                _ => format!("journal:{}", g.join(" ")),
            };
            match LogPath::parse(&source) {
                Ok(_) => out.push(source),
                Err(e) => j.note("backend", format!("journalmatch `{}`: {e}", g.join(" "))),
            }
        }
        return out;
    }
    let Some(text) = j.get("logpath") else {
        j.note("logpath", "the jail has no logpath".into());
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.rsplit_once(' ') {
            Some((p, "head" | "tail")) => p.trim(),
            _ => line,
        };
        if glob::is_pattern(path) {
            let files = glob::expand(path);
            if files.is_empty() {
                j.note(
                    "logpath",
                    format!("logpath `{path}`: matches no file on this host, and sipwall takes no wildcards"),
                );
            }
            out.extend(files.iter().map(|f| f.display().to_string()));
            comments.push(format!(
                "logpath {path}: the files it matches on this host now, as fail2ban reads them at start"
            ));
        } else if !path.starts_with('/') {
            j.note("logpath", format!("logpath `{path}`: not an absolute path"));
        } else {
            out.push(path.to_owned());
        }
    }
    out
}

fn ignoreip(j: &mut Jail) -> Vec<IpNet> {
    let Some(text) = j.get("ignoreip") else { return Vec::new() };
    let mut out = Vec::new();
    for w in values::words(&text) {
        match values::network(w) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(_) => j.note(
                "ignoreip",
                format!(
                    "ignoreip `{w}`: a host name; sipwall takes addresses and networks only, never resolving names"
                ),
            ),
        }
    }
    out
}

/// Notes for what the jail sets that sipwall does not carry.
fn other_options(j: &mut Jail) {
    if let Some(a) = j.get("action").filter(|a| !a.trim().is_empty()) {
        let list: Vec<&str> = a.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        j.note(
            "action",
            format!(
                "action {}: sipwall runs no actions; its bans drop the source on every port and protocol \
                 (like iptables-allports), and [webhook] can notify",
                list.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if j.get("usedns").is_some_and(|v| v.trim().eq_ignore_ascii_case("yes")) {
        j.note("usedns", "`usedns = yes`: sipwall never resolves host names in log lines".into());
    }
    if j.get("ignoreself").is_some_and(|v| !values::as_bool(&v)) {
        j.note("ignoreself", "`ignoreself = false`: sipwall never bans the host's own addresses".into());
    }
    if let Some(c) = j.get("ignorecommand").filter(|c| !c.trim().is_empty()) {
        j.note("ignorecommand", format!("`ignorecommand = {c}`: sipwall runs no commands; use `ignore` or [allow]"));
    }
    let own: Vec<String> = j.cfg.section(j.name).map(|s| s.keys().cloned().collect()).unwrap_or_default();
    for key in own {
        let k = key.as_str();
        if READ_KEYS.contains(&k) || FILTER_KEYS.contains(&k) || ACTION_KEYS.contains(&k) || k.starts_with("action") {
            continue;
        }
        j.note(&key, format!("`{key}`: no sipwall equivalent"));
    }
}

/// The comment on a jail whose stock filter became a built-in detector: an edit made in the
/// filter's own file (rather than a `.local`) is not seen, and `--paste-filters` carries it.
fn in_place(filter: &str) -> String {
    format!(
        "fail2ban's filter.d/{filter}.conf is read as sipwall's built-in `{filter}` detector; if that file \
         was edited in place, import again with --paste-filters to carry the edits"
    )
}
