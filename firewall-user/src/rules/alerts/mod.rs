//! `[webhook]` and `[mail]`: who is told of bans, unbans and expiries, and how.

mod mail;
mod webhook;

use std::{ops::Range, path::Path};

pub use self::{
    mail::{Mail, MailMode, MailTls, Secret},
    webhook::Webhook,
};
use super::reader::{Reader, Section};

/// The alerts of the rules file; each is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alerts {
    pub webhook: Option<Webhook>,
    pub mail: Option<Mail>,
}

impl Alerts {
    /// One line per configured alert, for `sipwall check`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(w) = &self.webhook {
            out.push(format!("webhook: {} ({})", w.endpoint(), w.events.names()));
        }
        if let Some(m) = &self.mail {
            let tls = match m.tls {
                MailTls::StartTls => "STARTTLS",
                MailTls::Tls => "TLS",
                MailTls::None => "no TLS",
            };
            let mode = match m.mode {
                MailMode::Each => "a mail each".to_owned(),
                MailMode::Digest(d) => format!("a digest every {}", crate::duration::format(Some(d))),
            };
            out.push(format!(
                "mail: to {} through {}:{} with {tls} ({}; {mode})",
                m.to.join(", "),
                m.host,
                m.port,
                m.events.names()
            ));
        }
        out
    }
}

/// What happened to a ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new ban.
    Ban,
    /// A ban that replaced one in force (longer, or by another jail).
    Reban,
    /// Lifted before its time (`sipwall unban`).
    Unban,
    /// Ran out.
    Expire,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [EventKind::Ban, EventKind::Reban, EventKind::Unban, EventKind::Expire];

    /// The name in the rules file, the JSON `event` field and the log line.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Ban => "ban",
            EventKind::Reban => "reban",
            EventKind::Unban => "unban",
            EventKind::Expire => "expire",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of event kinds: which ones an alert sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Events(u8);

impl Events {
    pub fn all() -> Self {
        Events(EventKind::ALL.iter().fold(0, |b, k| b | k.bit()))
    }

    pub fn of(kinds: &[EventKind]) -> Self {
        Events(kinds.iter().fold(0, |b, k| b | k.bit()))
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// `ban, unban`.
    pub fn names(self) -> String {
        EventKind::ALL.iter().filter(|k| self.contains(**k)).map(|k| k.name()).collect::<Vec<_>>().join(", ")
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::all()
    }
}

/// A PEM file of extra certificate authorities to trust, read and checked with the rules.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: std::path::PathBuf,
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaFile({})", self.path.display())
    }
}

impl CaFile {
    /// The certificates it holds (it holds at least one: checked when the rules were read).
    pub fn certificates(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        CertificateDer::pem_slice_iter(&self.pem).filter_map(Result::ok).collect()
    }
}

/// `events = ["ban", …]`: every kind when absent.
fn read_events(r: &mut Reader, s: &Section) -> Events {
    let Some(list) = s.strings(r, "events") else { return Events::all() };
    let mut kinds = Vec::new();
    for (name, span) in list {
        match EventKind::ALL.iter().find(|k| k.name() == name) {
            Some(k) => kinds.push(*k),
            None => r.error(
                Some(span),
                format!("unknown event `{name}` in [{}] events; expected some of: ban, reban, unban, expire", s.path),
            ),
        }
    }
    if kinds.is_empty() && s.has("events") {
        r.error(s.value_span("events"), format!("[{}] events is empty: remove the section to send nothing", s.path));
    }
    Events::of(&kinds)
}

/// A path key, relative to the rules file's directory, of a file read now: its bytes.
pub(crate) fn read_file(
    r: &mut Reader,
    s: &Section,
    key: &str,
    base: &Path,
) -> Option<(std::path::PathBuf, Vec<u8>, Range<usize>)> {
    let (text, span) = s.string(r, key)?;
    if text.is_empty() {
        r.error(Some(span), format!("`{key}` is empty: give the path of a file"));
        return None;
    }
    let path = base.join(&text);
    match std::fs::read(&path) {
        Ok(bytes) => Some((path, bytes, span)),
        Err(e) => {
            r.error(Some(span), format!("cannot read {key} {}: {e}", path.display()));
            None
        }
    }
}

/// `ca_file`: a PEM file with at least one certificate.
pub(crate) fn read_ca_file(r: &mut Reader, s: &Section, base: &Path) -> Option<CaFile> {
    let (path, pem, span) = read_file(r, s, "ca_file", base)?;
    let ca = CaFile { path, pem };
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let bad = CertificateDer::pem_slice_iter(&ca.pem).find_map(Result::err);
    if let Some(e) = bad {
        r.error(Some(span), format!("ca_file {}: not a valid PEM file ({e})", ca.path.display()));
        return None;
    }
    if ca.certificates().is_empty() {
        r.error(
            Some(span),
            format!(
                "ca_file {} holds no certificate: expected PEM blocks `-----BEGIN CERTIFICATE-----`",
                ca.path.display()
            ),
        );
        return None;
    }
    Some(ca)
}

pub fn read(r: &mut Reader, root: &Section, base: &Path) -> Alerts {
    let mut alerts = Alerts::default();
    if let Some(s) = root.table(r, "webhook", "webhook") {
        alerts.webhook = webhook::read(r, &s, base);
    }
    if let Some(s) = root.table(r, "mail", "mail") {
        alerts.mail = mail::read(r, &s, base);
    }
    alerts
}

#[cfg(test)]
mod tests;
