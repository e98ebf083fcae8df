//! Shared by the benchmark sections.

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The value below which `q` (0..1) of the samples fall (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

/// BPF_PROG_TEST_RUN runs on the calling CPU: staying on one avoids migrations mid-sample.
pub fn pin_to_one_cpu() {
    pin_to(0);
}

pub fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; the CPU index is checked by the kernel.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPUs online: the machine's, whichever of them an earlier section pinned this thread to.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// The calling thread's CPUs, to give back with [`set_affinity`].
pub fn affinity() -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is valid output space of the right size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set);
        set
    }
}

pub fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: a valid cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) };
}

pub fn human(n: usize) -> String {
    match n {
        0 => "0".into(),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Kilobytes of a /proc/PID/status field (VmRSS, VmHWM).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub use sipwall_tests::rng::Rng;
