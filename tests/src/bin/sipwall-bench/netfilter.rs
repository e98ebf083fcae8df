//! sipwall against what VoIP hosts run today (issue 14): the same in-kernel generator floods a
//! veth pair from banned sources, with one legitimate source among them, while each contender
//! in turn filters on the receiving side with the same bans. Measured per contender and table
//! size: frames dropped per second on one receiving core, the receiving core's CPU time per
//! dropped frame, the legitimate frames that still reach a UDP socket on 5060, and the time to
//! install the bans.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use firewall_common::trafficgen::SOURCE_SLOTS;
use sipwall_tests::{
    frames::l4_frame,
    netns::{mac_of, sh, Lab},
    traffic::payload,
};

use crate::{
    contenders::{iptables_version, seconds, Contender, Installed, ALL},
    receiver::{gro_on, rx_dropped, threaded_napi, NapiThread, Socket5060},
    trafficgen::{self, Generator},
    util::{affinity, human, online_cpus, pin_to, set_affinity},
};

/// The one source that is not banned: one frame in [`LEGIT_EVERY`] is its.
pub const LEGIT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 7);
pub const LEGIT_EVERY: usize = 64;
/// The generator's CPU (and the socket reader's); the receiving side's NAPI thread runs on
/// [`RX_CPU`].
pub const GEN_CPU: usize = 0;
pub const RX_CPU: usize = 1;

/// Ban `i`: a bijection of 0..2^30 onto 64 /8s, 11/8 to 74/8 (public unicast, clear of the
/// lab's 10/8 and of [`LEGIT`]), spread so that consecutive bans share no /24.
pub fn ban(i: usize) -> Ipv4Addr {
    let h = (i as u32).wrapping_mul(2_654_435_761) & ((1 << 30) - 1);
    Ipv4Addr::from(((11 + (h >> 24)) << 24) | (h & 0xff_ffff))
}

/// The generator's source table: [`LEGIT`] in one slot of every [`LEGIT_EVERY`], the others
/// banned sources spread evenly over the bans (so that, in the linear chain, the flood's
/// sources sit at every depth).
fn sources(n: usize) -> Vec<Ipv4Addr> {
    let slots = SOURCE_SLOTS as usize;
    let flood_slots = slots - slots / LEGIT_EVERY;
    let mut flood = 0;
    (0..slots)
        .map(|k| {
            if k % LEGIT_EVERY == 0 {
                LEGIT
            } else {
                flood += 1;
                ban((flood - 1) * n / flood_slots)
            }
        })
        .collect()
}

/// The receiving side's link: a veth pair of its own between the lab's namespaces, named
/// uniquely on the machine (its NAPI thread is found by name).
pub struct Link {
    pub gen_if: String,
    pub rcv_if: String,
    rcv_ip: Ipv4Addr,
    gen_mac: [u8; 6],
    rcv_mac: [u8; 6],
}

