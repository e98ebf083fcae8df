//! Time in the kernel is jiffies (`bpf_jiffies64`: a plain load, where the nanosecond clocks
//! cost a clock read per packet). The daemon relates jiffies to its own clocks by running the
//! `sipwall_clock` program, which samples both.

/// Value of `SW_CLOCK[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockSample {
    pub jiffies: u64,
    /// CLOCK_MONOTONIC ns at the same moment.
    pub mono_ns: u64,
}
const _: () = assert!(size_of::<ClockSample>() == 16);

/// Whether jiffies value `deadline` is still ahead of `now` (jiffies wrap; `FOREVER` never
/// passes).
#[inline(always)]
pub const fn before(now: u64, deadline: u64) -> bool {
    deadline == crate::FOREVER || (deadline.wrapping_sub(now) as i64) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_survive_the_jiffies_wrap() {
        // jiffies start 5 minutes before wrapping to 0
        let boot = 0u64.wrapping_sub(300 * 1000);
        assert!(before(boot, boot + 10));
        assert!(before(u64::MAX - 5, 10), "a deadline past the wrap is still ahead");
        assert!(!before(10, u64::MAX - 5));
        assert!(before(123, crate::FOREVER));
        assert!(!before(5, 5));
    }
}
