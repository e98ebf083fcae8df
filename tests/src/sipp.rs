//! A legitimate SIP client: SIPp registering user 1000 with digest auth, once a second, from
//! the lab's peer namespace, and its call statistics.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use crate::netns::{wait_for, Lab};

/// Successful and failed registrations so far (SIPp's cumulative call counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub successful: u64,
    pub failed: u64,
}

/// `sipp` running tests/fixtures/sip/scenarios/register.xml in a loop (one registration at a
/// time, one a second); soft-stopped when dropped.
pub struct RegisterLoop {
    child: Option<Child>,
    stats: PathBuf,
    pub errors: PathBuf,
    pub screen: PathBuf,
}

impl RegisterLoop {
    /// Registers from `source` (an address of the peer namespace, local port 5070) to the
    /// registrar on the lab's host at port 5060; files go in `dir`.
    pub fn start(lab: &Lab, source: &str, dir: &Path) -> RegisterLoop {
        Self::start_with(lab, source, dir, "register.xml", "secret")
    }

    /// The same with scenario `scenario` of tests/fixtures/sip/scenarios and password `password`.
    pub fn start_with(lab: &Lab, source: &str, dir: &Path, scenario: &str, password: &str) -> RegisterLoop {
        // `ip netns exec` starts whether or not sipp exists: look first, so a missing sipp says so
        assert!(
            std::process::Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok(),
            "sipp is not installed: scripts/setup --test installs Debian's sip-tester"
        );
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sip/scenarios").join(scenario);
        let (stats, errors, screen) = (dir.join("sipp-stats.csv"), dir.join("sipp-errors.log"), dir.join("sipp.out"));
        let child = lab
            .cmd(&lab.peer, "sipp")
            .arg("-sf")
            .arg(&scenario)
            .args(["-au", "1000", "-ap", password, "-i", source, "-p", "5070"])
            // one registration a second, never two at once, for as long as the test runs
            .args(["-r", "1", "-rp", "1000", "-l", "1", "-m", "100000"])
            // an answer that does not come fails the registration instead of stalling the loop
            .args(["-recv_timeout", "5000", "-nostdin"])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stats)
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .arg(format!("{}:5060", lab.host_ip4()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&screen).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp (Debian's sip-tester; scripts/setup --test installs it)");
        RegisterLoop { child: Some(child), stats, errors, screen }
    }

    /// The counters of the last statistics line SIPp wrote (every second).
    pub fn counts(&self) -> Counts {
        read_counts(&self.stats)
    }

    /// Waits up to `limit` for at least `n` successful registrations.
    pub fn wait_successes(&self, n: u64, limit: Duration) -> bool {
        wait_for(limit, || self.counts().successful >= n)
    }

    /// Stops SIPp the soft way (SIGUSR1: no new registration, the current one finishes) and
    /// returns its final counters and exit status.
    pub fn stop(&mut self) -> (Counts, Option<std::process::ExitStatus>) {
        let Some(mut child) = self.child.take() else { return (self.counts(), None) };
        // `ip netns exec` execs sipp, so the pid is sipp's.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
        let mut status = None;
        wait_for(Duration::from_secs(20), || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        (self.counts(), status)
    }

    /// What SIPp said about failed registrations, for assertion messages.
    pub fn error_text(&self) -> String {
        std::fs::read_to_string(&self.errors).unwrap_or_default()
    }
}

impl Drop for RegisterLoop {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `SuccessfulCall(C)` and `FailedCall(C)` of the last line of SIPp's `-trace_stat` file
/// (semicolon-separated, named columns on the first line); zero before the first whole line.
pub fn read_counts(path: &Path) -> Counts {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Counts::default() };
    let cols: Vec<&str> = header.split(';').collect();
    // a line SIPp is still writing has fewer fields than the header
    let Some(vals) = lines.rev().map(|l| l.split(';').collect::<Vec<_>>()).find(|v| v.len() >= cols.len()) else {
        return Counts::default();
    };
    let get = |name: &str| {
        cols.iter().position(|c| *c == name).and_then(|i| vals.get(i)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    Counts { successful: get("SuccessfulCall(C)"), failed: get("FailedCall(C)") }
}

#[cfg(test)]
mod tests {
    use super::{read_counts, Counts};

    #[test]
    fn the_last_whole_line_counts() {
        let path = std::env::temp_dir().join(format!("sipp-stats-{}.csv", std::process::id()));
        assert_eq!(read_counts(&path), Counts::default(), "no file yet");
        let head = "CurrentTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n";
        std::fs::write(&path, format!("{head}t1;1;1;0;0;\nt2;1;2;1;1;\nt3;1;3")).unwrap();
        assert_eq!(read_counts(&path), Counts { successful: 2, failed: 1 });
        let _ = std::fs::remove_file(&path);
    }
}
