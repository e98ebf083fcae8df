//! The data path: ns per packet through BPF_PROG_TEST_RUN for each verdict path, with 0 to
//! 1,000,000 bans and blocked prefixes loaded, next to a program that only returns XDP_PASS.
//!
//! The last row sends from many banned sources in turn, one run each, so that the tables' reads
//! miss the CPU's caches as under a flood from many addresses, which a frame repeated a million
//! times never does.
//!
//! `--compare OBJECT[,OBJECT…]` measures other builds of the XDP object interleaved with this
//! one, with the same tables, and prints both: the way to judge a change on a noisy machine.

use std::{net::IpAddr, time::Instant};

use crate::util::{human, median, pin_to_one_cpu, Rng};
use firewall_common::programs;
use ipnet::IpNet;
use sipwall_tests::{
    frames::{syn, udp},
    harness::{rules, Harness, XDP_DROP, XDP_PASS},
};

const BASE: &str = r#"
[allow]
sources = ["127.0.0.0/8", "51.5.6.0/24"]
[services.sip]
ports = ["5060/udp", "5060/tcp"]
rate = 10000000
burst = 10000000
[services.limited]
ports = ["5070/udp"]
rate = 1
burst = 1
"#;

/// A blocklist-like mix: mostly single addresses, some /24s, a few wider networks.
fn prefixes(n: usize, rng: &mut Rng) -> Vec<IpNet> {
    let mut out = Vec::with_capacity(n + 8);
    for i in 0..n {
        let r = rng.next();
        let v6 = i % 10 == 9;
        let net = if v6 {
            let len = [32u8, 48, 64, 128][(r % 4) as usize];
            let addr = (0x2a00u128 << 112) | ((rng.next() as u128) << 64) | rng.next() as u128;
            IpNet::new(IpAddr::V6(addr.into()), len).unwrap()
        } else {
            let pick = r % 100;
            let len = match pick {
                0..=79 => 32,
                80..=94 => 24,
                95..=98 => 20 + (r >> 8) as u8 % 4,
                _ => 16 + (r >> 8) as u8 % 4,
            };
            // stay clear of the benchmark's own sources (51/8, 127/8, 198.51/16, 100.66/16)
            let mut a = (rng.next() as u32) | 0x0100_0000;
            if matches!(a >> 24, 51 | 127 | 198 | 100) {
                a ^= 0x0800_0000;
            }
            IpNet::new(IpAddr::V4(a.into()), len).unwrap()
        };
        out.push(net.trunc());
    }
    out
}

fn addr(i: u64) -> IpNet {
    let a = ((i as u32).wrapping_mul(2_654_435_761)) | 0x0100_0000;
    let a = if matches!(a >> 24, 51 | 127 | 198 | 100) { a ^ 0x0800_0000 } else { a };
    IpNet::from(IpAddr::V4(a.into()))
}

/// Banned sources the spread row sends from in turn, at most.
const SPREAD: usize = 65_536;

const PATHS: [(&str, u32); 9] = [
    ("trivial XDP_PASS program", XDP_PASS),
    ("legitimate SIP (UDP) pass", XDP_PASS),
    ("legitimate SIP (IPv6) pass", XDP_PASS),
    ("allow-listed pass", XDP_PASS),
    ("banned drop", XDP_DROP),
    ("blocked-prefix drop", XDP_DROP),
    ("blocked-prefix (IPv6) drop", XDP_DROP),
    ("rate-limited drop", XDP_DROP),
    ("banned drop, 65,536 sources in turn (single runs, minus the trivial program's)", XDP_DROP),
];
/// The row of [`SPREAD`] banned sources.
const SPREAD_PATH: usize = 8;

fn frame_of(path: usize) -> Vec<u8> {
    match path {
        0 | 1 => udp("198.51.100.1", 5060),
        2 => udp("2001:db8:5::1", 5060),
        3 => udp("51.5.6.7", 5060),
        4 => udp("198.51.200.9", 5060),
        5 => udp("100.66.1.1", 5060),
        6 => udp("2a01:db8:bad::1", 5060),
        7 => udp("198.51.100.2", 5070),
        _ => syn("198.51.100.1", 5060),
    }
}

fn setup(n: usize, object: &[u8]) -> (Harness, String) {
    let t0 = Instant::now();
    let mut rng = Rng(0x5eed_0000 + n as u64);
    let mut r = rules(BASE);
    // the core program's checks only: the SIP inspector has a section of its own
    r.sip.inspect = false;
    r.block = prefixes(n, &mut rng);
    // make the probed /24s hold entries, so their lookups go to the hash (the slow case)
    for s in ["198.51.7.0/24", "100.66.0.0/24", "100.66.1.1/32", "51.5.6.9/32", "2a01:db8:bad::/48", "2001:db8:6::/48"]
    {
        r.block.push(s.parse().unwrap());
    }
    r.block_capacity = (n as u32 * 2).max(1 << 16);
    r.bans.capacity = (n as u32 + 16).max(1024);
    let mut h = Harness::on_kernel_time(r, object);
    let bans: Vec<sipwall::datapath::bans::Ban> = (0..n as u64)
        .map(addr)
        .chain(std::iter::once("198.51.200.9/32".parse().unwrap()))
        .map(|target| sipwall::datapath::bans::Ban {
            target,
            expires_unix_ms: None,
            created_unix_ms: 0,
            reason: String::new(),
            source: "bench".into(),
        })
        .collect();
    h.enforcer.restore(bans).unwrap();
    let (e4, e6) = h.enforcer.nets().entries();
    let note = format!(
        "{} bans and {} prefixes: {e4} IPv4 and {e6} IPv6 table entries, loaded in {:.1} s; the verifier processed {} instructions",
        human(n),
        human(n),
        t0.elapsed().as_secs_f64(),
        h.verifier_work()
    );
    // the limited source spends its one token
    h.time(programs::XDP, &frame_of(7), 1);
    (h, note)
}

