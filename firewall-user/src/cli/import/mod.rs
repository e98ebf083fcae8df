//! `sipwall import-fail2ban [DIR]`: a rules file from a fail2ban configuration (`jail.conf`,
//! `jail.d/`, `jail.local`, the filters of `filter.d/`), validated as `sipwall check` validates
//! before it is written; what cannot be translated is listed with the reason.

pub mod config;
pub mod filter;
pub mod glob;
pub mod increment;
pub mod ini;
pub mod jail;
pub mod model;
pub mod values;
pub mod write;

#[cfg(test)]
mod reader_tests;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use clap::Args;

use self::{
    config::Config,
    ini::Value,
    jail::{Options, Translated},
    model::{DetectorOut, Imported, JailOut, Note},
};
use super::EXIT_CONFIG;
use crate::{datapath::fit, rules::Rules};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The fail2ban configuration directory.
    #[arg(default_value = "/etc/fail2ban")]
    pub dir: PathBuf,
    /// Write the rules to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the --output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Paste fail2ban's asterisk and sshd filters as [detectors.NAME] too, rather than using
    /// sipwall's own detectors where the filter is fail2ban's unchanged.
    #[arg(long)]
    pub paste_filters: bool,
}

/// sysexits.h EX_CANTCREAT: the output file cannot be created.
const EXIT_CANTCREAT: i32 = 73;

/// The jails sipwall has built in that read what fail2ban jails read (logs, or bans).
const BUILTIN: &[&str] = &["asterisk", "sshd", "recidive"];

/// Every name the rules file gives a built-in jail or detector.
const RESERVED: &[&str] = &["asterisk", "sshd", "recidive", "flood", "sip-wire", "scanner"];

/// A valid jail or detector name for `name`: lower case, other characters as `-`.
fn sane(name: &str) -> String {
    let mut s: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' { c } else { '-' })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "j-");
    }
    s.truncate(30);
    s
}

fn unique(base: String, taken: &dyn Fn(&str) -> bool) -> String {
    if !taken(&base) {
        return base;
    }
    (2..).map(|i| format!("{base}-{i}")).find(|n| !taken(n)).expect("a free name")
}

