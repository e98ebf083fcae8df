//! Detectors written as fail2ban filters: `prefregex`, `failregex`, `ignoreregex` and the
//! filter's definitions, pasted from a `filter.d/*.conf` file into the rules file.
//!
//! As in fail2ban, the date is taken out of the line first, `prefregex` (if any) must match
//! and its `<F-CONTENT>` is what `failregex` and `ignoreregex` see, the first `failregex` that
//! matches wins, a match with `<F-NOFAIL>` is no failure, and lines with the same `<F-MLFID>`
//! pool what they matched. The host comes from `<HOST>`, `<ADDR>`, `<IP4>` or `<IP6>`; a host
//! name (`<HOST>` matching a name) is reported, never resolved.

mod date;
mod definitions;
mod multiline;
mod template;
mod translate;

use std::{sync::Arc, time::Instant};

use fancy_regex::{Captures, Regex};

pub use self::definitions::COMMON;
use self::{
    date::{Dates, State},
    definitions::Definitions,
    multiline::{Connections, Groups, Merged},
};
use super::{host, Detector, Event, Failure, Proof};
use crate::rules::jails::Compiles;
pub use crate::rules::jails::{CompileError, Spec};

/// One compiled expression and the names of its groups.
#[derive(Debug)]
struct Expr {
    regex: Regex,
    names: Vec<String>,
}

impl Expr {
    fn groups(&self, caps: &Captures<'_, str>, out: &mut Groups) {
        for n in &self.names {
            if let Some(m) = caps.name(n) {
                out.insert(n.clone(), m.as_str().to_owned());
            }
        }
    }
}

/// A filter compiled once, shared by every source that uses it.
#[derive(Debug)]
pub struct Filter {
    dates: Dates,
    prefregex: Option<Expr>,
    failregex: Vec<Expr>,
    ignoreregex: Vec<Expr>,
}

/// Groups that identify a failure (fail2ban's `FAILURE_ID_PRESENTS`).
const ID_GROUPS: [&str; 5] = ["ip4", "ip6", "dns", "fid", "mlfid"];

fn compile(field: &str, text: &str) -> Result<Expr, CompileError> {
    let err = |message: String| CompileError { field: field.to_owned(), message };
    let regex = translate::tags(text).map_err(|e| err(e.to_string()))?;
    if regex.trim().is_empty() {
        return Err(err("the expression is empty".into()));
    }
    let regex = Regex::new(&regex).map_err(|e| err(format!("{e} (in the expression `{regex}`)")))?;
    let names = regex.capture_names().flatten().map(str::to_owned).collect();
    Ok(Expr { regex, names })
}

/// The expressions of a `failregex` or `ignoreregex`, compiled, with the index of the written
/// line each came from and its text after substitution.
fn compile_all(
    defs: &Definitions<'_>,
    key: &str,
    lines: &[String],
) -> Result<Vec<(usize, String, Expr)>, CompileError> {
    let exprs = defs
        .expressions(lines)
        .map_err(|(i, e)| CompileError { field: format!("{key}[{i}]"), message: e.to_string() })?;
    exprs.into_iter().map(|(i, e)| compile(&format!("{key}[{i}]"), &e).map(|x| (i, e, x))).collect()
}

impl Filter {
    pub fn new(spec: &Spec) -> Result<Filter, CompileError> {
        let defs = Definitions::new(&spec.definitions);
        let fail = |field: &str, message: String| CompileError { field: field.into(), message };
        if let Some(n) = spec.maxlines.filter(|n| *n != 1) {
            return Err(fail(
                "maxlines",
                format!(
                    "{n}: sipwall judges each line on its own (with `<F-MLFID>` joining lines of one \
                     connection); a filter that needs fail2ban's buffer of several lines cannot be used"
                ),
            ));
        }
        let datepattern = match &spec.datepattern {
            Some(p) => defs.resolve(p),
            None => defs.resolve("%(datepattern)s"),
        }
        .map_err(|e| fail("datepattern", e.to_string()))?;
        let dates = Dates::new(Some(&datepattern)).map_err(|e| fail("datepattern", e.to_string()))?;
        let prefregex = match &spec.prefregex {
            Some(p) => {
                let lines =
                    defs.expressions(std::slice::from_ref(p)).map_err(|(_, e)| fail("prefregex", e.to_string()))?;
                let [(_, text)] = lines.as_slice() else {
                    return Err(fail(
                        "prefregex",
                        format!("must be one expression, but its definitions make it {}", lines.len()),
                    ));
                };
                let r = compile("prefregex", text)?;
                if !r.names.iter().any(|n| n == "content") {
                    return Err(fail("prefregex", "must mark the message with <F-CONTENT>…</F-CONTENT>".into()));
                }
                Some(r)
            }
            None => None,
        };
        let failregex = compile_all(&defs, "failregex", &spec.failregex)?;
        if failregex.is_empty() {
            return Err(fail("failregex", "at least one expression is needed".into()));
        }
        let pref_id = prefregex.as_ref().is_some_and(|p| p.names.iter().any(|n| ID_GROUPS.contains(&n.as_str())));
        if let Some((i, text, _)) =
            failregex.iter().find(|(_, _, r)| !pref_id && !r.names.iter().any(|n| ID_GROUPS.contains(&n.as_str())))
        {
            return Err(fail(
                &format!("failregex[{i}]"),
                format!("`{text}` names no host: use <HOST>, <ADDR>, <IP4> or <IP6>"),
            ));
        }
        let failregex = failregex.into_iter().map(|(_, _, r)| r).collect();
        let ignoreregex =
            compile_all(&defs, "ignoreregex", &spec.ignoreregex)?.into_iter().map(|(_, _, r)| r).collect();
        Ok(Filter { dates, prefregex, failregex, ignoreregex })
    }

