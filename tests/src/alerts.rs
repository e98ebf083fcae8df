//! Alert receivers for the lab tier: a test certificate authority (rcgen), an SMTP server
//! (Debian's python3-aiosmtpd, STARTTLS required) and an https webhook receiver, each started
//! inside a lab namespace from `tests/fixtures/alerts`, saving what they receive as JSON files.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::netns::Lab;

/// Debian's Python, which has python3-aiosmtpd (not a python3 earlier in PATH).
pub const PYTHON: &str = "/usr/bin/python3";

fn ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false)
}

/// Whether Debian's python3-aiosmtpd is installed. Missing, it fails the test under CI and skips
/// it loudly otherwise.
pub fn aiosmtpd_installed(test: &str) -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd.controller"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let msg =
        format!("{test}: {PYTHON} cannot import aiosmtpd: `scripts/setup --test` installs Debian's python3-aiosmtpd");
    assert!(!ci(), "{msg}; CI is set, so a missing tool is a failure");
    eprintln!("\n*** SKIPPED {msg} ***\n");
    false
}

/// Skips the calling test (loudly) unless python3-aiosmtpd is installed; under CI, fails it.
#[macro_export]
macro_rules! require_aiosmtpd {
    () => {
        if !$crate::alerts::aiosmtpd_installed(module_path!()) {
            return;
        }
    };
}

/// A certificate authority made for one test, and a server certificate it signed for
/// 127.0.0.1 and localhost, written as PEM files in `dir`.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "sipwall lab CA");
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap().signed_by(&key, &ca).unwrap();
        let t = TestCa { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") };
        std::fs::write(&t.ca, ca.pem()).unwrap();
        std::fs::write(&t.cert, cert.pem()).unwrap();
        std::fs::write(&t.key, key.serialize_pem()).unwrap();
        t
    }
}

/// Debian's Python: on this host, or inside a lab namespace.
pub fn python(lab: Option<(&Lab, &str)>) -> Command {
    match lab {
        Some((lab, ns)) => lab.cmd(ns, PYTHON),
        None => Command::new(PYTHON),
    }
}

/// A port nothing listens on now, on 127.0.0.1 of this namespace.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fixture server, killed when dropped; what it received is in `out`.
pub struct Receiver {
    child: Child,
    pub out: PathBuf,
    log: PathBuf,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/alerts").join(name)
}

impl Receiver {
    fn start(mut python: Command, script: &str, dir: &Path, args: &[String]) -> Self {
        let out = dir.join(format!("{}-{}", script.trim_end_matches(".py"), args[1]));
        std::fs::create_dir_all(&out).unwrap();
        let log = out.with_extension("log");
        let mut child = python
            .arg(fixture(script))
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {script}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let r = Receiver { child, out, log };
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        assert_eq!(line.trim(), "ready", "{script} did not start:\n{}", r.log_text());
        r
    }

    /// The SMTP server on 127.0.0.1:`port`, STARTTLS required; AUTH with `user`.
    pub fn smtp(python: Command, port: u16, ca: &TestCa, dir: &Path, user: Option<(&str, &str)>) -> Self {
        Self::smtp_with(python, port, ca, dir, user, "starttls")
    }

    /// As `smtp`, with `tls` one of `starttls`, `implicit` (TLS from the first byte) or `none`.
    pub fn smtp_with(
        python: Command,
        port: u16,
        ca: &TestCa,
        dir: &Path,
        user: Option<(&str, &str)>,
        tls: &str,
    ) -> Self {
        let mut args = tls_args(port, ca);
        args.extend(["--tls".into(), tls.into()]);
        if let Some((u, p)) = user {
            args.extend(["--user".into(), u.into(), "--password".into(), p.into()]);
        }
        Self::start(python, "smtpd.py", dir, &args)
    }

    /// The https receiver on 127.0.0.1:`port`, answering `statuses` in turn, then 204.
    pub fn https(python: Command, port: u16, ca: &TestCa, dir: &Path, statuses: &[u16]) -> Self {
        let mut args = tls_args(port, ca);
        args.push("--statuses".into());
        args.extend(statuses.iter().map(u16::to_string));
        Self::start(python, "https_hook.py", dir, &args)
    }

    /// What it received so far, in order.
    pub fn received(&mut self) -> Vec<serde_json::Value> {
        assert!(!self.exited(), "the receiver exited:\n{}", self.log_text());
        let mut v: Vec<(u32, serde_json::Value)> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n: u32 = p.file_name()?.to_str()?.strip_suffix(".json")?.parse().ok()?;
                Some((n, serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?))
            })
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().map(|(_, j)| j).collect()
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn tls_args(port: u16, ca: &TestCa) -> Vec<String> {
    vec![
        "--port".into(),
        port.to_string(),
        "--cert".into(),
        ca.cert.display().to_string(),
        "--key".into(),
        ca.key.display().to_string(),
    ]
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
