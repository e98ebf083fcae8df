//! The kernel-matrix tier: the kernels VoIP hosts run, booted under qemu with virtme-ng, each
//! running the verdict tests (BPF_PROG_TEST_RUN) and the attach test (`kernel_features`: `sipwall
//! run` on veth in network namespaces) inside; the host kernel runs the same tests natively.
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

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

/// A kernel of the matrix, found by asking apt.
pub struct Kernel {
    /// Short name: the column of the report and the directory under `target/kernels/`.
    pub series: &'static str,
    /// Who runs it.
    pub distribution: &'static str,
    query: Query,
}

enum Query {
    /// The unsigned image behind what this metapackage depends on.
    DependencyOf(&'static str),
    /// The newest unsigned image whose name starts with the prefix and ends with the suffix.
    Newest(&'static str, &'static str),
}

pub const MATRIX: [Kernel; 2] = [
    Kernel { series: "6.1", distribution: "Debian 12", query: Query::DependencyOf("linux-image-amd64") },
    Kernel {
        series: "6.12",
        distribution: "Debian 13 (and Debian 12 backports)",
        query: Query::Newest("linux-image-6.12.", "-amd64-unsigned"),
    },
];

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

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compares Debian version-ish strings number by number (6.12.9 < 6.12.10).
fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(|p| p.parse().unwrap_or(0)).collect()
}

impl Kernel {
    /// The package name of this kernel's unsigned image, as apt knows it now.
    fn package(&self) -> Result<String, String> {
        let found = match &self.query {
            Query::DependencyOf(meta) => {
                let deps = sh(Command::new("apt-cache").args(["depends", meta]))?;
                deps.lines()
                    .filter_map(|l| l.trim().strip_prefix("Depends: "))
                    .find(|p| p.starts_with("linux-image-") && !p.ends_with("-unsigned"))
                    .map(|p| format!("{p}-unsigned"))
            }
            Query::Newest(prefix, suffix) => {
                let names = sh(Command::new("apt-cache").args(["pkgnames", prefix]))?;
                names
                    .lines()
                    .filter(|n| n.ends_with(suffix) && !n.contains("-rt-") && !n.contains("-cloud-"))
                    .max_by_key(|n| version_key(n))
                    .map(str::to_owned)
            }
        };
        found.ok_or_else(|| format!("apt knows no {} kernel package (run apt-get update)", self.series))
    }

    /// Downloads and unpacks the kernel under `dir` unless it is there; returns its vmlinuz.
    pub fn fetch(&self, dir: &Path) -> Result<PathBuf, String> {
        let mut package = self.package();
        if package.is_err() {
            sh(Command::new("apt-get").args(["update", "-qq"]))?;
            package = self.package();
        }
        let package = package?;
        let root = dir.join(&package);
        if vmlinuz(&root).is_none() {
            eprintln!("==> kernel {}: downloading {package}", self.series);
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for old in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
                if old.file_name().to_string_lossy().ends_with(".deb") {
                    let _ = fs::remove_file(old.path());
                }
            }
            sh(Command::new("apt-get").args(["download", "-qq", &package]).current_dir(dir))?;
            let deb = fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "deb"))
                .ok_or_else(|| format!("apt-get download {package} left no .deb in {}", dir.display()))?;
            let _ = fs::remove_dir_all(&root);
            sh(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
            let _ = fs::remove_file(&deb);
            // an older build of this series is not needed any more
            for old in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
                if old.path() != root && old.path().is_dir() {
                    let _ = fs::remove_dir_all(old.path());
                }
            }
        }
        vmlinuz(&root).ok_or_else(|| format!("{package} has no boot/vmlinuz-*"))
    }
}

