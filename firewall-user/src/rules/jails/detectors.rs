//! `[detectors.NAME]`: a fail2ban filter pasted as a custom detector, checked as it is read.

use std::collections::HashMap;

use super::{kind::BUILTIN_DETECTORS, string_or_list, valid_name};
use crate::rules::reader::{Reader, Section};

/// A filter as written in the rules file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub prefregex: Option<String>,
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub definitions: HashMap<String, String>,
    /// fail2ban's `datepattern`; `None` is `common.conf`'s `{^LN-BEG}`.
    pub datepattern: Option<String>,
    /// fail2ban's `maxlines`; only 1 (each line on its own) is supported.
    pub maxlines: Option<u32>,
}

/// What is wrong with a filter, and where.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CompileError {
    /// `prefregex`, `failregex[2]`, `datepattern`, …
    pub field: String,
    pub message: String,
}

/// Whether a filter compiles. Compiling is the custom detector's (`detection::detect::custom`
/// implements this for [`Spec`]); the reader asks as it reads `[detectors.NAME]`, so a filter
/// that does not compile is reported at the key that holds it and the rules file is rejected.
pub trait Compiles {
    fn compiles(&self) -> Result<(), CompileError>;
}

const DETECTOR_KEYS: &[&str] =
    &["prefregex", "failregex", "ignoreregex", "definitions", "daemon", "datepattern", "maxlines"];

pub(super) fn read_detector(
    r: &mut Reader,
    s: &Section,
    name: &str,
    span: Option<std::ops::Range<usize>>,
) -> Option<Spec> {
    s.check_keys(r, DETECTOR_KEYS);
    if !valid_name(name) || BUILTIN_DETECTORS.contains(&name) {
        r.error(
            span.clone(),
            format!(
                "detector name `{name}` must be lower case and not one of the built-in ones ({})",
                BUILTIN_DETECTORS.join(", ")
            ),
        );
    }
    // fail2ban writes several expressions as lines of one value
    let lines = |v: Vec<(String, std::ops::Range<usize>)>| -> Vec<String> {
        v.into_iter()
            .flat_map(|(t, _)| {
                t.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect::<Vec<_>>()
            })
            .collect()
    };
    let mut spec = Spec {
        prefregex: s.string(r, "prefregex").map(|(t, _)| t.trim().to_owned()).filter(|t| !t.is_empty()),
        failregex: lines(string_or_list(r, s, "failregex").unwrap_or_default()),
        ignoreregex: lines(string_or_list(r, s, "ignoreregex").unwrap_or_default()),
        definitions: Default::default(),
        datepattern: s.string(r, "datepattern").map(|(t, _)| t.trim().to_owned()).filter(|t| !t.is_empty()),
        maxlines: s.uint(r, "maxlines", 1, 1000).map(|n| n as u32),
    };
    if let Some(d) = s.table(r, "definitions", "definitions") {
        for (k, item) in d.table.iter() {
            match item.as_str() {
                Some(v) => {
                    spec.definitions.insert(k.to_owned(), v.trim().to_owned());
                }
                None => r.error(d.value_span(k), format!("definition `{k}` must be a string")),
            }
        }
    }
    if let Some((daemon, _)) = s.string(r, "daemon") {
        spec.definitions.insert("_daemon".into(), daemon);
    }
    match spec.compiles() {
        Ok(()) => Some(spec),
        Err(e) => {
            let key = e.field.split('[').next().unwrap_or("failregex").to_owned();
            let at = if s.has(&key) { s.value_span(&key) } else { span };
            r.error(at, format!("[detectors.{name}] {e}"));
            None
        }
    }
}
