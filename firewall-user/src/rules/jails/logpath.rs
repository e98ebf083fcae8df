//! `logpath`: a log file, journal matches, or Asterisk's manager interface, and what reading the
//! journal by a field that journald fills from /proc would miss.

use std::{net::IpAddr, path::PathBuf};

/// A log source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogPath {
    File(PathBuf),
    /// `journal:UNIT` or `journal:FIELD=VALUE …` (journalctl matches).
    Journal(Vec<String>),
    /// `ami:HOST:PORT` (`ami:[::1]:5038` for IPv6): Asterisk's security events, read from its
    /// manager interface. `host` is kept as written, without brackets.
    Ami {
        host: String,
        port: u16,
    },
}

impl std::fmt::Display for LogPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogPath::File(p) => write!(f, "{}", p.display()),
            LogPath::Journal(m) => write!(f, "journal:{}", m.join(" ")),
            LogPath::Ami { host, port } if host.contains(':') => write!(f, "ami:[{host}]:{port}"),
            LogPath::Ami { host, port } => write!(f, "ami:{host}:{port}"),
        }
    }
}

impl LogPath {
    pub fn parse(text: &str) -> Result<LogPath, String> {
        if let Some(rest) = text.strip_prefix("journal:") {
            let matches: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            if matches.is_empty() {
                return Err(
                    "`journal:` needs a unit (journal:ssh.service) or matches (journal:SYSLOG_IDENTIFIER=sshd)".into(),
                );
            }
            for m in &matches {
                if let Some((field, _)) = m.split_once('=') {
                    if field.is_empty()
                        || !field.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
                    {
                        return Err(format!("`{m}`: a journal field name is upper case, like SYSLOG_IDENTIFIER=sshd"));
                    }
                } else if matches.len() > 1 {
                    return Err("a journal source is one unit, or FIELD=VALUE matches".into());
                }
            }
            return Ok(LogPath::Journal(matches));
        }
        if let Some(rest) = text.strip_prefix("ami:") {
            return ami(rest);
        }
        if !text.starts_with('/') {
            return Err(format!("`{text}` must be an absolute path, journal:UNIT or ami:HOST:PORT"));
        }
        Ok(LogPath::File(PathBuf::from(text)))
    }

    /// What reading this source would miss. journald fills `_COMM` (like `_EXE` and
    /// `_SYSTEMD_UNIT`) from /proc when it takes an entry in, so an entry it takes after the
    /// sender ended has none: on a busy host, the failures of an sshd session that just closed.
    ///
    /// The manager interface takes its secret in clear text: an AMI source on another host is
    /// warned of.
    pub fn warning(&self) -> Option<String> {
        if let LogPath::Ami { host, .. } = self {
            let local = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
            return (!local).then(|| {
                format!(
                    "`{self}`: the manager interface sends the secret and the events in clear text; \
                     read it on the host Asterisk runs on (ami:127.0.0.1:5038) or over a private link"
                )
            });
        }
        let LogPath::Journal(m) = self else { return None };
        let racy =
            m.iter().find(|m| ["_COMM=", "_EXE=", "_CMDLINE=", "_SYSTEMD_UNIT="].iter().any(|f| m.starts_with(f)))?;
        Some(format!(
            "`{racy}` misses entries that systemd-journald takes in after their sender exited (it reads the field in /proc), \
             as happens on a busy host; match the syslog tag with the sender's uid instead, like \
             `{SSHD_JOURNAL}`"
        ))
    }
}

const AMI_FORM: &str = "like ami:127.0.0.1:5038, or ami:[::1]:5038 for IPv6";