/// Reads the fail2ban configuration in `dir` and translates it.
pub fn import(dir: &Path, paste_filters: bool) -> Result<Imported, ini::ParseError> {
    let mut cfg = Config::read(dir, "jail")?;
    if cfg.files.is_empty() {
        return Err(ini::ParseError {
            file: dir.join("jail.conf"),
            line: 0,
            message: "neither jail.conf nor jail.local exists here: is this a fail2ban configuration directory?".into(),
        });
    }
    for (k, v) in [("fail2ban_version", String::new()), ("fail2ban_confpath", dir.display().to_string())] {
        cfg.defaults.insert(k.into(), Value { text: v, file: dir.to_owned(), line: 0 });
    }
    let mut imp = Imported { files: cfg.files.clone(), ..Default::default() };
    let opts = Options { paste_filters, window: purge_age(dir, &mut imp.notes) };
    let mut done: Vec<Translated> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let names: Vec<String> = cfg.section_names().map(str::to_owned).collect();
    for name in &names {
        let enabled = match cfg.get(name, "enabled", &BTreeMap::new()) {
            Some(Ok(v)) => values::as_bool(&v),
            Some(Err(e)) => {
                imp.notes.push(Note { jail: Some(name.clone()), at: None, text: e.to_string() });
                false
            }
            None => false,
        };
        if enabled {
            match jail::translate(&cfg, dir, name, &opts, &mut imp.notes) {
                Some(t) => done.push(t),
                None => failed.push(name.clone()),
            }
        }
    }
    // [DEFAULT]'s ignoreip applies to every jail: what every jail ignores from it is [allow]
    let default_ignore: Vec<ipnet::IpNet> = match cfg.defaults.get("ignoreip") {
        Some(v) => match cfg.interpolate("DEFAULT", "ignoreip", &v.text, &BTreeMap::new()) {
            Ok(t) => values::words(&t).into_iter().filter_map(|w| values::network(w).ok()).collect(),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    if !done.is_empty() {
        imp.allow = default_ignore.into_iter().filter(|n| done.iter().all(|t| t.jail.ignore.contains(n))).collect();
    }
    for t in done {
        let Translated { mut jail, detector, builtin } = t;
        jail.ignore.retain(|n| !imp.allow.contains(n));
        if let Some(d) = detector {
            jail.detector = Some(add_detector(&mut imp.detectors, d));
        }
        let claimed = builtin.filter(|b| *b == jail.name && !imp.jails.iter().any(|j| j.name == *b));
        if claimed.is_none() {
            let mut base = sane(&jail.name);
            // the jails fed by the data path keep their detectors
            if RESERVED.contains(&base.as_str()) && !BUILTIN.contains(&base.as_str()) {
                base.push_str("-logs");
            }
            jail.name = unique(base, &|n| imp.jails.iter().any(|j| j.name == n));
        }
        imp.jails.push(jail);
    }
    for b in BUILTIN {
        if !imp.jails.iter().any(|j| j.name == *b) {
            let why = if failed.iter().any(|f| f == b) {
                "enabled in the fail2ban configuration, but not translated (see above)"
            } else {
                "not enabled in the fail2ban configuration"
            };
            imp.jails.push(JailOut::disabled(b, why));
        }
    }
    Ok(imp)
}

/// `dbpurgeage` of fail2ban.conf (with its `.d/` and `.local`): how far back fail2ban's
/// `bantime.increment` finds earlier bans.
fn purge_age(dir: &Path, notes: &mut Vec<Note>) -> Option<u64> {
    let cfg = match Config::read(dir, "fail2ban") {
        Ok(c) => c,
        Err(e) => {
            notes.push(Note { jail: None, at: None, text: format!("dbpurgeage: {e}") });
            return None;
        }
    };
    let at = cfg.origin("Definition", "dbpurgeage").map(|v| (v.file.clone(), v.line));
    let text = cfg.get("Definition", "dbpurgeage", &BTreeMap::new())?.ok()?;
    match values::seconds(&text) {
        Ok(Some(s)) if s > 0 => Some(s),
        Ok(_) => None,
        Err(e) => {
            notes.push(Note { jail: None, at, text: format!("dbpurgeage: {e}") });
            None
        }
    }
}

/// Adds a pasted filter under a free name (one detector serves every jail with the same filter).
fn add_detector(detectors: &mut Vec<DetectorOut>, mut d: DetectorOut) -> String {
    let bare = |d: &DetectorOut| DetectorOut { name: String::new(), comments: Vec::new(), ..d.clone() };
    let mut base = sane(&d.name);
    if RESERVED.contains(&base.as_str()) {
        base = format!("{base}-filter");
    }
    d.name = base.clone();
    if let Some(existing) = detectors.iter_mut().find(|e| e.name.starts_with(&base) && bare(e) == bare(&d)) {
        existing.comments.extend(d.comments);
        return existing.name.clone();
    }
    d.name = unique(base, &|n| detectors.iter().any(|e| e.name == n));
    let name = d.name.clone();
    detectors.push(d);
    name
}

/// Imports, prints what is not translated, validates the rules and writes them.
pub fn import_fail2ban(a: &ImportArgs) -> i32 {
    let imp = match import(&a.dir, a.paste_filters) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("sipwall: {e}");
            return EXIT_CONFIG;
        }
    };
    for n in &imp.notes {
        eprintln!("{n}");
    }
    let text = write::rules(&imp, &a.dir);
    let name = a.output.as_ref().map_or_else(|| "<imported rules>".to_owned(), |p| p.display().to_string());
    let base = a.output.as_deref().and_then(Path::parent).unwrap_or(Path::new("/"));
    let checked = Rules::parse(&name, &text, base)
        .map_err(|r| r.to_string())
        .and_then(|(rules, warnings)| fit::check(&rules).map(|_| warnings).map_err(|d| d.to_string()));
    let warnings = match checked {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}\nsipwall: the imported rules do not pass `sipwall check`; nothing was written");
            return EXIT_CONFIG;
        }
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    let enabled: Vec<&str> = imp.jails.iter().filter(|j| j.enabled).map(|j| j.name.as_str()).collect();
    if enabled.contains(&"asterisk") {
        eprintln!(
            "sipwall: jail asterisk: Asterisk's AMI security events can feed it too; see the comment above its logpath"
        );
    }
    match &a.output {
        None => print!("{text}"),
        Some(p) => {
            if p.exists() && !a.force {
                eprintln!("sipwall: {} exists; use --force to replace it", p.display());
                return EXIT_CANTCREAT;
            }
            if let Err(e) = replace(p, &text) {
                eprintln!("sipwall: writing {}: {e}", p.display());
                return EXIT_CANTCREAT;
            }
        }
    }
    eprintln!(
        "sipwall: imported {} jails ({}), {} items not translated",
        enabled.len(),
        enabled.join(", "),
        imp.notes.len()
    );
    0
}

/// Writes `text` to `path` whole or not at all: a temporary file beside it, synced, renamed
/// over it (a daemon reloading the rules meanwhile reads the old file or the new one).
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = path.with_file_name(format!(".{}.import-{}", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
