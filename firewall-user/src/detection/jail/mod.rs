//! Jails: failures in, ban orders out, with fail2ban's arithmetic. A source is banned when
//! `maxretry` failures fall within `findtime`; the ban lasts `bantime`, longer for repeat
//! offenders (`increment`), and a source banned again and again by any jail is handed to
//! `recidive`. Sources in the allow list, a jail's `ignore` list or among the host's own
//! addresses are never counted.
//!
//! Unproven failures (a forged packet could produce them, see [`Proof`]) ban no one: they are
//! kept apart, for `sipwall why`, unless the jail has `trust_unproven`.
//!
//! The engine keeps no clock of its own: every call gets the time (unix ms), so the daemon,
//! `sipwall test-log` and the tests drive it alike.

pub mod escalate;
pub mod window;

use std::{net::IpAddr, time::Duration};

use ipnet::IpNet;

use self::window::{Track, Window};
use crate::{
    datapath::bans,
    detection::detect::Proof,
    duration,
    rules::jails::{Detection, DetectorKind, Jail},
};

/// Sources each jail tracks at most.
pub const TRACKED_PER_JAIL: usize = 200_000;

/// Sources whose unproven failures each jail keeps at most. They ban nobody (a jail that trusts
/// unproven evidence counts it in its window) and are kept only for `sipwall why`, while a flood
/// of forged addresses is what fills them: a tenth of the window.
pub const UNPROVEN_PER_JAIL: usize = TRACKED_PER_JAIL / 10;

/// Earlier bans of a source, from wherever they are kept.
pub trait History {
    /// Bans of `target` created at or after `since_ms` by the jails `of`.
    fn count(&self, target: &IpNet, of: Jails<'_>, since_ms: u64) -> u32;
}

/// The name bans made with `sipwall ban` are kept under, in place of a jail's.
pub const MANUAL: &str = "manual";

/// Which bans a history count takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jails<'a> {
    /// Every ban, by hand or by any jail.
    All,
    Only(&'a str),
    /// Bans by every jail but this one (and not by hand).
    Others(&'a str),
}

impl Jails<'_> {
    pub fn takes(self, jail: &str) -> bool {
        match self {
            Jails::All => true,
            Jails::Only(j) => j == jail,
            Jails::Others(j) => j != jail && jail != MANUAL,
        }
    }
}

/// No memory of earlier bans.
pub struct NoHistory;

impl History for NoHistory {
    fn count(&self, _: &IpNet, _: Jails<'_>, _: u64) -> u32 {
        0
    }
}

/// A decision to ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanOrder {
    pub jail: String,
    pub target: IpNet,
    /// `None`: forever.
    pub bantime: Option<Duration>,
    /// Failures that led to it.
    pub failures: u32,
    /// Earlier bans that made it longer.
    pub earlier: u32,
    pub lines: Vec<String>,
    pub users: Vec<String>,
    pub reason: String,
    /// `Unproven` when unproven failures (of a jail with `trust_unproven`) were among them.
    pub evidence: Proof,
}

/// What became of one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Counted: this many within findtime so far.
    Counted(u32),
    /// Unproven, in a jail without `trust_unproven`: kept apart (this many within findtime),
    /// never banned on.
    Unproven(u32),
    /// Not counted: the source is in this list.
    Ignored(IpNet),
    Ban(BanOrder),
}

pub struct JailState {
    pub spec: Jail,
    pub window: Window,
    /// Unproven failures the jail does not count (see [`Outcome::Unproven`]).
    pub unproven: Window,
}

impl JailState {
    fn new(spec: Jail) -> JailState {
        JailState { spec, window: Window::new(TRACKED_PER_JAIL), unproven: Window::new(UNPROVEN_PER_JAIL) }
    }
}

pub struct Engine {
    pub jails: Vec<JailState>,
    /// The global allow list and the host's own addresses.
    never: Vec<IpNet>,
    v6_prefix: u8,
}

impl Engine {
    /// Enabled jails of `det`; `never` holds the allow list (and the host's addresses).
    pub fn new(det: &Detection, never: Vec<IpNet>, v6_prefix: u8) -> Engine {
        let jails = det.enabled().map(|j| JailState::new(j.clone())).collect();
        Engine { jails, never, v6_prefix }
    }

    /// Takes new rules, keeping the failures counted so far by jails that still exist.
    pub fn reconfigure(&mut self, det: &Detection, never: Vec<IpNet>, v6_prefix: u8) {
        let mut old: Vec<JailState> = std::mem::take(&mut self.jails);
        for j in det.enabled() {
            match old.iter().position(|o| o.spec.name == j.name && v6_prefix == self.v6_prefix) {
                Some(i) => {
                    let o = old.swap_remove(i);
                    self.jails.push(JailState { spec: j.clone(), ..o });
                }
                None => self.jails.push(JailState::new(j.clone())),
            }
        }
        self.never = never;
        self.v6_prefix = v6_prefix;
    }

    pub fn index(&self, jail: &str) -> Option<usize> {
        self.jails.iter().position(|j| j.spec.name == jail)
    }

    /// The jail fed by a kernel detector (`Flood`, `SipWire`, `Scanner`): the first enabled one using it.
    pub fn fed_by(&self, detector: &DetectorKind) -> Option<usize> {
        self.jails.iter().position(|j| j.spec.detector == *detector)
    }

