//! `logpath`: a log file, or journal matches, and what reading the journal by a field that
//! journald fills from /proc would miss.

use std::path::PathBuf;

/// A log source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogPath {
    File(PathBuf),
    /// `journal:UNIT` or `journal:FIELD=VALUE …` (journalctl matches).
    Journal(Vec<String>),
}

impl std::fmt::Display for LogPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogPath::File(p) => write!(f, "{}", p.display()),
            LogPath::Journal(m) => write!(f, "journal:{}", m.join(" ")),
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
        if !text.starts_with('/') {
            return Err(format!("`{text}` must be an absolute path, or journal:UNIT"));
        }
        Ok(LogPath::File(PathBuf::from(text)))
    }

    /// What reading this source would miss. journald fills `_COMM` (like `_EXE` and
    /// `_SYSTEMD_UNIT`) from /proc when it takes an entry in, so an entry it takes after the
    /// sender ended has none: on a busy host, the failures of an sshd session that just closed.
    pub fn warning(&self) -> Option<String> {
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

/// The built-in sshd jail's source: root's entries tagged `sshd` or (OpenSSH 9.8 and later)
/// `sshd-session`. The tag is the sender's choice, `_UID` journald's: only root can log these.
pub const SSHD_JOURNAL: &str = "journal:_UID=0 SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session";