fn vmlinuz(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root.join("boot"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
}

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

/// The report: the kernel × feature table and the verifier's work.
pub fn report(outcomes: &[Outcome]) -> (String, Value) {
    let header = |f: &dyn Fn(&Outcome) -> String| outcomes.iter().map(f).collect::<Vec<_>>().join(" | ");
    let mut md = String::new();
    md.push_str(&format!("| | {} |\n", header(&|o| format!("{} (`{}`)", o.column, o.release))));
    md.push_str(&format!("|---|{}\n", "---|".repeat(outcomes.len())));
    let verdict_tests = |o: &Outcome| {
        let (p, f) = TESTS.iter().filter(|t| t.binary == "verdict").fold((0, 0), |(p, f), t| {
            let (tp, tf, _) = o.tests.get(t.name).copied().unwrap_or_default();
            (p + tp, f + tf)
        });
        if f == 0 && p > 0 {
            format!("{p} passed")
        } else {
            format!("**{p} passed, {f} failed**")
        }
    };
    let feature = |o: &Outcome, name: &str| match o.features.get(name) {
        Some(1) => "yes".to_owned(),
        Some(_) => "**no**".to_owned(),
        None => "?".to_owned(),
    };
    let attach = |o: &Outcome| match o.tests.get("kernel_features") {
        Some((_, 0, _)) if !o.failed.iter().any(|f| f.starts_with("kernel_features")) => "passed".to_owned(),
        Some(_) => "**failed**".to_owned(),
        None => "?".to_owned(),
    };
    md.push_str(&format!("| verdict tests (BPF_PROG_TEST_RUN) | {} |\n", header(&verdict_tests)));
    md.push_str(&format!(
        "| attach test: `sipwall run` on veth, scanner dropped, ban, egress 403s, SIGKILL and restart | {} |\n",
        header(&attach)
    ));
    md.push_str(&format!(
        "| SIP inspector (`sipwall_sip`, `sipwall_sip_full`) | {} |\n",
        header(&|o| feature(o, "sip_inspector"))
    ));
    md.push_str(&format!(
        "| egress classifier (`sipwall_egress`) | {} |\n",
        header(&|o| feature(o, "egress_classifier"))
    ));
    md.push_str(&format!(
        "| egress hook | {} |\n",
        header(&|o| match o.features.get("tcx") {
            Some(1) => "TCX".to_owned(),
            Some(_) => "clsact qdisc".to_owned(),
            None => "?".to_owned(),
        })
    ));
    let programs: Vec<String> = {
        let mut p: Vec<String> = outcomes.iter().flat_map(|o| o.verifier.keys().cloned()).collect();
        p.sort();
        p.dedup();
        p
    };
    for p in &programs {
        md.push_str(&format!(
            "| verifier: instructions processed for `{p}` | {} |\n",
            header(&|o| o.verifier.get(p).map(|n| group(*n)).unwrap_or_else(|| "?".to_owned()))
        ));
    }
    let json = json!(outcomes
        .iter()
        .map(|o| json!({
            "kernel": o.column,
            "release": o.release,
            "tests": o.tests.iter().map(|(k, (p, f, s))| (k.clone(), json!({"passed": p, "failed": f, "seconds": s}))).collect::<serde_json::Map<_, _>>(),
            "failed": o.failed,
            "verifier_instructions": o.verifier,
            "features": o.features,
        }))
        .collect::<Vec<_>>());
    (md, json)
}

/// Puts `table` between the kernel-matrix markers of the document at `path`.
pub fn write_docs(path: &Path, table: &str) -> Result<(), String> {
    const BEGIN: &str = "<!-- kernel-matrix:begin -->\n";
    const END: &str = "<!-- kernel-matrix:end -->";
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("{} has no {BEGIN:?} … {END:?} markers", path.display()));
    };
    let out = format!("{}{table}{}", &text[..b + BEGIN.len()], &text[e..]);
    fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// 123456 → "123,456".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

    #[test]
    fn kernel_versions_sort_by_number() {
        let mut v = ["linux-image-6.12.9+deb12-amd64-unsigned", "linux-image-6.12.117+deb12-amd64-unsigned"];
        v.sort_by_key(|n| version_key(n));
        assert_eq!(v[1], "linux-image-6.12.117+deb12-amd64-unsigned");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(999), "999");
    }
}
