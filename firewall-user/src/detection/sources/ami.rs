//! Asterisk's manager interface (AMI, main/manager.c): a client that logs in with
//! `Events: security` and hands each security event on as one record, its lines joined by `\n`.
//!
//! Asterisk writes event values as it got them, and chan_sip decodes `%0D%0A` in a user name
//! (`SIP_PEDANTIC_DECODE`, channels/chan_sip.c): one forged request can end an event early and
//! write whole events of its own. Such text stays within the write of the event carrying it:
//! a session's events and its answers to actions are written by the session's one thread, each
//! event whole (`process_events`, `send_string`). So the client pings with an `ActionID` no one
//! else can know after each record it hands on, and hands on [`SYNC_RECORD`] when the answer
//! comes: whatever was written before it, injected text included, has been read by then. A
//! dropped block becomes [`GAP_RECORD`]. The detector (`detect::ami`) decides what to trust.

use std::{
    io::{ErrorKind, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    time::{Duration, Instant},
};

pub use self::frame::{Block, Framer};
use super::{sleep_unless_stopped, Sink, Status};
use crate::detection::detect::ami::SECURITY_EVENTS;

mod frame;

/// How the manager interface greets a client: `Asterisk Call Manager/9.0.0` in Asterisk 20.
pub const BANNER: &[u8] = b"Asterisk Call Manager/";
/// Handed on when Asterisk answers a Ping of this client: everything Asterisk wrote before the
/// answer has been handed on. Event records start with `Event: `, so none can look like it.
pub const SYNC_RECORD: &str = "Sipwall: sync";
/// Handed on in place of an event block that was dropped (longer than `MAX_LINE`).
pub const GAP_RECORD: &str = "Sipwall: gap";

/// Longest wait for a read: how soon a stop is seen.
const TICK: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// For the greeting and the answer to the login.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A Ping this long after the last answer, so a dead connection is noticed.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// A connection whose Ping goes unanswered this long is given up.
const PING_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection logged in this long starts the backoff again from `BACKOFF_FIRST`.
const STEADY: Duration = Duration::from_secs(60);

/// The login: `username = NAME` and `secret = SECRET` lines (manager.conf's key names, `=>`
/// allowed), comment lines starting with `;` or `#`. A value runs to the end of its line.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Reads a credentials file's text. Errors name lines, never their text (it may be the secret).
pub fn credentials(text: &str) -> Result<Credentials, String> {
    let (mut username, mut secret) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let (n, l) = (i + 1, line.trim());
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            return Err(format!("line {n} is not `username = NAME` or `secret = SECRET`"));
        };
        let value = value.strip_prefix('>').unwrap_or(value).trim();
        let (slot, key) = match key.trim().to_ascii_lowercase().as_str() {
            "username" => (&mut username, "username"),
            "secret" => (&mut secret, "secret"),
            _ => return Err(format!("line {n} is not `username = NAME` or `secret = SECRET`")),
        };
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(format!("line {n}: the {key} is empty or holds a control character"));
        }
        if slot.replace(value.to_owned()).is_some() {
            return Err(format!("line {n}: a second {key}"));
        }
    }
    match (username, secret) {
        (Some(username), Some(secret)) => Ok(Credentials { username, secret }),
        (None, _) => Err("no `username = NAME` line".into()),
        (_, None) => Err("no `secret = SECRET` line".into()),
    }
}

/// The first line of `block`.
fn first_line(block: &[u8]) -> &[u8] {
    block.split(|&c| c == b'\n').next().unwrap_or_default()
}

/// Whether `block` has the line `KEY: value`.
fn has_line(block: &[u8], key: &str, value: &str) -> bool {
    block.split(|&c| c == b'\n').any(|l| {
        l.strip_prefix(key.as_bytes()).and_then(|r| r.strip_prefix(b": ")).is_some_and(|v| v == value.as_bytes())
    })
}

fn value<'a>(block: &'a [u8], key: &str) -> Option<&'a [u8]> {
    block.split(|&c| c == b'\n').find_map(|l| l.strip_prefix(key.as_bytes())?.strip_prefix(b": "))
}

/// An `ActionID` no one else can guess.
fn action_id() -> Result<String, String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(b.iter().fold(String::from("sipwall-"), |s, x| s + &format!("{x:02x}")))
}

