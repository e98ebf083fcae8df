//! The SIP inspector: ns per packet through BPF_PROG_TEST_RUN for frames captured from real
//! tools, in three copies of the program timed in the same rounds (inspection off, every request
//! inspected in full, the default `reinspect`), next to the trivial program; and the
//! legitimate REGISTER cut after fewer header lines, and without scanner signatures, to show
//! what the full inspection's cost grows with. `--compare OBJECT` times another build of the
//! XDP object in the same rounds (its full and remembered copies) and reports both side by side.

#[path = "../../../../firewall-common/src/sip/pcap.rs"]
mod pcap;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use firewall_common::{
    programs,
    reason::Reason::{self, *},
};
use sipwall::rules::sip::{SipRules, DEFAULT_REINSPECT};
use sipwall_tests::{
    frames::from_port,
    harness::{rules, Harness, XDP_DROP, XDP_PASS},
};

use crate::util::{median, pin_to_one_cpu};

/// The sip service without a rate limit, so that no limiter drops a repeated frame.
const RULES: &str = r#"
[services.sip]
ports = ["5060/udp"]
"#;

/// The tools ran at 10.77.0.1 against Kamailio at 10.77.0.2 (tests/fixtures/sip/capture.sh).
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));

struct Row {
    name: &'static str,
    file: &'static str,
    /// Index among the client's packets of the capture.
    request: usize,
    /// Keep only the start line and this many header lines (then the blank line).
    headers: Option<usize>,
    /// The reason with inspection on; with it off every row is accepted.
    on: Reason,
}

const fn row(name: &'static str, file: &'static str, request: usize, on: Reason) -> Row {
    Row { name, file, request, headers: None, on }
}

const fn cut(name: &'static str, headers: usize) -> Row {
    Row { name, file: "sipp-register.pcap", request: 1, headers: Some(headers), on: Accepted }
}

/// The rows of the issue's target first (the REGISTER first of all), then the breakdown.
const ROWS: [Row; 8] = [
    row("legitimate REGISTER with digest Authorization", "sipp-register.pcap", 1, Accepted),
    row("INVITE with SDP", "sipp-invite.pcap", 0, Accepted),
    row("INVITE with SDP and Proxy-Authorization", "sipp-invite.pcap", 2, Accepted),
    row("scanner OPTIONS (svmap)", "svmap.pcap", 0, SipScanner),
    row("non-SIP payload (nmap -sV NTP probe)", "nmap-sv.pcap", 1, SipNotSip),
    cut("start line only", 0),
    cut("start line + 4 header lines (to Call-ID)", 4),
    cut("start line + 8 header lines (to Max-Forwards)", 8),
];
const TARGET_ROWS: usize = 5;

/// The row's frame, from source port `port`: each row is a source of its own, so that one
/// row's request remembered clean says nothing of another's.
fn frame(row: &Row, port: u16) -> Vec<u8> {
    from_port(captured(row), port)
}

/// Request `index` of the client in capture `file` (UDP to 5060).
fn request(file: &str, index: usize) -> pcap::Packet {
    let pkts: Vec<pcap::Packet> = pcap::load(file).into_iter().filter(|p| p.src == CLIENT).collect();
    let p = pkts.into_iter().nth(index).unwrap_or_else(|| panic!("{file}: no request {index}"));
    assert!(!p.tcp && p.dst_port == 5060, "{file}: request {index} is not UDP to 5060");
    p
}

/// The SIP message of request `index` of the client in capture `file`.
pub fn captured_payload(file: &str, index: usize) -> Vec<u8> {
    request(file, index).payload
}

fn captured(row: &Row) -> Vec<u8> {
    let p = request(row.file, row.request);
    let Some(n) = row.headers else { return p.frame };
    let lines: Vec<&[u8]> = p.payload.split_inclusive(|&b| b == b'\n').collect();
    assert!(lines.len() > n + 2, "{}: request {} has fewer than {n} header lines", row.file, row.request);
    let mut payload: Vec<u8> = lines[..=n].concat();
    payload.extend_from_slice(b"\r\n");
    with_payload(&p.frame, p.payload.len(), &payload)
}

