//! A real systemd-journald of the test's own: the calling thread moves into a private mount
//! namespace where empty tmpfs cover the journal's directories and `/dev/log` leads to this
//! journald, so the machine's own journal and syslog are neither read nor written.

use std::{
    cell::RefCell,
    ffi::CString,
    io::Write,
    os::unix::{fs::PermissionsExt, net::UnixDatagram},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex,
    },
    time::Duration,
};

use crate::netns::wait_for;

/// Debian's journald (package `systemd`; `scripts/setup --test` installs it).
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";
/// Where journald receives syslog datagrams; `/dev/log` points here.
pub const DEV_LOG: &str = "/run/systemd/journal/dev-log";
const NATIVE_SOCKET: &str = "/run/systemd/journal/socket";
/// journald's runtime and storage directories, each covered by an empty tmpfs.
const JOURNAL_DIRS: [&str; 3] = ["/run/systemd/journal", "/run/log/journal", "/var/log/journal"];
const CONF: &str = "/etc/systemd/journald.conf";
/// Volatile storage, nothing forwarded, no kernel log read, and no rate limit: the tests log
/// in bursts and count every line.
const CONF_TEXT: &str = "[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\n\
                         ForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\nAudit=no\n";

static NEXT: AtomicU32 = AtomicU32::new(0);
/// Private journals alive in this process, and the mount points they created on the machine.
/// Removing one while another test's namespace still mounts on it would silently unmount it
/// there (the kernel detaches mounts on removed directories), so the last one out removes them.
static LIVE: Mutex<(u32, Vec<PathBuf>)> = Mutex::new((0, Vec::new()));

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

fn mount(src: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong) {
    let (s, t) = (CString::new(src).unwrap(), cstr(target));
    let fs = fstype.map(|f| CString::new(f).unwrap());
    let fs_ptr = fs.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
    // SAFETY: NUL-terminated strings that outlive the call; no filesystem data.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), fs_ptr, flags, std::ptr::null()) };
    assert_eq!(r, 0, "mount {src} on {}: {}", target.display(), std::io::Error::last_os_error());
}

fn umount(target: &Path) -> bool {
    // SAFETY: unmounting a path of our private namespace.
    unsafe { libc::umount2(cstr(target).as_ptr(), libc::MNT_DETACH) == 0 }
}

/// A private journal and the journald writing it.
pub struct PrivateJournal {
    /// Scratch files: journald.conf, journald's output.
    pub dir: PathBuf,
    /// The machine's /dev, bound here so that the private /dev can link to its entries. Never
    /// removed recursively: while bound it *is* the machine's /dev.
    real_dev: PathBuf,
    journald: Option<Child>,
}

impl PrivateJournal {
    /// Moves the calling thread, and every process it starts from now on, into a new private
    /// mount namespace with an empty journal, and starts journald there.
    pub fn start() -> Self {
        assert!(
            Path::new(JOURNALD).exists() && Path::new(CONF).exists(),
            "{JOURNALD} or {CONF} is missing: install Debian's `systemd` package (scripts/setup --test does)"
        );
        let tag = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let dir = std::env::temp_dir().join(format!("sipwall-journald-{tag}"));
        let real_dev = std::env::temp_dir().join(format!("sipwall-journald-dev-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&real_dev).unwrap();
        let conf = dir.join("journald.conf");
        std::fs::write(&conf, CONF_TEXT).unwrap();

        // Mount namespaces belong to threads: only this thread and its children move.
        // SAFETY: unshare has no memory-safety preconditions.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNS) };
        assert_eq!(r, 0, "unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error());
        // nothing mounted from here on propagates to the machine
        mount("none", Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE);

        let mut j = PrivateJournal { dir, real_dev, journald: None };
        {
            let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            live.0 += 1;
            for d in JOURNAL_DIRS.map(Path::new) {
                let mut missing: Vec<_> = d.ancestors().take_while(|a| !a.exists()).map(Path::to_owned).collect();
                std::fs::create_dir_all(d).unwrap();
                missing.reverse();
                live.1.extend(missing);
            }
        }
        for d in JOURNAL_DIRS.map(Path::new) {
            mount("tmpfs", d, Some("tmpfs"), 0);
        }
        mount(conf.to_str().unwrap(), Path::new(CONF), None, libc::MS_BIND);
        j.private_dev();
        j.start_journald();
        j
    }

    /// A tmpfs over /dev with a link to each entry of the real one, and `/dev/log` leading to
    /// this journald: programs that use syslog(3), like sshd, log here.
    fn private_dev(&self) {
        mount("/dev", &self.real_dev, None, libc::MS_BIND | libc::MS_REC);
        mount("tmpfs", Path::new("/dev"), Some("tmpfs"), 0);
        for e in std::fs::read_dir(&self.real_dev).unwrap() {
            let name = e.unwrap().file_name();
            if name != "log" {
                std::os::unix::fs::symlink(self.real_dev.join(&name), Path::new("/dev").join(&name)).unwrap();
            }
        }
        std::os::unix::fs::symlink(DEV_LOG, "/dev/log").unwrap();
    }

    /// Starts journald and waits until it takes messages.
    pub fn start_journald(&mut self) {
        assert!(self.journald.is_none(), "journald is already running");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("journald.log")).unwrap();
        let child = Command::new(JOURNALD)
            // its own messages go to its output, not to the machine's kernel log
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("start {JOURNALD}: {e}"));
        self.journald = Some(child);
        let up = wait_for(Duration::from_secs(30), || self.running() && Path::new(DEV_LOG).exists());
        assert!(up, "journald did not open {NATIVE_SOCKET} and {DEV_LOG}:\n{}", self.journald_log());
    }

    /// Whether journald takes messages.
    pub fn running(&self) -> bool {
        UnixDatagram::unbound().unwrap().connect(NATIVE_SOCKET).is_ok()
    }

    /// Stops journald (SIGTERM, as `systemctl stop` does) and waits for it to exit.
    pub fn stop_journald(&mut self) {
        let mut child = self.journald.take().expect("journald running");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "journald exited with {status}:\n{}", self.journald_log());
    }