/// Resolves `host` and connects to the first of its addresses that answers.
fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} has no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// [`dial`] on a thread of its own, so a stop is seen while it waits; `None` when stopped.
fn connect(host: &str, port: u16, stop: &AtomicBool) -> Result<Option<TcpStream>, String> {
    let (tx, rx) = mpsc::channel();
    let h = host.to_owned();
    std::thread::Builder::new()
        .name("sipwall-ami-dial".into())
        .spawn(move || {
            let _ = tx.send(dial(&h, port));
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(TICK) {
            Ok(r) => return r.map(Some),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(format!("connecting to {host} failed")),
        }
    }
    Ok(None)
}

/// One connection.
struct Session<'a> {
    stream: TcpStream,
    framer: Framer,
    stop: &'a AtomicBool,
    /// The Ping waiting for its answer, and when it went.
    ping: Option<(String, Instant)>,
    last_answer: Instant,
    /// A record went on since the last Ping.
    want_sync: bool,
}

/// How a connection ended; `None` when stopped.
type Ended = Option<String>;

impl Session<'_> {
    fn send(&mut self, text: &str) -> Result<(), Ended> {
        self.stream.write_all(text.as_bytes()).map_err(|e| Some(format!("writing to Asterisk: {e}")))
    }

    /// Reads what arrives within a tick into the framer; false if nothing did.
    fn read(&mut self) -> Result<bool, Ended> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(None);
        }
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(Some("Asterisk closed the connection".into())),
            Ok(n) => {
                self.framer.push(&buf[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                Ok(false)
            }
            Err(e) => Err(Some(format!("reading from Asterisk: {e}"))),
        }
    }

    /// The greeting line, read a byte at a time: nothing after it is taken.
    fn banner(&mut self, target: &str) -> Result<(), Ended> {
        let (deadline, mut line) = (Instant::now() + ANSWER_TIMEOUT, Vec::new());
        loop {
            let mut byte = [0u8; 1];
            match self.stream.read(&mut byte) {
                Ok(0) => return Err(Some(format!("{target} closed the connection before greeting"))),
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if line.len() < 256 => line.push(byte[0]),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(None);
                    }
                    if Instant::now() >= deadline {
                        return Err(Some(format!("{target} sent no greeting within {}s", ANSWER_TIMEOUT.as_secs())));
                    }
                }
                Err(e) => return Err(Some(format!("reading from {target}: {e}"))),
            }
        }
        if !line.starts_with(BANNER) {
            let said = String::from_utf8_lossy(&line).trim_end().escape_debug().to_string();
            return Err(Some(format!("{target} is no Asterisk manager interface (it greeted with `{said}`)")));
        }
        Ok(())
    }

    /// Logs in and waits for the answer.
    fn login(&mut self, who: &Credentials, path: &Path) -> Result<(), Ended> {
        let id = action_id().map_err(Some)?;
        let action = format!(
            "Action: Login\r\nActionID: {id}\r\nUsername: {}\r\nSecret: {}\r\nEvents: security\r\n\r\n",
            who.username, who.secret
        );
        self.send(&action)?;
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            while let Some(block) = self.framer.ready.pop_front() {
                let Block::Lines(b) = block else { continue };
                if !first_line(&b).starts_with(b"Response: ") || !has_line(&b, "ActionID", &id) {
                    continue;
                }
                if has_line(&b, "Response", "Success") {
                    return Ok(());
                }
                let message = value(&b, "Message").map(String::from_utf8_lossy).unwrap_or_default();
                return Err(Some(format!(
                    "Asterisk refused the login of `{}` ({}): check the username and secret in {}, \
                     and the user's permit and deny in manager.conf",
                    who.username,
                    message.escape_debug(),
                    path.display()
                )));
            }
            if !self.read()? && Instant::now() >= deadline {
                return Err(Some(format!("no answer to the login within {}s", ANSWER_TIMEOUT.as_secs())));
            }
        }
    }

    fn ping(&mut self) -> Result<(), Ended> {
        let id = action_id().map_err(Some)?;
        self.send(&format!("Action: Ping\r\nActionID: {id}\r\n\r\n"))?;
        self.ping = Some((id, Instant::now()));
        self.want_sync = false;
        Ok(())
    }

    /// Hands security events on, answers of its Pings as `SYNC_RECORD`; skips everything else.
    fn events(&mut self, sink: &mut Sink, st: &Status) -> Result<(), Ended> {
        loop {
            while let Some(block) = self.framer.ready.pop_front() {
                st.overlong.store(self.framer.dropped, Ordering::Relaxed);
                let b = match block {
                    Block::Dropped => {
                        sink(GAP_RECORD.as_bytes());
                        self.want_sync = true;
                        continue;
                    }
                    Block::Lines(b) => b,
                };
                let first = first_line(&b);
                if let Some(name) = first.strip_prefix(b"Event: ") {
                    if SECURITY_EVENTS.iter().any(|e| e.as_bytes() == name) {
                        st.lines.fetch_add(1, Ordering::Relaxed);
                        sink(&b);
                        self.want_sync = true;
                    }
                } else if first.starts_with(b"Response: ")
                    && self.ping.as_ref().is_some_and(|(id, _)| has_line(&b, "ActionID", id))
                {
                    self.ping = None;
                    self.last_answer = Instant::now();
                    sink(SYNC_RECORD.as_bytes());
                }
            }
            match &self.ping {
                Some((_, sent)) if sent.elapsed() >= PING_TIMEOUT => {
                    return Err(Some(format!("no answer to a Ping within {}s", PING_TIMEOUT.as_secs())));
                }
                Some(_) => {}
                None if self.want_sync || self.last_answer.elapsed() >= KEEPALIVE => self.ping()?,
                None => {}
            }
            self.read()?;
        }
    }
}