/// `HOST:PORT` after `ami:`: an IPv4 address or a host name, or an IPv6 address in brackets.
fn ami(rest: &str) -> Result<LogPath, String> {
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(format!("`ami:{rest}`: the `[` of the IPv6 address is never closed ({AMI_FORM})"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`ami:{rest}`: `{addr}` in brackets must be an IPv6 address ({AMI_FORM})"));
        }
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("`ami:{rest}` needs a port after the address ({AMI_FORM})"));
        };
        (addr, port)
    } else {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(format!("`ami:{rest}` needs HOST:PORT ({AMI_FORM})"));
        };
        if host.contains(':') {
            return Err(format!("`ami:{rest}`: an IPv6 address goes in brackets ({AMI_FORM})"));
        }
        if !is_host_name(host) {
            return Err(format!("`ami:{rest}`: `{host}` is no address or host name ({AMI_FORM})"));
        }
        (host, port)
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|c| c.is_ascii_digit()) => {
            Ok(LogPath::Ami { host: host.to_owned(), port: p })
        }
        _ => Err(format!("`ami:{rest}`: the port must be a number from 1 to 65535 ({AMI_FORM})")),
    }
}

/// An IPv4 address or a DNS name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// The built-in sshd jail's source: root's entries tagged `sshd` or (OpenSSH 9.8 and later)
/// `sshd-session`. The tag is the sender's choice, `_UID` journald's: only root can log these.
pub const SSHD_JOURNAL: &str = "journal:_UID=0 SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session";

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rules::Rules;

    #[test]
    fn ami_sources_read_back_as_written() {
        for text in
            ["ami:127.0.0.1:5038", "ami:[::1]:5038", "ami:localhost:5038", "ami:[2001:db8::7]:1", "ami:pbx-1.lan:65535"]
        {
            let p = LogPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(LogPath::parse("ami:[::1]:5038").unwrap(), LogPath::Ami { host: "::1".into(), port: 5038 });
        assert_eq!(
            LogPath::parse("ami:127.0.0.1:5038").unwrap(),
            LogPath::Ami { host: "127.0.0.1".into(), port: 5038 }
        );
    }

    #[test]
    fn bad_ami_forms_say_what_is_wrong() {
        let cases = [
            ("ami:", "needs HOST:PORT"),
            ("ami:127.0.0.1", "needs HOST:PORT"),
            ("ami:127.0.0.1:", "port must be a number"),
            ("ami:127.0.0.1:0", "port must be a number"),
            ("ami:127.0.0.1:65536", "port must be a number"),
            ("ami:127.0.0.1:+5038", "port must be a number"),
            ("ami:::1:5038", "goes in brackets"),
            ("ami:[::1:5038", "never closed"),
            ("ami:[::1]", "needs a port"),
            ("ami:[::1]5038", "needs a port"),
            ("ami:[127.0.0.1]:5038", "must be an IPv6 address"),
            ("ami:bad_host:5038", "no address or host name"),
            ("ami:-x:5038", "no address or host name"),
            ("ami::5038", "no address or host name"),
        ];
        for (text, needle) in cases {
            let e = LogPath::parse(text).expect_err(text);
            assert!(e.contains(needle) && e.contains("ami:127.0.0.1:5038"), "{text}: {e}");
        }
        assert!(LogPath::parse("relative").unwrap_err().contains("ami:HOST:PORT"));
    }

    #[test]
    fn ami_errors_are_placed_at_the_value_and_remote_hosts_warned_of() {
        let text = "[jails.asterisk]\nlogpath = [\"/var/log/asterisk/full\", \"ami:[::1]\"]\n";
        let err = Rules::parse("t.toml", text, Path::new("/nonexistent")).expect_err("must be rejected");
        let errs: Vec<_> = err.errors().map(|d| (d.line, d.column, d.message.clone())).collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (2, 39), "{errs:?}");
        assert!(errs[0].2.contains("needs a port"), "{errs:?}");

        let remote = "[jails.asterisk]\nlogpath = [\"ami:192.0.2.7:5038\"]\n";
        let (_, w) = Rules::parse("t.toml", remote, Path::new("/nonexistent")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("clear text"), "{w:?}");
        for local in ["ami:127.0.0.1:5038", "ami:[::1]:5038", "ami:localhost:5038"] {
            assert_eq!(LogPath::parse(local).unwrap().warning(), None, "{local}");
        }
    }
}
