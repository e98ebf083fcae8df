//! fail2ban's annotated sample logs (`tests/files/logs/NAME` in Debian's `fail2ban` package),
//! replayed the way fail2ban's own `samplestestcase.py` does: `# failJSON:` annotates the next
//! line, `# filterOptions:` starts a block judged by one filter per option set (each keeping its
//! state), `# fileOptions:` adds options to every set, `# addFILE:` appends another file, and
//! `constraint` / `test.condition` restrict lines or blocks to some filters.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use sipwall::detection::detect::{Detector, Event};

/// Where Debian's fail2ban package keeps its sample logs.
pub const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

pub type Opts = Map<String, Value>;

/// One judged line: what fail2ban expects and what the detector said.
#[derive(Debug)]
pub struct Outcome {
    pub file: String,
    pub lnnum: usize,
    pub filter: String,
    pub line: String,
    /// `None`: no failure; `Some(None)`: a failure of any host; `Some(Some(h))`: a failure of `h`.
    pub expected: Option<Option<String>>,
    pub got: Vec<Event>,
}

impl Outcome {
    /// Whether the detector agrees with fail2ban's annotation.
    pub fn agrees(&self) -> bool {
        match (&self.expected, self.got.as_slice()) {
            (None, []) => true,
            (Some(None), [ev]) => event_host(ev).is_some(),
            (Some(Some(want)), [ev]) => event_host(ev).is_some_and(|h| same_host(&h, want)),
            _ => false,
        }
    }
}

/// The host an event names: an address, or a host name as written.
pub fn event_host(ev: &Event) -> Option<String> {
    match ev {
        Event::Failure(f) => Some(f.host.to_string()),
        Event::Hostname { name, .. } => Some(name.clone()),
        Event::Ambiguous { .. } => None,
    }
}

/// Addresses compare as addresses (`192.030.0.6` is 192.30.0.6), names as text.
fn same_host(got: &str, want: &str) -> bool {
    match (got.parse::<IpAddr>(), sipwall::detection::detect::host::addr(want)) {
        (Ok(g), Some(w)) => g == w,
        _ => got == want,
    }
}

/// Evaluates the constraint expressions the sample files use.
fn holds(expr: &str, name: &str, opts: &Opts) -> bool {
    let expr = expr.trim();
    if let Some((a, b)) = expr.split_once(" and ") {
        return holds(a, name, opts) && holds(b, name, opts);
    }
    let (lhs, op, rhs) = ["==", "!="]
        .iter()
        .find_map(|op| expr.split_once(op).map(|(l, r)| (l.trim(), *op, r.trim())))
        .unwrap_or_else(|| panic!("unsupported constraint `{expr}`"));
    let value = if lhs == "name" {
        Some(name.to_owned())
    } else if let Some(key) = lhs.strip_prefix("opts.get('").and_then(|k| k.strip_suffix("')")) {
        opts.get(key).and_then(Value::as_str).map(str::to_owned)
    } else {
        panic!("unsupported constraint `{expr}`")
    };
    let rhs = rhs.trim_matches(|c| c == '\'' || c == '"');
    (value.as_deref() == Some(rhs)) == (op == "==")
}

/// Replays `file` (and the files it adds) through detectors made by `make` for the filter
/// `name`, one detector per option set, kept for the whole replay as fail2ban keeps its filters.
pub fn replay(name: &str, file: &str, make: &dyn Fn(&Opts) -> Box<dyn Detector>) -> Vec<Outcome> {
    let mut files = vec![file.to_owned()];
    let mut filters: HashMap<String, Box<dyn Detector>> = HashMap::new();
    let mut outcomes = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let fname = files[i].clone();
        i += 1;
        let path = PathBuf::from(LOGS).join(&fname);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut common = Opts::new();
        let mut active: Vec<(String, Opts)> = Vec::new();
        let mut ignore_block = false;
        let mut annotation: Option<Opts> = None;
        for (idx, line) in text.lines().enumerate() {
            let lnnum = idx + 1;
            if let Some((kind, json)) = directive(line) {
                let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{fname}:{lnnum}: {e}"));
                match kind {
                    "fileOptions" => common = value.as_object().cloned().unwrap_or_default(),
                    "addFILE" => files.push(value.as_str().expect("addFILE names a file").to_owned()),
                    "filterOptions" => {
                        active.clear();
                        ignore_block = false;
                        let sets = match value {
                            Value::Array(a) => a,
                            v => vec![v],
                        };
                        for set in sets {
                            let mut opts = common.clone();
                            opts.extend(set.as_object().cloned().unwrap_or_default());
                            if let Some(cond) = opts.get("test.condition").and_then(Value::as_str) {
                                ignore_block = !holds(cond, name, &opts);
                            }
                            if !ignore_block {
                                active.push((filter_name(name, &opts), opts));
                            }
                        }
                    }
                    _ => annotation = Some(value.as_object().cloned().unwrap_or_default()),
                }
                continue;
            }
            let Some(fail) = annotation.take() else { continue };
            if ignore_block || line.starts_with('#') {
                continue;
            }
            if active.is_empty() {
                active.push((name.to_owned(), common.clone()));
            }
            for (fname_key, opts) in &active {
                if let Some(c) = fail.get("constraint").and_then(Value::as_str) {
                    if !holds(c, name, opts) {
                        continue;
                    }
                }
                let detector = filters.entry(fname_key.clone()).or_insert_with(|| make(opts));
                let mut l = line.to_owned();
                if opts.get("logtype").and_then(Value::as_str) == Some("journal") {
                    if let Some(p) = opts.get("test.prefix-line").and_then(Value::as_str) {
                        l = format!("{p}{l}");
                    }
                }
                let mut got = Vec::new();
                detector.feed(&l, &mut got);
                let matched = fail.get("match").and_then(Value::as_bool).unwrap_or(false);
                let expected = matched.then(|| fail.get("host").and_then(Value::as_str).map(str::to_owned));
                outcomes.push(Outcome {
                    file: fname.clone(),
                    lnnum,
                    filter: fname_key.clone(),
                    line: l,
                    expected,
                    got,
                });
            }
        }
    }
    outcomes
}

fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches('#').trim_start();
    if !line.starts_with('#') {
        return None;
    }
    for kind in ["failJSON", "fileOptions", "filterOptions", "addFILE"] {
        if let Some(json) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(':')) {
            return Some((kind, json));
        }
    }
    None
}

fn filter_name(name: &str, opts: &Opts) -> String {
    let mut keys: Vec<_> = opts.iter().filter(|(k, _)| !k.starts_with("test.")).collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = name.to_owned();
    for (k, v) in keys {
        s.push_str(&format!("[{k}={v}]"));
    }
    s
}

/// Whether the sample logs are installed; outside CI their absence skips loudly.
pub fn available(test: &str) -> bool {
    if Path::new(LOGS).is_dir() {
        return true;
    }
    if crate::ci() {
        panic!("{test}: {LOGS} is missing; scripts/setup installs Debian's fail2ban package");
    }
    eprintln!("\n*** SKIPPED {test}: {LOGS} is missing (install Debian's fail2ban package). ***\n");
    false
}

/// Where Debian's fail2ban package keeps its filters.
pub const FILTERS: &str = "/etc/fail2ban/filter.d";

/// The sections of a fail2ban `.conf` file: name → key → value (continuation lines joined
/// with newlines, as ConfigParser does).
pub fn ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    let mut key: Option<String> = None;
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim_start().starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            if let Some(k) = &key {
                let v = sections.entry(section.clone()).or_default().entry(k.clone()).or_default();
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some(name) = line.trim().strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_owned();
            key = None;
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim().to_owned();
            sections.entry(section.clone()).or_default().insert(k.clone(), v.trim().to_owned());
            key = Some(k);
        }
    }
    sections
}

/// A fail2ban filter file as a sipwall custom detector, the way a user pastes it, unchanged:
/// `prefregex`, `failregex`, `ignoreregex`, `datepattern` and `maxlines` of `[Definition]`
/// become those keys, every other `[DEFAULT]`, `[Definition]` and `[Init]` value a definition, and the
/// sample's filter options (`mode`, `logtype`, …) definitions too, as fail2ban's
/// `filter = NAME[mode=…]` sets them. For a `logtype` with a section of its own in the file
/// (`[lt_journal]`), that section's values are pasted over the others, `%(known/NAME)s` being
/// the value they replace.
pub fn pasted_filter(path: &Path, opts: &Opts) -> sipwall::detection::detect::custom::Spec {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sections = ini(&text);
    let mut defs: HashMap<String, String> = HashMap::new();
    for s in ["DEFAULT", "Definition", "Init"] {
        if let Some(kv) = sections.get(s) {
            defs.extend(kv.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    for (k, v) in opts.iter().filter(|(k, _)| !k.starts_with("test.")) {
        let v = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
        defs.insert(k.clone(), v);
    }
    if let Some(logtype) = opts.get("logtype").and_then(Value::as_str) {
        if let Some(kv) = sections.get(&format!("lt_{logtype}")) {
            for (k, v) in kv {
                let known = defs.get(k).cloned().or_else(|| {
                    sipwall::detection::detect::custom::COMMON.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string())
                });
                let v = v.replace(&format!("%(known/{k})s"), &known.unwrap_or_default());
                defs.insert(k.clone(), v);
            }
        }
    }
    let lines = |v: Option<String>| -> Vec<String> {
        v.map(|v| v.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
    };
    let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    sipwall::detection::detect::custom::Spec {
        prefregex: nonempty(defs.remove("prefregex")),
        failregex: lines(defs.remove("failregex")),
        ignoreregex: lines(defs.remove("ignoreregex")),
        datepattern: nonempty(defs.remove("datepattern")),
        maxlines: defs.remove("maxlines").map(|m| m.trim().parse().unwrap_or_else(|e| panic!("maxlines {m}: {e}"))),
        definitions: {
            defs.remove("journalmatch");
            defs
        },
    }
}
