//! Kamailio as a registrar in the lab's host namespace: tests/fixtures/sip/kamailio.cfg (user
//! 1000, password `secret`) moved to the lab's host address.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use crate::netns::{wait_for, Lab};

/// The fixture configuration, written for a server at `addr` (the fixtures use 10.77.0.2).
pub fn registrar_cfg(addr: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sip/kamailio.cfg");
    let cfg = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cfg.replace("10.77.0.2", addr)
}

/// A server at `addr` that refuses every REGISTER: 403 Forbidden for user 1000, 404 Not Found for
/// any other user; OPTIONS get 200.
pub fn refusing_cfg(addr: &str) -> String {
    format!(
        r#"#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:{addr}:5060
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
	if ($fU != "1000") {{ sl_send_reply("404", "Not Found"); exit; }}
	sl_send_reply("403", "Forbidden");
}}
"#
    )
}

/// A running Kamailio; stopped (with its worker processes) when dropped.
pub struct Registrar {
    child: Child,
    pub log: PathBuf,
}

impl Registrar {
    /// Starts Kamailio on the lab's host address (UDP and TCP port 5060); its files go in `dir`.
    pub fn start(lab: &Lab, dir: &Path) -> Registrar {
        Registrar::with_config(lab, dir, &registrar_cfg(&lab.host_ip4()))
    }

    /// Starts Kamailio in the lab's host namespace with the configuration `text`.
    pub fn with_config(lab: &Lab, dir: &Path, text: &str) -> Registrar {
        let cfg = dir.join("kamailio.cfg");
        std::fs::write(&cfg, text).unwrap();
        let log = dir.join("kamailio.log");
        crate::netns::require_tool("kamailio", "kamailio");
        let child = lab
            .cmd(&lab.host, "kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(&cfg)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start kamailio (Debian's kamailio; scripts/setup --test installs it)");
        Registrar { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its workers; SIGKILL would leave them running.
        // `ip netns exec` execs kamailio, so the pid is kamailio's.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let child = &mut self.child;
        if !wait_for(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
