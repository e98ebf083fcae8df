//! Telling people of bans: each ban, unban and expiry becomes an [`Alert`], logged as one JSON
//! line and handed to the `[webhook]` and `[mail]` senders. Each sender has a queue and a task of
//! its own, so a slow or dead receiver never holds up detection.

pub mod http;
pub mod mail;
pub mod tls;
pub mod webhook;

use std::{sync::Arc, time::Duration};

use ipnet::IpNet;
use prometheus::IntCounterVec;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    datapath::{bans::Ban, clock},
    detection::jail::BanOrder,
    duration,
    metrics::Metrics,
    rules::alerts::{self as config, EventKind},
};

/// Notifications waiting at most, per sender; past that, new ones are dropped and counted.
pub const QUEUE: usize = 1024;

/// A sender task's queue: the events it wants, and the counter of its deliveries, where a full
/// queue counts what it drops.
pub struct Queue {
    tx: mpsc::Sender<Arc<Alert>>,
    events: config::Events,
    counter: IntCounterVec,
}

impl Queue {
    /// A queue of [`QUEUE`] alerts, and its receiving end for the sender task.
    pub fn new(events: config::Events, counter: IntCounterVec) -> (Queue, mpsc::Receiver<Arc<Alert>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Queue { tx, events, counter }, rx)
    }

    /// Queues an alert if the sender wants its kind; never waits.
    pub fn send(&self, alert: &Arc<Alert>) {
        if self.events.contains(alert.kind) && self.tx.try_send(alert.clone()).is_err() {
            self.counter.with_label_values(&["dropped"]).inc();
        }
    }
}

/// What a jail knew of a ban it issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JailFacts {
    pub jail: String,
    pub failures: u32,
    pub earlier: u32,
    /// `None`: forever.
    pub bantime: Option<Duration>,
    /// Users tried (attacker-chosen text).
    pub users: Vec<String>,
    pub evidence: &'static str,
    /// The latest matched log lines, oldest first (attacker-influenced text).
    pub lines: Vec<String>,
}

/// A ban, unban or expiry, as told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub kind: EventKind,
    pub target: IpNet,
    /// When it happened (unix ms).
    pub at_unix_ms: u64,
    /// When the ban ends (ends, or would have, for an unban); `None`: never.
    pub expires_unix_ms: Option<u64>,
    pub reason: String,
    /// Who banned: a jail's name, or `manual` (`sipwall ban`).
    pub source: String,
    /// Set for a ban a jail issued.
    pub jail: Option<JailFacts>,
}

impl Alert {
    pub fn new(kind: EventKind, b: &Ban, order: Option<&BanOrder>, at_unix_ms: u64) -> Self {
        Alert {
            kind,
            target: b.target,
            at_unix_ms,
            expires_unix_ms: b.expires_unix_ms,
            reason: b.reason.clone(),
            source: b.source.clone(),
            jail: order.map(|o| JailFacts {
                jail: o.jail.clone(),
                failures: o.failures,
                earlier: o.earlier,
                bantime: o.bantime,
                users: o.users.clone(),
                evidence: o.evidence.name(),
                lines: o.lines.clone(),
            }),
        }
    }

    /// The JSON object of the log line (target `sipwall::bans`) and of the webhook, which may
    /// add the log lines.
    pub fn json(&self, with_lines: bool) -> serde_json::Value {
        let mut v = json!({
            "event": self.kind.name(),
            "target": self.target.to_string(),
            "expires": self.expires_unix_ms.map(rfc3339),
            "reason": self.reason,
            "source": self.source,
        });
        if let Some(j) = &self.jail {
            v["jail"] = json!(j.jail);
            v["failures"] = json!(j.failures);
            v["earlier_bans"] = json!(j.earlier);
            v["bantime"] = json!(duration::format(j.bantime));
            v["users"] = json!(j.users);
            v["evidence"] = json!(j.evidence);
            if with_lines {
                v["lines"] = json!(j.lines);
            }
        }
        v
    }
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(unix_ms: u64) -> String {
    humantime::format_rfc3339_seconds(clock::from_unix_ms(unix_ms)).to_string()
}

/// The running senders, and the configuration they were started with.
#[derive(Default)]
pub struct Alerts {
    config: config::Alerts,
    webhook: Option<Queue>,
    mail: Option<Queue>,
}

impl Alerts {
    /// Starts a sender task for each configured alert. Needs a tokio runtime.
    pub fn start(config: &config::Alerts, metrics: &Metrics) -> Alerts {
        let webhook = config.webhook.clone().and_then(|hook| {
            let url = hook.endpoint();
            match webhook::start(hook, metrics.webhook.clone()) {
                Ok(n) => {
                    log::info!("ban events go to the webhook {url}");
                    Some(n)
                }
                Err(e) => {
                    log::error!("{e}");
                    None
                }
            }
        });
        let mail = config.mail.clone().and_then(|m| {
            let what = format!("{} through {}:{}", m.to.join(", "), m.host, m.port);
            match mail::start(m, metrics.mail.clone()) {
                Ok(n) => {
                    log::info!("ban events are mailed to {what}");
                    Some(n)
                }
                Err(e) => {
                    log::error!("{e}");
                    None
                }
            }
        });
        Alerts { config: config.clone(), webhook, mail }
    }

    pub fn config(&self) -> &config::Alerts {
        &self.config
    }

    /// Queues an alert for each sender that wants its kind; never waits.
    pub fn send(&self, alert: &Arc<Alert>) {
        if let Some(w) = &self.webhook {
            w.send(alert);
        }
        if let Some(m) = &self.mail {
            m.send(alert);
        }
    }
}

/// An error with its causes, for the log: `sending: invalid peer certificate: UnknownIssuer`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// Pauses between attempts: 0.5 s, doubling, at most 60 s.
pub fn pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(Duration::from_millis(500)), |p| Some((*p * 2).min(Duration::from_secs(60))))
}

#[cfg(test)]
pub(crate) mod tests;
