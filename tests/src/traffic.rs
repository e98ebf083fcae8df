//! Test traffic across a lab: marked frames sent from the peer namespace (any source address)
//! and counted on the host side after XDP.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    frames::l4_frame,
    netns::{in_netns, Lab, RawSock},
};

const MARK: &[u8] = b"SWT:";

/// What a marked frame carries: a tag naming the flow and a sequence number, in a SIP request
/// (the flows go to the sip service, whose inspector drops what is not SIP).
pub fn payload(tag: &str, seq: u64) -> Vec<u8> {
    format!("OPTIONS sip:lab SIP/2.0\r\nX-Mark: SWT:{tag}:{seq}:\r\n\r\n").into_bytes()
}

fn parse_mark(frame: &[u8]) -> Option<(String, u64)> {
    let at = frame.windows(MARK.len()).position(|w| w == MARK)?;
    let text = std::str::from_utf8(&frame[at + MARK.len()..]).ok()?;
    let mut parts = text.split(':');
    let tag = parts.next()?.to_owned();
    let seq = parts.next()?.parse().ok()?;
    Some((tag, seq))
}

/// A frame of flow `tag`, seq `seq`, from `src` to the lab host.
pub fn frame(lab: &Lab, src: &str, dport: u16, syn: bool, tag: &str, seq: u64) -> Vec<u8> {
    let src: IpAddr = src.parse().unwrap();
    let dst: IpAddr =
        if src.is_ipv4() { lab.host_ip4().parse().unwrap() } else { format!("fd00:200:{}::2", lab.n).parse().unwrap() };
    l4_frame(lab.peer_mac, lab.host_mac, src, dst, dport, syn, &payload(tag, seq))
}

