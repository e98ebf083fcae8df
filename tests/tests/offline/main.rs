//! The offline tier: what needs neither root nor a kernel feature, the `sipwall` command line
//! without a daemon, the detectors judged against fail2ban's sample logs, and the monitoring
//! files (Grafana dashboard, Prometheus alert rules) checked with promtool and against the
//! metrics the daemon exports.

mod cli;
mod conformance;
mod import;
mod monitoring;
mod promql;