    /// What a failure of `host` counts against: its address, or its IPv6 ban prefix.
    pub fn target(&self, host: IpAddr) -> IpNet {
        bans::normalize(IpNet::from(host), self.v6_prefix)
    }

    /// The list that keeps `host` from being counted by `jail`, if any.
    pub fn ignored_by(&self, jail: usize, host: IpAddr) -> Option<IpNet> {
        let j = &self.jails[jail].spec;
        self.never.iter().chain(j.ignore.iter()).find(|n| n.contains(&host)).copied()
    }

    /// Counts a failure of `host` in `jail` at `now` (unix ms); `proof` says whether a forged
    /// packet could have produced it.
    #[allow(clippy::too_many_arguments)]
    pub fn failure(
        &mut self,
        jail: usize,
        host: IpAddr,
        user: Option<&str>,
        line: Option<&str>,
        now: u64,
        history: &dyn History,
        proof: Proof,
    ) -> Outcome {
        if let Some(n) = self.ignored_by(jail, host) {
            return Outcome::Ignored(n);
        }
        let target = self.target(host);
        let st = &mut self.jails[jail];
        let findtime = st.spec.findtime.as_millis() as u64;
        if proof == Proof::Unproven && !st.spec.trust_unproven {
            return Outcome::Unproven(st.unproven.add(target, now, findtime, (line, user), proof) as u32);
        }
        let n = st.window.add(target, now, findtime, (line, user), proof) as u32;
        if n < st.spec.maxretry {
            return Outcome::Counted(n);
        }
        let track = st.window.take(&target).unwrap_or_default();
        Outcome::Ban(order(&st.spec, target, n, track, now, history))
    }

    /// A ban by another jail counts as a failure for `recidive`; returns its ban order if the
    /// source now reaches it. The bans are counted from the history (which outlives restarts)
    /// and in memory (for a history that keeps nothing, as in `sipwall test-log`): the larger
    /// count decides.
    pub fn banned(&mut self, by: &BanOrder, now: u64, history: &dyn History) -> Option<BanOrder> {
        let i = self.jails.iter().position(|j| j.spec.detector == DetectorKind::Recidive)?;
        let host = by.target.addr();
        if self.jails[i].spec.name == by.jail || self.ignored_by(i, host).is_some() {
            return None;
        }
        let target = self.target(host);
        let st = &mut self.jails[i];
        let findtime = st.spec.findtime.as_millis() as u64;
        let line = format!("banned by {} for {}", by.jail, duration::format(by.bantime));
        let seen = st.window.add(target, now, findtime, (Some(&line), None), Proof::Proven) as u32;
        let kept = history.count(&target, Jails::Others(&st.spec.name), now.saturating_sub(findtime));
        let n = seen.max(kept);
        if n < st.spec.maxretry {
            return None;
        }
        let track = st.window.take(&target).unwrap_or_default();
        Some(order(&st.spec, target, n, track, now, history))
    }

    /// Forgets sources with no failure within their jail's findtime.
    pub fn expire(&mut self, now: u64) -> usize {
        self.jails
            .iter_mut()
            .map(|j| {
                let findtime = j.spec.findtime.as_millis() as u64;
                j.unproven.expire(now, findtime);
                j.window.expire(now, findtime)
            })
            .sum()
    }

    /// Failures counted against `host` per jail, with their lines.
    pub fn pending(&self, host: IpAddr) -> Vec<(&str, &Track)> {
        let target = self.target(host);
        self.jails.iter().filter_map(|j| j.window.get(&target).map(|t| (j.spec.name.as_str(), t))).collect()
    }

    /// Unproven failures of `host` per jail that did not count them.
    pub fn pending_unproven(&self, host: IpAddr) -> Vec<(&str, &Track)> {
        let target = self.target(host);
        self.jails.iter().filter_map(|j| j.unproven.get(&target).map(|t| (j.spec.name.as_str(), t))).collect()
    }
}

fn order(spec: &Jail, target: IpNet, failures: u32, track: Track, now: u64, history: &dyn History) -> BanOrder {
    let (earlier, inc) = match &spec.increment {
        Some(inc) => {
            let since = now.saturating_sub(inc.window.as_millis() as u64);
            let of = if inc.overalljails { Jails::All } else { Jails::Only(&spec.name) };
            (history.count(&target, of, since), Some(inc))
        }
        None => (0, None),
    };
    let bantime = escalate::bantime(spec.bantime, inc, earlier);
    let what = match spec.detector {
        DetectorKind::Recidive => "bans",
        DetectorKind::Flood => "rate-limit reports",
        DetectorKind::SipWire => "SIP failures answered",
        DetectorKind::Scanner => "scanner packets",
        _ => "failures",
    };
    let mut reason = format!("{}: {failures} {what} within {}", spec.name, duration::format(Some(spec.findtime)));
    let evidence = if track.unproven.is_empty() { Proof::Proven } else { Proof::Unproven };
    match track.unproven.len() {
        0 => {}
        n if n as u32 >= failures => reason.push_str(", unproven (trust_unproven)"),
        n => reason.push_str(&format!(", {n} of them unproven (trust_unproven)")),
    }
    if earlier > 0 {
        reason.push_str(&format!(", banned {earlier} time{} before", if earlier == 1 { "" } else { "s" }));
    }
    BanOrder {
        jail: spec.name.clone(),
        target,
        bantime,
        failures,
        earlier,
        lines: track.lines.into_iter().collect(),
        users: track.users,
        reason,
        evidence,
    }
}

#[cfg(test)]
mod tests;
