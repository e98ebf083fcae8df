//! The fuzz smoke run: every cargo-fuzz target of `fuzz/` for a bounded number of executions
//! from its seed corpus; a crash, a broken invariant or a timeout fails (docs/fuzzing.md).
//!
//! cargo-fuzz wants a nightly compiler: `cargo +nightly fuzz` when rustup has one, otherwise
//! the default toolchain with `RUSTC_BOOTSTRAP=1`. One build without a sanitizer serves every
//! target (a second, AddressSanitizer build would double the step's time); it lives in
//! `target/fuzz`, so a cached `target/` keeps it, and it embeds the XDP object the main build
//! left in `target/bpf` instead of building it again.

use std::{
    path::Path,
    process::{exit, Command},
};

use crate::{ci, is_root, root, run};

/// (target, executions, libFuzzer options): the executions include the seeds, replayed first.
const TARGETS: [(&str, u32, &[&str]); 5] = [
    ("rules", 30_000, &["-max_len=4096", "-dict=fuzz/rules.dict"]),
    ("detectors", 30_000, &["-max_len=512", "-dict=fuzz/detectors.dict"]),
    ("sip_classifier", 200_000, &["-max_len=2048"]),
    ("control", 200_000, &["-max_len=2048"]),
    ("frames", 100_000, &["-max_len=1524", "-dict=fuzz/frames.dict"]),
];

/// Seconds a target may run before libFuzzer stops it, whatever its executions.
const MAX_SECONDS: u32 = 20;

fn has_nightly() -> bool {
    Command::new("rustup").args(["run", "nightly", "rustc", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// `cargo fuzz`, on nightly or with `RUSTC_BOOTSTRAP=1`.
fn cargo_fuzz(nightly: bool) -> Command {
    // the rustup proxy, not $CARGO: only the proxy takes `+nightly`
    let mut c = Command::new("cargo");
    c.current_dir(root());
    if nightly {
        c.arg("+nightly");
    } else {
        c.env("RUSTC_BOOTSTRAP", "1");
    }
    c.arg("fuzz");
    let target = root().join("target");
    c.env("CARGO_TARGET_DIR", target.join("fuzz"));
    let object = target.join("bpf/bpfel-unknown-none/release/sipwall");
    if object.exists() {
        c.env("SIPWALL_BPF_OBJECT", object);
    }
    c
}

pub fn smoke() {
    let has_cargo_fuzz = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_cargo_fuzz {
        eprintln!("==> cargo-fuzz is missing: scripts/setup --test installs it");
        exit(1);
    }
    let nightly = has_nightly();
    if !nightly {
        eprintln!("==> no nightly toolchain: fuzzing with the default one and RUSTC_BOOTSTRAP=1");
    }
    let mut build = cargo_fuzz(nightly);
    build.args(["build", "-s", "none"]);
    run("build the fuzz targets", build);
    let frames = is_root();
    if !frames {
        if ci() {
            eprintln!("==> the frames target loads the XDP program: it needs root, and CI is set");
            exit(1);
        }
        eprintln!("\n*** SKIPPED the frames fuzz target: it needs root. ***\n");
    }
    let scratch = root().join("target/fuzz/smoke");
    for (target, runs, options) in TARGETS {
        if target == "frames" && !frames {
            continue;
        }
        // new inputs go to a fresh directory; the seeds in fuzz/corpus stay as they are
        let corpus = scratch.join(target);
        let _ = std::fs::remove_dir_all(&corpus);
        std::fs::create_dir_all(&corpus).unwrap_or_else(|e| panic!("{}: {e}", corpus.display()));
        let mut r = cargo_fuzz(nightly);
        r.args(["run", "-s", "none", target]).arg(&corpus).arg(Path::new("fuzz/corpus").join(target)).arg("--");
        r.args([format!("-runs={runs}"), format!("-max_total_time={MAX_SECONDS}"), "-seed=1".into()]);
        r.args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]).args(options);
        run(&format!("fuzz {target} ({runs} executions at most)"), r);
    }
}
