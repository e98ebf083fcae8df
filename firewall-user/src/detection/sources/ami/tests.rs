use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use super::*;
use crate::detection::sources::file::MAX_LINE;
use crate::detection::sources::{spawn_ami, Running};

#[test]
fn credentials_files_are_read_like_manager_conf_lines() {
    let c = credentials("; sipwall's login\n# from manager.conf\n  username = sipwall\nsecret => s3cr;t#x\n").unwrap();
    assert_eq!((c.username.as_str(), c.secret.as_str()), ("sipwall", "s3cr;t#x"));
    assert!(!format!("{c:?}").contains("s3cr"));
    let c = credentials("Username=a\r\nSecret=b\r\n").unwrap();
    assert_eq!((c.username.as_str(), c.secret.as_str()), ("a", "b"));
    for (text, needle) in [
        ("username = a\n", "no `secret"),
        ("secret = hunter2\n", "no `username"),
        ("username = a\nsecret = b\nsecret = c\n", "line 3: a second secret"),
        ("username = a\nhunter2\n", "line 2 is not"),
        ("username = a\npassword = hunter2\n", "line 2 is not"),
        ("username = a\nsecret =\n", "line 2: the secret is empty"),
        ("username = a\nsecret = b\u{1b}c\n", "control character"),
    ] {
        let e = credentials(text).expect_err(text);
        assert!(e.contains(needle) && !e.contains("hunter2"), "{text:?}: {e}");
    }
}

/// A credentials file in a directory of its own.
struct Creds(PathBuf);

impl Creds {
    fn new(name: &str, secret: &str) -> Creds {
        let dir = std::env::temp_dir().join(format!("sipwall-ami-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Creds(dir.join("ami.conf"));
        c.write(secret);
        c
    }

    fn write(&self, secret: &str) {
        std::fs::write(&self.0, format!("; test\nusername = sipwall\nsecret = {secret}\n")).unwrap();
    }
}

impl Drop for Creds {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// One client of the fake manager interface.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: Arc<Mutex<TcpStream>>,
}

impl Conn {
    fn accept(l: &TcpListener, banner: &str) -> Conn {
        let (s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let c = Conn { reader: BufReader::new(s.try_clone().unwrap()), writer: Arc::new(Mutex::new(s)) };
        c.write(banner);
        c
    }

    fn write(&self, text: &str) {
        let _ = self.writer.lock().unwrap().write_all(text.as_bytes());
    }

    /// The next action's fields; `None` once the client is gone.
    fn action(&mut self) -> Option<HashMap<String, String>> {
        let mut fields = HashMap::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                return Some(fields);
            }
            let (k, v) = line.split_once(": ").expect("Key: Value");
            fields.insert(k.to_owned(), v.to_owned());
        }
    }

    /// Greets, takes the login and answers it: accepted with `secret`, refused otherwise.
    fn login(l: &TcpListener, secret: &str) -> Option<Conn> {
        let mut c = Conn::accept(l, "Asterisk Call Manager/9.0.0\r\n");
        let a = c.action().expect("a login");
        assert_eq!(a["Action"], "Login");
        assert_eq!(a["Username"], "sipwall");
        assert_eq!(a["Events"], "security");
        let id = &a["ActionID"];
        if a["Secret"] == secret {
            c.write(&format!("Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n"));
            // what Asterisk sends a client that asked for security events only
            c.write("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n");
            Some(c)
        } else {
            c.write(&format!("Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n"));
            None
        }
    }

    /// Answers the client's Pings until it goes; returns the actions it sent.
    fn answer_pings(mut self) -> (Arc<Mutex<TcpStream>>, JoinHandle<Vec<String>>) {
        let writer = self.writer.clone();
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(a) = self.action() {
                seen.push(a["Action"].clone());
                if a["Action"] == "Ping" {
                    let id = &a["ActionID"];
                    self.write(&format!("Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1.0\r\n\r\n"));
                }
            }
            seen
        });
        (writer, t)
    }
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