impl Link {
    pub fn new(lab: &Lab) -> Self {
        let id = std::process::id() % 1_000_000;
        let (gen_if, rcv_if) = (format!("sbg{id}"), format!("sbr{id}"));
        sh(&[
            "ip", "link", "add", &gen_if, "netns", &lab.peer, "type", "veth", "peer", "name", &rcv_if, "netns",
            &lab.host,
        ]);
        let (gen_ip, rcv_ip) = (format!("10.201.{}.1", lab.n), format!("10.201.{}.2", lab.n));
        for (ns, ifname, ip) in [(&lab.peer, &gen_if, &gen_ip), (&lab.host, &rcv_if, &rcv_ip)] {
            sh(&["ip", "-n", ns, "addr", "add", &format!("{ip}/24"), "dev", ifname]);
            sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        // replies (fail2ban's REJECT) go back out of the link, as on a host with a default route
        sh(&["ip", "-n", &lab.host, "route", "add", "default", "via", &gen_ip, "dev", &rcv_if]);
        sh(&["ip", "netns", "exec", &lab.host, "sysctl", "-qw", &format!("net.ipv4.conf.{rcv_if}.rp_filter=0")]);
        gro_on(&lab.host, &rcv_if);
        threaded_napi(&lab.host, &rcv_if);
        let (gen_mac, rcv_mac) = (mac_of(&lab.peer, &gen_if), mac_of(&lab.host, &rcv_if));
        Self { gen_if, rcv_if, rcv_ip: rcv_ip.parse().unwrap(), gen_mac, rcv_mac }
    }

    /// The generator's frame: a SIP request to 5060/udp, UDP checksum 0 (the program rewrites
    /// the source address and the IPv4 checksum only).
    pub fn frame(&self) -> Vec<u8> {
        self.frame_with(&payload("flood", 0))
    }

    /// The generator's frame with `sip` as its UDP payload.
    pub fn frame_with(&self, sip: &[u8]) -> Vec<u8> {
        let mut f = l4_frame(self.gen_mac, self.rcv_mac, LEGIT.into(), self.rcv_ip.into(), 5060, false, sip);
        f[14 + 20 + 6..14 + 20 + 8].fill(0);
        f
    }
}

/// Counters read at the start and the end of a measurement.
struct Snapshot {
    at: Instant,
    sent: u64,
    drops: u64,
    legit: u64,
    rx_ns: u64,
    rx_dropped: u64,
}

fn snapshot(g: &Generator, c: &Installed, s: &Socket5060, napi: &NapiThread, lab: &Lab, link: &Link) -> Snapshot {
    let rx_dropped = rx_dropped(&lab.host, &link.rcv_if);
    Snapshot {
        at: Instant::now(),
        sent: g.sent(),
        drops: c.drops(),
        legit: s.legit(),
        rx_ns: napi.cpu_ns(),
        rx_dropped,
    }
}

/// One contender at one size.
struct Row {
    contender: Contender,
    install: Option<f64>,
    note: Option<String>,
    offered: f64,
    /// Share of the offered frames the receiving ring had no room for.
    ring_lost: f64,
    dropped: f64,
    /// Share of the wall time the receiving side's NAPI thread ran.
    busy: f64,
    /// Receive CPU ns per dropped frame (per frame received, with no filter).
    ns_per: f64,
    legit: f64,
    legit_share: f64,
}

fn measure(
    lab: &Lab,
    link: &Link,
    socket: &Socket5060,
    c: Contender,
    bans: &[Ipv4Addr],
    secs: f64,
    quick: bool,
) -> Row {
    let one_by_one = if quick { 100 } else { 10_000 };
    let installed = c.install(lab, &link.rcv_if, bans, one_by_one);
    let g = Generator::start(&lab.peer, &link.gen_if, link.frame(), &sources(bans.len()), GEN_CPU);
    // the first frames have gone through: the NAPI thread exists; warm up pinned
    std::thread::sleep(Duration::from_millis(300));
    let napi = NapiThread::find(&link.rcv_if, RX_CPU);
    std::thread::sleep(Duration::from_millis(if quick { 300 } else { 1000 }));
    let a = snapshot(&g, &installed, socket, &napi, lab, link);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let b = snapshot(&g, &installed, socket, &napi, lab, link);
    g.stop();
    let t = b.at.duration_since(a.at).as_secs_f64();
    let sent = (b.sent - a.sent) as f64;
    let drops = (b.drops - a.drops) as f64;
    let rx_ns = (b.rx_ns - a.rx_ns) as f64;
    let lost = (b.rx_dropped - a.rx_dropped) as f64;
    let per = if c == Contender::NoFilter { sent - lost } else { drops };
    let row = Row {
        contender: c,
        install: installed.install,
        note: installed.note.clone(),
        offered: sent / t,
        ring_lost: if sent > 0.0 { lost / sent } else { 0.0 },
        dropped: drops / t,
        busy: rx_ns / (t * 1e9),
        ns_per: if per > 0.0 { rx_ns / per } else { f64::NAN },
        legit: (b.legit - a.legit) as f64 / t,
        legit_share: (b.legit - a.legit) as f64 / (sent / LEGIT_EVERY as f64),
    };
    installed.remove();
    row
}

pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.1}×", a / b)
    } else {
        "—".into()
    }
}