/// `frame` (Ethernet, IPv4 without options, UDP) with its `old`-byte payload replaced; the
/// length fields follow, checksums are not checked on this path.
fn with_payload(frame: &[u8], old: usize, payload: &[u8]) -> Vec<u8> {
    let head = frame.len() - old;
    assert_eq!(head, 14 + 20 + 8, "an IPv4 header without options");
    let mut f = frame[..head].to_vec();
    f.extend_from_slice(payload);
    f[16..18].copy_from_slice(&((20 + 8 + payload.len()) as u16).to_be_bytes());
    f[38..40].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f
}

fn action_of(reason: Reason) -> u32 {
    if reason == Accepted {
        XDP_PASS
    } else {
        XDP_DROP
    }
}

/// Checks each frame's verdict once in both harnesses, so a broken setup cannot time the
/// wrong path.
fn check(copies: &mut [Harness], frames: &[Vec<u8>]) {
    for (row, f) in ROWS.iter().zip(frames) {
        assert_eq!(copies[OFF].why(f), (Accepted, "sip"), "{} with inspection off", row.name);
        for k in (FULL..copies.len()).step_by(2) {
            assert_eq!(copies[k].why(f), (row.on, "sip"), "{} inspected in full (copy {k})", row.name);
            // the first request of a source is inspected in full, and remembered if it passed
            assert_eq!(copies[k + 1].why(f), (row.on, "sip"), "{} with reinspect (copy {k})", row.name);
        }
    }
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    assert!(text(&frames[0]).contains("\r\nAuthorization: Digest "), "the REGISTER carries credentials");
    assert!(text(&frames[1]).contains("\r\n\r\nv=0\r\n"), "the INVITE carries SDP");
    assert!(text(&frames[2]).contains("\r\nProxy-Authorization: Digest "), "the 2nd INVITE carries credentials");
    assert!(text(&frames[3]).contains("friendly-scanner"), "svmap names itself");
    let (four, eight) = (text(&frames[TARGET_ROWS + 1]), text(&frames[TARGET_ROWS + 2]));
    assert!(four.contains("\r\nCall-ID: ") && !four.contains("\r\nCSeq: "), "4 header lines end with Call-ID");
    assert!(eight.contains("\r\nMax-Forwards: ") && !eight.contains("\r\nUser-Agent: "), "8 end with Max-Forwards");
    for h in copies {
        h.drain_events();
    }
}

/// The copies of the program timed side by side: inspection off, every request inspected in
/// full (`reinspect = 0`), and the default `reinspect`; with `--compare`, the other build's full
/// and default copies follow ([`ALT_FULL`], [`ALT_KEPT`]).
const OFF: usize = 0;
const FULL: usize = 1;
const KEPT: usize = 2;
const ALT_FULL: usize = 3;
const ALT_KEPT: usize = 4;

/// Per row: the medians of each copy, and of each copy's ns − the off copy's within a round.
struct Measured {
    ns: Vec<f64>,
    added: Vec<f64>,
}

/// One row's samples: ns per copy, and ns − off per copy, one per round.
#[derive(Clone, Default)]
struct Samples {
    ns: Vec<Vec<f64>>,
    added: Vec<Vec<f64>>,
}

impl Samples {
    fn push(&mut self, ns: &[f64]) {
        self.ns.resize(ns.len(), Vec::new());
        self.added.resize(ns.len(), Vec::new());
        for (k, t) in ns.iter().enumerate() {
            self.ns[k].push(*t);
            self.added[k].push(t - ns[OFF]);
        }
    }

    fn measured(self) -> Measured {
        Measured { ns: self.ns.into_iter().map(median).collect(), added: self.added.into_iter().map(median).collect() }
    }
}

/// Header lines of the SIP message in a frame built by `frame` (Ethernet, IPv4, UDP).
fn lines(frame: &[u8]) -> usize {
    String::from_utf8_lossy(&frame[42..]).split("\r\n").take_while(|l| !l.is_empty()).count()
}