type Records = Arc<Mutex<Vec<String>>>;

fn start(port: u16, creds: &Creds) -> (Running, Records) {
    let got: Records = Arc::default();
    let g = got.clone();
    let sink: Sink = Box::new(move |b: &[u8]| g.lock().unwrap().push(String::from_utf8_lossy(b).into_owned()));
    (spawn_ami("127.0.0.1", port, creds.0.clone(), sink), got)
}

/// Waits (generously) for `cond`.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn problem(r: &Running) -> String {
    r.status.problem.lock().unwrap().clone().unwrap_or_default()
}

fn up(r: &Running) -> bool {
    r.status.up.load(Ordering::Relaxed)
}

const FAILED_ACL: &str = "Event: FailedACL\r\nPrivilege: security,all\r\nEventTV: 2026-05-10T09:14:03.418+0000\r\n\
    Severity: Error\r\nService: PJSIP\r\nEventVersion: 1\r\nAccountID: alice\r\nSessionID: c1@x\r\n\
    LocalAddress: IPV4/TCP/127.0.0.1/5060\r\nRemoteAddress: IPV4/TCP/192.0.2.7/40000\r\nACLName: acl\r\n\r\n";

fn record(event: &str) -> String {
    event.trim_end().replace("\r\n", "\n")
}

