//! `[crowdsec]`: sipwall as a bouncer of a CrowdSec Local API (it enforces the decisions) and as
//! a machine (it pushes its jails' bans as alerts with decisions, for every other bouncer).

use std::{path::Path, path::PathBuf, time::Duration};

use super::{
    alerts::{read_ca_file, read_file, CaFile, Secret},
    reader::{Durations, Reader, Section},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crowdsec {
    /// The Local API's base URL, ending in `/`.
    pub api_url: String,
    /// Pulling decisions; `None` without `api_key_file`.
    pub bouncer: Option<Bouncer>,
    /// Pushing bans; `None` without `credentials_file`.
    pub machine: Option<Machine>,
    pub ca_file: Option<CaFile>,
    /// Per request.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bouncer {
    pub key: Secret,
    pub key_file: PathBuf,
    /// Time between two pulls of the decision stream.
    pub every: Duration,
    /// Only decisions of these origins (`crowdsec`, `cscli`, `CAPI`, `lists`, …); empty: all.
    pub origins: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub login: String,
    pub password: Secret,
    pub credentials_file: PathBuf,
    /// Jails whose bans are pushed; empty: every jail.
    pub jails: Vec<String>,
}

impl Machine {
    pub fn pushes(&self, jail: &str) -> bool {
        self.jails.is_empty() || self.jails.iter().any(|j| j == jail)
    }
}

/// The prefix of the scenario of a pushed ban: `sipwall/<jail>`.
pub const SCENARIO_PREFIX: &str = "sipwall/";

const KEYS: &[&str] =
    &["api_url", "api_key_file", "update_frequency", "origins", "credentials_file", "push_jails", "ca_file", "timeout"];
pub const DEFAULT_EVERY: Duration = Duration::from_secs(10);
pub const MIN_EVERY: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Crowdsec {
    /// One line for `sipwall check`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = &self.bouncer {
            let origins = if b.origins.is_empty() {
                "every origin".to_owned()
            } else {
                format!("origins {}", b.origins.join(", "))
            };
            parts.push(format!("pulls decisions every {} ({origins})", crate::duration::format(Some(b.every))));
        }
        if let Some(m) = &self.machine {
            let jails = if m.jails.is_empty() { "every jail".to_owned() } else { m.jails.join(", ") };
            parts.push(format!("pushes the bans of {jails} as machine {}", m.login));
        }
        format!("crowdsec: {}: {}", self.api_url, parts.join("; "))
    }
}

/// The values of the credentials file `cscli machines add NAME -f FILE` writes: top-level
/// `key: value` lines (`url`, `login`, `password`), values bare or quoted.
pub fn credentials(text: &str) -> Result<(Option<String>, String, String), String> {
    let (mut url, mut login, mut password) = (None, None, None);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {}: expected `key: value`", i + 1));
        };
        let value =
            unquote(value.trim()).ok_or_else(|| format!("line {}: the value of `{key}` is badly quoted", i + 1))?;
        match key.trim() {
            "url" => url = Some(value),
            "login" => login = Some(value),
            "password" => password = Some(value),
            _ => {}
        }
    }
    match (login, password) {
        (Some(l), Some(p)) if !l.is_empty() && !p.is_empty() => Ok((url.filter(|u| !u.is_empty()), l, p)),
        _ => Err("it needs `login:` and `password:` (write it with `cscli machines add NAME --auto -f FILE`)".into()),
    }
}

/// A YAML scalar: bare (a ` #` comment cut off), 'single' (`''` for a quote) or "double" quoted.
fn unquote(v: &str) -> Option<String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.rfind('\'')?;
        return Some(rest[..end].replace("''", "'"));
    }
    if let Some(rest) = v.strip_prefix('"') {
        let end = rest.rfind('"')?;
        return Some(rest[..end].replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    Some(v.split(" #").next().unwrap_or("").trim().to_owned())
}

/// The API's URL, with a final `/`; `None` (reported) when it is not an http(s) URL with a host.
fn check_url(r: &mut Reader, url: &str, span: Option<std::ops::Range<usize>>) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Some(if url.ends_with('/') { url.to_owned() } else { format!("{url}/") })
        }
        Ok(_) => {
            r.error(span, "`api_url` must be http:// or https:// with a host, like \"http://127.0.0.1:8080/\"");
            None
        }
        Err(e) => {
            r.error(span, format!("`api_url` is not a URL ({e}): write it like \"http://127.0.0.1:8080/\""));
            None
        }
    }
}

