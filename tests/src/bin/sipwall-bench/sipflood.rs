//! The SIP inspector under a flood of forged sources (issue 14): the netfilter section's
//! in-kernel generator sends one captured request, a REGISTER, an INVITE or svmap's OPTIONS,
//! from 65,536 sources, none of them banned, to `sipwall run` on the receiving veth end, with
//! the inspector off, inspecting every request in full (`reinspect = 0`, as a flood whose sources
//! never repeat makes it), and with the default `reinspect` (the generator's sources come round
//! every 65,536 frames, so most are remembered). Measured per row: the frames the receiving core
//! passes or drops per second of its CPU time, and that CPU time per frame.

use std::{net::Ipv4Addr, time::Duration};

use firewall_common::trafficgen::SOURCE_SLOTS;
use sipwall_tests::{
    daemon::{DaemonProc, LOG_JAILS_OFF},
    netns::Lab,
};

use crate::{
    netfilter::{ban, rate, FloodLab, Link, GEN_CPU, RX_CPU},
    receiver::{rx_dropped, NapiThread},
    sip::captured_payload,
    trafficgen::{self, Generator},
};

/// A captured request: what it is, where it comes from, and whether the inspector drops it.
struct Request {
    name: &'static str,
    file: &'static str,
    index: usize,
    scanner: bool,
}

const REQUESTS: [Request; 3] = [
    Request {
        name: "legitimate REGISTER with digest Authorization",
        file: "sipp-register.pcap",
        index: 1,
        scanner: false,
    },
    Request { name: "INVITE with SDP", file: "sipp-invite.pcap", index: 0, scanner: false },
    Request { name: "scanner OPTIONS (svmap)", file: "svmap.pcap", index: 0, scanner: true },
];

/// The `[sip]` settings a row runs with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inspection {
    Off,
    Full,
    Default,
}

impl Inspection {
    fn name(self) -> &'static str {
        match self {
            Self::Off => "inspection off",
            Self::Full => "every request inspected in full (`reinspect = 0`)",
            Self::Default => "default `reinspect`",
        }
    }

    fn rules(self) -> String {
        let sip = match self {
            Self::Off => "[sip]\ninspect = false\n",
            Self::Full => "[sip]\nreinspect = 0\n",
            Self::Default => "",
        };
        format!("[services.sip]\nports = [\"5060/udp\"]\n\n{sip}\n{LOG_JAILS_OFF}")
    }
}

/// What one row measured.
struct Row {
    request: &'static str,
    inspection: Inspection,
    offered: f64,
    ring_lost: f64,
    /// Frames passed and dropped per second of wall time.
    passed: f64,
    dropped: f64,
    /// Share of the passed requests that were inspected in full (the rest were remembered).
    full_share: f64,
    busy: f64,
    /// Receive CPU ns per frame passed or dropped.
    ns_per: f64,
}

/// The sipwall counters a row reads: passed in full, passed remembered, dropped.
fn counters(d: &DaemonProc) -> [u64; 3] {
    let m = d.metrics();
    let count =
        |reason: &str| sipwall_tests::daemon::metric_sum(&m, "sipwall_packets_total", &format!("reason=\"{reason}\""));
    [count("accepted"), count("sip_remembered"), count("sip_scanner")]
}

fn measure(lab: &Lab, link: &Link, r: &Request, inspection: Inspection, secs: f64, quick: bool) -> Row {
    let mut d = DaemonProc::prepare(lab, &inspection.rules(), &["--iface", &link.rcv_if]);
    d.spawn(lab);
    let sources: Vec<Ipv4Addr> = (0..SOURCE_SLOTS as usize).map(ban).collect();
    let frame = link.frame_with(&captured_payload(r.file, r.index));
    let g = Generator::start(&lab.peer, &link.gen_if, frame, &sources, GEN_CPU);
    std::thread::sleep(Duration::from_millis(300));
    let napi = NapiThread::find(&link.rcv_if, RX_CPU);
    std::thread::sleep(Duration::from_millis(if quick { 300 } else { 1000 }));
    let snap =
        || (g.sent(), counters(&d), napi.cpu_ns(), rx_dropped(&lab.host, &link.rcv_if), std::time::Instant::now());
    let a = snap();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let b = snap();
    g.stop();
    d.stop();
    let t = b.4.duration_since(a.4).as_secs_f64();
    let sent = (b.0 - a.0) as f64;
    let [full, kept, scanner] = [0, 1, 2].map(|i| (b.1[i] - a.1[i]) as f64);
    let rx_ns = (b.2 - a.2) as f64;
    let lost = (b.3 - a.3) as f64;
    let handled = full + kept + scanner;
    Row {
        request: r.name,
        inspection,
        offered: sent / t,
        ring_lost: if sent > 0.0 { lost / sent } else { 0.0 },
        passed: (full + kept) / t,
        dropped: scanner / t,
        full_share: if full + kept > 0.0 { full / (full + kept) } else { 0.0 },
        busy: rx_ns / (t * 1e9),
        ns_per: if handled > 0.0 { rx_ns / handled } else { f64::NAN },
    }
}

/// Runs the rows; returns their Markdown.
pub fn run(quick: bool) -> String {
    let secs = if quick { 2.0 } else { 10.0 };
    // passed requests are read by the lab's socket, not answered with ICMP errors
    let flood = FloodLab::new();
    if let Err(why) = trafficgen::probe(&flood.lab.peer, &flood.link.gen_if, flood.link.frame()) {
        return format!("Not measured: {why}.\n");
    }
    let mut rows = Vec::new();
    for r in &REQUESTS {
        let modes: &[Inspection] = if r.scanner {
            &[Inspection::Off, Inspection::Default]
        } else {
            &[Inspection::Off, Inspection::Full, Inspection::Default]
        };
        for &m in modes {
            eprintln!("sip flood: {}, {}", r.name, m.name());
            rows.push(measure(&flood.lab, &flood.link, r, m, secs, quick));
        }
    }
    drop(flood);
    table(&rows, secs)
}

fn table(rows: &[Row], secs: f64) -> String {
    let mut md = format!(
        "The netfilter section's generator on CPU {GEN_CPU} sends one captured request from {SOURCE_SLOTS} sources, none \
         banned, to `sipwall run` on the receiving veth end, whose NAPI thread runs on CPU {RX_CPU}; {secs:.0} s per row. \
         Passed requests go on to a UDP socket on 5060.\n\n\
         | request | `[sip]` | offered, frames/s | lost at the veth ring | passed, frames/s (inspected in full) | dropped as `sip_scanner`, frames/s | receiving core busy | frames per second of the receiving core | receive CPU per frame | added to inspection off |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let off = rows.iter().find(|o| o.request == r.request && o.inspection == Inspection::Off).map(|o| o.ns_per);
        let added = match (r.inspection, off) {
            (Inspection::Off, _) | (_, None) => String::new(),
            (_, Some(off)) => format!("{:+.0} ns", r.ns_per - off),
        };
        let share = match r.inspection {
            Inspection::Off => String::new(),
            _ => format!(" ({:.0} %)", r.full_share * 100.0),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} % | {}{share} | {} | {:.0} % | {} | {:.0} ns | {added} |\n",
            r.request,
            r.inspection.name(),
            rate(r.offered),
            r.ring_lost * 100.0,
            rate(r.passed),
            rate(r.dropped),
            r.busy * 100.0,
            rate(1e9 / r.ns_per),
            r.ns_per,
        ));
    }
    md
}