fn table(n: usize, rows: &[Row]) -> String {
    let us = &rows[0];
    let mut md = format!(
        "{} bans.\n\n\
         | contender | bans installed in | offered, frames/s | lost at the veth ring | dropped, frames/s | receiving core busy | dropped per second of the receiving core | receive CPU per dropped frame | legitimate frames/s at the socket (share of offered) | sipwall × |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        human(n)
    );
    for r in rows {
        let install = match (r.install, &r.note) {
            (Some(s), _) => seconds(s),
            (None, Some(note)) => format!("— ({note})"),
            (None, None) => "—".into(),
        };
        let per_core = rate(1e9 / r.ns_per);
        let (dropped, per_core, cpu, times) = match r.contender {
            Contender::NoFilter => (
                "—".to_owned(),
                format!("— ({per_core} received)"),
                format!("{:.0} ns per frame received", r.ns_per),
                "—".to_owned(),
            ),
            Contender::Sipwall => (rate(r.dropped), per_core, format!("{:.0} ns", r.ns_per), String::new()),
            _ => (rate(r.dropped), per_core, format!("{:.0} ns", r.ns_per), ratio(r.ns_per, us.ns_per)),
        };
        md.push_str(&format!(
            "| {} | {install} | {} | {:.1} % | {dropped} | {:.0} % | {per_core} | {cpu} | {} ({:.0} %) | {times} |\n",
            r.contender.name(),
            rate(r.offered),
            r.ring_lost * 100.0,
            r.busy * 100.0,
            rate(r.legit),
            r.legit_share * 100.0,
        ));
    }
    md
}

/// The ratios of every size side by side.
fn summary(sizes: &[usize], all: &[Vec<Row>]) -> String {
    let head: Vec<String> = sizes.iter().map(|n| human(*n)).collect();
    let mut md = format!(
        "sipwall's drop rate on one receiving core ÷ the contender's (the contender's receive CPU per dropped \
         frame ÷ sipwall's), by number of bans, same run:\n\n| contender | {} |\n|---|{}\n",
        head.join(" | "),
        "---:|".repeat(sizes.len())
    );
    for (i, c) in ALL.iter().enumerate().filter(|(_, c)| !matches!(c, Contender::Sipwall | Contender::NoFilter)) {
        let cells: Vec<String> = all.iter().map(|rows| ratio(rows[i].ns_per, rows[0].ns_per)).collect();
        md.push_str(&format!("| {} | {} |\n", c.name(), cells.join(" | ")));
    }
    md
}

/// What the flood sections run in: the lab, its link, and a UDP socket on 5060 that reads what
/// passes, with this thread (and so the daemons and commands it starts) kept off the receiving
/// CPU until it is dropped.
pub struct FloodLab {
    pub socket: Socket5060,
    pub link: Link,
    pub lab: Lab,
    cpus_before: libc::cpu_set_t,
}

impl FloodLab {
    pub fn new() -> Self {
        assert!(online_cpus() > RX_CPU, "the flood puts the generator and the receiving side on two CPUs");
        let cpus_before = affinity();
        pin_to(GEN_CPU);
        let lab = Lab::new();
        let link = Link::new(&lab);
        let socket = Socket5060::start(&lab.host, LEGIT, GEN_CPU);
        Self { socket, link, lab, cpus_before }
    }
}

impl Drop for FloodLab {
    fn drop(&mut self) {
        set_affinity(&self.cpus_before);
    }
}

pub fn run(quick: bool, sizes: Option<&[usize]>) -> String {
    let sizes: &[usize] = match sizes {
        Some(s) => s,
        None if quick => &[10, 1_000],
        None => &[10, 10_000, 100_000, 1_000_000],
    };
    let secs = if quick { 2.0 } else { 10.0 };
    let flood = FloodLab::new();
    let (lab, link, socket) = (&flood.lab, &flood.link, &flood.socket);
    if let Err(why) = trafficgen::probe(&lab.peer, &link.gen_if, link.frame()) {
        return format!("Not measured: {why}.\n");
    }
    let mut all = Vec::new();
    for &n in sizes {
        let bans: Vec<Ipv4Addr> = (0..n).map(ban).collect();
        let mut rows = Vec::new();
        for c in ALL {
            eprintln!("netfilter: {} bans, {}", human(n), c.name());
            rows.push(measure(lab, link, socket, c, &bans, secs, quick));
        }
        all.push(rows);
    }
    drop(flood);
    let mut md = format!(
        "The in-kernel generator (BPF_PROG_TEST_RUN, live frames, XDP_TX) on CPU {GEN_CPU} floods a veth pair with \
         SIP requests to 5060/udp from banned sources, one frame in {LEGIT_EVERY} from a legitimate source; the \
         receiving veth's NAPI thread runs on CPU {RX_CPU}; {secs:.0} s per row. iptables: `{}`.\n\n",
        iptables_version()
    );
    for (n, rows) in sizes.iter().zip(&all) {
        md.push_str(&table(*n, rows));
        md.push('\n');
    }
    md.push_str(&summary(sizes, &all));
    md
}
