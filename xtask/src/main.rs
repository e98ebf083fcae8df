//! `cargo xtask <task>`: the project's development tasks.
//!
//! - `test`  formatting, lints, then every test tier: unit tests, verdict tests through
//!   BPF_PROG_TEST_RUN and attach tests in network namespaces (the last two need root; under
//!   `CI=true` a missing privilege fails instead of skipping).
//! - `bench [--quick] [--out FILE] [--compare OBJECT,…]`  the data-path benchmark
//!   (see docs/benchmarks.md); needs root.
//! - `build`  a release `sipwall` with the XDP program embedded.

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

fn test(args: &[String]) {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt);
    let mut clippy = cargo();
    clippy.args(["clippy", "--all-targets", "--", "-D", "warnings"]);
    run("cargo clippy", clippy);
    let mut build = cargo();
    build.args(["build", "--package", "firewall-user", "--bin", "sipwall"]);
    run("build sipwall", build);
    if !is_root() {
        let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false);
        eprintln!(
            "==> not root: the BPF_PROG_TEST_RUN and network-namespace tests will {}",
            if ci { "FAIL (CI is set)" } else { "be skipped, loudly" }
        );
    }
    let mut t = cargo();
    t.args(["test", "--all-targets"]).args(args).env("SIPWALL_BIN", root().join("target/debug/sipwall"));
    run("tests (unit, verdict, attach)", t);
    let mut doc = cargo();
    doc.args(["test", "--doc"]);
    run("doc tests", doc);
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
    run("benchmark", b);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("build") => {
            let mut b = cargo();
            b.args(["build", "--release", "--package", "firewall-user", "--bin", "sipwall"]);
            run("release build", b);
            eprintln!("==> {}", root().join("target/release/sipwall").display());
        }
        _ => {
            eprintln!(
                "usage: cargo xtask test [CARGO TEST ARGS] | bench [--quick] [--out FILE] [--compare OBJECT,…] | build"
            );
            exit(2);
        }
    }
}
