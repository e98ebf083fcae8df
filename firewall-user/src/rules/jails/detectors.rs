//! `[detectors.NAME]`: a fail2ban filter pasted as a custom detector, checked as it is read.

use super::{string_or_list, valid_name, BUILTIN_DETECTORS};
use crate::{
    detection::detect::custom::{Filter, Spec},
    rules::reader::{Reader, Section},
};

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
    match Filter::new(&spec) {
        Ok(_) => Some(spec),
        Err(e) => {
            let key = e.field.split('[').next().unwrap_or("failregex").to_owned();
            let at = if s.has(&key) { s.value_span(&key) } else { span };
            r.error(at, format!("[detectors.{name}] {e}"));
            None
        }
    }
}
