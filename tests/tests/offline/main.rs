//! The offline tier: what needs neither root nor a kernel feature, the `sipwall` command line
//! without a daemon, the detectors judged against fail2ban's sample logs, the monitoring files
//! (Grafana dashboard, Prometheus alert rules) checked with promtool and against the metrics the
//! daemon exports, and mail alerts sent to an SMTP server on loopback (python3-aiosmtpd).

mod cli;
mod conformance;
mod import;
mod mail;
mod monitoring;
mod promql;
