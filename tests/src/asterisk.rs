//! The real Asterisk of ../shared/asterisk (chan_sip on UDP 5060, pjsip on UDP 5080) in a lab's
//! host namespace, forged requests to it, and svcrack against it. The phone that registers with
//! it is in [`crate::phone`].

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use etherparse::PacketBuilder;

use crate::{
    ci,
    netns::{wait_for, Lab},
};

pub const CHAN_SIP: u16 = 5060;
pub const PJSIP: u16 = 5080;
/// The accounts build.sh configures on both drivers: (user, password).
pub const ALICE: (&str, &str) = ("alice", "S3cure-Passw0rd-xyz");
pub const BOB: (&str, &str) = ("bob", "B0b-Str0ng-Secret-9QzW");
/// How long Asterisk may take to boot and bind on a busy 2-core CI machine.
const BOOT: Duration = Duration::from_secs(180);
/// The manager interface (AMI), on the loopback of the lab's host namespace.
pub const AMI_PORT: u16 = 5038;
/// The manager account the lab gives sipwall: security events only, no actions.
pub const AMI_USER: &str = "sipwall";
const AMI_SECRET: &str = "lab-Ami-7q2-secret";

/// manager.conf of the lab: AMI on 127.0.0.1 with sipwall's account (`read = security`).
fn manager_conf() -> String {
    format!(
        "[general]\nenabled = yes\nport = {AMI_PORT}\nbindaddr = 127.0.0.1\n\n\
         [{AMI_USER}]\nsecret = {AMI_SECRET}\nread = security\nwrite =\n"
    )
}

/// Writes the credentials file an `ami:` source of sipwall logs in with into `dir`.
pub fn ami_credentials(dir: &Path) -> PathBuf {
    let p = dir.join("ami.conf");
    std::fs::write(&p, format!("; the lab Asterisk's manager account\nusername = {AMI_USER}\nsecret = {AMI_SECRET}\n"))
        .unwrap();
    p
}

/// logger.conf with the console only: Asterisk writes no log file.
const NO_LOG_FILES: &str = "[general]\n[logfiles]\nconsole => notice,warning,error\n";

/// One Asterisk per prefix (one PID file, one control socket): tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Where build.sh installs Asterisk: `$ASTERISK_PREFIX`, else /opt/sipwall-asterisk.
pub fn prefix() -> PathBuf {
    std::env::var_os("ASTERISK_PREFIX").map_or_else(|| PathBuf::from("/opt/sipwall-asterisk"), PathBuf::from)
}

/// The installed Asterisk's prefix. Missing, it fails the test under CI and skips it loudly
/// otherwise (`None`).
pub fn installed(test: &str) -> Option<PathBuf> {
    let p = prefix();
    if p.join("sbin/asterisk").is_file() && p.join("run-asterisk.sh").is_file() {
        return Some(p);
    }
    let msg = format!(
        "{test}: no Asterisk in {}: `scripts/setup --test` builds it (../shared/asterisk/build.sh, about 10 minutes)",
        p.display()
    );
    assert!(!ci(), "{msg}; CI is set, so a missing Asterisk is a failure");
    eprintln!("\n*** SKIPPED {msg} ***\n");
    None
}

/// Skips the calling test (loudly) unless the lab Asterisk is installed; under CI, fails it.
#[macro_export]
macro_rules! require_asterisk {
    () => {
        match $crate::asterisk::installed(module_path!()) {
            Some(prefix) => prefix,
            None => return,
        }
    };
}

/// A running Asterisk in the lab's host namespace, started with empty logs; stopped on drop.
pub struct Asterisk {
    prefix: PathBuf,
    host: String,
    /// logger.conf as it was before [`Asterisk::logging_off`], put back on drop.
    logger: Option<String>,
    _turn: MutexGuard<'static, ()>,
}

impl Asterisk {
    /// Starts the Asterisk installed in `prefix` in `lab`'s host namespace and waits until it
    /// booted and listens on UDP 5060 and 5080 on every address (so on the veth's too).
    pub fn start(lab: &Lab, prefix: &Path) -> Asterisk {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let a = Asterisk { prefix: prefix.to_owned(), host: lab.host.clone(), logger: None, _turn: turn };
        let manager = prefix.join("etc/asterisk/manager.conf");
        std::fs::write(&manager, manager_conf()).unwrap_or_else(|e| panic!("{}: {e}", manager.display()));
        a.boot(lab);
        a
    }

