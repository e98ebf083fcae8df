//! From log lines to bans: a source thread per jail and log path runs the jail's detector on
//! every line; what it finds goes through a channel to the jails, which decide on bans.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Instant, SystemTime},
};

use prometheus::IntCounter;
use tokio::sync::mpsc;

use super::{lock, Shared};
use crate::{
    datapath::clock,
    detection::detect::{
        ami::AmiSecurity,
        asterisk::Asterisk,
        custom::{Custom, Filter, Spec},
        sshd::Sshd,
        Detector, Event,
    },
    detection::sources::{self, file::MAX_LINE},
    metrics::Metrics,
    rules::jails::{Detection, DetectorKind, LogPath},
};

/// Detections queued at most before the readers wait for the jails.
pub const QUEUE: usize = 4096;

/// Something a detector found, on its way to its jail.
#[derive(Debug)]
pub struct Detected {
    pub jail: Arc<str>,
    pub event: Event,
    pub line: String,
    /// The source it came from (a log path, `ami:…`, or `kernel`): records of one failure from
    /// several sources of a jail count once ([`twins`](super::twins)).
    pub source: Arc<str>,
    /// When the line was read, for the line-to-ban latency.
    pub read_at: Instant,
}

/// A fresh detector of `kind` (custom ones from `detectors`); `None` for jails that read no logs.
pub fn detector(kind: &DetectorKind, detectors: &BTreeMap<String, Spec>) -> Option<Box<dyn Detector>> {
    match kind {
        DetectorKind::Asterisk => Some(Box::new(Asterisk)),
        DetectorKind::Sshd(mode) => Some(Box::new(Sshd::new(*mode))),
        DetectorKind::Custom(name) => {
            let filter = Filter::new(detectors.get(name)?).ok()?;
            Some(Box::new(Custom::new(Arc::new(filter))))
        }
        DetectorKind::Recidive | DetectorKind::Flood | DetectorKind::SipWire | DetectorKind::Scanner => None,
    }
}

/// What identifies a running source: restarted only when one of these changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    jail: String,
    detector: DetectorKind,
    spec: Option<Spec>,
    path: LogPath,
    /// For an `ami:` source, the account it logs in with.
    credentials: Option<PathBuf>,
}

pub struct Sources {
    running: Vec<(Key, sources::Running)>,
    tx: mpsc::Sender<Detected>,
}

struct Counters {
    lines: IntCounter,
    too_long: IntCounter,
    invalid_utf8: IntCounter,
}

fn sink(
    (jail, source): (&str, &str),
    mut det: Box<dyn Detector>,
    tx: mpsc::Sender<Detected>,
    c: Counters,
) -> sources::Sink {
    let jail: Arc<str> = jail.into();
    let source: Arc<str> = source.into();
    let mut events = Vec::new();
    Box::new(move |bytes: &[u8]| {
        c.lines.inc();
        // a cut line is never judged: its last field may be the middle of attacker text
        if bytes.len() > MAX_LINE {
            c.too_long.inc();
            return;
        }
        let line = match crate::detection::detect::utf8(bytes) {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => {
                c.invalid_utf8.inc();
                String::from_utf8_lossy(bytes)
            }
        };
        det.feed(&line, &mut events);
        for event in events.drain(..) {
            let d = Detected {
                jail: jail.clone(),
                event,
                line: line.clone().into_owned(),
                source: source.clone(),
                read_at: Instant::now(),
            };
            // waits when the jails fall behind: lines are never dropped
            if tx.blocking_send(d).is_err() {
                return;
            }
        }
    })
}

impl Sources {
    pub fn new(tx: mpsc::Sender<Detected>) -> Sources {
        Sources { running: Vec::new(), tx }
    }

