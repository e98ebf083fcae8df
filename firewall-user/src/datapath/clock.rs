//! Wall-clock time (what bans are stored and shown in), CLOCK_MONOTONIC, and kernel jiffies
//! (what the XDP program compares against, via `bpf_jiffies64`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use firewall_common::{clock::ClockSample, FOREVER};
use nix::time::{clock_gettime, ClockId};

pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC always exists on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Kernel tick rates Linux can be built with (CONFIG_HZ).
const HZ_CHOICES: [u64; 6] = [100, 250, 300, 1000, 24, 48];

/// How the kernel's jiffies relate to CLOCK_MONOTONIC and the wall clock: the tick length, one
/// moment seen on both kernel clocks, and the wall clock's offset from CLOCK_MONOTONIC. Fixed
/// once taken, so a given expiry always maps to the same deadline (and a daemon taking over the
/// tables reuses the values of the one that filled them: see `Config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelClock {
    pub hz: u64,
    pub anchor: ClockSample,
    /// Wall-clock ms minus CLOCK_MONOTONIC ms.
    pub wall_offset_ms: i64,
}

/// Wall-clock ms minus CLOCK_MONOTONIC ms, now.
pub fn wall_offset_ms() -> i64 {
    unix_ms(SystemTime::now()) as i64 - (monotonic_ns() / 1_000_000) as i64
}

#[derive(Debug, thiserror::Error)]
#[error("kernel tick rate from two clock samples: {jiffies} jiffies in {ns} ns match no CONFIG_HZ")]
pub struct CalibrationError {
    jiffies: u64,
    ns: u64,
}

impl KernelClock {
    /// A clock whose jiffies count `hz` ticks per second of CLOCK_MONOTONIC from 0, for the
    /// in-memory tables (and tests) where no kernel keeps time.
    pub fn synthetic(hz: u64) -> Self {
        Self { hz, anchor: ClockSample { jiffies: 0, mono_ns: 0 }, wall_offset_ms: wall_offset_ms() }
    }

    /// The same clock with an earlier daemon's anchor and wall offset, when they describe the
    /// same kernel clock (same tick rate): deadlines then come out exactly as that daemon wrote
    /// them.
    pub fn resume(self, anchor: ClockSample, wall_offset_ms: i64) -> Self {
        if wall_offset_ms == 0 || anchor.mono_ns > monotonic_ns() {
            return self;
        }
        Self { anchor, wall_offset_ms, ..self }
    }

    /// From two samples of the kernel's clocks taken apart (at least 100 ms).
    pub fn from_samples(a: ClockSample, b: ClockSample) -> Result<Self, CalibrationError> {
        let (jiffies, ns) = (b.jiffies.wrapping_sub(a.jiffies), b.mono_ns.saturating_sub(a.mono_ns));
        let measured = jiffies as f64 * 1e9 / ns.max(1) as f64;
        let hz = HZ_CHOICES
            .into_iter()
            .min_by(|x, y| (*x as f64 - measured).abs().total_cmp(&(*y as f64 - measured).abs()))
            .expect("choices");
        // off by a tick or two is jitter; a tick run late at either end costs a few more, which a
        // longer window makes a small share: up to 5% of the ticks counted, far from the 20%
        // between the nearest tick rates. More means the samples are unusable.
        let (off, expected) = ((measured - hz as f64).abs() * ns as f64 / 1e9, hz as f64 * ns as f64 / 1e9);
        if off > 2.0_f64.max(expected * 0.05) {
            return Err(CalibrationError { jiffies, ns });
        }
        Ok(Self { hz, anchor: b, wall_offset_ms: wall_offset_ms() })
    }

    pub fn ns_per_jiffy(&self) -> u64 {
        1_000_000_000 / self.hz
    }

    /// Jiffies at a CLOCK_MONOTONIC instant.
    pub fn jiffies_at(&self, mono_ns: u64) -> u64 {
        let d = mono_ns as i128 - self.anchor.mono_ns as i128;
        (self.anchor.jiffies as i128 + d / self.ns_per_jiffy() as i128) as u64
    }

    /// Whole jiffies covering `d` (rounded up).
    pub fn jiffies_in(&self, d: Duration) -> u64 {
        (d.as_nanos() as u64).div_ceil(self.ns_per_jiffy())
    }

