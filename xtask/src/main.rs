//! `cargo xtask <task>`: the project's development tasks.
//!
//! - `test [--kernels | --no-kernels] [--write-docs] [CARGO TEST ARGS]`  formatting, lints, then
//!   every test tier: unit tests, verdict tests through BPF_PROG_TEST_RUN and attach tests in
//!   network namespaces, and the kernel-matrix tier, which runs the verdict and attach tests on
//!   Debian's 6.1 and 6.12 in virtual machines (see `kernels`). `--kernels` runs the kernel tier
//!   alone, `--no-kernels` everything else; `--write-docs` puts the tier's table in
//!   docs/building.md. The privileged tiers need root; under `CI=true` a missing privilege fails
//!   instead of skipping. The host tiers end with the fuzz smoke run (`fuzz`).
//! - `fuzz-smoke`  that run alone: every fuzz target for a bounded number of executions.
//! - `bench [--quick] [--only SECTIONS] [--out FILE] [--compare OBJECT,…] [--sizes N,…]`  the data-path benchmark
//!   (see docs/benchmarks.md); needs root.
//! - `build`  a release `sipwall` with the XDP program embedded.
//! - `deb [--binary PATH]`  the Debian package (see `deb`), of a release build unless a binary
//!   is given.

mod deb;
mod fuzz;
mod kernels;

use std::{
    path::{Path, PathBuf},
    process::{exit, Command},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(what: &str, mut cmd: Command) {
    eprintln!("==> {what}");
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    if !status.success() {
        eprintln!("==> {what} failed ({status})");
        exit(status.code().unwrap_or(1));
    }
}

fn is_root() -> bool {
    // `id -u` keeps xtask free of dependencies.
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

fn ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false)
}

fn test(args: &[String]) {
    let flag = |f: &str| args.iter().any(|a| a == f);
    let (kernels_only, kernels, write_docs) = (flag("--kernels"), !flag("--no-kernels"), flag("--write-docs"));
    let args: Vec<&String> =
        args.iter().filter(|a| !["--kernels", "--no-kernels", "--write-docs"].contains(&a.as_str())).collect();
    if !kernels_only {
        host_tiers(&args);
    }
    if kernels {
        kernel_tier(write_docs);
    }
}

/// The host's test steps, cheapest first: the unit tests, then the integration tiers of
/// `sipwall-tests` (tests/tests/TIER/).
const TIERS: [(&str, &[&str]); 4] = [
    ("unit tests", &["--lib", "--bins"]),
    ("offline tier: the command line, fail2ban's sample logs", &["--package", "sipwall-tests", "--test", "offline"]),
    ("verdict tier: the programs through BPF_PROG_TEST_RUN", &["--package", "sipwall-tests", "--test", "verdict"]),
    ("lab tier: `sipwall run` in network namespaces with real peers", &["--package", "sipwall-tests", "--test", "lab"]),
];

fn host_tiers(args: &[&String]) {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt);
    let mut clippy = cargo();
    clippy.args(["clippy", "--all-targets", "--", "-D", "warnings"]);
    run("cargo clippy", clippy);
    // the eBPF crate, checked for the host: lints are about the source, and the BPF target has
    // no clippy; a program has no unwinding
    let mut clippy_ebpf = cargo();
    clippy_ebpf.args(["clippy", "--package", "firewall-ebpf", "--", "-C", "panic=abort", "-D", "warnings"]);
    run("cargo clippy (eBPF crate)", clippy_ebpf);
    let mut build = cargo();
    build.args(["build", "--package", "firewall-user", "--bin", "sipwall"]);
    run("build sipwall", build);
    if !is_root() {
        eprintln!(
            "==> not root: the BPF_PROG_TEST_RUN and network-namespace tests will {}",
            if ci() { "FAIL (CI is set)" } else { "be skipped, loudly" }
        );
    }
    // the lab tier installs the package of this build, removes it, and runs its unit's command line
    let package = deb::build(&root().join("target/debug/sipwall"), deb::Compression::Fast);
    for (what, targets) in TIERS {
        let mut t = cargo();
        t.arg("test").args(targets).args(args).env("SIPWALL_BIN", root().join("target/debug/sipwall"));
        t.env("SIPWALL_DEB", &package);
        run(what, t);
    }
    let mut doc = cargo();
    doc.args(["test", "--doc"]);
    run("doc tests", doc);
    fuzz::smoke();
}

