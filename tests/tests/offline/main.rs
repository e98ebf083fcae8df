//! The offline tier: what needs neither root nor a kernel feature, the `sipwall` command line
//! without a daemon and the detectors judged against fail2ban's sample logs.

mod cli;
mod conformance;
