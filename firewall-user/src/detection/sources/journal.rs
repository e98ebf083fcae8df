//! The systemd journal, through `journalctl --follow --output=json`, by unit (`journal:UNIT`)
//! or by field matches (`journal:_UID=0 SYSLOG_IDENTIFIER=sshd`). Each entry becomes a syslog-style line,
//! `HOST IDENT[PID]: MESSAGE`, so the detectors read journal and files alike. The cursor of the
//! last entry read is kept, so a restarted journalctl continues where the last one stopped.
//! journalctl keeps waiting when systemd-journald stops, so journald itself is probed too.

use std::{
    io::{BufRead, BufReader},
    os::{
        fd::{AsFd, BorrowedFd},
        unix::net::UnixDatagram,
    },
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use nix::{
    errno::Errno,
    poll::{poll, PollFd, PollFlags, PollTimeout},
};
use serde_json::Value;

/// The journalctl command for `matches`, starting after `cursor`, at the end, or (with
/// `from_start`) at the oldest entry. Each match is an argument of its own: journalctl ANDs
/// matches of different fields and ORs those of one field, so `_UID=0 SYSLOG_IDENTIFIER=sshd
/// SYSLOG_IDENTIFIER=sshd-session` is root's entries under either tag. Only the fields starting
/// with `_` are journald's (from the sender's credentials); a sender picks the others.
pub fn command(matches: &[String], cursor: Option<&str>, from_start: bool) -> Command {
    let mut c = Command::new("journalctl");
    // --all: without it journalctl writes `null` for a field of 4 KiB or more, and a client
    // that pads its part of a message would have the whole line skipped
    c.args(["--follow", "--output=json", "--all", "--no-pager", "--quiet"]);
    // what `entry_line` reads; journalctl always adds __CURSOR, and it applies the matches
    // itself, so a matched field (_UID) need not be written
    c.arg("--output-fields=MESSAGE,SYSLOG_IDENTIFIER,_COMM,_PID,SYSLOG_PID,_HOSTNAME");
    match cursor {
        Some(cur) => {
            c.arg(format!("--after-cursor={cur}"));
        }
        None => {
            c.arg(if from_start { "--lines=all" } else { "--lines=0" });
        }
    }
    for m in matches {
        if m.contains('=') {
            c.arg(m);
        } else {
            c.arg(format!("--unit={m}"));
        }
    }
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// A journal field as text: journalctl writes non-UTF-8 values as arrays of bytes.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let bytes: Vec<u8> = a.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    }
}

/// One journal entry (a JSON object) as a syslog-style line, and its cursor.
pub fn entry_line(json: &str) -> Option<(String, Option<String>)> {
    let v: Value = serde_json::from_str(json).ok()?;
    let msg = text(v.get("MESSAGE")?)?;
    let get = |k: &str| v.get(k).and_then(text);
    let ident = get("SYSLOG_IDENTIFIER").or_else(|| get("_COMM")).unwrap_or_else(|| "unknown".into());
    let pid = get("_PID").or_else(|| get("SYSLOG_PID"));
    let host = get("_HOSTNAME").unwrap_or_else(|| "localhost".into());
    let line = match pid {
        Some(p) => format!("{host} {ident}[{p}]: {msg}"),
        None => format!("{host} {ident}: {msg}"),
    };
    Some((line, get("__CURSOR")))
}

/// Where systemd-journald receives native messages; its syslog socket is next to it.
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// Why nothing can reach the journal, if so: no systemd-journald listening on `socket`. A
/// journald that stopped leaves its socket file behind, refusing connections. Connecting sends
/// nothing.
pub fn journald_problem(socket: &Path) -> Option<String> {
    let connected = UnixDatagram::unbound().and_then(|s| s.connect(socket));
    connected.err().map(|e| {
        format!(
            "systemd-journald is not running ({}: {e}); start it (systemctl start systemd-journald), \
             or, in a container reading the host's journal, mount {} from the host too",
            socket.display(),
            socket.parent().unwrap_or(Path::new("/")).display()
        )
    })
}

/// What `Follow::next_entry` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A line and the entry's cursor.
    Entry(String, Option<String>),
    /// Nothing within the wait.
    Idle,
    /// journalctl has ended.
    End,
}