    /// The groups of the first failure expression that matches `line`, unless an ignore
    /// expression matches too; prefregex's groups included.
    fn groups(&self, line: &str, dates: &mut State) -> Option<Groups> {
        let text = self.dates.strip(line.trim_end_matches(['\r', '\n']), dates);
        let mut groups = Groups::new();
        let content = match &self.prefregex {
            Some(p) => {
                let caps = p.regex.captures(text.as_ref()).ok()??;
                p.groups(&caps, &mut groups);
                groups.remove("content")?
            }
            None => text.into_owned(),
        };
        let (expr, caps) =
            self.failregex.iter().find_map(|r| r.regex.captures(content.as_str()).ok().flatten().map(|c| (r, c)))?;
        if self.ignoreregex.iter().any(|r| r.regex.is_match(content.as_str()).unwrap_or(false)) {
            return None;
        }
        expr.groups(&caps, &mut groups);
        // fail2ban's `alt_` groups fill the plain one when it is empty
        let alts: Vec<(String, String)> = groups
            .iter()
            .filter_map(|(k, v)| {
                let base = k.strip_prefix("alt_")?;
                let base = base.trim_end_matches(|c: char| c.is_ascii_digit());
                let base = if base.len() < k.len() - 4 { base.strip_suffix('_').unwrap_or(base) } else { base };
                Some((base.to_owned(), v.clone()))
            })
            .collect();
        for (k, v) in alts {
            if !v.is_empty() && groups.get(&k).is_none_or(String::is_empty) {
                groups.insert(k, v);
            }
        }
        Some(groups)
    }

    /// The event a line stands for on its own, with no earlier lines (`<F-MLFID>` ignored,
    /// the date templates in their first order).
    pub fn judge(&self, line: &str) -> Option<Event> {
        let groups = self.groups(line, &mut State::default())?;
        if groups.get("nofail").is_some_and(|v| !v.is_empty()) {
            return None;
        }
        event(&groups)
    }
}

impl Compiles for Spec {
    fn compiles(&self) -> Result<(), CompileError> {
        Filter::new(self).map(drop)
    }
}

fn event(g: &Groups) -> Option<Event> {
    let user = g.get("user").cloned();
    let rule = "custom";
    for k in ["ip4", "ip6"] {
        if let Some(m) = g.get(k) {
            let host = host::addr(m)?;
            return Some(Event::Failure(Failure { host, user, attempts: 1, rule, proof: Proof::Proven }));
        }
    }
    let name = g.get("dns").or_else(|| g.get("fid"))?;
    Some(match host::addr_port(name) {
        Some(host) => Event::Failure(Failure { host, user, attempts: 1, rule, proof: Proof::Proven }),
        None => Event::Hostname { name: name.clone(), rule },
    })
}

/// A detector running one filter, remembering connections for `<F-MLFID>` and which date
/// template its log uses.
pub struct Custom {
    filter: Arc<Filter>,
    connections: Connections,
    dates: State,
}

impl Custom {
    pub fn new(filter: Arc<Filter>) -> Custom {
        Custom { filter, connections: Connections::default(), dates: State::default() }
    }
}

impl Detector for Custom {
    fn feed(&mut self, line: &str, out: &mut Vec<Event>) {
        let Some(groups) = self.filter.groups(line, &mut self.dates) else { return };
        let merged = match groups.get("mlfid").cloned() {
            Some(id) => match self.connections.merge(&id, groups, Instant::now()) {
                Merged::Failure(g) => g,
                Merged::Nothing => return,
            },
            None if groups.get("nofail").is_some_and(|v| !v.is_empty()) => return,
            None => groups,
        };
        out.extend(event(&merged));
    }
}

#[cfg(test)]
mod date_tests;
#[cfg(test)]
mod tests;
