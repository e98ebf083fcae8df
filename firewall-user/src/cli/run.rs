//! `sipwall run`.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;

use crate::datapath::attach::AttachMode;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Interfaces to protect, comma separated (default: the one carrying the default route).
    #[arg(long, env = "SIPWALL_IFACE", value_delimiter = ',')]
    pub iface: Vec<String>,
    /// Rules file (default: the embedded default rules). Reloaded on change and on SIGHUP.
    #[arg(long, env = "SIPWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// XDP attach mode: auto tries native (driver) mode and falls back to skb with a warning.
    #[arg(long, value_enum, env = "SIPWALL_XDP_MODE", default_value = "auto")]
    pub xdp_mode: AttachMode,
    /// Where to serve Prometheus metrics (path /metrics).
    #[arg(long, env = "SIPWALL_METRICS_ADDR", default_value = "127.0.0.1:9977")]
    pub metrics_addr: SocketAddr,
    /// Where bans are kept across restarts.
    #[arg(long, env = "SIPWALL_STATE_DIR", default_value = "/var/lib/sipwall")]
    pub state_dir: PathBuf,
    /// Log every dropped packet with its source and reason (for debugging: one record per drop).
    #[arg(long)]
    pub trace_drops: bool,
    /// Read the jails' log files from their start instead of their end (to replay old logs;
    /// failures count as if they happened now).
    #[arg(long)]
    pub from_start: bool,
    /// BPF filesystem directory for the pinned maps and links (mounted at /sys/fs/bpf if need be).
    #[arg(long, env = "SIPWALL_PIN_DIR", default_value = crate::datapath::pins::DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
    /// On SIGTERM/SIGINT, detach the program and remove its pins (by default it keeps
    /// enforcing until the next `sipwall run` takes over, or `sipwall detach`).
    #[arg(long)]
    pub detach_on_exit: bool,
}
