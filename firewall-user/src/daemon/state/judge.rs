//! Log detections on their way to the jails: proven, resolved, held for a proof, or counted
//! apart as unproven.

use super::{Daemon, HELD_MAX, HOLD_MS};
use crate::{
    daemon::detection::Detected,
    detection::detect::{never_proven, Event, Proof},
    detection::jail::Outcome,
    rules::jails::DetectorKind,
};

impl Daemon {
    /// Takes one detection from a log to its jail. Log evidence that one datagram could produce
    /// is proven when its source proved, on the wire, that it receives the host's packets; an
    /// ambiguous Asterisk line names its source when one of its addresses proved the transaction
    /// it names. A detection not settled so waits up to [`HOLD_MS`] for its proof.
    pub fn detected(&mut self, mut x: Detected, now: u64) {
        if let (Some(host), Some(j)) = (x.event.host(), self.engine.index(&x.jail)) {
            let several = self.engine.jails[j].spec.logpath.len() > 1;
            let strong = !matches!(&x.event, Event::Failure(f) if never_proven(f.rule));
            if several && self.twins.repeats(&x.jail, &x.source, host, strong, now) {
                self.metrics.failures_skipped.with_label_values(&[&x.jail, "duplicate"]).inc();
                log::debug!("{}: {host}: the same failure from another source: {}", x.jail, x.line);
                return;
            }
        }
        if self.settle(&mut x, now) || self.held.len() >= HELD_MAX {
            self.counted(x, now);
        } else {
            self.held.push_back((x, now + HOLD_MS));
        }
    }

    /// Whether `x` is settled (see [`Proofs::settle`](crate::detection::proof::Proofs::settle)).
    /// Only Asterisk writes the Call-ID in a field of its own; in another detector's line that
    /// text could be the attacker's.
    fn settle(&self, x: &mut Detected, now: u64) -> bool {
        let rule = match &x.event {
            Event::Failure(f) => Some(f.rule),
            Event::Ambiguous { rule, .. } => Some(*rule),
            Event::Hostname { .. } => None,
        };
        if rule.is_some_and(never_proven) {
            return true;
        }
        // an AMI record holds no Call-ID in a field of Asterisk's own
        let asterisk = !x.source.starts_with("ami:")
            && self
                .engine
                .index(&x.jail)
                .is_some_and(|j| matches!(self.engine.jails[j].spec.detector, DetectorKind::Asterisk));
        self.proofs.settle(&mut x.event, &x.line, asterisk, now)
    }

    /// Judges the held log detections whose wait ended, proven or not.
    pub fn release_held(&mut self, now: u64) {
        while self.held.front().is_some_and(|(_, due)| *due <= now) {
            let (mut x, _) = self.held.pop_front().expect("checked above");
            self.settle(&mut x, now);
            self.counted(x, now);
        }
    }

    /// Takes one detection, its proof settled, to its jail: unproven evidence never counts
    /// against a known-good source, and counts apart in a jail without `trust_unproven`.
    pub fn counted(&mut self, x: Detected, now: u64) {
        let Some(j) = self.engine.index(&x.jail) else { return };
        let f = match x.event {
            Event::Failure(f) => f,
            Event::Hostname { name, rule } => {
                self.skipped(&x.jail, "hostname", || {
                    format!(
                        "{rule}: a failure from the host name `{name}` (names are never resolved, nobody banned): {}",
                        x.line
                    )
                });
                return;
            }
            Event::Ambiguous { candidates, names, rule } => {
                let c: Vec<String> = candidates.iter().map(ToString::to_string).chain(names).collect();
                self.skipped(&x.jail, "ambiguous", || {
                    format!(
                        "{rule}: the source could be any of {} (possibly forged, nobody banned): {}",
                        c.join(", "),
                        x.line
                    )
                });
                return;
            }
        };
        self.metrics.failures.with_label_values(&[&x.jail]).inc();
        if f.proof == Proof::Unproven {
            if let Some((good, _)) = self.proofs.good(f.host, now) {
                let method = good.method.clone();
                self.metrics.failures_skipped.with_label_values(&[&x.jail, "known_good"]).inc();
                log::debug!(
                    "{}: {} is known good (authenticated with {method}): unproven evidence not counted: {}",
                    x.jail,
                    f.host,
                    x.line
                );
                return;
            }
        }
        if self.engine.ignored_by(j, f.host).is_none() && self.enforcer.is_banned(f.host) {
            self.metrics.failures_skipped.with_label_values(&[&x.jail, "already_banned"]).inc();
            return;
        }
        match self.engine.failure(j, f.host, f.user.as_deref(), Some(&x.line), now, &self.store, f.proof) {
            Outcome::Counted(n) => {
                log::debug!("{}: failure {n} of {} by {}", x.jail, f.host, self.engine.jails[j].spec.maxretry)
            }
            Outcome::Unproven(n) => {
                let host = f.host;
                self.skipped(&x.jail, "unproven", || {
                    format!(
                        "{}: unproven failure of {host} ({n} within findtime): a forged packet could produce it, \
                         so it bans no one (trust_unproven = false): {}",
                        f.rule, x.line
                    )
                });
            }
            Outcome::Ignored(by) => {
                self.metrics.failures_skipped.with_label_values(&[&x.jail, "ignored"]).inc();
                log::debug!("{}: {} not counted: it is in {by}", x.jail, f.host);
            }
            Outcome::Ban(order) => self.apply(order, Some(x.read_at), now),
        }
    }

    /// `host` authenticated: known good until `until` (unix ms), in the kernel too.
    pub fn known_good(&mut self, host: std::net::IpAddr, until: u64) {
        let deadline = self.enforcer.clock().deadline(Some(until));
        if let Some(m) = &mut self.good_map {
            if let Err(e) = m.put(host, deadline) {
                log::warn!("{host} is known good, but the kernel table refused it: {e}");
            }
        }
    }

    /// `host` is no longer known good.
    pub fn no_longer_good(&mut self, host: std::net::IpAddr) {
        if let Some(m) = &mut self.good_map {
            m.remove(host);
        }
    }

    fn skipped(&mut self, jail: &str, reason: &str, msg: impl FnOnce() -> String) {
        self.metrics.failures_skipped.with_label_values(&[jail, reason]).inc();
        if self.skipped_logged.allow() {
            log::warn!("{jail}: {}", msg());
        }
    }
}
