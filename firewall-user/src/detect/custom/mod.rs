//! Detectors written as fail2ban filters: `prefregex`, `failregex`, `ignoreregex` and the
//! filter's definitions, pasted from a `filter.d/*.conf` file into the rules file.
//!
//! As in fail2ban, a leading timestamp is cut off first, `prefregex` (if any) must match and
//! its `<F-CONTENT>` is what `failregex` and `ignoreregex` see, the first `failregex` that
//! matches wins, and a match with `<F-NOFAIL>` is no failure. The host comes from `<HOST>`,
//! `<ADDR>`, `<IP4>` or `<IP6>`; a host name (`<HOST>` matching a name) is reported, never
//! resolved. Custom detectors judge each line on its own: `<F-MLFID>` and the other multi-line
//! tags are accepted but do not join lines.

mod translate;

use std::{collections::HashMap, sync::Arc};

use fancy_regex::{Captures, Regex};

use super::{host, prefix, Detector, Event, Failure};

/// A filter as written in the rules file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub prefregex: Option<String>,
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub definitions: HashMap<String, String>,
}

/// What is wrong with a filter, and where.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CompileError {
    /// `prefregex`, `failregex[2]`, …
    pub field: String,
    pub message: String,
}

/// A filter compiled once, shared by every source that uses it.
#[derive(Debug)]
pub struct Filter {
    prefregex: Option<Regex>,
    failregex: Vec<Regex>,
    ignoreregex: Vec<Regex>,
}

fn compile(defs: &translate::Definitions, field: String, text: &str) -> Result<Regex, CompileError> {
    let err = |message: String| CompileError { field: field.clone(), message };
    let expanded = defs.interpolate(text).map_err(|e| err(e.to_string()))?;
    let regex = translate::tags(&expanded).map_err(|e| err(e.to_string()))?;
    if regex.trim().is_empty() {
        return Err(err("the expression is empty".into()));
    }
    Regex::new(&regex).map_err(|e| err(format!("{e} (in the expression `{regex}`)")))
}

impl Filter {
    pub fn new(spec: &Spec) -> Result<Filter, CompileError> {
        let defs = translate::Definitions::new(&spec.definitions);
        if spec.failregex.is_empty() {
            return Err(CompileError {
                field: "failregex".into(),
                message: "at least one expression is needed".into(),
            });
        }
        let prefregex = match &spec.prefregex {
            Some(p) => {
                let r = compile(&defs, "prefregex".into(), p)?;
                if !r.capture_names().any(|n| n == Some("content")) {
                    return Err(CompileError {
                        field: "prefregex".into(),
                        message: "must mark the message with <F-CONTENT>…</F-CONTENT>".into(),
                    });
                }
                Some(r)
            }
            None => None,
        };
        let mut failregex = Vec::new();
        for (i, f) in spec.failregex.iter().enumerate() {
            let r = compile(&defs, format!("failregex[{i}]"), f)?;
            let names: Vec<_> = r.capture_names().flatten().collect();
            if !names.iter().any(|n| matches!(*n, "ip4" | "ip6" | "dns" | "fid")) {
                return Err(CompileError {
                    field: format!("failregex[{i}]"),
                    message: "names no host: use <HOST>, <ADDR>, <IP4> or <IP6>".into(),
                });
            }
            failregex.push(r);
        }
        let ignoreregex = spec
            .ignoreregex
            .iter()
            .enumerate()
            .map(|(i, f)| compile(&defs, format!("ignoreregex[{i}]"), f))
            .collect::<Result<_, _>>()?;
        Ok(Filter { prefregex, failregex, ignoreregex })
    }

    /// The event a line stands for, if any.
    pub fn judge(&self, line: &str) -> Option<Event> {
        let body = prefix::strip_time(line.trim_end_matches(['\r', '\n']));
        let content = match &self.prefregex {
            Some(p) => {
                let caps = p.captures(body).ok()??;
                caps.name("content")?.as_str()
            }
            None => body,
        };
        let caps = self.failregex.iter().find_map(|r| r.captures(content).ok().flatten())?;
        if self.ignoreregex.iter().any(|r| r.is_match(content).unwrap_or(false)) {
            return None;
        }
        event(&caps)
    }
}

fn event(caps: &Captures<'_, str>) -> Option<Event> {
    if caps.name("nofail").is_some() {
        return None;
    }
    let user = caps.name("user").or_else(|| caps.name("alt_user")).map(|m| m.as_str().to_owned());
    let rule = "custom";
    for g in ["ip4", "ip6"] {
        if let Some(m) = caps.name(g) {
            let host = host::addr(m.as_str())?;
            return Some(Event::Failure(Failure { host, user, attempts: 1, rule }));
        }
    }
    let name = caps.name("dns").or_else(|| caps.name("fid"))?.as_str();
    Some(match host::addr_port(name) {
        Some(host) => Event::Failure(Failure { host, user, attempts: 1, rule }),
        None => Event::Hostname { name: name.to_owned(), rule },
    })
}

/// A detector running one filter.
pub struct Custom(pub Arc<Filter>);

impl Detector for Custom {
    fn feed(&mut self, line: &str, out: &mut Vec<Event>) {
        out.extend(self.0.judge(line));
    }
}

#[cfg(test)]
mod tests;
