//! What sipwall asks of the kernel: the BPF features each part needs and the release that brought
//! them, the minimum checked at start, and which optional parts the running kernel accepted.

use std::{collections::BTreeSet, fmt};

use aya::util::KernelVersion;

/// A part of sipwall the kernel may refuse without the rest failing: the metric label of
/// `sipwall_feature_enabled` and the name `sipwall status` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// `sipwall_sip` and `sipwall_sip_full`: the SIP inspection (`[sip]`, the `scanner` jail).
    SipInspector,
    /// `sipwall_egress`: the SIP answers read on egress (the `sip-wire` jail).
    EgressClassifier,
    /// The egress classifier attached through TCX; without it, through a `clsact` qdisc.
    Tcx,
}

impl Feature {
    pub const ALL: [Feature; 3] = [Feature::SipInspector, Feature::EgressClassifier, Feature::Tcx];

    pub const fn name(self) -> &'static str {
        match self {
            Feature::SipInspector => "sip_inspector",
            Feature::EgressClassifier => "egress_classifier",
            Feature::Tcx => "tcx",
        }
    }

    /// What is lost without it.
    pub const fn loss(self) -> &'static str {
        match self {
            Feature::SipInspector => {
                "[sip] inspection is off (scanner signatures, non-SIP payloads, allowed methods, stealth OPTIONS, \
                 method limits, the scanner jail); everything else is enforced"
            }
            Feature::EgressClassifier => "the sip-wire jail gets no reports; everything else is enforced",
            Feature::Tcx => "the egress classifier goes through a clsact qdisc instead",
        }
    }
}

/// Who needs a kernel feature: every part of sipwall, or one [`Feature`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Always,
    For(Feature),
}

/// A kernel feature sipwall uses, and the first Linux release with it.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    pub what: &'static str,
    pub since: (u8, u8),
    pub used_for: &'static str,
    pub need: Need,
}

/// A row of [`REQUIREMENTS`], in the column order of the table in docs/building.md.
const fn row(what: &'static str, since: (u8, u8), used_for: &'static str, need: Need) -> Requirement {
    Requirement { what, since, used_for, need }
}

/// Every kernel feature the programs and the loader use, oldest first.
#[rustfmt::skip]
pub const REQUIREMENTS: &[Requirement] = &[
    row("tc clsact qdisc with BPF classifiers", (4, 5), "the egress classifier before TCX", Need::For(Feature::EgressClassifier)),
    row("BPF_PROG_TEST_RUN for XDP", (4, 15), "the clock calibration at start", Need::Always),
    row("BPF ISA v3 (32-bit jumps and ALU)", (5, 1), "every program (built with -Ctarget-cpu=v3)", Need::Always),
    row("mmapable BPF arrays (BPF_F_MMAPABLE)", (5, 5), "the network tables the daemon writes in place", Need::Always),
    row("bpf_jiffies64", (5, 5), "ban expiries and rate limits", Need::Always),
    row("BPF ring buffer", (5, 8), "reports from the programs to the daemon", Need::Always),
    row("BPF links for XDP", (5, 9), "pinned attachments that keep enforcing while the daemon is down", Need::Always),
    row("tail calls in programs with BPF-to-BPF calls (x86-64 JIT)", (5, 10), "the data path's tail call to the SIP inspector next to its IPv6 lookup callback", Need::Always),
    row("bpf_loop", (5, 17), "the IPv6 lookup; the SIP inspector's header walk and signature search", Need::Always),
    row("bpf_xdp_load_bytes", (5, 18), "the SIP inspector's copy of the payload", Need::For(Feature::SipInspector)),
    row("TCX (tc BPF links)", (6, 6), "the egress classifier without a qdisc", Need::For(Feature::Tcx)),
];

/// The oldest release with every feature all of sipwall needs, and the newest such feature.
pub fn minimum() -> &'static Requirement {
    REQUIREMENTS.iter().filter(|r| r.need == Need::Always).max_by_key(|r| r.since).expect("requirements")
}

/// The running kernel is older than [`minimum`].
#[derive(Debug, thiserror::Error)]
#[error(
    "Linux {release} ({version}) is too old for sipwall: it needs {what} (Linux {}.{}, for {used_for}); \
     run it on Linux {}.{} or later",
    since.0, since.1, since.0, since.1
)]
pub struct TooOld {
    pub release: String,
    pub version: String,
    pub what: &'static str,
    pub since: (u8, u8),
    pub used_for: &'static str,
}

/// Refuses a kernel older than [`minimum`]; a version that cannot be read is let through (the
/// loader then says what fails).
pub fn check_kernel() -> Result<(), TooOld> {
    let Ok(version) = KernelVersion::current() else { return Ok(()) };
    check(version, &release())
}

