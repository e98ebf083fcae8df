//! Prometheus metrics: the daemon's own gauges and counters, plus the XDP program's per-CPU
//! counters summed at scrape time.

pub mod http;
pub mod kernel;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    pub bans_active: IntGauge,
    pub map_entries: IntGaugeVec,
    pub map_capacity: IntGaugeVec,
    pub xdp_attached: IntGaugeVec,
    pub rate_limit_events: IntCounterVec,
    pub rules_reloads: IntCounterVec,
    pub rules_loaded_timestamp: IntGauge,
    pub ban_actions: IntCounterVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone())).expect("metric names are unique");
    m
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        Self {
            bans_active: reg(
                &r,
                IntGauge::new("sipwall_bans_active", "Bans in force (addresses and networks).").unwrap(),
            ),
            map_entries: reg(
                &r,
                IntGaugeVec::new(Opts::new("sipwall_map_entries", "Entries in each BPF map."), &["map"]).unwrap(),
            ),
            map_capacity: reg(
                &r,
                IntGaugeVec::new(Opts::new("sipwall_map_capacity", "Entries each BPF map can hold."), &["map"])
                    .unwrap(),
            ),
            xdp_attached: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("sipwall_xdp_attached", "1 for each interface the XDP program is attached to, by mode."),
                    &["iface", "mode"],
                )
                .unwrap(),
            ),
            rate_limit_events: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_rate_limit_events_total",
                        "Reports of a source going over a service's rate limit (sampled per source).",
                    ),
                    &["service"],
                )
                .unwrap(),
            ),
            rules_reloads: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("sipwall_rules_reloads_total", "Rules reloads by result (applied, rejected, failed)."),
                    &["result"],
                )
                .unwrap(),
            ),
            rules_loaded_timestamp: reg(
                &r,
                IntGauge::new(
                    "sipwall_rules_loaded_timestamp_seconds",
                    "When the rules in force were applied (Unix time).",
                )
                .unwrap(),
            ),
            ban_actions: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("sipwall_ban_actions_total", "Bans added, lifted and expired, by who asked."),
                    &["action", "source"],
                )
                .unwrap(),
            ),
            registry: r,
        }
    }
}

impl Metrics {
    /// The exposition text: registered metrics followed by the kernel counters.
    pub fn render(&self, kernel: Vec<prometheus::proto::MetricFamily>) -> String {
        let mut families = self.registry.gather();
        families.extend(kernel);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out).expect("text encoding");
        String::from_utf8(out).expect("utf-8")
    }
}
