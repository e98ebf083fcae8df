//! Support for sipwall's privileged tests: the root/CI gate, frame builders, and a harness that
//! runs frames through the real XDP program with BPF_PROG_TEST_RUN.

use aya::util::KernelVersion;
use sipwall::datapath::features::{Feature, Need, REQUIREMENTS};

pub mod frames;
pub mod harness;
pub mod rng;
pub mod samples;

/// Whether privileged tests may run. Outside CI, a non-root run skips loudly; under CI a missing
/// privilege is a failure, since CI runs as root.
/// Whether this is CI (`CI` set and not `0` or `false`): there, a test that cannot run fails.
pub fn ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false)
}

pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if ci() {
        panic!("{test}: CI is set but this is not root; privileged tests must run in CI");
    }
    eprintln!("\n*** SKIPPED {test}: needs root (BPF_PROG_TEST_RUN, network namespaces). Run as root, or set CI=true to turn this into a failure. ***\n");
    false
}

/// Whether the running kernel is new enough for `feature` (the releases in
/// [`REQUIREMENTS`]). On an older kernel the test is skipped, loudly, under CI too: sipwall runs
/// there without the feature and says so, which the kernel tier's feature rows check.
pub fn kernel_has(feature: Feature, test: &str) -> bool {
    let Ok(running) = KernelVersion::current() else { return true };
    let missing = REQUIREMENTS
        .iter()
        .filter(|r| r.need == Need::For(feature))
        .find(|r| running < KernelVersion::new(r.since.0, r.since.1, 0));
    let Some(r) = missing else { return true };
    eprintln!(
        "\n*** SKIPPED {test}: Linux {running} has no {} (Linux {}.{}), which `{}` needs ***\n",
        r.what,
        r.since.0,
        r.since.1,
        feature.name()
    );
    false
}

/// Skips the calling test (loudly) on a kernel older than the feature needs.
#[macro_export]
macro_rules! require_kernel {
    ($feature:expr) => {
        if !$crate::kernel_has($feature, module_path!()) {
            return;
        }
    };
}

/// Skips the calling test (loudly) unless privileged.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::privileged(module_path!()) {
            return;
        }
    };
}
pub mod alerts;
pub mod asterisk;
pub mod crowdsec;
pub mod daemon;
pub mod journald;
pub mod kamailio;
pub mod netns;
pub mod phone;
pub mod sipp;
pub mod sipvicious;
pub mod sshd;
pub mod tools;
pub mod traffic;
pub mod unit;
