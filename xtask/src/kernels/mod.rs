//! The kernel-matrix tier: the kernels VoIP hosts run, booted under qemu with virtme-ng, each
//! running the `verdict` tier (BPF_PROG_TEST_RUN) and the lab's attach test (`kernel_features`:
//! `sipwall run` on veth in network namespaces) inside; the host kernel runs the same natively.
//!
//! The kernels are Debian packages, downloaded with `apt-get download` and unpacked (never
//! installed) under `target/kernels/`: Debian 12's current 6.1 (the one its `linux-image-amd64`
//! depends on) and the newest 6.12, Debian 13's series, which Debian 12 carries too. virtme-ng
//! runs the guest on this machine's root filesystem (read-only), so the test binaries, `sipwall`,
//! iproute2 and Kamailio are there as built. Under TCG (nested KVM hangs here) the guests are
//! slow: they check what loads and what the programs decide, never how fast.
//!
//! Results go to `target/kernels/tier/report.md` (the kernel × feature table, with the verifier's
//! work per program) and `target/kernels/tier/report.json`.
//! work per program) and `target/kernels/tier/report.json`.

mod debian;
mod report;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use debian::{sh, MATRIX};
pub use report::{report, write_docs};

/// One run of a tier's test binary on each kernel: its name in the report, the binary (a test
/// target of `sipwall-tests`), and the libtest arguments that pick its tests.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub name: &'static str,
    pub binary: &'static str,
    pub args: &'static [&'static str],
}

/// What runs on every kernel: the whole verdict tier, and the lab tier's attach test.
pub const TESTS: [Run; 2] = [
    Run { name: "verdict", binary: "verdict", args: &[] },
    Run { name: "kernel_features", binary: "lab", args: &["kernel_features::"] },
];
/// The test that reports the verifier's work (`verifier.json`), alone for the benchmark.
pub const VERIFIER_TEST: Run = Run {
    name: "verifier",
    binary: "verdict",
    args: &["--exact", "parse::the_verifier_accepts_every_program_with_room_to_spare"],
};

/// A run with the executable cargo built for its binary.
pub struct Job {
    pub run: Run,
    pub exe: PathBuf,
}

/// Longest a guest may run before it is stopped and its kernel counted as failed: about twice
/// the longest seen on a loaded two-core machine (19 minutes for 6.1 under TCG), so that only a
/// hung guest reaches it.
const GUEST_LIMIT: Duration = Duration::from_secs(40 * 60);
/// Where `scripts/setup --test` installs virtme-ng.
const VNG: &str = "/opt/vng/bin/vng";

/// The test executables `cargo test --no-run` built for `runs`.
pub fn executables(mut cargo: Command, runs: &[Run]) -> Result<Vec<Job>, String> {
    cargo.args(["test", "--no-run", "--message-format=json", "--package", "sipwall-tests"]);
    for r in runs {
        cargo.args(["--test", r.binary]);
    }
    let out = sh(cargo.stderr(Stdio::inherit()))?;
    let mut built = BTreeMap::new();
    for line in out.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let (Some(name), Some(exe)) = (v["target"]["name"].as_str(), v["executable"].as_str()) else { continue };
        built.insert(name.to_owned(), PathBuf::from(exe));
    }
    runs.iter()
        .map(|&run| {
            let exe = built.get(run.binary).cloned();
            exe.map(|exe| Job { run, exe }).ok_or_else(|| format!("cargo built no test binary `{}`", run.binary))
        })
        .collect()
}