fn check(version: KernelVersion, release: &str) -> Result<(), TooOld> {
    let min = minimum();
    if version >= KernelVersion::new(min.since.0, min.since.1, 0) {
        return Ok(());
    }
    Err(TooOld {
        release: release.to_owned(),
        version: version.to_string(),
        what: min.what,
        since: min.since,
        used_for: min.used_for,
    })
}

/// The running kernel's release (`uname -r`), e.g. `6.1.0-57-amd64`.
pub fn release() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => u.release().to_string_lossy().into_owned(),
        Err(_) => "unknown".to_owned(),
    }
}

/// What the running kernel accepted of the optional parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    enabled: BTreeSet<Feature>,
}

impl Features {
    pub fn set(&mut self, f: Feature, on: bool) {
        if on {
            self.enabled.insert(f);
        } else {
            self.enabled.remove(&f);
        }
    }

    pub fn has(&self, f: Feature) -> bool {
        self.enabled.contains(&f)
    }

    /// Every feature with whether it is on.
    pub fn all(&self) -> impl Iterator<Item = (Feature, bool)> + '_ {
        Feature::ALL.into_iter().map(|f| (f, self.has(f)))
    }
}

/// A program the kernel refused: which, on which kernel, and the end of the verifier's log,
/// where it says why.
#[derive(Debug)]
pub struct Refusal {
    pub program: &'static str,
    pub release: String,
    pub error: String,
    /// The verifier log's last lines, joined by ` | `; empty if it wrote none.
    pub log_tail: String,
}

/// Lines of the verifier log a refusal keeps: the reason is in the last few.
const LOG_TAIL_LINES: usize = 12;

impl Refusal {
    pub fn new(program: &'static str, err: &aya::programs::ProgramError) -> Refusal {
        let (error, log) = match err {
            aya::programs::ProgramError::LoadError { io_error, verifier_log } => {
                (io_error.to_string(), verifier_log.to_string())
            }
            other => (other.to_string(), String::new()),
        };
        Refusal { program, release: release(), error, log_tail: tail(&log, LOG_TAIL_LINES) }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Linux {} refused `{}` ({})", self.release, self.program, self.error)?;
        if !self.log_tail.is_empty() {
            write!(f, "; the verifier's last words: {}", self.log_tail)?;
        }
        Ok(())
    }
}

/// The last `n` non-empty lines of `log`, joined by ` | ` so they stay on one log line.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_is_the_newest_feature_everything_needs() {
        let min = minimum();
        assert_eq!((min.what, min.since), ("bpf_loop", (5, 17)));
        assert!(REQUIREMENTS.iter().any(|r| r.need == Need::For(Feature::SipInspector) && r.since > min.since));
    }

    #[test]
    fn kernels_below_the_minimum_are_refused_by_name() {
        let err = check(KernelVersion::new(5, 15, 0), "5.15.0-91-generic").unwrap_err().to_string();
        assert!(err.contains("Linux 5.15.0-91-generic (5.15.0) is too old"), "{err}");
        assert!(err.contains("bpf_loop (Linux 5.17"), "{err}");
        assert!(check(KernelVersion::new(5, 17, 0), "5.17.0").is_ok());
        assert!(check(KernelVersion::new(6, 1, 192), "6.1.0-57-amd64").is_ok());
    }

    #[test]
    fn the_building_guide_lists_every_requirement() {
        let doc = include_str!("../../../docs/building.md");
        for r in REQUIREMENTS {
            let since = format!("{}.{}", r.since.0, r.since.1);
            assert!(
                doc.lines().any(|l| l.contains(r.what) && l.contains(&format!("| {since} |"))),
                "docs/building.md has no table row for {} ({since})",
                r.what
            );
        }
        let min = minimum();
        assert!(doc.contains(&format!("Linux {}.{} or later", min.since.0, min.since.1)), "the minimum");
    }

    #[test]
    fn a_refusal_keeps_the_end_of_the_log() {
        let log = (1..=40).map(|i| format!("{i}: insn")).collect::<Vec<_>>().join("\n") + "\nR8 invalid mem access\n";
        let t = tail(&log, 3);
        assert_eq!(t, "39: insn | 40: insn | R8 invalid mem access");
    }

    #[test]
    fn features_are_listed_in_a_fixed_order() {
        let mut f = Features::default();
        f.set(Feature::Tcx, true);
        f.set(Feature::SipInspector, true);
        f.set(Feature::Tcx, false);
        let all: Vec<_> = f.all().collect();
        assert_eq!(all, vec![(Feature::SipInspector, true), (Feature::EgressClassifier, false), (Feature::Tcx, false)]);
    }
}
