//! Log sources: files followed like `tail -F` (woken by inotify), the systemd journal and
//! Asterisk's manager interface. Each runs on its own thread and hands every line (every event,
//! for the manager interface) to its sink. A source that is missing or fails is reported (log
//! line on each change, `up` false) and retried; it never stops the daemon.

pub mod ami;
pub mod file;
pub mod inotify;
pub mod journal;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use crate::rules::jails::LogPath;

/// Longest wait between two looks at a source; inotify wakes it sooner.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Wait before starting journalctl again.
const RETRY: Duration = Duration::from_secs(5);

/// What a source is doing, shared with the daemon.
#[derive(Debug, Default)]
pub struct Status {
    pub up: AtomicBool,
    pub lines: AtomicU64,
    /// Lines longer than the longest line kept, cut.
    pub overlong: AtomicU64,
    /// Why it is down, if it is.
    pub problem: Mutex<Option<String>>,
}

impl Status {
    fn set(&self, name: &str, up: bool, problem: Option<String>) {
        let was = self.up.swap(up, Ordering::Relaxed);
        let mut p = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        if was != up || *p != problem {
            match (&problem, up) {
                (None, true) => log::info!("log source {name}: reading"),
                (Some(why), _) => log::warn!("log source {name}: {why}; retrying"),
                (None, false) => {}
            }
        }
        *p = problem;
    }
}

/// Receives each line of a source (without its newline).
pub type Sink = Box<dyn FnMut(&[u8]) + Send>;

/// A source running on its thread.
pub struct Running {
    pub name: String,
    pub status: Arc<Status>,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<u32>>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the source and waits for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(pid) = *self.child.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts following `path`; lines go to `sink`. `from_start` reads what is already there.
pub fn spawn(path: &LogPath, from_start: bool, sink: Sink) -> Running {
    let name = path.to_string();
    let status = Arc::new(Status::default());
    let stop = Arc::new(AtomicBool::new(false));
    let child = Arc::new(Mutex::new(None));
    let (st, sp, ch, n) = (status.clone(), stop.clone(), child.clone(), name.clone());
    let thread = match path.clone() {
        LogPath::File(p) => std::thread::Builder::new()
            .name("sipwall-log".into())
            .spawn(move || follow_file(&n, &p, from_start, sink, &st, &sp)),
        LogPath::Journal(m) => std::thread::Builder::new()
            .name("sipwall-journal".into())
            .spawn(move || follow_journal(&n, &m, from_start, sink, &st, &sp, &ch)),
        // the manager interface needs a login, which a path does not carry: see `spawn_ami`
        LogPath::Ami { .. } => {
            let why = "no credentials file for the manager interface, so it is not read".to_owned();
            log::error!("log source {name}: {why}");
            *status.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            return Running { name, status, stop, child, thread: None };
        }
    }
    .map_err(|e| log::error!("log source {name}: cannot start a thread: {e}"))
    .ok();
    Running { name, status, stop, child, thread }
}

/// Starts reading Asterisk's security events from its manager interface at `host`:`port`,
/// logging in with the `username` and `secret` of the file `credentials` (read again at each
/// connection); each event goes to `sink` as one record (see [`ami`]).
pub fn spawn_ami(host: &str, port: u16, credentials: PathBuf, sink: Sink) -> Running {
    let name = LogPath::Ami { host: host.to_owned(), port }.to_string();
    let status = Arc::new(Status::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (st, sp, n, h) = (status.clone(), stop.clone(), name.clone(), host.to_owned());
    let thread = std::thread::Builder::new()
        .name("sipwall-ami".into())
        .spawn(move || ami::follow(&n, &h, port, &credentials, sink, &st, &sp))
        .map_err(|e| log::error!("log source {name}: cannot start a thread: {e}"))
        .ok();
    Running { name, status, stop, child: Arc::new(Mutex::new(None)), thread }
}

fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) {
    let step = Duration::from_millis(100);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step.min(left));
        left = left.saturating_sub(step);
    }
}

fn follow_file(name: &str, path: &Path, from_start: bool, mut sink: Sink, st: &Status, stop: &AtomicBool) {
    let mut f = file::Follower::new(path, from_start);
    let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
    let mut watch: Option<inotify::DirWatch> = None;
    while !stop.load(Ordering::Relaxed) {
        if watch.is_none() {
            match inotify::DirWatch::new(&dir) {
                Ok(w) => watch = Some(w),
                Err(e) => {
                    st.set(name, false, Some(format!("cannot watch {}: {e}", dir.display())));
                    sleep_unless_stopped(stop, RETRY);
                    continue;
                }
            }
        }
        let mut n = 0u64;
        let state = f.poll(&mut |l| {
            n += 1;
            sink(l)
        });
        st.lines.fetch_add(n, Ordering::Relaxed);
        st.overlong.store(f.overlong, Ordering::Relaxed);
        match state {
            file::State::Reading => st.set(name, true, None),
            file::State::Missing => st.set(name, false, Some("not found (waiting for it to appear)".into())),
            file::State::Failed(e) => st.set(name, false, Some(e)),
        }
        let gone = watch.as_ref().map(|w| w.wait(IDLE_CHECK)).unwrap_or(Ok(true));
        if !matches!(gone, Ok(false)) {
            watch = None;
        }
    }
}

fn follow_journal(
    name: &str,
    matches: &[String],
    from_start: bool,
    mut sink: Sink,
    st: &Status,
    stop: &AtomicBool,
    child: &Mutex<Option<u32>>,
) {
    let mut cursor: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut follow = match journal::Follow::start(matches, cursor.as_deref(), from_start) {
            Ok(f) => f,
            Err(e) => {
                st.set(name, false, Some(format!("cannot run journalctl: {e}")));
                sleep_unless_stopped(stop, RETRY);
                continue;
            }
        };
        *child.lock().unwrap_or_else(|e| e.into_inner()) = Some(follow.child.id());
        let journald = Path::new(journal::JOURNALD_SOCKET);
        let problem = journal::journald_problem(journald);
        let mut probed = Instant::now();
        st.set(name, problem.is_none(), problem);
        let mut failed = None;
        while !stop.load(Ordering::Relaxed) {
            match follow.next_entry(IDLE_CHECK) {
                Ok(journal::Next::Entry(line, cur)) => {
                    st.lines.fetch_add(1, Ordering::Relaxed);
                    sink(line.as_bytes());
                    if cur.is_some() {
                        cursor = cur;
                    }
                }
                Ok(journal::Next::Idle) => {}
                Ok(journal::Next::End) => break,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
            // journalctl waits quietly while journald is stopped: ask journald itself
            if probed.elapsed() >= IDLE_CHECK {
                probed = Instant::now();
                let problem = journal::journald_problem(journald);
                st.set(name, problem.is_none(), problem);
            }
        }
        *child.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let said = follow.finish();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let why = failed.unwrap_or_else(|| {
            if said.is_empty() {
                "journalctl ended".into()
            } else {
                format!("journalctl: {said}")
            }
        });
        st.set(name, false, Some(why));
        sleep_unless_stopped(stop, RETRY);
    }
}