/// One run of each frame of `spread` (NaN without bans), each after a run of the trivial
/// program on it: the median of the differences, so that what a single run costs the harness
/// (the clock reads, the syscall's own traces in the caches) is left out. Each frame must be
/// dropped when `check`.
fn spread_ns(h: &mut Harness, spread: &[Vec<u8>], check: bool) -> f64 {
    if spread.is_empty() {
        return f64::NAN;
    }
    let ns = spread
        .iter()
        .map(|f| {
            let (_, trivial) = h.time(programs::BASELINE, f, 1);
            let (action, ns) = h.time(programs::XDP, f, 1);
            assert!(!check || action == XDP_DROP, "a banned source passed: {action}");
            ns - trivial
        })
        .collect();
    median(ns)
}

/// Runs the data-path benchmark; returns its Markdown table.
pub fn run(args: &[String], quick: bool) -> String {
    let arg = |name: &str| args.iter().position(|a| a == name).map(|i| args[i + 1].clone());
    let alts: Vec<(String, Vec<u8>)> = arg("--compare")
        .map(|list| {
            list.split(',')
                .map(|p| {
                    (
                        format!(" [{}]", std::path::Path::new(p).file_stem().unwrap().to_string_lossy()),
                        std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let repeat: u32 = if quick { 100_000 } else { 1_000_000 };
    let runs = if quick { 5 } else { 11 };
    let sizes: &[usize] = if quick { &[0, 1_000, 100_000] } else { &[0, 1_000, 100_000, 1_000_000] };
    pin_to_one_cpu();

    let objects: Vec<(&str, &[u8])> = std::iter::once(("", sipwall::BPF_OBJECT))
        .chain(alts.iter().map(|(t, a)| (t.as_str(), a.as_slice())))
        .collect();
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for (tag, _) in &objects {
        for (name, _) in PATHS {
            rows.push((format!("{name}{tag}"), Vec::new()));
        }
    }
    let mut notes = Vec::new();
    for &n in sizes {
        let mut hs = Vec::new();
        for (_, obj) in &objects {
            let (h, note) = setup(n, obj);
            hs.push(h);
            notes.push(note);
        }
        // rounds over all paths and builds, so drift on a shared machine hits them alike
        let frames: Vec<Vec<u8>> = (0..SPREAD_PATH).map(frame_of).collect();
        let spread: Vec<Vec<u8>> = (0..n.min(SPREAD) as u64).map(|i| udp(&addr(i).addr().to_string(), 5060)).collect();
        let mut samples = vec![Vec::new(); rows.len()];
        // one round to warm caches and clocks, not counted
        for h in hs.iter_mut() {
            for (i, f) in frames.iter().enumerate() {
                h.time(if i == 0 { programs::BASELINE } else { programs::XDP }, f, repeat);
            }
            for f in &spread {
                h.time(programs::XDP, f, 1);
            }
        }
        for _ in 0..runs {
            for (k, h) in hs.iter_mut().enumerate() {
                for (i, (name, want)) in PATHS.iter().enumerate() {
                    if i == SPREAD_PATH {
                        samples[k * PATHS.len() + i].push(spread_ns(h, &spread, k == 0));
                        continue;
                    }
                    let prog = if i == 0 { programs::BASELINE } else { programs::XDP };
                    let (action, ns) = h.time(prog, &frames[i], repeat);
                    assert!(k > 0 || action == *want, "{name}: wrong verdict {action}");
                    samples[k * PATHS.len() + i].push(ns);
                }
            }
        }
        for (i, s) in samples.into_iter().enumerate() {
            rows[i].1.push(median(s));
        }
        eprintln!("measured at {n} entries");
    }

    let mut md = String::new();
    md.push_str(&format!("| path (ns per packet, median of {runs} × {repeat} runs) |"));
    for n in sizes {
        md.push_str(&format!(" {} |", human(*n)));
    }
    md.push_str(&format!(" × trivial at {} |\n|---|", human(*sizes.last().unwrap())));
    for _ in sizes {
        md.push_str("---:|");
    }
    md.push_str("---:|\n");
    for (k, chunk) in rows.chunks(PATHS.len()).enumerate() {
        let base = *chunk[0].1.last().unwrap();
        for (name, vals) in chunk {
            if k > 0 && name.starts_with("trivial") {
                continue;
            }
            md.push_str(&format!("| {name} |"));
            for v in vals {
                if v.is_nan() {
                    md.push_str(" — |");
                } else {
                    md.push_str(&format!(" {v:.0} |"));
                }
            }
            md.push_str(&format!(" {:.2} |\n", vals.last().unwrap() / base.max(1.0)));
        }
    }
    md.push('\n');
    notes.dedup();
    for n in &notes {
        md.push_str(&format!("- {n}\n"));
    }
    md
}