/// The kernel-matrix tier; writes target/kernels/tier/report.{md,json} (with `write_docs`, the
/// table into docs/building.md too) and fails if any kernel failed.
fn kernel_tier(write_docs: bool) {
    if !is_root() {
        if ci() {
            eprintln!("==> the kernel tier needs root (it runs privileged tests in its guests), and CI is set");
            exit(1);
        }
        eprintln!(
            "\n*** SKIPPED the kernel tier: it needs root. Run as root, or set CI=true to make this a failure. ***\n"
        );
        return;
    }
    let mut build = cargo();
    build.args(["build", "--package", "firewall-user", "--bin", "sipwall"]);
    run("build sipwall for the kernel tier", build);
    let jobs = kernels::executables(cargo(), &kernels::TESTS).unwrap_or_else(|e| {
        eprintln!("==> building the kernel tier's tests failed: {e}");
        exit(1);
    });
    let target = root().join("target");
    let outcomes = kernels::run(&jobs, &target.join("debug/sipwall"), &target, "tier");
    let (md, json) = kernels::report(&outcomes);
    let dir = target.join("kernels/tier");
    let _ = std::fs::write(dir.join("report.md"), &md);
    let _ = std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&json).unwrap_or_default());
    eprintln!("\n{md}\n(in {})", dir.join("report.md").display());
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    for o in &failed {
        for f in &o.failed {
            eprintln!("==> kernel {}: {f}", o.column);
        }
    }
    if !failed.is_empty() {
        eprintln!("==> kernel tier failed");
        exit(1);
    }
    if write_docs {
        let doc = root().join("docs/building.md");
        let date = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().map(|o| o.stdout).unwrap_or_default();
        let table =
            format!("{md}\nMeasured on {} by `cargo xtask test --kernels`.\n", String::from_utf8_lossy(&date).trim());
        match kernels::write_docs(&doc, &table) {
            Ok(()) => eprintln!("==> the table is in {}", doc.display()),
            Err(e) => {
                eprintln!("==> {e}");
                exit(1);
            }
        }
    }
}

fn bench(args: &[String]) {
    if !is_root() {
        eprintln!("the benchmark loads XDP programs: run it as root");
        exit(1);
    }
    let mut build = cargo();
    build.args(["build", "--release", "--package", "sipwall-tests", "--bin", "sipwall-bench"]);
    build.args(["--package", "firewall-user", "--bin", "sipwall"]);
    run("build the benchmark and sipwall", build);
    let mut b = Command::new(root().join("target/release/sipwall-bench"));
    b.args(args).env("SIPWALL_BIN", root().join("target/release/sipwall"));
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
    if only.is_none_or(|o| o.split(',').any(|s| s == "kernels")) {
        b.env("SIPWALL_KERNEL_REPORT", verifier_per_kernel());
    }
    run("benchmark", b);
}

/// The verifier's work for each program on each kernel of the matrix (the kernel tier's
/// verifier test alone); returns the report's path.
fn verifier_per_kernel() -> PathBuf {
    let jobs = kernels::executables(cargo(), &[kernels::VERIFIER_TEST]).unwrap_or_else(|e| {
        eprintln!("==> building the verifier test failed: {e}");
        exit(1);
    });
    let mut build = cargo();
    build.args(["build", "--package", "firewall-user", "--bin", "sipwall"]);
    run("build sipwall for the kernel tier", build);
    let target = root().join("target");
    let outcomes = kernels::run(&jobs, &target.join("debug/sipwall"), &target, "verifier");
    if let Some(o) = outcomes.iter().find(|o| !o.ok()) {
        eprintln!("==> the verifier test failed on {}: {:?}", o.column, o.failed);
        exit(1);
    }
    let (_, json) = kernels::report(&outcomes);
    let path = target.join("kernels/verifier/report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("fuzz-smoke") => fuzz::smoke(),
        Some("deb") => deb::deb(&args[1..]),
        Some("build") => {
            let mut b = cargo();
            b.args(["build", "--release", "--package", "firewall-user", "--bin", "sipwall"]);
            run("release build", b);
            eprintln!("==> {}", root().join("target/release/sipwall").display());
        }
        _ => {
            eprintln!(
                "usage: cargo xtask test [--kernels | --no-kernels] [CARGO TEST ARGS] | fuzz-smoke | bench [--quick] [--only SECTIONS] [--out FILE] [--compare OBJECT,…] [--sizes N,…] | build | deb [--binary PATH]"
            );
            exit(2);
        }
    }
}