/// What the thread reads, and where it reports.
struct Source<'a> {
    name: &'a str,
    host: &'a str,
    port: u16,
    path: &'a Path,
    st: &'a Status,
    stop: &'a AtomicBool,
}

impl Source<'_> {
    /// Connects, logs in and reads events until the connection ends (`None` when stopped).
    /// `logged_in` is set to when the login succeeded.
    fn session(&self, sink: &mut Sink, logged_in: &mut Option<Instant>) -> Ended {
        let path = self.path;
        // read at each connection: a corrected file is taken without a restart
        let who = match std::fs::read_to_string(path) {
            Ok(text) => credentials(&text).map_err(|e| format!("credentials file {}: {e}", path.display())),
            Err(e) => Err(format!("cannot read the credentials file {}: {e}", path.display())),
        };
        let who = match who {
            Ok(w) => w,
            Err(e) => return Some(e),
        };
        let stream = match connect(self.host, self.port, self.stop) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => return Some(e),
        };
        let target = stream.peer_addr().map_or_else(|_| format!("{}:{}", self.host, self.port), |a| a.to_string());
        let timeouts = stream.set_read_timeout(Some(TICK)).and_then(|_| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
        if let Err(e) = timeouts {
            return Some(format!("cannot set timeouts on the connection to {target}: {e}"));
        }
        let mut s = Session {
            stream,
            framer: Framer::default(),
            stop: self.stop,
            ping: None,
            last_answer: Instant::now(),
            want_sync: true,
        };
        if let Err(e) = s.banner(&target).and_then(|_| s.login(&who, path)) {
            return e;
        }
        *logged_in = Some(Instant::now());
        self.st.set(self.name, true, None);
        s.events(sink, self.st).err().flatten()
    }
}

/// The source's thread: connects again after each failure, waiting 1 s, then twice as long
/// each time up to 30 s, and 1 s again after a connection that stayed up a minute.
pub(super) fn follow(name: &str, host: &str, port: u16, path: &Path, mut sink: Sink, st: &Status, stop: &AtomicBool) {
    let src = Source { name, host, port, path, st, stop };
    let mut backoff = BACKOFF_FIRST;
    while !stop.load(Ordering::Relaxed) {
        let mut logged_in = None;
        let Some(why) = src.session(&mut sink, &mut logged_in) else { break };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if logged_in.is_some_and(|t| t.elapsed() >= STEADY) {
            backoff = BACKOFF_FIRST;
        }
        st.set(name, false, Some(why));
        sleep_unless_stopped(stop, backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests;
