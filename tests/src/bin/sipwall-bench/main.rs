//! `cargo xtask bench`: the data path (ns per packet), the SIP inspector (ns per packet with
//! inspection on and off), detection (lines per second against fail2ban-regex, log line to
//! dropped packets), the ban tables (loading 1,000,000 bans, daemon memory), ban storms from the
//! kernel, a soak under a flood of forged sources, sipwall against netfilter's filters under a
//! flood from an in-kernel generator, the SIP inspector under the same generator's flood of
//! forged sources, and the verifier's work on each kernel of the matrix.
//! Prints Markdown (and writes it with `--out FILE`).
//!
//!     sipwall-bench [--quick] [--only datapath,sip,detect,latency,load,storm,soak,netfilter,sipflood,kernels] [--out FILE] [--compare OBJ,…] [--sizes N,…]
//!
//! `--sizes` gives the netfilter section's numbers of bans (default 10, 10k, 100k and 1M;
//! `--quick`: 10 and 1k).

mod contenders;
mod datapath;
mod detect;
mod kernels;
mod latency;
mod load;
mod netfilter;
mod receiver;
mod sip;
mod sipflood;
mod soak;
mod storm;
mod trafficgen;
mod util;

const SECTIONS: [&str; 10] =
    ["datapath", "sip", "detect", "latency", "load", "storm", "soak", "netfilter", "sipflood", "kernels"];

fn main() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "the benchmark loads XDP programs: run it as root");
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).map(|i| args[i + 1].clone());
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<String> = arg("--only").map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default();
    for o in &only {
        assert!(SECTIONS.contains(&o.as_str()), "--only takes {}", SECTIONS.join(","));
    }
    let wanted = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    let mut md = String::new();
    if wanted("datapath") {
        md.push_str("### Data path\n\n");
        md.push_str(&datapath::run(&args, quick));
    }
    if wanted("sip") {
        md.push_str("\n### SIP inspection\n\n");
        md.push_str(&sip::run(&args, quick));
    }
    if wanted("detect") {
        md.push_str("\n### Detection throughput\n\n");
        md.push_str(&detect::run(quick));
    }
    if wanted("latency") {
        md.push_str("\n### Log line to dropped packets\n\n");
        md.push_str(&latency::run(quick));
    }
    if wanted("load") {
        md.push_str("\n### Loading bans, daemon memory\n\n");
        md.push_str(&load::run(quick));
    }
    if wanted("storm") {
        md.push_str("\n### Ban storms from the kernel\n\n");
        md.push_str(&storm::run(quick));
    }
    if wanted("soak") {
        md.push_str("\n### Soak under a flood of forged sources\n\n");
        md.push_str(&soak::run(quick));
    }
    if wanted("netfilter") {
        md.push_str("\n### Side by side with netfilter\n\n");
        let sizes: Option<Vec<usize>> = arg("--sizes").map(|s| {
            s.split(',').map(|n| n.parse().unwrap_or_else(|_| panic!("--sizes takes numbers of bans: {n}"))).collect()
        });
        md.push_str(&netfilter::run(quick, sizes.as_deref()));
    }
    if wanted("sipflood") {
        md.push_str("\n### The SIP inspector under a flood of forged sources\n\n");
        md.push_str(&sipflood::run(quick));
    }
    if wanted("kernels") {
        md.push_str("\n### Verifier work per kernel\n\n");
        md.push_str(&kernels::run());
    }
    print!("{md}");
    if let Some(path) = arg("--out") {
        std::fs::write(&path, &md).unwrap_or_else(|e| panic!("{path}: {e}"));
        eprintln!("written to {path}");
    }
}
