//! fail2ban's view of a configuration such as `jail` or `filter.d/sshd`: the files it reads, in
//! its order (`NAME.conf`, `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local`, each with its
//! `[INCLUDES] before`/`after` and its own `.local`), merged so that a later file wins per
//! option, and `%(name)s` interpolation with fail2ban's `section/name`, `known/name` and
//! `default/name` forms and `__name__` (`configreader.py`, `configparserinc.py`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::ini::{self, IniFile, ParseError, Value};

/// ConfigParser gives up past this depth of nested `%(name)s`.
const MAX_DEPTH: usize = 10;

/// The merged configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    pub defaults: BTreeMap<String, Value>,
    /// Sections in the order first seen; `KNOWN/NAME` holds the values later files replaced.
    pub sections: Vec<(String, BTreeMap<String, Value>)>,
}

/// Why a value cannot be interpolated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InterpError {
    #[error("{at}: `%({name})s` is not defined")]
    Missing { at: String, name: String },
    #[error("{at}: `%` must be followed by `%` or `(name)s`, found `{rest}`")]
    Syntax { at: String, rest: String },
    #[error("{at}: `%(name)s` nested more than {MAX_DEPTH} deep (a value that refers to itself?)")]
    Depth { at: String },
}

/// The files fail2ban reads for `name` under `dir` (`jail`, `filter.d/sshd`), includes expanded.
pub fn files_for(dir: &Path, name: &str) -> Vec<PathBuf> {
    let base = dir.join(name);
    let with_ext = |ext: &str| {
        let mut p = base.clone().into_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    let glob = |ext: &str| -> Vec<PathBuf> {
        let d = with_ext(".d");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        !n.starts_with('.') && n.ends_with(ext)
                    })
                    .map(|e| d.join(e.file_name()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut list = vec![with_ext(".conf")];
    list.extend(glob(".conf"));
    list.push(with_ext(".local"));
    list.extend(glob(".local"));
    list.retain(|p| p.exists());
    list
}

/// `file.conf` followed by its `file.local`, unless the list names it already.
fn with_locals(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in files {
        out.push(f.clone());
        let local = f.with_extension("local");
        if !files.contains(&local) && local.is_file() && local != *f {
            out.push(local);
        }
    }
    out
}

/// The files in reading order: each one's `before` includes, itself, its `after` includes.
fn expand(files: &[PathBuf], seen: &[PathBuf], parsed: &mut Vec<IniFile>) -> Result<Vec<PathBuf>, ParseError> {
    let mut out = Vec::new();
    for f in with_locals(files) {
        if !f.is_file() {
            continue;
        }
        let ini = ini::read(&f)?;
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut around = [Vec::new(), Vec::new()];
        for (i, key) in ["before", "after"].iter().enumerate() {
            let Some(v) = ini.get("INCLUDES", key) else { continue };
            for inc in v.text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let p = if Path::new(inc).is_absolute() { PathBuf::from(inc) } else { dir.join(inc) };
                if seen.contains(&p) {
                    continue;
                }
                let mut s = seen.to_vec();
                s.push(f.clone());
                around[i].extend(expand(&[p], &s, parsed)?);
            }
        }
        parsed.push(ini);
        let [before, after] = around;
        out.extend(before);
        out.push(f);
        out.extend(after);
    }
    Ok(out)
}

impl Config {
    /// Reads `name` under `dir` as fail2ban does. No file at all gives an empty configuration.
    pub fn read(dir: &Path, name: &str) -> Result<Config, ParseError> {
        Self::read_files(&files_for(dir, name))
    }

    pub fn read_files(files: &[PathBuf]) -> Result<Config, ParseError> {
        let mut parsed = Vec::new();
        let order = expand(files, &[], &mut parsed)?;
        let mut cfg = Config::default();
        for f in order {
            let ini = parsed.iter().find(|i| i.path == f).expect("every file in the order was parsed");
            cfg.merge(ini);
            cfg.files.push(f);
        }
        Ok(cfg)
    }

    fn merge(&mut self, ini: &IniFile) {
        for (name, opts) in &ini.sections {
            if name == "DEFAULT" {
                self.defaults.extend(opts.iter().cloned());
                continue;
            }
            let known: Vec<(String, Value)> = match self.section(name) {
                Some(old) => opts.iter().filter_map(|(k, _)| Some((k.clone(), old.get(k)?.clone()))).collect(),
                None => Vec::new(),
            };
            if self.section(name).is_some() {
                self.section_mut(&format!("KNOWN/{name}")).extend(known);
            }
            self.section_mut(name).extend(opts.iter().cloned());
        }
    }

    pub fn section(&self, name: &str) -> Option<&BTreeMap<String, Value>> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    fn section_mut(&mut self, name: &str) -> &mut BTreeMap<String, Value> {
        if let Some(i) = self.sections.iter().position(|(n, _)| n == name) {
            return &mut self.sections[i].1;
        }
        self.sections.push((name.to_owned(), BTreeMap::new()));
        &mut self.sections.last_mut().expect("just pushed").1
    }

    /// The section names, without `DEFAULT`, `INCLUDES` and the `KNOWN/` copies.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str()).filter(|n| *n != "INCLUDES" && !n.starts_with("KNOWN/"))
    }

    /// The raw value of `key` in `section` (vars first, then the section, then `[DEFAULT]`).
    pub fn raw<'a>(&'a self, section: &str, key: &str, vars: &'a BTreeMap<String, String>) -> Option<&'a str> {
        if let Some(v) = vars.get(key) {
            return Some(v);
        }
        self.section(section).and_then(|s| s.get(key)).or_else(|| self.defaults.get(key)).map(|v| v.text.as_str())
    }

    /// Where `key` of `section` was written (the section's own value, else `[DEFAULT]`'s).
    pub fn origin(&self, section: &str, key: &str) -> Option<&Value> {
        self.section(section).and_then(|s| s.get(key)).or_else(|| self.defaults.get(key))
    }

    /// The interpolated value of `key` in `section`, or `None` when it is not set.
    pub fn get(
        &self,
        section: &str,
        key: &str,
        vars: &BTreeMap<String, String>,
    ) -> Option<Result<String, InterpError>> {
        let raw = self.raw(section, key, vars)?;
        Some(self.interpolate(section, key, raw, vars))
    }

    /// ConfigParser's `%(name)s` interpolation of `raw` in the context of `section`.
    pub fn interpolate(
        &self,
        section: &str,
        key: &str,
        raw: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<String, InterpError> {
        let mut out = String::new();
        self.some(section, key, raw, vars, 1, &mut out)?;
        Ok(out)
    }

    fn some(
        &self,
        section: &str,
        key: &str,
        mut rest: &str,
        vars: &BTreeMap<String, String>,
        depth: usize,
        out: &mut String,
    ) -> Result<(), InterpError> {
        let at = || format!("[{section}] {key}");
        if depth > MAX_DEPTH {
            return Err(InterpError::Depth { at: at() });
        }
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(r) = rest.strip_prefix("%%") {
                out.push('%');
                rest = r;
                continue;
            }
            let name = rest
                .strip_prefix("%(")
                .and_then(|r| r.find(")s").filter(|&e| e > 0 && !r[..e].contains(')')).map(|e| &r[..e]));
            let Some(name) = name else {
                return Err(InterpError::Syntax { at: at(), rest: rest.chars().take(30).collect() });
            };
            rest = &rest[name.len() + 4..];
            let name = name.to_lowercase();
            let v = self.lookup(section, &name, vars).ok_or_else(|| InterpError::Missing { at: at(), name })?;
            if v.contains('%') {
                self.some(section, key, &v, vars, depth + 1, out)?;
            } else {
                out.push_str(&v);
            }
        }
        out.push_str(rest);
        Ok(())
    }

    /// What `%(name)s` stands for in `section`: `__name__`, `sec/opt` (raw, from that section,
    /// else `[DEFAULT]`), `known/opt` (the value a later file replaced, else `[DEFAULT]`'s),
    /// `default/opt`, or a plain option.
    fn lookup(&self, section: &str, name: &str, vars: &BTreeMap<String, String>) -> Option<String> {
        if let Some(v) = vars.get(name) {
            return Some(v.clone());
        }
        if name == "__name__" {
            return Some(section.to_owned());
        }
        if let Some(v) = self.section(section).and_then(|s| s.get(name)).or_else(|| self.defaults.get(name)) {
            return Some(v.text.clone());
        }
        let (sec, opt) = name.split_once('/')?;
        let found = match sec {
            "default" => None,
            "known" => self.section(&format!("KNOWN/{section}")).and_then(|s| s.get(opt)),
            _ => {
                let s = self.sections.iter().find(|(n, _)| n.to_lowercase() == sec).map(|(_, s)| s)?;
                s.get(opt)
            }
        };
        found.or_else(|| self.defaults.get(opt)).map(|v| v.text.clone())
    }
}
