//! `sipwall why` and `sipwall status`: what the daemon knows about an address, and about its
//! jails.

use std::{net::IpAddr, time::SystemTime};

use ipnet::IpNet;

use super::state::Daemon;
use crate::{
    control::protocol::{BanView, FeatureView, JailView, PendingView, Response, SourceView, StatusView, WhyView},
    datapath::clock,
    detection::jail::window::Track,
    duration,
};

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(clock::from_unix_ms(ms)).to_string()
}

/// Bans of the history `why` shows at most.
const HISTORY_SHOWN: u32 = 10;

impl Daemon {
    pub fn why(&mut self, target: &str) -> Response {
        let addr: IpAddr = match target.parse() {
            Ok(a) => a,
            Err(_) => return Response::error(format!("`{target}` is not an IP address")),
        };
        let now = clock::unix_ms(SystemTime::now());
        let rules = self.enforcer.rules();
        let net = IpNet::from(addr);
        let mut v = WhyView { address: addr.to_string(), ..WhyView::default() };
        v.allowed_by = rules.allowed_by(&net);
        if v.allowed_by.is_none() && rules.detection.ignoreself && super::iface::local_addresses().contains(&net) {
            v.allowed_by = Some("this host's own address (never banned by a jail)".into());
        }
        for j in self.engine.jails.iter() {
            if let Some(n) = j.spec.ignore.iter().find(|n| n.contains(&addr)) {
                v.ignored_by.push((j.spec.name.clone(), n.to_string()));
            }
        }
        v.blocked_by = rules.blocked().find(|n| n.contains(&addr)).map(ToString::to_string);
        v.bans = self.enforcer.bans_covering(&net).iter().map(|b| BanView::of(b, now)).collect();
        let view = |jail: &str, t: &Track| {
            let spec = &self.engine.jails[self.engine.index(jail).expect("pending comes from a jail")].spec;
            PendingView {
                jail: jail.to_owned(),
                failures: t.times.len() as u32,
                maxretry: spec.maxretry,
                findtime_secs: spec.findtime.as_secs(),
                lines: t.lines.iter().cloned().collect(),
                users: t.users.clone(),
            }
        };
        v.pending = self.engine.pending(addr).into_iter().map(|(j, t)| view(j, t)).collect();
        v.unproven = self.engine.pending_unproven(addr).into_iter().map(|(j, t)| view(j, t)).collect();
        v.known_good = self
            .proofs
            .good(addr, now)
            .map(|(g, until)| (format!("authenticated with {} at {}", g.method, rfc3339(g.since)), until));
        v.proven_by = self.proofs.host(addr, now).map(|t| t.name().to_owned());
        let target = self.engine.target(addr);
        match self.store.history(&target, HISTORY_SHOWN) {
            Ok(h) => v.history = h,
            Err(e) => log::warn!("reading the ban history of {target}: {e}"),
        }
        let verdict = if let Some(a) = &v.allowed_by {
            format!("{addr} is never dropped or banned: allowed by {a}")
        } else if let Some(b) = v.bans.first() {
            format!("{addr} is banned ({}) by {}", b.target, b.source)
        } else if let Some(b) = &v.blocked_by {
            format!("{addr} is dropped: in the blocked network {b}")
        } else if !v.pending.is_empty() {
            format!("{addr} is not banned; failures are being counted")
        } else if !v.unproven.is_empty() {
            format!("{addr} is not banned; unproven failures (possibly forged) are not counted")
        } else {
            format!("{addr} is not banned")
        };
        let mut r = Response::ok(verdict);
        r.why = Some(v);
        r
    }

    pub fn status(&mut self) -> Response {
        let rules = self.enforcer.rules();
        let active = self.enforcer.bans_by_source();
        let sources = self.sources.status();
        let m = &self.metrics;
        let jails = self
            .engine
            .jails
            .iter()
            .map(|j| {
                let name = j.spec.name.as_str();
                JailView {
                    name: name.to_owned(),
                    detector: j.spec.detector.name().to_owned(),
                    findtime_secs: j.spec.findtime.as_secs(),
                    maxretry: j.spec.maxretry,
                    bantime: duration::format(j.spec.bantime),
                    increment: j.spec.increment.is_some(),
                    sources: sources
                        .iter()
                        .filter(|s| s.0 == name)
                        .map(|s| SourceView { source: s.1.clone(), up: s.2, lines: s.3, problem: s.4.clone() })
                        .collect(),
                    lines: m.log_lines.with_label_values(&[name]).get(),
                    failures: m.failures.with_label_values(&[name]).get(),
                    tracked: j.window.len(),
                    unproven: j.unproven.len(),
                    bans_total: m.bans_total.with_label_values(&[name]).get(),
                    bans_active: active.get(name).copied().unwrap_or(0),
                }
            })
            .collect();
        let features =
            self.features.all().map(|(f, enabled)| FeatureView { name: f.name().to_owned(), enabled }).collect();
        let view = StatusView {
            rules: rules.origin.clone(),
            bans_active: self.enforcer.ban_count(),
            jails,
            kernel: self.kernel.clone(),
            features,
            known_good: self.proofs.good_count(),
            crowdsec: self.crowdsec.as_ref().map(super::crowdsec::Link::view),
            asterisk: crate::rules::discovery::describe(rules),
        };
        let mut r = Response::ok(format!("{} bans active", view.bans_active));
        r.status = Some(view);
        r
    }
}