    /// Freezes journald (SIGSTOP): what is logged meanwhile waits in its sockets, and journald
    /// looks up each sender in /proc only once it is resumed, as a journald busy on a loaded
    /// host does.
    pub fn pause_journald(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused journald go on (SIGCONT).
    pub fn resume_journald(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: i32) {
        let pid = self.journald.as_ref().expect("journald running").id() as i32;
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "signal {sig} to journald");
    }

    pub fn journald_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("journald.log")).unwrap_or_default()
    }

    /// Logs `msg` through syslog as program `ident`, as `logger -t IDENT --id=PID` does.
    pub fn syslog(&self, ident: &str, pid: u32, msg: &str) {
        let out = Command::new("logger")
            .args(["--socket-errors=on", "--socket", DEV_LOG, "--tag", ident, &format!("--id={pid}"), "--", msg])
            .output()
            .expect("run logger (bsdutils)");
        assert!(out.status.success(), "logger: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A copy of `logger` named `comm`, run as user and group `uid` with no other groups: what
    /// it logs carries `_COMM=comm` and `_UID=uid`, as from a program of that name run by that
    /// user (the kernel names a process after the file it runs).
    pub fn logger(&self, comm: &str, uid: u32) -> Logger {
        let bin = self.dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // an unprivileged user must reach it
        for d in [&self.dir, &bin] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = bin.join(comm);
        if !path.exists() {
            std::fs::copy("/usr/bin/logger", &path).expect("copy /usr/bin/logger (bsdutils)");
        }
        Logger { path, uid, sent: RefCell::new(Vec::new()) }
    }

    /// The messages of the entries matching `matches`, as journalctl finds them.
    pub fn messages(&self, matches: &[&str]) -> Vec<String> {
        let out = Command::new("journalctl")
            .args(["--no-pager", "--quiet", "--output=cat"])
            .args(matches)
            .output()
            .expect("run journalctl");
        assert!(out.status.success(), "journalctl {matches:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }
}

/// A renamed `logger` run as some user; see `PrivateJournal::logger`.
pub struct Logger {
    path: PathBuf,
    uid: u32,
    /// Senders not reaped yet: journald reads a sender's `_COMM` in /proc when the message
    /// arrives, which a process that exited still has until it is reaped.
    sent: RefCell<Vec<(Child, String)>>,
}

impl Logger {
    fn start(&self, args: &[&str]) -> Child {
        let id = self.uid.to_string();
        Command::new("setpriv")
            .args([&format!("--reuid={id}"), &format!("--regid={id}"), "--clear-groups", "--"])
            .arg(&self.path)
            .arg("--socket-errors=on")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run setpriv (util-linux)")
    }

    /// Logs `msg` through syslog with tag `ident`, as `logger -t IDENT` does: one process each
    /// time, with its own pid.
    pub fn syslog(&self, ident: &str, msg: &str) {
        let mut child = self.start(&["--socket", DEV_LOG, "--tag", ident, "--", msg]);
        drop(child.stdin.take());
        self.sent.borrow_mut().push((child, msg.to_owned()));
    }

    /// Sends one entry of `fields` (`NAME=value`) through journald's native protocol, as
    /// sd_journal_send(3) does.
    pub fn native(&self, fields: &[&str]) {
        let mut child = self.start(&["--journald"]);
        let mut input = child.stdin.take().unwrap();
        input.write_all(fields.join("\n").as_bytes()).unwrap();
        drop(input);
        self.sent.borrow_mut().push((child, fields.join(" ")));
    }

    /// Reaps the senders so far and insists that each one delivered its message. Call it once
    /// journald has the messages (see `sent`).
    pub fn reap(&self) {
        for (child, msg) in self.sent.borrow_mut().drain(..) {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "logger {msg:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        for (mut c, _) in self.sent.get_mut().drain(..) {
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateJournal {
    fn drop(&mut self) {
        if let Some(mut c) = self.journald.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let dev_gone = umount(Path::new("/dev")) && umount(&self.real_dev);
        if dev_gone {
            let _ = std::fs::remove_dir(&self.real_dev);
        }
        umount(Path::new(CONF));
        for d in JOURNAL_DIRS.map(Path::new) {
            umount(d);
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.0 -= 1;
        if live.0 == 0 {
            for d in std::mem::take(&mut live.1).iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        drop(live);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("journald's output kept in {}", self.dir.display());
        }
    }
}