/// The script a guest (or the host) runs: every run, its output and exit status written to
/// `out`.
fn script(jobs: &[Job], sipwall: &Path, out: &Path) -> String {
    let mut s = format!(
        "#!/bin/bash\n# written by `cargo xtask test --kernels`\nout={out}\nmkdir -p \"$out\"\n\
         uname -r > \"$out/release\"\n\
         mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf\n\
         export CI=true RUST_BACKTRACE=1 SIPWALL_BIN={bin} SIPWALL_REPORT_DIR=\"$out\"\n",
        out = out.display(),
        bin = sipwall.display()
    );
    for Job { run, exe } in jobs {
        s.push_str(&format!(
            "start=$(date +%s)\n{exe} --test-threads=2 {args} > \"$out/{name}.log\" 2>&1\n\
             echo \"{name} $? $(( $(date +%s) - start ))\" >> \"$out/status\"\n",
            exe = exe.display(),
            args = run.args.join(" "),
            name = run.name,
        ));
    }
    s.push_str("touch \"$out/finished\"\n");
    s
}

/// One kernel's outcome.
pub struct Outcome {
    pub column: String,
    pub release: String,
    /// Per test target: passed, failed, seconds.
    pub tests: BTreeMap<String, (u32, u32, u64)>,
    pub failed: Vec<String>,
    pub verifier: BTreeMap<String, u64>,
    pub features: BTreeMap<String, u64>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// "test result: ok. 9 passed; 0 failed; ..." → (9, 0).
fn counts(log: &str) -> (u32, u32) {
    let Some(line) = log.lines().rev().find(|l| l.starts_with("test result:")) else { return (0, 0) };
    let num = |word: &str| {
        line.split(';')
            .find(|p| p.trim_end().ends_with(word))
            .and_then(|p| p.split_whitespace().rev().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (num("passed"), num("failed"))
}

fn collect(column: &str, out: &Path, jobs: &[Job]) -> Outcome {
    let read = |f: &str| fs::read_to_string(out.join(f)).unwrap_or_default();
    let mut o = Outcome {
        column: column.to_owned(),
        release: read("release").trim().to_owned(),
        tests: BTreeMap::new(),
        failed: Vec::new(),
        verifier: BTreeMap::new(),
        features: BTreeMap::new(),
    };
    if !out.join("finished").exists() {
        o.failed.push("the run did not finish (see console.log)".to_owned());
    }
    for line in read("status").lines() {
        let mut f = line.split_whitespace();
        let (Some(name), Some(code), Some(secs)) = (f.next(), f.next(), f.next()) else { continue };
        let (passed, failed) = counts(&read(&format!("{name}.log")));
        o.tests.insert(name.to_owned(), (passed, failed, secs.parse().unwrap_or(0)));
        if code != "0" {
            o.failed.push(format!("{name} (exit {code}, {failed} failed; see {}/{name}.log)", out.display()));
        }
    }
    for j in jobs {
        if !o.tests.contains_key(j.run.name) && out.join("finished").exists() {
            o.failed.push(format!("{} did not run", j.run.name));
        }
    }
    let json = |f: &str, key: &str| -> BTreeMap<String, u64> {
        serde_json::from_str::<Value>(&read(f))
            .ok()
            .and_then(|v| v[key].as_object().cloned())
            .map(|m| m.into_iter().filter_map(|(k, v)| Some((k, v.as_u64()?))).collect())
            .unwrap_or_default()
    };
    o.verifier = json("verifier.json", "verifier_instructions");
    o.features = json("features.json", "features");
    o
}

/// Runs the tests in a guest booted from `vmlinuz`; output in `out`.
fn run_guest(vmlinuz: &Path, script_path: &Path, out: &Path) -> Result<(), String> {
    let console = fs::File::create(out.join("console.log")).map_err(|e| e.to_string())?;
    let mut vm = Command::new(VNG);
    vm.arg("-r")
        .arg(vmlinuz)
        .args(["--user", "root", "--memory", "3G", "--cpus", "2", "--disable-kvm", "--rwdir"])
        .arg(out)
        .arg("--")
        .arg(format!("bash {}", script_path.display()))
        .env("PATH", format!("/opt/vng/bin:{}", std::env::var("PATH").unwrap_or_default()))
        .stdin(Stdio::null())
        .stdout(console.try_clone().map_err(|e| e.to_string())?)
        .stderr(console);
    let mut child = vm.spawn().map_err(|e| format!("cannot start {VNG} (scripts/setup --test installs it): {e}"))?;
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().map_err(|e| e.to_string())? {
            // vng's own exit status is the guest's power-off, not the tests': those are in `out`
            return Ok(());
        }
        if started.elapsed() > GUEST_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the guest ran past {} minutes and was stopped", GUEST_LIMIT.as_secs() / 60));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `jobs` on every kernel of the matrix in a guest, and on the host natively. The kernels
/// are kept in `kernels/packages/` of the target directory `target`, the outputs go to
/// `kernels/RUN/`.
pub fn run(jobs: &[Job], sipwall: &Path, target: &Path, run: &str) -> Vec<Outcome> {
    let base = target.join("kernels").join(run);
    let mut outcomes = Vec::new();
    // the host first: it fails fastest
    let out = base.join("host").join("out");
    let _ = fs::remove_dir_all(&out);
    let host_script = base.join("host").join("run.sh");
    let written = fs::create_dir_all(&out).and_then(|()| fs::write(&host_script, script(jobs, sipwall, &out)));
    match written {
        Ok(()) => {
            eprintln!("==> kernel tier: the host kernel, natively");
            let _ = Command::new("bash").arg(&host_script).status();
            outcomes.push(collect("this machine", &out, jobs));
        }
        Err(e) => outcomes.push(failed("this machine", format!("writing {}: {e}", host_script.display()))),
    }
    for k in &MATRIX {
        let dir = base.join(k.series);
        let started = Instant::now();
        let outcome = k.fetch(&target.join("kernels/packages").join(k.series)).and_then(|vmlinuz| {
            let out = dir.join("out");
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let script_path = dir.join("run.sh");
            fs::write(&script_path, script(jobs, sipwall, &out)).map_err(|e| e.to_string())?;
            eprintln!("==> kernel tier: {} ({}) in a guest, under TCG", k.series, vmlinuz.display());
            run_guest(&vmlinuz, &script_path, &out)?;
            if !out.join("release").exists() {
                // the script's first line never ran: the guest did not come up (seen once, a
                // guest that ended after 11 s with nothing written), which says nothing of
                // the tests; one more boot, and a second such end fails the kernel
                eprintln!("==> kernel tier: {}: the guest ended before its script started; booting it again", k.series);
                run_guest(&vmlinuz, &script_path, &out)?;
            }
            Ok(collect(k.series, &out, jobs))
        });
        let mut o = outcome.unwrap_or_else(|e| failed(k.series, e));
        eprintln!("==> kernel tier: {} done in {} s", k.series, started.elapsed().as_secs());
        o.column = format!("{}, Linux {}", k.distribution, k.series);
        outcomes.push(o);
    }
    outcomes
}

fn failed(column: &str, why: String) -> Outcome {
    Outcome {
        column: column.to_owned(),
        release: String::new(),
        tests: BTreeMap::new(),
        failed: vec![why],
        verifier: BTreeMap::new(),
        features: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_counts_are_read_from_the_summary_line() {
        let log = "running 3 tests\ntest a ... ok\n\ntest result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s\n";
        assert_eq!(counts(log), (2, 1));
        assert_eq!(counts("no summary"), (0, 0));
    }

    #[test]
    fn each_run_gets_its_binary_and_its_filters() {
        let jobs: Vec<Job> =
            TESTS.iter().map(|&run| Job { run, exe: PathBuf::from(format!("/t/{}-1", run.binary)) }).collect();
        let s = script(&jobs, Path::new("/t/sipwall"), Path::new("/o"));
        assert!(s.contains("\n/t/verdict-1 --test-threads=2  > \"$out/verdict.log\""), "{s}");
        assert!(s.contains("\n/t/lab-1 --test-threads=2 kernel_features:: > \"$out/kernel_features.log\""), "{s}");
        assert!(s.contains("echo \"kernel_features $? "), "{s}");
    }
}