/// Whether `fd` has something to read (or has hung up) within `wait`.
fn readable(fd: BorrowedFd<'_>, wait: Duration) -> std::io::Result<bool> {
    let mut p = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut p, PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)) {
        Ok(n) => Ok(n > 0),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A running journalctl and its output.
pub struct Follow {
    pub child: Child,
    pub lines: BufReader<std::process::ChildStdout>,
}

impl Follow {
    pub fn start(matches: &[String], cursor: Option<&str>, from_start: bool) -> std::io::Result<Follow> {
        let mut child = command(matches, cursor, from_start).spawn()?;
        let out = child.stdout.take().expect("piped stdout");
        Ok(Follow { child, lines: BufReader::new(out) })
    }

    /// The next entry, waiting at most `wait` for journalctl to write one.
    pub fn next_entry(&mut self, wait: Duration) -> std::io::Result<Next> {
        let mut buf = String::new();
        loop {
            // journalctl writes whole entries, so once something arrives the line completes
            if self.lines.buffer().is_empty() && !readable(self.lines.get_ref().as_fd(), wait)? {
                return Ok(Next::Idle);
            }
            buf.clear();
            if self.lines.read_line(&mut buf)? == 0 {
                return Ok(Next::End);
            }
            if let Some((line, cursor)) = entry_line(buf.trim_end()) {
                return Ok(Next::Entry(line, cursor));
            }
        }
    }

    /// What journalctl said on its way out.
    pub fn finish(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        err.trim().lines().last().unwrap_or("").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_syslog_lines() {
        let (line, cursor) = entry_line(
            r#"{"__CURSOR":"s=1;i=2","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2","SYSLOG_IDENTIFIER":"sshd","_PID":"31602","_HOSTNAME":"pbx"}"#,
        )
        .unwrap();
        assert_eq!(line, "pbx sshd[31602]: Failed password for root from 192.0.2.1 port 22 ssh2");
        assert_eq!(cursor.as_deref(), Some("s=1;i=2"));
        let (line, _) = entry_line(r#"{"MESSAGE":[104,105,255],"_COMM":"sshd-session"}"#).unwrap();
        assert_eq!(line, "localhost sshd-session: hi\u{fffd}");
        assert!(entry_line("not json").is_none());
        assert!(entry_line(r#"{"SYSLOG_IDENTIFIER":"x"}"#).is_none());
    }

    #[test]
    fn units_and_matches_become_arguments() {
        let c = command(&["ssh.service".into()], None, false);
        let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(args.contains(&"--unit=ssh.service".to_owned()) && args.contains(&"--lines=0".to_owned()));
        assert!(args.contains(&"--all".to_owned()), "long fields are written, not replaced by null");
        let matches = ["_UID=0", "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"].map(String::from);
        let c = command(&matches, Some("abc"), false);
        let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(args.contains(&"--after-cursor=abc".to_owned()));
        // one argument each, so journalctl ANDs the fields and ORs the two tags
        assert!(args.ends_with(&matches), "{args:?}");
    }

    #[test]
    fn a_stopped_or_missing_journald_is_a_problem() {
        let dir = std::env::temp_dir().join(format!("sipwall-journald-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("socket");
        let _ = std::fs::remove_file(&sock);
        let why = journald_problem(&sock).expect("no socket: no journald");
        assert!(why.contains("not running") && why.contains("socket"), "{why}");
        let listening = UnixDatagram::bind(&sock).unwrap();
        assert_eq!(journald_problem(&sock), None);
        // a journald that stopped leaves its socket file behind
        drop(listening);
        assert!(sock.exists());
        assert!(journald_problem(&sock).unwrap().contains("refused"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn entries_are_read_as_they_come_and_the_end_is_seen() {
        let mut child = Command::new("sh")
            .args(["-c", r#"echo '{"MESSAGE":"one","_COMM":"sshd","__CURSOR":"c1"}'; read x; echo 'noise'"#])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut f = Follow { child, lines: BufReader::new(out) };
        let first = f.next_entry(Duration::from_secs(60)).unwrap();
        assert_eq!(first, Next::Entry("localhost sshd: one".into(), Some("c1".into())));
        assert_eq!(f.next_entry(Duration::from_millis(1)).unwrap(), Next::Idle);
        use std::io::Write;
        stdin.write_all(b"go\n").unwrap();
        // a line that is no entry is skipped; then the output ends
        assert_eq!(f.next_entry(Duration::from_secs(60)).unwrap(), Next::End);
        f.finish();
    }
}
