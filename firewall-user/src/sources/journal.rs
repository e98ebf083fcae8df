//! The systemd journal, through `journalctl --follow --output=json`, by unit (`journal:UNIT`)
//! or by field matches (`journal:_COMM=sshd`). Each entry becomes a syslog-style line,
//! `HOST IDENT[PID]: MESSAGE`, so the detectors read journal and files alike. The cursor of the
//! last entry read is kept, so a restarted journalctl continues where the last one stopped.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use serde_json::Value;

/// The journalctl command for `matches`, starting after `cursor`, at the end, or (with
/// `from_start`) at the oldest entry.
pub fn command(matches: &[String], cursor: Option<&str>, from_start: bool) -> Command {
    let mut c = Command::new("journalctl");
    c.args(["--follow", "--output=json", "--no-pager", "--quiet"]);
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

    /// The next entry's line and cursor; `Ok(None)` when journalctl has ended.
    pub fn next_entry(&mut self) -> std::io::Result<Option<(String, Option<String>)>> {
        let mut buf = String::new();
        loop {
            buf.clear();
            if self.lines.read_line(&mut buf)? == 0 {
                return Ok(None);
            }
            if let Some(e) = entry_line(buf.trim_end()) {
                return Ok(Some(e));
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
        let c = command(&["_COMM=sshd".into(), "_COMM=sshd-session".into()], Some("abc"), false);
        let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(args.contains(&"_COMM=sshd".to_owned()) && args.contains(&"--after-cursor=abc".to_owned()));
    }
}