/// One line of a secret file, as `echo secret > file` writes it.
fn one_line(r: &mut Reader, key: &str, path: &Path, bytes: Vec<u8>, span: std::ops::Range<usize>) -> Option<Secret> {
    let text = String::from_utf8(bytes).ok();
    let line = text.as_deref().map(|t| t.trim_end_matches(['\n', '\r']));
    match line {
        Some(l) if !l.is_empty() && !l.contains(['\n', '\r', ' ']) => Some(Secret(l.to_owned())),
        _ => {
            r.error(Some(span), format!("{key} {} must hold the key alone on one line", path.display()));
            None
        }
    }
}

pub fn read(r: &mut Reader, s: &Section, base: &Path, jails: &[&str]) -> Option<Crowdsec> {
    s.check_keys(r, KEYS);
    let url = s.string(r, "api_url");
    let timeout = s.duration(r, "timeout", Durations::Positive).flatten().unwrap_or(DEFAULT_TIMEOUT);
    let ca_file = if s.has("ca_file") { read_ca_file(r, s, base) } else { None };
    let every = s.duration(r, "update_frequency", Durations::Positive).flatten().unwrap_or(DEFAULT_EVERY);
    if every < MIN_EVERY {
        r.error(s.value_span("update_frequency"), "`update_frequency` must be at least 1s");
    }
    let origins: Vec<String> = s.strings(r, "origins").unwrap_or_default().into_iter().map(|(o, _)| o).collect();
    let mut push_jails = Vec::new();
    for (j, span) in s.strings(r, "push_jails").unwrap_or_default() {
        if !jails.contains(&j.as_str()) {
            r.error(Some(span), format!("`push_jails`: there is no jail `{j}`; the jails are: {}", jails.join(", ")));
        }
        push_jails.push(j);
    }
    let bouncer = if s.has("api_key_file") {
        let (path, bytes, span) = read_file(r, s, "api_key_file", base)?;
        let key = one_line(r, "api_key_file", &path, bytes, span)?;
        Some(Bouncer { key, key_file: path, every, origins })
    } else {
        for k in ["update_frequency", "origins"] {
            if s.has(k) {
                r.error(s.key_span(k), format!("`{k}` is for pulling decisions, which needs `api_key_file`"));
            }
        }
        None
    };
    let mut file_url = None;
    let machine = if s.has("credentials_file") {
        let (path, bytes, span) = read_file(r, s, "credentials_file", base)?;
        let text = String::from_utf8_lossy(&bytes);
        match credentials(&text) {
            Ok((u, login, password)) => {
                file_url = u;
                Some(Machine { login, password: Secret(password), credentials_file: path, jails: push_jails })
            }
            Err(e) => {
                r.error(Some(span), format!("credentials_file {}: {e}", path.display()));
                return None;
            }
        }
    } else {
        if s.has("push_jails") {
            r.error(s.key_span("push_jails"), "`push_jails` is for pushing bans, which needs `credentials_file`");
        }
        None
    };
    if bouncer.is_none() && machine.is_none() {
        r.error(
            s.span.clone(),
            "[crowdsec] needs `api_key_file` (to enforce decisions, from `cscli bouncers add NAME`), \
             `credentials_file` (to push bans, from `cscli machines add NAME --auto -f FILE`), or both",
        );
        return None;
    }
    let api_url = match (url, file_url) {
        (Some((u, span)), _) => check_url(r, &u, Some(span))?,
        (None, Some(u)) => check_url(r, &u, s.value_span("credentials_file"))?,
        (None, None) => {
            r.error(s.span.clone(), "[crowdsec] needs `api_url`, like api_url = \"http://127.0.0.1:8080/\"");
            return None;
        }
    };
    Some(Crowdsec { api_url, bouncer, machine, ca_file, timeout })
}
