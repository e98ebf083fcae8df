//! A real OpenSSH server in a lab's protected namespace, and a real client failing passwords
//! from the other: the peers of the sshd end-to-end tests.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::netns::{wait_for, Lab};

/// Where sshd writes its log.
pub enum SshdLog {
    /// A file of its own (`-E`); `start` waits until sshd says it listens.
    File,
    /// syslog(3) to `/dev/log`, as a Debian sshd under systemd does.
    Syslog,
}

/// `sshd -D` in the lab's host namespace; killed when dropped.
pub struct Sshd {
    child: Child,
    /// The log file, with `SshdLog::File`.
    pub log: Option<PathBuf>,
}

impl Sshd {
    pub fn start(lab: &Lab, dir: &Path, log_to: SshdLog) -> Sshd {
        std::fs::create_dir_all("/run/sshd").unwrap(); // sshd's privilege separation directory
        let key = dir.join("host_key");
        let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).output().unwrap();
        assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        let cfg = dir.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "Port 22\nListenAddress {}\nHostKey {}\nPidFile {}\nUsePAM no\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nLogLevel INFO\nSyslogFacility AUTH\nStrictModes no\n\
                 MaxStartups 100\n",
                lab.host_ip4(),
                key.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        let log = match log_to {
            SshdLog::File => Some(dir.join("auth.log")),
            SshdLog::Syslog => None,
        };
        crate::netns::require_tool("/usr/sbin/sshd", "openssh-server");
        let mut cmd = lab.cmd(&lab.host, "/usr/sbin/sshd");
        cmd.args(["-D", "-f"]).arg(&cfg);
        if let Some(log) = &log {
            std::fs::write(log, "").unwrap();
            cmd.arg("-E").arg(log);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd (Debian's openssh-server; scripts/setup --test installs it)");
        if let Some(log) = &log {
            let text = || std::fs::read_to_string(log).unwrap_or_default();
            assert!(
                wait_for(Duration::from_secs(10), || text().contains("Server listening")),
                "sshd did not start: {}",
                text()
            );
        }
        Sshd { child, log }
    }
}

impl Sshd {
    /// The connections sshd still serves: its children, one per connection (sshd -D forks
    /// nothing else), counted once the listener reaped those that ended.
    pub fn sessions(&self) -> usize {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children.split_whitespace().count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One login attempt with a wrong password, from the peer namespace. Returns what ssh said.
pub fn attempt(lab: &Lab, timeout_secs: u32) -> String {
    attempt_from(lab, None, timeout_secs)
}

/// The same from address `from` of the peer namespace (its main address with `None`).
pub fn attempt_from(lab: &Lab, from: Option<&str>, timeout_secs: u32) -> String {
    crate::netns::require_tool("sshpass", "sshpass");
    let mut cmd = lab.cmd(&lab.peer, "sshpass");
    cmd.args(["-p", "wrong-password", "ssh"]);
    if let Some(a) = from {
        cmd.args(["-o", &format!("BindAddress={a}")]);
    }
    let out = cmd
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args(["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"])
        .args(["-o", "NumberOfPasswordPrompts=1", "-o", &format!("ConnectTimeout={timeout_secs}")])
        .arg(format!("root@{}", lab.host_ip4()))
        .arg("true")
        .output()
        .expect("run sshpass (scripts/setup --test installs it)");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Rules protecting SSH with an `sshd` jail (asterisk off) reading `logpath`, or with `None`
/// the built-in source: root's sshd in the journal.
pub fn jail_rules(logpath: Option<&str>, maxretry: impl std::fmt::Display) -> String {
    let logpath = logpath.map(|p| format!("logpath = [\"{p}\"]\n")).unwrap_or_default();
    format!(
        r#"
[services.ssh]
ports = ["22/tcp"]

[jails.sshd]
{logpath}maxretry = {maxretry}
findtime = "10m"
bantime = "1h"

[jails.asterisk]
enabled = false
"#
    )
}