/// Runs the SIP inspection benchmark; returns its Markdown.
pub fn run(args: &[String], quick: bool) -> String {
    let repeat: u32 = if quick { 100_000 } else { 1_000_000 };
    let runs = if quick { 5 } else { 21 };
    pin_to_one_cpu();
    let alt = args.iter().position(|a| a == "--compare").map(|i| {
        let p = &args[i + 1];
        let name = std::path::Path::new(p).file_stem().unwrap().to_string_lossy().into_owned();
        (name, std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")))
    });
    let copy = |edit: &dyn Fn(&mut SipRules), object: &[u8]| {
        let mut r = rules(RULES);
        edit(&mut r.sip);
        Harness::on_kernel_time(r, object)
    };
    let full = |s: &mut SipRules| s.reinspect = Duration::ZERO;
    let kept = |s: &mut SipRules| assert_eq!(s.reinspect, DEFAULT_REINSPECT);
    let mut copies = vec![
        copy(&|s| s.inspect = false, sipwall::BPF_OBJECT),
        copy(&full, sipwall::BPF_OBJECT),
        copy(&kept, sipwall::BPF_OBJECT),
    ];
    if let Some((_, object)) = &alt {
        copies.push(copy(&full, object));
        copies.push(copy(&kept, object));
    }
    let copy = |edit: &dyn Fn(&mut SipRules)| copy(edit, sipwall::BPF_OBJECT);
    // inspected in full without scanner signatures: what reading the message costs alone
    let mut bare = copy(&|s| {
        s.reinspect = Duration::ZERO;
        s.scanner_user_agents.clear();
        s.scanner_uris.clear();
    });
    let frames: Vec<Vec<u8>> = ROWS.iter().enumerate().map(|(i, r)| frame(r, 40_000 + i as u16)).collect();
    check(&mut copies, &frames);
    assert_eq!(bare.why(&frames[0]), (Accepted, "sip"), "the REGISTER without signatures");
    assert_eq!(bare.why(&frames[3]), (Accepted, "sip"), "svmap passes without signatures");

    let mut base = Vec::new();
    let mut samples = vec![Samples::default(); ROWS.len() + 1];
    // one round to warm caches and clocks, not counted
    for round in 0..=runs {
        let (a, b) = copies[OFF].time(programs::BASELINE, &frames[0], repeat);
        assert_eq!(a, XDP_PASS, "the trivial program");
        for (i, row) in ROWS.iter().enumerate() {
            // every sample starts with an empty ring buffer (each scanner drop is reported)
            for h in copies.iter_mut() {
                h.drain_events();
            }
            // rotate the order, so that no copy always runs on a warmer cache
            let n = copies.len();
            let mut ns = vec![0.0; n];
            for j in 0..n {
                let k = (round + j) % n;
                let (a, t) = copies[k].time(programs::XDP, &frames[i], repeat);
                let want = if k == OFF { XDP_PASS } else { action_of(row.on) };
                assert_eq!(a, want, "{} in copy {k}", row.name);
                ns[k] = t;
            }
            if i == 0 {
                let (a, t) = bare.time(programs::XDP, &frames[0], repeat);
                assert_eq!(a, XDP_PASS, "the REGISTER without signatures");
                if round > 0 {
                    samples[ROWS.len()].push(&[ns[OFF], t, t]);
                }
            }
            if round > 0 {
                samples[i].push(&ns);
            }
        }
        if round > 0 {
            base.push(b);
        }
    }
    let m: Vec<Measured> = samples.into_iter().map(Samples::measured).collect();
    let work: Vec<String> =
        programs::TRAFFIC.iter().map(|p| format!("{} for `{p}`", copies[FULL].verifier_work_of(p))).collect();
    let note = format!("- The verifier processed {} instructions on this kernel.\n", work.join(", "));
    let mut md = report(&frames, &m, median(base), format!("median of {runs} × {repeat} runs"), note);
    if let Some((name, _)) = alt {
        md.push_str(&compared(&name, &m));
    }
    md
}

/// This build next to `name`, timed in the same rounds.
fn compared(name: &str, m: &[Measured]) -> String {
    let mut md = format!(
        "\nThis build and `{name}`, in the same rounds (ns per packet):\n\n| frame | inspected in full | `{name}` | ratio | \
         source inspected clean within `reinspect` | `{name}` | ratio |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for (row, m) in ROWS.iter().zip(m).take(TARGET_ROWS) {
        md.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} |\n",
            row.name,
            m.ns[FULL],
            m.ns[ALT_FULL],
            m.ns[FULL] / m.ns[ALT_FULL],
            m.ns[KEPT],
            m.ns[ALT_KEPT],
            m.ns[KEPT] / m.ns[ALT_KEPT]
        ));
    }
    md
}

