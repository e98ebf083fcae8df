//! A real `sipwall run` process inside a lab namespace, and the CLI talking to it.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use crate::netns::{in_netns, wait_for, Lab};

/// The `sipwall` binary under test: `SIPWALL_BIN`, else next to the test executable's target
/// directory (`cargo xtask test` builds it first).
pub fn sipwall_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SIPWALL_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("sipwall");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p firewall-user` (cargo xtask test does)",
        bin.display()
    );
    bin
}

pub struct DaemonProc {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub config: PathBuf,
    /// A BPF filesystem of this daemon's own (mounted in the test's mount namespace, so pins
    /// outlive the daemon's `ip netns exec`), and the pin directory on it.
    pub bpffs: PathBuf,
    pub pin_dir: PathBuf,
    host_ns: String,
    extra: Vec<String>,
}

/// Mounts a BPF filesystem at `at`.
fn mount_bpffs(at: &Path) {
    std::fs::create_dir_all(at).unwrap();
    let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mounting with NUL-terminated strings.
    let r = unsafe { libc::mount(c"bpf".as_ptr(), c.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
    assert_eq!(r, 0, "mount -t bpf {}: {}", at.display(), std::io::Error::last_os_error());
}

impl DaemonProc {
    /// Starts the daemon on the lab's host side with `rules`, in native XDP mode.
    pub fn start(lab: &Lab, rules: &str) -> Self {
        Self::start_with(lab, rules, &[])
    }

    /// As `start`, with more `sipwall run` arguments.
    pub fn start_with(lab: &Lab, rules: &str, extra: &[&str]) -> Self {
        let mut d = Self::prepare(lab, rules, extra);
        d.spawn(lab);
        d
    }

    /// Everything `start_with` does but starting the daemon (`spawn` does): the state
    /// directory (`dir/state`) can be filled first.
    pub fn prepare(lab: &Lab, rules: &str, extra: &[&str]) -> Self {
        let dir = lab.scratch_dir("attach");
        let config = dir.join("rules.toml");
        std::fs::write(&config, rules).unwrap();
        let bpffs = dir.join("bpffs");
        mount_bpffs(&bpffs);
        let d = Self {
            child: None,
            socket: dir.join("ctl.sock"),
            log: dir.join("daemon.log"),
            config,
            pin_dir: bpffs.join("sipwall"),
            bpffs,
            dir,
            host_ns: lab.host.clone(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        std::fs::create_dir_all(d.dir.join("state")).unwrap();
        d
    }

    pub fn spawn(&mut self, lab: &Lab) {
        let iface: &[&str] = if self.extra.iter().any(|a| a == "--iface") { &[] } else { &["--iface", &lab.host_if] };
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &lab.host])
            .arg(sipwall_bin())
            .arg("run")
            .args(iface)
            .args(["--xdp-mode", "native", "--metrics-addr", "127.0.0.1:9977"])
            .arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .args(&self.extra);
        self.launch(command);
    }

    /// Starts `argv` in the lab's host namespace with `env` besides the test's own, as this
    /// daemon (its directory, socket and pins are the caller's to pass, in `env` or `argv`), and
    /// waits until it answers on its control socket.
    pub fn spawn_command(&mut self, lab: &Lab, argv: &[String], env: &[(String, String)]) {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &lab.host]).args(argv).envs(env.iter().map(|(k, v)| (k, v)));
        self.launch(command);
    }

    fn launch(&mut self, mut command: Command) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        self.child = Some(child);
        // ready once the control socket answers: the daemon serves it after attaching
        let sock = self.socket.clone();
        let up = wait_for(Duration::from_secs(120), || {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return true;
            }
            sipwall::control::client::call(&sock, &sipwall::control::protocol::Request::Status).is_ok()
        });
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
            panic!("sipwall run exited ({status}) during start:\n{}", self.log_text());
        }
        assert!(up, "sipwall run did not answer on its control socket in 120 s:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `sipwall --socket S ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(sipwall_bin()).arg("--socket").arg(&self.socket).args(args).output().expect("run sipwall cli")
    }

    /// Runs the CLI and insists on success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "sipwall {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The sum of the series of metric `name` whose labels contain `labels` ("" for all).
    pub fn metric(&self, name: &str, labels: &str) -> u64 {
        metric_sum(&self.metrics(), name, labels)
    }

    /// GET /metrics from inside the host namespace.
    pub fn metrics(&self) -> String {
        in_netns(&self.host_ns, || {
            let mut s = std::net::TcpStream::connect("127.0.0.1:9977").expect("connect to metrics");
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .join()
        .unwrap()
    }

    /// Runs `sipwall detach` for this daemon's pins.
    pub fn detach(&self) -> Output {
        self.cli(&["detach", "--pin-dir", self.pin_dir.to_str().unwrap()])
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child. `ip netns exec` execs sipwall, so the pid is sipwall's.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().expect("wait for sipwall")
    }

    /// Kills the daemon without letting it clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // unmounting drops every pin: the maps are freed and the program detached
        if let Ok(c) = std::ffi::CString::new(self.bpffs.as_os_str().as_encoded_bytes()) {
            // SAFETY: unmounting our own mount point.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("daemon log kept in {}", self.log.display());
        }
    }
}

/// The sum of the series of metric `name` whose labels contain `labels`, in exposition `text`.
pub fn metric_sum(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Rules that turn off the built-in jails reading logs, for labs that need neither.
pub const LOG_JAILS_OFF: &str = "[jails.asterisk]\nenabled = false\n\n[jails.sshd]\nenabled = false\n";
