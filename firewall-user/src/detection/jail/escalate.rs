//! Ban time for a repeat offender (fail2ban's `bantime.increment`). `maxretry` stays as it is:
//! an earlier ban never lowers the number of failures needed for the next.

use std::time::Duration;

use crate::rules::jails::Increment;

/// fail2ban's cap on the doubling exponent.
const MAX_DOUBLINGS: u32 = 20;

/// The ban time after `earlier` bans of the same source (within the increment's window).
pub fn bantime(base: Option<Duration>, inc: Option<&Increment>, earlier: u32) -> Option<Duration> {
    let base = base?;
    let Some(inc) = inc else { return Some(base) };
    let scaled = if inc.multipliers.is_empty() {
        base.as_secs_f64() * inc.factor * f64::from(1u32 << earlier.min(MAX_DOUBLINGS))
    } else {
        let m = inc.multipliers[(earlier as usize).min(inc.multipliers.len() - 1)];
        base.as_secs_f64() * f64::from(m)
    };
    // at least the base time, at most maxtime (but never below the base either)
    let mut d = Duration::from_secs_f64(scaled.clamp(base.as_secs_f64(), crate::duration::MAX.as_secs_f64()));
    if let Some(max) = inc.maxtime {
        d = d.min(max.max(base));
    }
    Some(d)
}