fn report(frames: &[Vec<u8>], m: &[Measured], base: f64, how: String, note: String) -> String {
    let mut md = format!(
        "| frame (ns per packet, {how}) | bytes | verdict with inspection | inspection off | inspected in full (`reinspect = 0`) | added | source inspected clean within `reinspect` | added |\n|---|---:|---|---:|---:|---:|---:|---:|\n"
    );
    md.push_str(&format!("| trivial XDP_PASS program | {} | pass | {base:.0} | | | | |\n", frames[0].len()));
    for ((row, f), m) in ROWS.iter().zip(frames).zip(m).take(TARGET_ROWS) {
        let verdict = if row.on == Accepted { "pass".to_owned() } else { format!("drop `{}`", row.on.name()) };
        md.push_str(&format!(
            "| {} | {} | {verdict} | {:.0} | {:.0} | {:+.0} | {:.0} | {:+.0} |\n",
            row.name,
            f.len(),
            m.ns[OFF],
            m.ns[FULL],
            m.added[FULL],
            m.ns[KEPT],
            m.added[KEPT]
        ));
    }
    md.push_str(
        "\nThe legitimate REGISTER inspected in full, cut after fewer header lines, and whole without scanner \
         signatures (the same rounds):\n\n",
    );
    md.push_str("| REGISTER | bytes | lines | inspected in full | added |\n|---|---:|---:|---:|---:|\n");
    let mut line = |name: &str, f: &[u8], m: &Measured| {
        md.push_str(&format!("| {name} | {} | {} | {:.0} | {:+.0} |\n", f.len(), lines(f), m.ns[FULL], m.added[FULL]));
    };
    for ((row, f), m) in ROWS.iter().zip(frames).zip(m).skip(TARGET_ROWS) {
        line(row.name, f, m);
    }
    line("whole (as above)", &frames[0], &m[0]);
    line("whole, no scanner signatures configured", &frames[0], &m[ROWS.len()]);
    let (start, whole) = (&frames[TARGET_ROWS], &frames[0]);
    md.push_str(&format!(
        "\n- Per header line, from the start line alone to the whole REGISTER: {:.0} ns ({} lines, {} bytes more).\n",
        (m[0].added[FULL] - m[TARGET_ROWS].added[FULL]) / (lines(whole) - lines(start)) as f64,
        lines(whole) - lines(start),
        whole.len() - start.len()
    ));
    md.push_str(&format!(
        "- Searching the Request-URI, From and User-Agent for the {} default signatures: {:+.0} ns of the REGISTER's.\n",
        {
            let d = SipRules::default();
            d.scanner_user_agents.len() + d.scanner_uris.len()
        },
        m[0].added[FULL] - m[ROWS.len()].added[FULL]
    ));
    md.push_str(&note);
    let verdict = |ns: f64| if ns <= 60.0 { "met" } else { "not met" };
    md.push_str(&format!(
        "- Target (inspection adds ≤ 60 ns to a legitimate REGISTER): {}, {:+.0} ns, for a REGISTER from a source \
         inspected clean within `reinspect` (the default); {}, {:+.0} ns, for a REGISTER inspected in full.\n",
        verdict(m[0].added[KEPT]),
        m[0].added[KEPT],
        verdict(m[0].added[FULL]),
        m[0].added[FULL]
    ));
    md
}
