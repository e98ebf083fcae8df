//! `[mail]`: a mail per event, or a digest, over SMTP with STARTTLS or TLS, in fail2ban's words
//! (`destemail` is `to`, `sender` is `from`, `action_mwl` is `lines = true`).

use std::{path::Path, str::FromStr, time::Duration};

use super::{read_ca_file, read_events, read_file, CaFile, Events};
use crate::rules::reader::{Durations, Reader, Section};

/// How the connection to the server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (submission, port 587).
    StartTls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
    /// No encryption: only for a relay on this host.
    None,
}

impl MailTls {
    pub fn default_port(self) -> u16 {
        match self {
            MailTls::StartTls => 587,
            MailTls::Tls => 465,
            MailTls::None => 25,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailMode {
    /// One mail per event.
    Each,
    /// One mail per interval listing its events; none for an interval without any.
    Digest(Duration),
}

/// A password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// Recipients, as written (`admin@example.com` or `Admin <admin@example.com>`).
    pub to: Vec<String>,
    pub from: String,
    pub host: String,
    pub port: u16,
    pub tls: MailTls,
    /// SMTP AUTH: the user name and the password read from `password_file`.
    pub auth: Option<(String, Secret)>,
    pub ca_file: Option<CaFile>,
    pub lines: bool,
    pub whois: bool,
    pub mode: MailMode,
    pub events: Events,
    pub timeout: Duration,
    pub retries: u32,
}

const KEYS: &[&str] = &[
    "to",
    "from",
    "server",
    "tls",
    "username",
    "password_file",
    "ca_file",
    "lines",
    "whois",
    "mode",
    "digest_interval",
    "events",
    "timeout",
    "retries",
];

/// A mailbox as lettre reads it: `a@b` or `Name <a@b>`.
fn mailbox(r: &mut Reader, key: &str, text: &str, span: std::ops::Range<usize>) -> Option<String> {
    match lettre::message::Mailbox::from_str(text) {
        Ok(_) => Some(text.to_owned()),
        Err(e) => {
            r.error(Some(span), format!("`{key}`: `{text}` is not a mail address ({e}); write admin@example.com"));
            None
        }
    }
}

fn loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// `server = "HOST[:PORT]"` (an IPv6 address in `[…]`) → host, port.
fn split_server(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or("an IPv6 address needs its closing `]`")?;
        match tail {
            "" => (h, None),
            t => (h, Some(t.strip_prefix(':').ok_or("expected `:PORT` after `]`")?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("write an IPv6 address in brackets: [2001:db8::25]:587".into())
            }
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err("expected HOST or HOST:PORT, like smtp.example.com:587".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or(format!("`{p}` is not a port (1–65535)"))?),
    };
    Ok((host.to_owned(), port))
}

fn read_tls(r: &mut Reader, s: &Section) -> MailTls {
    match s.string(r, "tls") {
        None => MailTls::StartTls,
        Some((t, span)) => match t.as_str() {
            "starttls" => MailTls::StartTls,
            "tls" => MailTls::Tls,
            "none" => MailTls::None,
            _ => {
                r.error(Some(span), format!("unknown `tls = \"{t}\"`; expected \"starttls\", \"tls\" or \"none\""));
                MailTls::StartTls
            }
        },
    }
}

fn read_mode(r: &mut Reader, s: &Section) -> MailMode {
    let interval = s.duration(r, "digest_interval", Durations::Positive).flatten();
    let mode = s.string(r, "mode");
    match mode.as_ref().map(|(m, sp)| (m.as_str(), sp.clone())) {
        None | Some(("each", _)) => {
            if interval.is_some() {
                r.error(s.key_span("digest_interval"), "`digest_interval` needs mode = \"digest\"");
            }
            MailMode::Each
        }
        Some(("digest", _)) => MailMode::Digest(interval.unwrap_or(Duration::from_secs(3600))),
        Some((m, span)) => {
            r.error(Some(span), format!("unknown `mode = \"{m}\"`; expected \"each\" or \"digest\""));
            MailMode::Each
        }
    }
}

fn read_auth(r: &mut Reader, s: &Section, base: &Path) -> Option<(String, Secret)> {
    let user = s.string(r, "username");
    let file = if s.has("password_file") { read_file(r, s, "password_file", base) } else { None };
    match (user, s.has("password_file")) {
        (None, false) => None,
        (Some(_), false) => {
            r.error(s.key_span("username"), "`username` needs `password_file`: the file that holds the SMTP password");
            None
        }
        (None, true) => {
            if !s.has("username") {
                r.error(s.key_span("password_file"), "`password_file` needs `username`");
            }
            None
        }
        (Some((user, _)), true) => {
            let (path, bytes, span) = file?;
            let Ok(text) = String::from_utf8(bytes) else {
                r.error(Some(span), format!("password_file {} is not UTF-8 text", path.display()));
                return None;
            };
            // the file's one line, as `echo secret > file` writes it
            let pw = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
            if pw.is_empty() || pw.contains('\n') {
                r.error(Some(span), format!("password_file {} must hold the password on one line", path.display()));
                return None;
            }
            Some((user, Secret(pw.to_owned())))
        }
    }
}

pub fn read(r: &mut Reader, s: &Section, base: &Path) -> Option<Mail> {
    s.check_keys(r, KEYS);
    let mut ok = true;
    let to: Vec<String> = match s.table.get("to") {
        None => {
            r.error(s.span.clone(), "[mail] needs `to` (fail2ban's destemail), like to = \"admin@example.com\"");
            ok = false;
            Vec::new()
        }
        Some(item) => {
            let list = if item.is_str() { s.string(r, "to").map(|v| vec![v]) } else { s.strings(r, "to") };
            let list = list.unwrap_or_default();
            if list.is_empty() && !item.is_str() {
                r.error(s.value_span("to"), "`to` needs at least one address");
            }
            list.into_iter().filter_map(|(t, sp)| mailbox(r, "to", &t, sp)).collect()
        }
    };
    let from = match s.string(r, "from") {
        Some((t, sp)) => mailbox(r, "from", &t, sp),
        None => {
            if !s.has("from") {
                r.error(s.span.clone(), "[mail] needs `from` (fail2ban's sender), like from = \"sipwall@example.com\"");
            }
            None
        }
    };
    let tls = read_tls(r, s);
    let server = match s.string(r, "server") {
        Some((t, sp)) => match split_server(&t) {
            Ok((host, port)) => Some((host, port.unwrap_or(tls.default_port()), sp)),
            Err(e) => {
                r.error(Some(sp), format!("`server = \"{t}\"`: {e}"));
                None
            }
        },
        None => {
            if !s.has("server") {
                r.error(
                    s.span.clone(),
                    "[mail] needs `server`, like server = \"smtp.example.com\" (port 587, STARTTLS)",
                );
            }
            None
        }
    };
    if let Some((host, _, sp)) = &server {
        if tls == MailTls::None && !loopback(host) {
            r.error(
                Some(sp.clone()),
                "tls = \"none\" sends mail and password in clear: it is only for a relay on this host \
                 (localhost, 127.0.0.1, ::1); use \"starttls\" or \"tls\"",
            );
            ok = false;
        }
    }
    let auth = read_auth(r, s, base);
    let ca_file = if s.has("ca_file") { read_ca_file(r, s, base) } else { None };
    if ca_file.is_some() && tls == MailTls::None {
        r.error(
            s.key_span("ca_file"),
            "`ca_file` is for tls = \"starttls\" or \"tls\"; this server is reached without TLS",
        );
    }
    let lines = s.bool(r, "lines").unwrap_or(true);
    let whois = s.bool(r, "whois").unwrap_or(false);
    let mode = read_mode(r, s);
    let events = read_events(r, s);
    let timeout = s.duration(r, "timeout", Durations::Positive).flatten().unwrap_or(Duration::from_secs(30));
    let retries = s.uint(r, "retries", 0, 100).unwrap_or(5) as u32;
    let (host, port, _) = server?;
    (ok && !to.is_empty()).then_some(Mail {
        to,
        from: from?,
        host,
        port,
        tls,
        auth,
        ca_file,
        lines,
        whois,
        mode,
        events,
        timeout,
        retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(split_server("smtp.example.com").unwrap(), ("smtp.example.com".into(), None));
        assert_eq!(split_server("127.0.0.1:2525").unwrap(), ("127.0.0.1".into(), Some(2525)));
        assert_eq!(split_server("[::1]:25").unwrap(), ("::1".into(), Some(25)));
        assert_eq!(split_server("[2001:db8::25]").unwrap(), ("2001:db8::25".into(), None));
        assert!(split_server("2001:db8::25").unwrap_err().contains("brackets"));
        assert!(split_server("host:0").is_err());
        assert!(split_server("host:smtp").is_err());
        assert!(split_server(":25").is_err());
        assert!(loopback("localhost") && loopback("127.0.0.2") && loopback("::1"));
        assert!(!loopback("smtp.example.com") && !loopback("192.0.2.1"));
    }
}