    /// Runs run-asterisk.sh, which empties the log files, and waits until Asterisk booted and
    /// listens.
    fn boot(&self, lab: &Lab) {
        let (a, prefix) = (self, &self.prefix);
        // the script waits 30 s for `core waitfullybooted`; a slower boot is waited for below
        let out =
            lab.cmd(&lab.host, "timeout").arg("120").arg(prefix.join("run-asterisk.sh")).arg("--clean-logs").output();
        let out = out.unwrap_or_else(|e| panic!("{}/run-asterisk.sh: {e}", prefix.display()));
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!said.contains("failed to start"), "Asterisk did not start: {said}\n{}", a.startup_log());
        let booted = wait_for(BOOT, || a.cli("core waitfullybooted").is_some() && a.listens_everywhere());
        assert!(
            booted,
            "Asterisk in {} did not boot and listen on 0.0.0.0:{CHAN_SIP} and 0.0.0.0:{PJSIP}/udp in {BOOT:?} \
             (sip.conf udpbindaddr, pjsip.conf bind): {said}\nUDP sockets:\n{}\n{}",
            lab.host,
            a.udp_table(),
            a.startup_log()
        );
        // pjsip keeps contacts in its database across restarts; those of earlier labs would
        // fill alice's AOR (max_contacts = 2) and get her phone refused
        let forgot = a.cli("database deltree registrar");
        assert!(forgot.is_some(), "Asterisk did not forget the registrations of earlier runs");
    }

    /// Stops Asterisk and starts it again (its manager interface too): sessions end, and the
    /// log files are emptied.
    pub fn restart(&self, lab: &Lab) {
        let _ = lab.cmd(&lab.host, "timeout").arg("60").arg(self.prefix.join("stop-asterisk.sh")).output();
        self.boot(lab);
    }

    /// Asterisk writes no log file from now on (logger.conf keeps the console only, reloaded);
    /// the configuration is put back when this is dropped.
    pub fn logging_off(&mut self) {
        let conf = self.prefix.join("etc/asterisk/logger.conf");
        if self.logger.is_none() {
            self.logger = Some(std::fs::read_to_string(&conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display())));
        }
        std::fs::write(&conf, NO_LOG_FILES).unwrap();
        let out = self.cli("logger reload").unwrap_or_default();
        let channels = self.cli("logger show channels").unwrap_or_default();
        assert!(
            !channels.contains(" File "),
            "Asterisk still writes log files after `logger reload` ({out}):\n{channels}"
        );
    }

    pub fn log_dir(&self) -> PathBuf {
        self.prefix.join("var/log/asterisk")
    }

    /// chan_sip's and pjsip's notices: `… failed for 'IP:PORT' …`.
    pub fn messages(&self) -> PathBuf {
        self.log_dir().join("messages")
    }

    /// The security events: `SecurityEvent="…",…,RemoteAddress="IPV4/UDP/IP/PORT",…`.
    pub fn security(&self) -> PathBuf {
        self.log_dir().join("security")
    }

    /// The files a jail reads to watch this Asterisk.
    pub fn log_files(&self) -> [PathBuf; 2] {
        [self.messages(), self.security()]
    }

    /// `asterisk -rx CMD` through the control socket; `None` if it failed.
    pub fn cli(&self, cmd: &str) -> Option<String> {
        let out = Command::new("timeout")
            .arg("20")
            .arg(self.prefix.join("sbin/asterisk"))
            .args(["-rx", cmd])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The lines of `file` holding every one of `needles`.
    pub fn logged(&self, file: &Path, needles: &[&str]) -> Vec<String> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines().filter(|l| needles.iter().all(|n| l.contains(n))).map(str::to_owned).collect()
    }

    /// Waits up to `limit` until `file` holds `n` lines with all of `needles`, and returns them.
    pub fn wait_logged(&self, file: &Path, n: usize, needles: &[&str], limit: Duration) -> Vec<String> {
        let enough = || self.logged(file, needles).len() >= n;
        let ok = wait_for(limit, enough) || enough();
        let got = self.logged(file, needles);
        assert!(
            ok,
            "Asterisk logged {} of {n} lines with {needles:?} in {limit:?}; {}:\n{}",
            got.len(),
            file.display(),
            std::fs::read_to_string(file).unwrap_or_default()
        );
        got
    }

    fn startup_log(&self) -> String {
        std::fs::read_to_string(self.log_dir().join("startup.log")).unwrap_or_default()
    }

    fn udp_table(&self) -> String {
        let out = Command::new("ip").args(["netns", "exec", &self.host, "cat", "/proc/net/udp"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    /// Whether UDP sockets are bound to 0.0.0.0:5060 and 0.0.0.0:5080 in the host namespace.
    fn listens_everywhere(&self) -> bool {
        let t = self.udp_table();
        [CHAN_SIP, PJSIP].iter().all(|p| t.contains(&format!(" 00000000:{p:04X} ")))
    }
}

impl Drop for Asterisk {
    fn drop(&mut self) {
        let _ =
            Command::new("ip").args(["netns", "exec", &self.host]).arg(self.prefix.join("stop-asterisk.sh")).output();
        if let Some(text) = self.logger.take() {
            let _ = std::fs::write(self.prefix.join("etc/asterisk/logger.conf"), text);
        }
    }
}

/// A UDP datagram carrying `text` that `src` (any address and port: the frame is built, not sent
/// by a socket of `src`) sends to the lab host's `port`.
pub fn forged(lab: &Lab, src: SocketAddr, port: u16, text: &str) -> Vec<u8> {
    let (SocketAddr::V4(src), Ok(dst)) = (src, lab.host_ip4().parse::<Ipv4Addr>()) else { panic!("IPv4 only") };
    let b = PacketBuilder::ethernet2(lab.peer_mac, lab.host_mac).ipv4(src.ip().octets(), dst.octets(), 64);
    let b = b.udp(src.port(), port);
    let mut out = Vec::with_capacity(b.size(text.len()));
    b.write(&mut out, text.as_bytes()).unwrap();
    out
}

/// A one-datagram REGISTER for `user` from `src` to the lab host's `port`; `n` tells copies
/// apart. With `made_up_credentials`, it carries an Authorization header for a challenge never
/// sent: a made-up nonce and a wrong response.
pub fn forged_register(
    lab: &Lab,
    src: SocketAddr,
    port: u16,
    user: &str,
    n: u32,
    made_up_credentials: bool,
) -> Vec<u8> {
    let host = lab.host_ip4();
    let auth = if made_up_credentials {
        let nonce = format!("{}/{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_secs(), md5_hex(&n.to_be_bytes()));
        format!(
            "Authorization: Digest username=\"{user}\",realm=\"asterisk\",nonce=\"{nonce}\",uri=\"sip:{host}:{port}\",\
             response=\"{}\",algorithm=MD5\r\n",
            md5_hex(nonce.as_bytes())
        )
    } else {
        String::new()
    };
    let text = format!(
        "REGISTER sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK-forged-{n}-{}-{};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{host}>;tag=forged{n}\r\nTo: <sip:{user}@{host}>\r\n\
         Call-ID: forged-{n}-{src}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{src}>\r\n{auth}\
         User-Agent: {PHONE_AGENT}\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
        // pjsip keys transactions by branch alone: one per source
        src.ip(),
        src.port(),
    );
    forged(lab, src, port, &text)
}

/// `svcrack -u USER -d WORDLIST -p PORT` from `addr` (an address of the peer namespace, added by
/// `sipvicious::Attacker::new`) against the lab host; what it printed. Its files go in `dir`.
pub fn svcrack(lab: &Lab, addr: &str, port: u16, user: &str, passwords: &[&str], dir: &Path) -> String {
    // svcrack 0.3.3 ignores -b: its socket takes the source of the route to the host
    let target = lab.host_ip4();
    let route = Command::new("ip")
        .args(["-n", &lab.peer, "route", "replace", &format!("{target}/32"), "dev", &lab.peer_if, "src", addr])
        .output()
        .expect("run ip");
    assert!(route.status.success(), "route from {addr}: {}", String::from_utf8_lossy(&route.stderr));
    let words = dir.join(format!("svcrack-{addr}-{port}.txt"));
    std::fs::write(&words, passwords.join("\n") + "\n").unwrap();
    crate::netns::require_tool("svcrack", "sipvicious");
    let out = lab
        .cmd(&lab.peer, "timeout")
        .args(["120", "svcrack", "-b", addr, "-p", &port.to_string(), "-t", "0.2", "-u", user, "-d"])
        .arg(&words)
        .arg(&target)
        // sipvicious keeps its sessions under $HOME/.sipvicious
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("svcrack (Debian's sipvicious; scripts/setup --test installs it): {e}"));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub use crate::phone::{md5_hex, Phone, PHONE_AGENT};