#[test]
fn security_events_are_handed_on_whole_and_the_rest_skipped() {
    let (l, port) = listener();
    let creds = Creds::new("events", "right");
    let (r, got) = start(port, &creds);
    let c = Conn::login(&l, "right").expect("logged in");
    let (w, pings) = c.answer_pings();
    wait_for("the source up", || up(&r));
    wait_for("the first sync", || got.lock().unwrap().iter().any(|g| g == SYNC_RECORD));
    let write = |t: &[u8]| {
        w.lock().unwrap().write_all(t).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    };
    write(b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/x\r\n\r\n");
    write(b"Response: Success\r\nActionID: someone-else\r\nPing: Pong\r\n\r\n");
    // one event in pieces, split inside a line and inside the \r\n
    for piece in FAILED_ACL.as_bytes().chunks(7) {
        write(piece);
    }
    let invalid = "Event: InvalidAccountID\r\nPrivilege: security,all\r\nAccountID: x\r\n\r\n";
    write(invalid.as_bytes());
    wait_for("both security events", || got.lock().unwrap().iter().filter(|g| g.starts_with("Event: ")).count() == 2);
    let events: Vec<String> = got.lock().unwrap().iter().filter(|g| *g != SYNC_RECORD).cloned().collect();
    // handed on as they are: the detector decides what a record is worth
    assert_eq!(events, [record(FAILED_ACL), record(invalid)]);
    assert_eq!(r.status.lines.load(Ordering::Relaxed), 2);
    // each record is followed by a Ping, and its answer by a sync
    wait_for("a sync after the events", || got.lock().unwrap().last().map(String::as_str) == Some(SYNC_RECORD));
    r.stop();
    let actions = pings.join().unwrap();
    assert!(actions.iter().all(|a| a == "Ping") && !actions.is_empty(), "{actions:?}");
    // only the answers to its own Pings are syncs, not someone else's
    let syncs = got.lock().unwrap().iter().filter(|g| *g == SYNC_RECORD).count();
    assert!(syncs <= actions.len(), "{syncs} syncs for {} Pings", actions.len());
}

#[test]
fn a_refused_login_is_retried_with_the_credentials_file_read_again() {
    let (l, port) = listener();
    let creds = Creds::new("login", "wrong-one");
    let (r, got) = start(port, &creds);
    assert!(Conn::login(&l, "right-one").is_none());
    wait_for("the refusal reported", || problem(&r).contains("refused"));
    let why = problem(&r);
    assert!(!up(&r));
    assert!(why.contains("Authentication failed") && why.contains(&creds.0.display().to_string()), "{why}");
    assert!(!why.contains("wrong-one"), "the secret is never shown: {why}");
    // refused again while the file is wrong, then accepted once it is right
    assert!(Conn::login(&l, "right-one").is_none());
    creds.write("right-one");
    let c = Conn::login(&l, "right-one").expect("the corrected secret");
    let (w, _pings) = c.answer_pings();
    wait_for("the source up", || up(&r));
    assert_eq!(problem(&r), "");
    w.lock().unwrap().write_all(FAILED_ACL.as_bytes()).unwrap();
    wait_for("the event", || got.lock().unwrap().contains(&record(FAILED_ACL)));
    r.stop();
}

#[test]
fn a_closed_connection_is_opened_again() {
    let (l, port) = listener();
    let creds = Creds::new("reconnect", "s");
    let (r, got) = start(port, &creds);
    let c = Conn::login(&l, "s").unwrap();
    c.write(FAILED_ACL);
    wait_for("the first event", || got.lock().unwrap().contains(&record(FAILED_ACL)));
    let _ = c.writer.lock().unwrap().shutdown(std::net::Shutdown::Both);
    drop(c);
    let c = Conn::login(&l, "s").expect("a second login");
    assert!(problem(&r).contains("closed the connection") || up(&r), "{}", problem(&r));
    let second = FAILED_ACL.replace("192.0.2.7", "192.0.2.8");
    c.write(&second);
    wait_for("the second event", || got.lock().unwrap().contains(&record(&second)));
    wait_for("the source up again", || up(&r));
    r.stop();
}

#[test]
fn an_overlong_event_becomes_a_gap_and_is_counted() {
    let (l, port) = listener();
    let creds = Creds::new("gap", "s");
    let (r, got) = start(port, &creds);
    let c = Conn::login(&l, "s").unwrap();
    let (w, _pings) = c.answer_pings();
    let long = FAILED_ACL.replace("AccountID: alice", &format!("AccountID: {}", "a".repeat(MAX_LINE)));
    w.lock().unwrap().write_all(long.as_bytes()).unwrap();
    w.lock().unwrap().write_all(FAILED_ACL.as_bytes()).unwrap();
    wait_for("the event after the gap", || got.lock().unwrap().contains(&record(FAILED_ACL)));
    let g = got.lock().unwrap().clone();
    let gap = g.iter().position(|x| x == GAP_RECORD).expect("a gap record");
    assert!(gap < g.iter().position(|x| *x == record(FAILED_ACL)).unwrap(), "{g:?}");
    assert_eq!(r.status.overlong.load(Ordering::Relaxed), 1);
    r.stop();
}

#[test]
fn a_listener_that_is_no_manager_interface_is_reported() {
    let (l, port) = listener();
    let creds = Creds::new("banner", "s");
    let (r, _) = start(port, &creds);
    let _c = Conn::accept(&l, "SSH-2.0-OpenSSH_9.2\r\n");
    wait_for("the greeting reported", || problem(&r).contains("no Asterisk manager interface"));
    assert!(problem(&r).contains("SSH-2.0"), "{}", problem(&r));
    r.stop();
}

#[test]
fn a_stop_is_honoured_while_waiting_and_while_reading() {
    let (l, port) = listener();
    let creds = Creds::new("stop", "s");
    // a listener that never greets
    let (r, _) = start(port, &creds);
    let _silent = l.accept().unwrap();
    r.stop();
    // a missing credentials file: reported, and retried until stopped
    let missing = Creds::new("stop-missing", "s");
    std::fs::remove_file(&missing.0).unwrap();
    let (r, _) = start(port, &missing);
    wait_for("the missing file reported", || problem(&r).contains("cannot read the credentials file"));
    r.stop();
    // logged in and idle
    let (r, _) = start(port, &creds);
    let c = Conn::login(&l, "s").unwrap();
    let (_w, pings) = c.answer_pings();
    wait_for("the source up", || up(&r));
    r.stop();
    pings.join().unwrap();
}
