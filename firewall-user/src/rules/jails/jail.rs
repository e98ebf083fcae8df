//! `[jails.NAME]` as read: a jail of its own or changes to a built-in one, and its `increment`.

use std::time::Duration;

use super::{
    default_increment, kind::BUILTIN_DETECTORS, string_or_list, valid_name, Detection, DetectorKind, Increment, Jail,
    LogPath, Mode,
};
use crate::rules::{
    cidr_list,
    reader::{Durations, Reader, Section},
};

const JAIL_KEYS: &[&str] = &[
    "enabled",
    "detector",
    "mode",
    "logpath",
    "findtime",
    "maxretry",
    "bantime",
    "ignore",
    "increment",
    "services",
    "trust_unproven",
];
const INCREMENT_KEYS: &[&str] = &["enabled", "factor", "multipliers", "maxtime", "window", "overalljails"];

pub(super) fn read_jail(
    r: &mut Reader,
    s: &Section,
    name: &str,
    span: Option<std::ops::Range<usize>>,
    det: &mut Detection,
    services: &[&str],
) {
    s.check_keys(r, JAIL_KEYS);
    if !valid_name(name) {
        r.error(
            span.clone(),
            format!("jail name `{name}` must start with a-z and hold only a-z, 0-9, `_` or `-` (at most 32)"),
        );
    }
    let existing = det.jails.iter().position(|j| j.name == name);
    let mut jail = match existing {
        Some(i) => det.jails[i].clone(),
        None => {
            if !s.has("detector") {
                r.error(
                    span.clone(),
                    format!("[jails.{name}] needs `detector`: asterisk, sshd, or a [detectors.NAME] of this file"),
                );
            }
            Jail {
                name: name.to_owned(),
                enabled: true,
                detector: DetectorKind::Asterisk,
                logpath: Vec::new(),
                findtime: Duration::from_secs(600),
                maxretry: 3,
                bantime: Some(Duration::from_secs(600)),
                ignore: Vec::new(),
                increment: None,
                services: Vec::new(),
                trust_unproven: false,
            }
        }
    };
    if let Some(e) = s.bool(r, "enabled") {
        jail.enabled = e;
    }
    if let Some((d, sp)) = s.string(r, "detector") {
        jail.detector = match d.as_str() {
            "asterisk" => DetectorKind::Asterisk,
            "sshd" => DetectorKind::Sshd(Mode::Normal),
            "recidive" => DetectorKind::Recidive,
            "flood" => DetectorKind::Flood,
            "sip-wire" => DetectorKind::SipWire,
            "scanner" => DetectorKind::Scanner,
            other if det.detectors.contains_key(other) => DetectorKind::Custom(other.to_owned()),
            other => {
                let mut known: Vec<&str> = BUILTIN_DETECTORS.to_vec();
                known.extend(det.detectors.keys().map(String::as_str));
                r.error(Some(sp), format!("unknown detector `{other}`; expected one of: {}", known.join(", ")));
                jail.detector.clone()
            }
        };
    }
    if let Some((m, sp)) = s.string(r, "mode") {
        match (&jail.detector, m.parse::<Mode>()) {
            (DetectorKind::Sshd(_), Ok(mode)) => jail.detector = DetectorKind::Sshd(mode),
            (DetectorKind::Sshd(_), Err(e)) => r.error(Some(sp), e),
            _ => r.error(Some(sp), "`mode` applies to the sshd detector only"),
        }
    }
    if let Some(list) = string_or_list(r, s, "logpath") {
        jail.logpath.clear();
        for (text, sp) in list {
            match LogPath::parse(&text) {
                Ok(p) => {
                    if let Some(w) = p.warning() {
                        r.warn(Some(sp), w);
                    }
                    jail.logpath.push(p)
                }
                Err(e) => r.error(Some(sp), e),
            }
        }
    }
    if let Some(Some(d)) = s.duration(r, "findtime", Durations::Positive) {
        jail.findtime = d;
    }
    if let Some(n) = s.uint(r, "maxretry", 1, 1_000_000) {
        jail.maxretry = n as u32;
    }
    if let Some(d) = s.duration(r, "bantime", Durations::OrForever) {
        jail.bantime = d;
    }
    if let Some(list) = cidr_list(r, s, "ignore") {
        jail.ignore = list;
    }
    if let Some(t) = s.bool(r, "trust_unproven") {
        jail.trust_unproven = t;
    }
    if let Some(list) = s.strings(r, "services") {
        if jail.detector != DetectorKind::Flood {
            r.error(s.value_span("services"), "`services` applies to the flood detector only");
        }
        for (n, sp) in &list {
            if !services.contains(&n.as_str()) {
                r.error(Some(sp.clone()), format!("service `{n}` is not defined in [services]"));
            }
        }
        jail.services = list.into_iter().map(|(n, _)| n).collect();
    }
    match s.table.get("increment") {
        Some(item) if item.is_bool() => {
            jail.increment = s.bool(r, "increment").unwrap_or(false).then(default_increment);
        }
        Some(_) => {
            if let Some(inc) = s.table(r, "increment", "increment") {
                jail.increment = read_increment(r, &inc, jail.increment.clone());
            }
        }
        None => {}
    }
    if jail.enabled && jail.detector.reads_logs() && jail.logpath.is_empty() {
        r.error(span, format!("[jails.{name}] reads logs: it needs `logpath` (files, or journal:UNIT)"));
    }
    if !jail.detector.reads_logs() && s.has("logpath") {
        r.error(
            s.value_span("logpath"),
            format!("the {} detector reads no logs: remove `logpath`", jail.detector.name()),
        );
    }
    match existing {
        Some(i) => det.jails[i] = jail,
        None => det.jails.push(jail),
    }
}

fn read_increment(r: &mut Reader, s: &Section, current: Option<Increment>) -> Option<Increment> {
    s.check_keys(r, INCREMENT_KEYS);
    let mut inc = current.unwrap_or_else(default_increment);
    if s.bool(r, "enabled") == Some(false) {
        return None;
    }
    if let Some(item) = s.table.get("factor") {
        match item.as_float().or_else(|| item.as_integer().map(|i| i as f64)) {
            Some(f) if f > 0.0 && f <= 1000.0 => inc.factor = f,
            _ => r.error(s.value_span("factor"), "`factor` must be a number above 0 (at most 1000)"),
        }
    }
    if let Some(item) = s.table.get("multipliers") {
        let parsed: Option<Vec<u32>> = item.as_array().and_then(|a| {
            a.iter().map(|v| v.as_integer().filter(|i| (1..=100_000).contains(i)).map(|i| i as u32)).collect()
        });
        match parsed {
            Some(m) if !m.is_empty() => inc.multipliers = m,
            _ => r.error(
                s.value_span("multipliers"),
                "`multipliers` must be a list of whole numbers from 1, like [1, 2, 4, 8, 16]",
            ),
        }
    }
    if let Some(d) = s.duration(r, "maxtime", Durations::OrForever) {
        inc.maxtime = d;
    }
    if let Some(Some(d)) = s.duration(r, "window", Durations::Positive) {
        inc.window = d;
    }
    if let Some(b) = s.bool(r, "overalljails") {
        inc.overalljails = b;
    }
    Some(inc)
}
