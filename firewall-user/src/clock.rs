//! Wall-clock time (what bans are stored and shown in) and CLOCK_MONOTONIC (what the XDP program
//! compares against, via `bpf_ktime_get_coarse_ns`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use firewall_common::FOREVER;

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The kernel deadline (CLOCK_MONOTONIC ns) of a wall-clock expiry; `None` is forever.
pub fn kernel_deadline(expires_unix_ms: Option<u64>) -> u64 {
    let Some(ms) = expires_unix_ms else { return FOREVER };
    let now_wall = unix_ms(SystemTime::now());
    let mono = monotonic_ns();
    if ms <= now_wall {
        // already over: a deadline in the past that the kernel treats as expired
        return mono.saturating_sub(1);
    }
    mono.saturating_add((ms - now_wall).saturating_mul(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_monotonic_clock() {
        let now = unix_ms(SystemTime::now());
        let before = monotonic_ns();
        let d = kernel_deadline(Some(now + 60_000));
        assert!(d >= before + 59_000_000_000 && d <= monotonic_ns() + 60_000_000_000, "{d} {before}");
        assert_eq!(kernel_deadline(None), FOREVER);
        assert!(kernel_deadline(Some(now - 1000)) < monotonic_ns());
    }
}