    /// The wall-clock time (unix ms) of a kernel deadline; `None` for forever.
    pub fn unix_ms_of(&self, deadline: u64) -> Option<u64> {
        if deadline == FOREVER {
            return None;
        }
        let d = deadline.wrapping_sub(self.anchor.jiffies) as i64 as i128;
        let mono_ms = (self.anchor.mono_ns as i128 + d * self.ns_per_jiffy() as i128) / 1_000_000;
        Some((mono_ms + self.wall_offset_ms as i128).max(0) as u64)
    }

    /// The kernel deadline (jiffies) of a wall-clock expiry, rounded up to a whole tick; `None`
    /// is forever. A pure function of the expiry: the same ban always gets the same deadline.
    pub fn deadline(&self, expires_unix_ms: Option<u64>) -> u64 {
        let Some(ms) = expires_unix_ms else { return FOREVER };
        let mono_ns = (ms as i128 - self.wall_offset_ms as i128) * 1_000_000;
        let d = mono_ns - self.anchor.mono_ns as i128;
        let ticks =
            d.div_euclid(self.ns_per_jiffy() as i128) + i128::from(d.rem_euclid(self.ns_per_jiffy() as i128) != 0);
        let j = (self.anchor.jiffies as i128 + ticks) as u64;
        // FOREVER is reserved
        if j == FOREVER {
            FOREVER - 1
        } else {
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(jiffies: u64, mono_ns: u64) -> ClockSample {
        ClockSample { jiffies, mono_ns }
    }

    #[test]
    fn calibrates_common_tick_rates() {
        for hz in [100u64, 250, 300, 1000] {
            let ns = 150_000_000;
            let c = KernelClock::from_samples(
                s(5_000, 1_000_000_000),
                s(5_000 + hz * ns / 1_000_000_000, 1_000_000_000 + ns),
            )
            .unwrap();
            assert_eq!(c.hz, hz);
        }
        // one tick of jitter is fine
        let c = KernelClock::from_samples(s(0, 0), s(38, 150_000_000)).unwrap();
        assert_eq!(c.hz, 250);
        assert!(KernelClock::from_samples(s(0, 0), s(80, 150_000_000)).is_err());
        // a tick six late at the end: unusable over 100 ms, 2% of a 1.6 s window
        assert!(KernelClock::from_samples(s(0, 0), s(25 - 6, 100_000_000)).is_err());
        let c = KernelClock::from_samples(s(0, 0), s(400 - 6, 1_600_000_000)).unwrap();
        assert_eq!(c.hz, 250);
        // halfway between two tick rates is neither
        assert!(KernelClock::from_samples(s(0, 0), s(440, 1_600_000_000)).is_err());
        assert_eq!(KernelClock::from_samples(s(0, 0), s(480, 1_600_000_000)).unwrap().hz, 300);
    }

    #[test]
    fn a_deadline_is_a_function_of_the_expiry() {
        let c = KernelClock::synthetic(250);
        let e = unix_ms(SystemTime::now()) + 3_600_000;
        assert_eq!(c.deadline(Some(e)), c.deadline(Some(e)));
        let back = c.unix_ms_of(c.deadline(Some(e))).unwrap();
        assert!(back >= e && back < e + 4, "{back} {e}");
        let resumed = KernelClock::synthetic(250).resume(c.anchor, c.wall_offset_ms);
        assert_eq!(resumed.deadline(Some(e)), c.deadline(Some(e)));
    }

    #[test]
    fn deadlines_follow_the_kernel_clock() {
        let c = KernelClock::synthetic(1000);
        let now = unix_ms(SystemTime::now());
        let before = c.jiffies_at(monotonic_ns());
        let d = c.deadline(Some(now + 60_000));
        assert!(d >= before + 59_990 && d <= c.jiffies_at(monotonic_ns()) + 60_000, "{d} {before}");
        assert_eq!(c.deadline(None), FOREVER);
        assert!(!firewall_common::clock::before(c.jiffies_at(monotonic_ns()), c.deadline(Some(now - 1000))));
        assert_eq!(c.jiffies_in(Duration::from_millis(1500)), 1500);
        assert_eq!(KernelClock::synthetic(250).jiffies_in(Duration::from_millis(1)), 1);
    }
}