    /// Starts the sources `det` needs and stops those it no longer does. Sources that stay
    /// keep their place in their files. `from_start` applies to files opened for the first time.
    /// `ami_credentials` is the account `ami:` sources log in with (`[asterisk]`).
    pub fn sync(&mut self, det: &Detection, ami_credentials: &Path, from_start: bool, m: &Metrics) {
        let mut wanted = Vec::new();
        for j in det.enabled() {
            for p in &j.logpath {
                let spec = match &j.detector {
                    DetectorKind::Custom(n) => det.detectors.get(n).cloned(),
                    _ => None,
                };
                let credentials = matches!(p, LogPath::Ami { .. }).then(|| ami_credentials.to_owned());
                wanted.push(Key {
                    jail: j.name.clone(),
                    detector: j.detector.clone(),
                    spec,
                    path: p.clone(),
                    credentials,
                });
            }
        }
        let (keep, stop): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.running).into_iter().partition(|(k, _)| wanted.contains(k));
        for (k, r) in stop {
            log::info!("log source {} of jail {}: stopped", k.path, k.jail);
            m.log_source_up.with_label_values(&[&k.jail, &k.path.to_string()]).set(0);
            r.stop();
        }
        self.running = keep;
        for k in wanted {
            if self.running.iter().any(|(r, _)| *r == k) {
                continue;
            }
            // Asterisk's manager sends events, read by their own detector whatever the jail's
            let d: Box<dyn Detector> = match (&k.path, detector(&k.detector, &det.detectors)) {
                (LogPath::Ami { .. }, _) => Box::new(AmiSecurity::new()),
                (_, Some(d)) => d,
                (_, None) => continue,
            };
            let c = Counters {
                lines: m.log_lines.with_label_values(&[&k.jail]),
                too_long: m.log_lines_malformed.with_label_values(&[&k.jail, "too_long"]),
                invalid_utf8: m.log_lines_malformed.with_label_values(&[&k.jail, "invalid_utf8"]),
            };
            let sink = sink((&k.jail, &k.path.to_string()), d, self.tx.clone(), c);
            let r = match (&k.path, &k.credentials) {
                (LogPath::Ami { host, port }, Some(cred)) => sources::spawn_ami(host, *port, cred.clone(), sink),
                _ => sources::spawn(&k.path, from_start, sink),
            };
            self.running.push((k, r));
        }
    }

    /// Per jail and source: whether it is read, lines read, and why it is down.
    pub fn status(&self) -> Vec<(String, String, bool, u64, Option<String>)> {
        self.running
            .iter()
            .map(|(k, r)| {
                let st = &r.status;
                let problem = st.problem.lock().unwrap_or_else(|e| e.into_inner()).clone();
                (
                    k.jail.clone(),
                    k.path.to_string(),
                    st.up.load(std::sync::atomic::Ordering::Relaxed),
                    st.lines.load(std::sync::atomic::Ordering::Relaxed),
                    problem,
                )
            })
            .collect()
    }

    pub fn stop_all(&mut self) {
        for (_, r) in self.running.drain(..) {
            r.stop();
        }
    }
}

/// Hands detections to the jails, a batch at a time under one lock.
pub async fn run(mut rx: mpsc::Receiver<Detected>, d: Shared) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        let d = d.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut g = lock(&d);
            let now = clock::unix_ms(SystemTime::now());
            g.batch(|g| {
                for x in batch {
                    g.detected(x, now);
                }
            });
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::detect::sshd::Mode;

    #[test]
    fn a_line_past_the_limit_is_counted_and_never_judged() {
        let (tx, mut rx) = mpsc::channel(8);
        let c = || IntCounter::new("c", "c").unwrap();
        let counters = Counters { lines: c(), too_long: c(), invalid_utf8: c() };
        let too_long = counters.too_long.clone();
        let mut feed = sink(("sshd", "/var/log/auth.log"), Box::new(Sshd::new(Mode::Normal)), tx, counters);
        // a failure padded to the limit in its host field is judged; one byte more is not
        let line = |len: usize| {
            let msg = " sshd[7]: Failed password for root from 192.0.2.1 port 22 ssh2";
            let head = "Dec  5 10:00:00 pbx";
            format!("{head}{}{msg}", "x".repeat(len - head.len() - msg.len()))
        };
        let (fits, over) = (line(MAX_LINE), line(MAX_LINE + 1));
        feed(over.as_bytes());
        assert_eq!(too_long.get(), 1);
        assert!(rx.try_recv().is_err(), "judged");
        feed(fits.as_bytes());
        assert_eq!(too_long.get(), 1);
        let failure = fits;
        assert_eq!(rx.try_recv().unwrap().line, failure);
    }
}