/// A thread in one of a lab's namespaces that runs until told to stop; stopped and joined when
/// dropped.
struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `body` in namespace `ns`; `body` returns once the flag it is given is set.
    fn start(ns: &str, body: impl FnOnce(&AtomicBool) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        Self { stop, handle: Some(in_netns(ns, move || body(&s))) }
    }

    /// Hands every frame reaching the lab host's interface (after XDP) to `on_frame`; returns
    /// once the packet socket is open.
    fn tap(lab: &Lab, mut on_frame: impl FnMut(&[u8]) + Send + 'static) -> Self {
        let ifname = lab.host_if.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let worker = Self::start(&lab.host, move |stop| {
            let sock = RawSock::open(&ifname).expect("packet socket on the host side");
            ready_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if let Some(f) = sock.recv() {
                    on_frame(&f);
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("packet socket on the host side ready");
        worker
    }

    /// Stops the thread and waits for it; its panic, if any, becomes the caller's.
    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Arrivals by flow tag: (sequence number, when).
type Seen = Arc<Mutex<HashMap<String, Vec<(u64, Instant)>>>>;

/// Counts marked frames reaching the host's interface (after XDP).
pub struct Receiver {
    seen: Seen,
    _worker: Worker,
}

impl Receiver {
    pub fn start(lab: &Lab) -> Self {
        let seen: Seen = Arc::default();
        let m = seen.clone();
        let worker = Worker::tap(lab, move |f| {
            if let Some((tag, seq)) = parse_mark(f) {
                m.lock().unwrap().entry(tag).or_default().push((seq, Instant::now()));
            }
        });
        Self { seen, _worker: worker }
    }

    pub fn count(&self, tag: &str) -> usize {
        self.seen.lock().unwrap().get(tag).map_or(0, Vec::len)
    }

    /// Sequence numbers of `tag` that arrived.
    pub fn seqs(&self, tag: &str) -> Vec<u64> {
        self.seen.lock().unwrap().get(tag).map_or(Vec::new(), |v| v.iter().map(|(s, _)| *s).collect())
    }

    /// Frames of `tag` whose sequence number is within [from, to).
    pub fn count_seq(&self, tag: &str, from: u64, to: u64) -> usize {
        self.seqs(tag).iter().filter(|s| (from..to).contains(*s)).count()
    }

    /// Frames of `tag` that arrived within [from, to).
    pub fn count_between(&self, tag: &str, from: Instant, to: Instant) -> usize {
        self.seen.lock().unwrap().get(tag).map_or(0, |v| v.iter().filter(|(_, t)| *t >= from && *t < to).count())
    }

    /// When the last frame of `tag` arrived.
    pub fn last(&self, tag: &str) -> Option<Instant> {
        self.seen.lock().unwrap().get(tag).and_then(|v| v.iter().map(|(_, t)| *t).max())
    }

    /// Lets frames in flight arrive before counting.
    pub fn settle(&self) {
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Counts every frame reaching the host's interface (after XDP) from one IPv4 source, marked
/// or not: real clients' packets.
pub struct SourceCounter {
    count: Arc<AtomicU64>,
    _worker: Worker,
}

impl SourceCounter {
    pub fn start(lab: &Lab, src: std::net::Ipv4Addr) -> Self {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let worker = Worker::tap(lab, move |f| {
            // Ethernet, IPv4: the source address is at bytes 26..30
            if f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[26..30] == src.octets() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self { count, _worker: worker }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Sends frames once, from the peer namespace.
pub fn send_all(lab: &Lab, frames: Vec<Vec<u8>>) {
    let ifname = lab.peer_if.clone();
    in_netns(&lab.peer, move || {
        let sock = RawSock::open(&ifname).expect("packet socket on the peer side");
        for f in frames {
            sock.send(&f).expect("send");
        }
    })
    .join()
    .unwrap();
}

/// A steady flow of marked frames until stopped.
pub struct Flow {
    pub sent: Arc<AtomicU64>,
    worker: Worker,
}

impl Flow {
    /// `make(seq)` builds each frame; `pps` frames per second.
    pub fn start(lab: &Lab, pps: u64, make: impl Fn(u64) -> Vec<u8> + Send + 'static) -> Self {
        let sent = Arc::new(AtomicU64::new(0));
        let (n, ifname) = (sent.clone(), lab.peer_if.clone());
        let worker = Worker::start(&lab.peer, move |s| {
            let sock = RawSock::open(&ifname).expect("packet socket on the peer side");
            let gap = Duration::from_nanos(1_000_000_000 / pps);
            let mut next = Instant::now();
            let mut seq = 0;
            while !s.load(Ordering::Relaxed) {
                // publish the number before sending, so `sent()` never undercounts what left
                n.store(seq + 1, Ordering::SeqCst);
                sock.send(&make(seq)).expect("send");
                seq += 1;
                next += gap;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
        });
        Self { sent, worker }
    }

    /// Frames sent so far: every frame numbered from here on leaves after this call.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn stop(mut self) -> u64 {
        self.worker.finish();
        self.sent.load(Ordering::Relaxed)
    }
}

/// Rules for a ban storm from the kernel: a service allowing one packet per source, and a
/// `flood` jail banning each source at its first rate-limit report (`trust_unproven`, so every
/// report counts).
pub const STORM_RULES: &str = r#"
[services.storm]
ports = ["5070/udp"]
rate = 1
burst = 1

[jails.flood]
services = ["storm"]
trust_unproven = true
maxretry = 1
findtime = "1m"
bantime = "1h"

[jails.asterisk]
enabled = false

[jails.sshd]
enabled = false
"#;

/// Frame `i` of a storm under [`STORM_RULES`]: two from each forged address (100.64.0.0 and on,
/// clear of the lab's 10.200/16), so that the second goes over its bucket and is reported.
pub fn storm_frame(lab: &Lab, i: u64) -> Vec<u8> {
    let src = std::net::Ipv4Addr::from(0x6440_0000u32 + (i / 2) as u32).to_string();
    frame(lab, &src, 5070, false, "storm", i)
}
