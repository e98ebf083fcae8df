//! A fail2ban filter (`filter.d/NAME.conf` with its `.local` and includes) as a
//! `[detectors.NAME]`: the values fail2ban would use for a jail (its filter options such as
//! `mode`, `[Init]`, `logtype` from the backend), `%(name)s` resolved here, `<name>` tags left
//! to the detector with the definitions they need (`filterreader.py`, `DefinitionInitConfigReader`).

use std::{collections::BTreeMap, path::Path};

use super::{config::Config, model::DetectorOut};
use crate::rules::jails::{Compiles, Spec};

/// The `[Definition]` options fail2ban itself reads; a jail setting one replaces the filter's.
pub const FILTER_KEYS: &[&str] =
    &["usedns", "prefregex", "ignoreregex", "failregex", "maxlines", "datepattern", "journalmatch"];

/// A filter as it applies to one jail.
pub struct Resolved {
    pub detector: DetectorOut,
    pub journalmatch: Option<String>,
    /// Files beyond `NAME.conf` and `common.conf` that changed it (`.local`, `NAME.d/`).
    pub customised: bool,
}

/// What makes this filter differ from fail2ban's own file for the jail: options set in the
/// jail, a `.local`, files of a `NAME.d/`.
pub struct Context<'a> {
    /// The filter's options (`sshd[mode=aggressive]`).
    pub options: &'a BTreeMap<String, String>,
    /// `true` when the jail's backend is `systemd`.
    pub journal: bool,
    /// `failregex`, `ignoreregex`, … set in the jail itself, interpolated.
    pub overrides: &'a BTreeMap<String, String>,
}

fn escape(v: &str) -> String {
    v.replace('%', "%%")
}

fn from_common(cfg: &Config, section: &str, key: &str) -> bool {
    cfg.origin(section, key).is_some_and(|v| v.file.file_name().is_some_and(|n| n == "common.conf"))
}

/// Reads `filter.d/NAME` under `dir` for a jail.
pub fn resolve(dir: &Path, name: &str, cx: &Context) -> Result<Resolved, String> {
    let cfg = Config::read(dir, &format!("filter.d/{name}")).map_err(|e| e.to_string())?;
    if cfg.files.is_empty() {
        return Err(format!("the filter `{name}`: {}/filter.d/{name}.conf does not exist", dir.display()));
    }
    let customised = cfg.files.iter().any(|f| {
        let n = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        n != format!("{name}.conf") && n != "common.conf"
    });
    let no_vars = BTreeMap::new();
    // fail2ban's init options: the jail's filter options, then [Init], then logtype
    let mut vars = cx.options.clone();
    if let Some(init) = cfg.section("Init") {
        for key in init.keys() {
            if !vars.contains_key(key) {
                let v = cfg.get("Init", key, &no_vars).expect("key of the section").map_err(|e| e.to_string())?;
                vars.insert(key.clone(), v);
            }
        }
    }
    let own_logtype = cfg.section("Definition").is_some_and(|d| d.contains_key("logtype"));
    if !vars.contains_key("logtype") && !own_logtype && cx.journal {
        vars.insert("logtype".into(), "journal".into());
    }
    let get = |key: &str| -> Result<Option<String>, String> {
        if let Some(v) = cx.overrides.get(key) {
            return Ok(Some(v.clone()));
        }
        // an init option is used as it is, already interpolated (`[Init] datepattern = %%Y…`)
        if let Some(v) = vars.get(key) {
            return Ok(Some(v.clone()));
        }
        cfg.get("Definition", key, &vars).transpose().map_err(|e| e.to_string())
    };
    let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let mut d = DetectorOut {
        failregex: escape(&get("failregex")?.unwrap_or_default()),
        prefregex: nonempty(get("prefregex")?).map(|v| escape(&v)),
        ignoreregex: nonempty(get("ignoreregex")?).map(|v| escape(&v)),
        ..Default::default()
    };
    if d.failregex.trim().is_empty() {
        return Err(format!("the filter `{name}` has no failregex"));
    }
    let set_here =
        |k: &str| cx.overrides.contains_key(k) || vars.contains_key(k) || !from_common(&cfg, "Definition", k);
    if set_here("datepattern") {
        d.datepattern = nonempty(get("datepattern")?).map(|v| escape(&v));
    }
    // without common.conf's `{^LN-BEG}`, fail2ban looks for a date anywhere in the line
    if d.datepattern.is_none() && !cfg.files.iter().any(|f| f.file_name().is_some_and(|n| n == "common.conf")) {
        d.datepattern = Some("{DEFAULT}".into());
    }
    if let Some(m) = nonempty(get("maxlines")?) {
        d.maxlines = Some(m.trim().parse().map_err(|_| {
            format!("the filter `{name}`: maxlines `{m}` is no number (sipwall judges one line at a time, maxlines 1)")
        })?);
    }
    let journalmatch = nonempty(get("journalmatch")?);
    // the definitions the expressions' `<name>` tags may need: the filter's own (common.conf's
    // are built into the detector), then the init options, then other sections as `sec/name`
    let mut keys: Vec<String> = cfg.defaults.keys().cloned().collect();
    keys.extend(cfg.section("Definition").into_iter().flat_map(|s| s.keys().cloned()));
    for key in keys {
        if FILTER_KEYS.contains(&key.as_str()) || from_common(&cfg, "Definition", &key) || vars.contains_key(&key) {
            continue;
        }
        // as in fail2ban, a definition that cannot be resolved matters only where it is used
        if let Some(Ok(v)) = cfg.get("Definition", &key, &vars) {
            d.definitions.insert(key, escape(&v));
        }
    }
    for (k, v) in &vars {
        if !(FILTER_KEYS.contains(&k.as_str()) || k == "logtype" && v == "file") {
            d.definitions.insert(k.clone(), escape(v));
        }
    }
    for sec in cfg.section_names() {
        if matches!(sec, "Definition" | "Init" | "DEFAULT") {
            continue;
        }
        for key in cfg.section(sec).into_iter().flat_map(|s| s.keys()) {
            if from_common(&cfg, sec, key) {
                continue;
            }
            if let Some(Ok(v)) = cfg.get(sec, key, &no_vars) {
                d.definitions.insert(format!("{sec}/{key}"), escape(&v));
            }
        }
    }
    spec(&d).compiles().map_err(|e| format!("sipwall cannot use the filter `{name}`: {e}"))?;
    Ok(Resolved { detector: d, journalmatch, customised })
}

/// The detector as the rules file's reader will see it.
pub fn spec(d: &DetectorOut) -> Spec {
    let lines =
        |v: &str| -> Vec<String> { v.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect() };
    Spec {
        prefregex: d.prefregex.as_ref().map(|p| p.trim().to_owned()),
        failregex: lines(&d.failregex),
        ignoreregex: d.ignoreregex.as_deref().map(lines).unwrap_or_default(),
        definitions: d.definitions.iter().map(|(k, v)| (k.clone(), v.trim().to_owned())).collect(),
        datepattern: d.datepattern.as_ref().map(|p| p.trim().to_owned()),
        maxlines: d.maxlines,
    }
}
