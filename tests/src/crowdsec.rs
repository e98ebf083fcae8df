//! CrowdSec peers for the lab tier: a private Local API (LAPI) and Debian's
//! crowdsec-firewall-bouncer, each in a network namespace of its own.
//!
//! The LAPI runs as `crowdsec -no-cs -no-capi`: no agent reading logs, no Central API, no hub
//! download. Its namespace has no route out, only a veth pair to each namespace that
//! [`Lapi::connect`] joins to it, so nothing it does can leave the machine. `cscli` runs inside
//! that namespace against the LAPI's own configuration. A bouncer (Debian's, or later a
//! `sipwall run`) reaches the LAPI at the URL `connect` returns, with a key from
//! [`Lapi::add_bouncer`].

use std::{
    io::{Read, Write},
    net::{IpAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use ipnet::IpNet;

use crate::netns::{in_netns, require_tool, sh, wait_for};

/// The port the LAPI listens on, on every address of its namespace.
pub const LAPI_PORT: u16 = 8080;

/// How long a LAPI or a bouncer may take to come up, on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(60);

static NEXT_NS: AtomicU32 = AtomicU32::new(0);
static NEXT_LINK: AtomicU32 = AtomicU32::new(0);

/// Fails at once, naming the Debian package, unless CrowdSec's programs are installed:
/// `crowdsec` and `cscli` (Debian's crowdsec) and `crowdsec-firewall-bouncer`.
pub fn require_crowdsec() {
    require_tool("crowdsec", "crowdsec");
    require_tool("cscli", "crowdsec");
    require_tool("crowdsec-firewall-bouncer", "crowdsec-firewall-bouncer");
}

/// `ip netns exec NS PROGRAM` as a Command.
fn ns_cmd(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// A new namespace named `PREFIX-<pid>-<n>` with its loopback up; a leftover of an earlier run
/// with that name is deleted first.
fn new_netns(prefix: &str) -> String {
    let ns = format!("{prefix}-{}-{}", std::process::id(), NEXT_NS.fetch_add(1, Ordering::SeqCst));
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    sh(&["ip", "netns", "add", &ns]);
    sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
    ns
}

/// An empty directory for `what`'s files in namespace `ns`, under the system's temporary
/// directory; a leftover of an earlier run is removed first.
fn scratch_dir(what: &str, ns: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipwall-{what}-{ns}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// `bytes` random bytes from the kernel, in lowercase hex (twice as many characters).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts `command` with its stdout and stderr appended to `log`, in directory `dir`.
fn spawn_logged(mut command: Command, dir: &Path, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"))
}

/// SIGTERM, then SIGKILL if the process has not exited within 10 seconds; reaps it.
fn terminate(child: &mut Child) {
    // SAFETY: signalling our own child. `ip netns exec` execs the program, so the pid is its own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if !wait_for(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Whether `child` has exited (it is reaped if so).
fn exited(child: &mut Child) -> Option<std::process::ExitStatus> {
    child.try_wait().ok().flatten()
}

/// A private CrowdSec Local API in a namespace of its own, listening on
/// 0.0.0.0:[`LAPI_PORT`] there, with its configuration, SQLite database and log in a scratch
/// directory. Dropping it stops the LAPI and deletes the namespace (and with it every veth pair
/// that [`Lapi::connect`] made); the directory goes too unless the test failed.
pub struct Lapi {
    /// The LAPI's namespace.
    pub ns: String,
    /// Its configuration, database (`data/crowdsec.db`) and log.
    pub dir: PathBuf,
    /// The `config.yaml` that `crowdsec` and `cscli` are given.
    pub config: PathBuf,
    /// What `crowdsec` writes on stdout and stderr, across restarts.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Lapi {
    /// Starts a LAPI and waits (up to 60 s) until it answers HTTP inside its namespace; then
    /// registers the machine `cscli` uses for decisions (`dir/local_api_credentials.yaml`).
    pub fn start() -> Lapi {
        require_crowdsec();
        let ns = new_netns("swc");
        let dir = scratch_dir("lapi", &ns);
        write_lapi_config(&dir);
        let mut lapi = Lapi { config: dir.join("config.yaml"), log: dir.join("crowdsec.log"), ns, dir, child: None };
        lapi.spawn();
        let creds = lapi.dir.join("local_api_credentials.yaml");
        let url = format!("http://127.0.0.1:{LAPI_PORT}/");
        lapi.cscli(&["machines", "add", "cscli", "--password", &random_hex(16), "-u", &url, "-f", path_str(&creds)]);
        lapi
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the LAPI is already running");
        let mut command = ns_cmd(&self.ns, "crowdsec");
        command.arg("-c").arg(&self.config).args(["-no-cs", "-no-capi"]);
        let mut child = spawn_logged(command, &self.dir, &self.log);
        let ns = self.ns.clone();
        let up = wait_for(START_LIMIT, || exited(&mut child).is_some() || answers_http(&ns, LAPI_PORT));
        if let Some(status) = exited(&mut child) {
            panic!("crowdsec (LAPI) exited ({status}) during start:\n{}", self.log_text());
        }
        assert!(up, "the LAPI did not answer HTTP on port {LAPI_PORT} in {START_LIMIT:?}:\n{}", self.log_text());
        self.child = Some(child);
    }

    /// Stops the LAPI (SIGTERM); its database stays for [`Lapi::restart`].
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("the LAPI is not running");
        terminate(&mut child);
    }

    /// Starts the LAPI again on the same configuration and database (stopping it first if it
    /// runs): machines, bouncers and decisions survive.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// What the LAPI logged so far, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `cscli -c CONFIG ARGS...` in the LAPI's namespace and returns its stdout; panics
    /// with its output if it fails. Bouncers and machines go straight to the database;
    /// decisions go through the LAPI, which must be running.
    pub fn cscli(&self, args: &[&str]) -> String {
        let out = ns_cmd(&self.ns, "cscli")
            .arg("-c")
            .arg(&self.config)
            .args(["--color", "no"])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run cscli");
        assert!(
            out.status.success(),
            "cscli {args:?} failed ({}):\n{}{}\nLAPI log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Joins namespace `ns` to the LAPI's with a new veth pair on a /30 of its own in
    /// 10.201.0.0/16 (the LAPI's end .1 of the four, `ns`'s end .2), and returns the LAPI's URL
    /// as `ns` reaches it: `http://10.201.A.B:8080/`. Each call makes a new link, so several
    /// namespaces (or several LAPIs for one namespace) can be joined.
    pub fn connect(&self, ns: &str) -> String {
        let (lapi_addr, peer_addr, lapi_if, peer_if) = next_link();
        sh(&["ip", "link", "add", &lapi_if, "netns", &self.ns, "type", "veth", "peer", "name", &peer_if, "netns", ns]);
        sh(&["ip", "-n", &self.ns, "addr", "add", &format!("{lapi_addr}/30"), "dev", &lapi_if]);
        sh(&["ip", "-n", ns, "addr", "add", &format!("{peer_addr}/30"), "dev", &peer_if]);
        sh(&["ip", "-n", &self.ns, "link", "set", &lapi_if, "up"]);
        sh(&["ip", "-n", ns, "link", "set", &peer_if, "up"]);
        format!("http://{lapi_addr}:{LAPI_PORT}/")
    }

    /// Registers a bouncer `name` with a new random key (32 hex characters) and returns the key,
    /// which the bouncer sends as `X-Api-Key`.
    pub fn add_bouncer(&self, name: &str) -> String {
        let key = random_hex(16);
        self.cscli(&["bouncers", "add", name, "-k", &key]);
        key
    }

    /// Registers a machine (a log processor that sends alerts) `name` with a random password,
    /// and writes its credentials (`url:` `url`, `login:`, `password:`) to
    /// `dir/NAME-credentials.yaml`, whose path it returns. `url` is the LAPI as the machine
    /// reaches it: what [`Lapi::connect`] returned for its namespace.
    pub fn add_machine(&self, name: &str, url: &str) -> PathBuf {
        let file = self.dir.join(format!("{name}-credentials.yaml"));
        self.cscli(&["machines", "add", name, "--password", &random_hex(16), "-u", url, "-f", path_str(&file)]);
        file
    }

    /// The active decisions, as `(scope, value, type)`: ("Ip", "192.0.2.1", "ban"),
    /// ("Range", "192.0.2.0/24", "ban"), from `cscli decisions list -o json`.
    pub fn decisions(&self) -> Vec<(String, String, String)> {
        let text = self.cscli(&["decisions", "list", "-o", "json"]);
        let alerts: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("cscli decisions list -o json: {e}:\n{text}"));
        let field = |d: &serde_json::Value, k: &str| d[k].as_str().unwrap_or_default().to_string();
        // `null` when there are none
        alerts
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|alert| alert["decisions"].as_array().cloned().unwrap_or_default())
            .map(|d| (field(&d, "scope"), field(&d, "value"), field(&d, "type")))
            .collect()
    }

    /// The address bouncer `name` last pulled decisions from, once it has.
    pub fn bouncer_address(&self, name: &str) -> Option<String> {
        let text = self.cscli(&["bouncers", "list", "-o", "json"]);
        let list: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("cscli bouncers list -o json: {e}:\n{text}"));
        let bouncer = list.as_array()?.iter().find(|b| b["name"] == name)?;
        Some(bouncer["ip_address"].as_str()?.to_string()).filter(|a| !a.is_empty())
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        if std::thread::panicking() {
            eprintln!("LAPI files (log: crowdsec.log) kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The next link's addresses and interface names: (LAPI end, other end, LAPI interface, other
/// interface). The /30s of 10.201.0.0/16 are taken in turn from a place that depends on the
/// process, so that tests side by side in one process never share one, and names stay unique
/// in every namespace.
fn next_link() -> (String, String, String, String) {
    let i = (std::process::id().wrapping_mul(97) + NEXT_LINK.fetch_add(1, Ordering::SeqCst)) % 16384;
    let (a, b) = (i / 64, (i % 64) * 4);
    (format!("10.201.{a}.{}", b + 1), format!("10.201.{a}.{}", b + 2), format!("csl{i}"), format!("csp{i}"))
}

/// Whether something answers HTTP on 127.0.0.1:`port` inside namespace `ns`.
fn answers_http(ns: &str, port: u16) -> bool {
    in_netns(ns, move || {
        let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET / HTTP/1.0\r\nHost: lapi\r\n\r\n").is_err() {
            return false;
        }
        let mut head = [0u8; 5];
        s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
    })
    .join()
    .unwrap_or(false)
}

/// Writes a LAPI-only configuration into `dir`: SQLite in `dir/data`, an empty hub, no
/// simulation, Debian's default profile (an IP alert with remediation gets a 4 h ban), no
/// Prometheus, the API on 0.0.0.0:LAPI_PORT, and no `online_client` (no Central API).
fn write_lapi_config(dir: &Path) {
    let d = path_str(dir);
    for sub in ["data", "hub", "notifications"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("hub/.index.json"), "{}\n").unwrap();
    std::fs::write(dir.join("simulation.yaml"), "simulation: false\n").unwrap();
    std::fs::write(
        dir.join("profiles.yaml"),
        "name: default_ip_remediation\n\
         filters:\n  - Alert.Remediation == true && Alert.GetScope() == \"Ip\"\n\
         decisions:\n  - type: ban\n    duration: 4h\n\
         on_success: break\n",
    )
    .unwrap();
    let config = format!(
        "common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: {d}
config_paths:
  config_dir: {d}/
  data_dir: {d}/data/
  simulation_path: {d}/simulation.yaml
  hub_dir: {d}/hub/
  index_path: {d}/hub/.index.json
  notification_dir: {d}/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
cscli:
  output: human
db_config:
  log_level: info
  type: sqlite
  db_path: {d}/data/crowdsec.db
  use_wal: false
api:
  client:
    credentials_path: {d}/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: 0.0.0.0:{LAPI_PORT}
    profiles_path: {d}/profiles.yaml
    trusted_ips:
      - 127.0.0.1
prometheus:
  enabled: false
"
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
}

/// Which of Debian's crowdsec-firewall-bouncer backends to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `mode: nftables` (Debian's default): tables `crowdsec` and `crowdsec6` with the sets
    /// `crowdsec-blacklists` and `crowdsec6-blacklists`. In 0.0.25 these sets have no `interval`
    /// flag, so a range decision is stored as its first address only.
    Nftables,
    /// `mode: iptables`: ipsets `crowdsec-blacklists` and `crowdsec6-blacklists` of type
    /// hash:net, matched by an INPUT rule of iptables and ip6tables; ranges are whole.
    Ipset,
}

/// Debian's crowdsec-firewall-bouncer in a namespace of its own, joined to a [`Lapi`] and
/// pulling its decisions every second; its sets and rules live in its namespace only. Dropping
/// it stops the bouncer and deletes the namespace.
pub struct FirewallBouncer {
    /// The bouncer's namespace, which is also its name at the LAPI.
    pub ns: String,
    /// Its configuration and log.
    pub dir: PathBuf,
    /// What the bouncer writes on stdout and stderr.
    pub log: PathBuf,
    /// Which of its backends it runs.
    pub backend: Backend,
    child: Child,
}

impl FirewallBouncer {
    /// Registers a bouncer at `lapi`, starts it with `backend`, and waits (up to 60 s) until it
    /// has pulled decisions once: the LAPI knows the address it pulled from.
    pub fn start(lapi: &Lapi, backend: Backend) -> FirewallBouncer {
        require_crowdsec();
        match backend {
            Backend::Nftables => require_tool("/usr/sbin/nft", "nftables"),
            Backend::Ipset => {
                require_tool("/usr/sbin/ipset", "ipset");
                require_tool("/usr/sbin/iptables", "iptables");
            }
        }
        let ns = new_netns("swf");
        let dir = scratch_dir("fw-bouncer", &ns);
        let url = lapi.connect(&ns);
        let key = lapi.add_bouncer(&ns);
        let config = dir.join("crowdsec-firewall-bouncer.yaml");
        std::fs::write(&config, bouncer_config(backend, &url, &key, &dir)).unwrap();
        let log = dir.join("bouncer.log");
        let mut command = ns_cmd(&ns, "crowdsec-firewall-bouncer");
        command.arg("-c").arg(&config);
        let child = spawn_logged(command, &dir, &log);
        let mut bouncer = FirewallBouncer { ns, dir, log, backend, child };
        let pulled = wait_for(START_LIMIT, || {
            exited(&mut bouncer.child).is_some() || lapi.bouncer_address(&bouncer.ns).is_some()
        });
        if let Some(status) = exited(&mut bouncer.child) {
            panic!("crowdsec-firewall-bouncer exited ({status}) during start:\n{}", bouncer.log_text());
        }
        assert!(
            pulled,
            "crowdsec-firewall-bouncer did not pull decisions from {url} in {START_LIMIT:?}:\n{}\nLAPI log:\n{}",
            bouncer.log_text(),
            lapi.log_text()
        );
        bouncer
    }

    /// What the bouncer logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether address `addr` (IPv4 or IPv6) is blocked: it, or a network or range holding it,
    /// is an element of the bouncer's sets.
    pub fn has(&self, addr: &str) -> bool {
        let ip: IpAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
        self.entries().iter().any(|e| covers(e, ip))
    }

    /// The elements of the bouncer's IPv4 and IPv6 sets as the backend lists them: addresses
    /// (`192.0.2.1`), networks (`192.0.2.0/28`) or ranges (`192.0.2.1-192.0.2.9`).
    pub fn entries(&self) -> Vec<String> {
        match self.backend {
            Backend::Nftables => {
                [("ip", "crowdsec", "crowdsec-blacklists"), ("ip6", "crowdsec6", "crowdsec6-blacklists")]
                    .iter()
                    .flat_map(|(family, table, set)| {
                        let json = self.run("/usr/sbin/nft", &["-j", "list", "set", family, table, set]);
                        nft_set_elements(&json)
                    })
                    .collect()
            }
            Backend::Ipset => ["crowdsec-blacklists", "crowdsec6-blacklists"]
                .iter()
                .flat_map(|set| ipset_members(&self.run("/usr/sbin/ipset", &["list", set])))
                .collect(),
        }
    }

    /// Runs `program args` in the bouncer's namespace; stdout, or a panic with stderr.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = ns_cmd(&self.ns, program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} in {} failed: {}\nbouncer log:\n{}",
            self.ns,
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for FirewallBouncer {
    fn drop(&mut self) {
        terminate(&mut self.child);
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        if std::thread::panicking() {
            eprintln!("bouncer files (log: bouncer.log) kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The bouncer's configuration: `backend`, LAPI `url` and `key`, a pull every second, logs on
/// stdout, IPv6 on, bans only, DROP, no Prometheus, its pid file in `dir`.
fn bouncer_config(backend: Backend, url: &str, key: &str, dir: &Path) -> String {
    let mode = match backend {
        Backend::Nftables => "nftables",
        Backend::Ipset => "iptables",
    };
    format!(
        "mode: {mode}
pid_dir: {dir}/
update_frequency: 1s
daemonize: false
log_mode: stdout
log_level: info
api_url: {url}
api_key: {key}
insecure_skip_verify: false
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
blacklists_ipv4: crowdsec-blacklists
blacklists_ipv6: crowdsec6-blacklists
ipset_type: nethash
iptables_chains:
  - INPUT
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: crowdsec
    chain: crowdsec-chain
  ipv6:
    enabled: true
    set-only: false
    table: crowdsec6
    chain: crowdsec6-chain
prometheus:
  enabled: false
",
        dir = path_str(dir)
    )
}

/// The elements of the set in `nft -j list set` output: an address, a prefix
/// (`{"prefix": {"addr", "len"}}`) or a range (`{"range": [first, last]}`), bare or wrapped in
/// `{"elem": {"val": ...}}` when they carry a timeout.
fn nft_set_elements(json: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("nft -j: {e}:\n{json}"));
    let items = doc["nftables"].as_array().cloned().unwrap_or_default();
    let set = items.iter().find_map(|i| i.get("set")).unwrap_or_else(|| panic!("no set in nft -j output:\n{json}"));
    let elems = set["elem"].as_array().cloned().unwrap_or_default();
    elems
        .iter()
        .map(|e| {
            let v = e.get("elem").map_or(e, |w| &w["val"]);
            if let Some(a) = v.as_str() {
                a.to_string()
            } else if let Some(p) = v.get("prefix") {
                format!("{}/{}", p["addr"].as_str().unwrap_or_default(), p["len"])
            } else if let Some(r) = v.get("range") {
                format!("{}-{}", r[0].as_str().unwrap_or_default(), r[1].as_str().unwrap_or_default())
            } else {
                panic!("an nft set element of an unknown form: {e}")
            }
        })
        .collect()
}

/// The members of the set in `ipset list` output: the first word of each line after
/// `Members:` (`192.0.2.0/28 timeout 3575`).
fn ipset_members(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Members:"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Whether the set element `entry` (an address, a network or a `first-last` range) holds `ip`.
fn covers(entry: &str, ip: IpAddr) -> bool {
    if let Some((first, last)) = entry.split_once('-') {
        return match (first.parse::<IpAddr>(), last.parse::<IpAddr>()) {
            (Ok(first), Ok(last)) => first <= ip && ip <= last && first.is_ipv4() == ip.is_ipv4(),
            _ => panic!("a set element that is no range: {entry}"),
        };
    }
    if entry.contains('/') {
        let net: IpNet = entry.parse().unwrap_or_else(|e| panic!("set element {entry}: {e}"));
        return net.contains(&ip);
    }
    entry.parse::<IpAddr>().unwrap_or_else(|e| panic!("set element {entry}: {e}")) == ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_elements_of_every_form_are_read_and_matched() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "ip", "name": "s",
            "table": "t", "type": "ipv4_addr", "flags": ["timeout"], "elem": [
            {"elem": {"val": "198.51.100.23", "timeout": 3593, "expires": 3584}},
            {"elem": {"val": {"prefix": {"addr": "203.0.113.0", "len": 28}}, "timeout": 60}},
            {"range": ["192.0.2.10", "192.0.2.20"]}, "192.0.2.99"]}}]}"#;
        let e = nft_set_elements(json);
        assert_eq!(e, ["198.51.100.23", "203.0.113.0/28", "192.0.2.10-192.0.2.20", "192.0.2.99"]);
        let has = |a: &str| e.iter().any(|x| covers(x, a.parse().unwrap()));
        assert!(has("198.51.100.23") && has("203.0.113.15") && has("192.0.2.15") && has("192.0.2.99"));
        assert!(!has("198.51.100.24") && !has("203.0.113.16") && !has("192.0.2.21") && !has("::1"));
        let empty = r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "s"}}]}"#;
        assert!(nft_set_elements(empty).is_empty());
    }

    #[test]
    fn ipset_members_are_the_lines_after_members() {
        let text = "Name: crowdsec-blacklists\nType: hash:net\nNumber of entries: 2\nMembers:\n\
                    198.51.100.23 timeout 3563\n203.0.113.0/28 timeout 3575\n";
        assert_eq!(ipset_members(text), ["198.51.100.23", "203.0.113.0/28"]);
        assert!(ipset_members("Name: x\nMembers:\n").is_empty());
    }

    #[test]
    fn links_get_distinct_slash_30s_and_names() {
        let (a, b) = (next_link(), next_link());
        assert_ne!(a.0, b.0);
        assert_ne!(a.2, b.2);
        assert!(a.2.len() <= 15 && a.3.len() <= 15, "interface names fit IFNAMSIZ");
        let lapi: std::net::Ipv4Addr = a.0.parse().unwrap();
        assert_eq!(lapi.octets()[3] % 4, 1, "the LAPI end is the first host of its /30");
    }
}
