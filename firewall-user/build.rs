//! Builds the XDP program (`firewall-ebpf`) and leaves the object in `OUT_DIR/sipwall.bpf.o`
//! for `include_bytes!`, and beside it the benchmark's traffic generator, the eBPF crate's
//! second binary, in `OUT_DIR/trafficgen.bpf.o` (the daemon never loads it).
//!
//! The eBPF crate is compiled by Debian's `rustc-web` (which ships a prebuilt `core` for
//! `bpfel-unknown-none`) and linked by `bpf-linker`; see docs/building.md. The nested cargo gets
//! its own target directory so the two compilers never share artifacts.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const BPF_TARGET: &str = "bpfel-unknown-none";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for p in ["firewall-ebpf/src", "firewall-ebpf/Cargo.toml", "firewall-common/src", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=SIPWALL_BPF_RUSTC");
    println!("cargo:rerun-if-env-changed=SIPWALL_BPF_OBJECT");

    let dst = out.join("sipwall.bpf.o");
    let trafficgen = out.join("trafficgen.bpf.o");
    // A prebuilt object (for packaging, or hosts without the eBPF toolchain). It comes without
    // the traffic generator: an empty file stands in, and the benchmark that needs it says so.
    if let Some(prebuilt) = env::var_os("SIPWALL_BPF_OBJECT") {
        std::fs::copy(&prebuilt, &dst).unwrap_or_else(|e| panic!("copying SIPWALL_BPF_OBJECT={prebuilt:?}: {e}"));
        std::fs::write(&trafficgen, b"").unwrap_or_else(|e| panic!("writing {trafficgen:?}: {e}"));
        return;
    }

    let rustc = env::var_os("SIPWALL_BPF_RUSTC").unwrap_or_else(|| "/usr/bin/rustc".into());
    if !Path::new(&rustc).exists() {
        panic!(
            "the eBPF compiler {rustc:?} is missing: run scripts/setup (installs Debian's \
             rustc-web and libstd-rust-web-dev-bpf) or set SIPWALL_BPF_RUSTC"
        );
    }
    let target_dir = root.join("target").join("bpf");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--package", "firewall-ebpf", "--bins", "--target"])
        .arg(BPF_TARGET)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC", &rustc)
        // aya-ebpf uses #![feature] gates; rustc-web is a stable-channel compiler.
        .env("RUSTC_BOOTSTRAP", "1")
        // BPF ISA v3 (Linux 5.1+: 32-bit jumps and ALU) and unaligned loads (packet and map
        // reads on x86-64 and arm64 may be unaligned) make the per-packet code shorter.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            [
                "--cfg=bpf_target_arch=\"x86_64\"",
                "-Cdebuginfo=2",
                "-Clink-arg=--btf",
                "-Ctarget-cpu=v3",
                "-Ctarget-feature=+allows-misaligned-mem-access",
            ]
            .join("\x1f"),
        );
    for key in ["RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(key);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    if !status.success() {
        panic!(
            "building the XDP program failed ({status}). Needs Debian's rustc-web, \
             libstd-rust-web-dev-bpf and bpf-linker on PATH: run scripts/setup"
        );
    }
    for (bin, dst) in [("sipwall", &dst), ("sipwall-trafficgen", &trafficgen)] {
        let built = target_dir.join(BPF_TARGET).join("release").join(bin);
        std::fs::copy(&built, dst).unwrap_or_else(|e| panic!("copying {built:?}: {e}"));
    }
}
