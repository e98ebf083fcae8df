//! The XDP program's counters as metric families: `sipwall_packets_total` and
//! `sipwall_bytes_total` by action, reason and service, and the event ring's health.

use aya::maps::{MapData, PerCpuArray};
use firewall_common::{
    rate::event_stat,
    reason::{counter_index, Counter, Reason},
    service::SERVICE_SLOTS,
};
use prometheus::proto::{self, LabelPair, Metric, MetricFamily, MetricType};

/// Packets seen by the XDP program, by `action`, `reason` and `service`.
pub const PACKETS: &str = "sipwall_packets_total";
/// Bytes seen by the XDP program, by `action`, `reason` and `service`.
pub const BYTES: &str = "sipwall_bytes_total";
/// Reports the XDP programs sent to the daemon, by `outcome` (`sent`, `lost`).
pub const EVENTS: &str = "sipwall_kernel_events_total";
/// The families [`families`] builds.
pub const FAMILIES: [&str; 3] = [PACKETS, BYTES, EVENTS];

/// Packets and bytes per (reason, service id), summed over CPUs.
pub fn read_counters(map: &PerCpuArray<MapData, Counter>) -> Vec<(Reason, u32, u64, u64)> {
    let mut out = Vec::new();
    for &reason in Reason::ALL {
        for svc in 0..SERVICE_SLOTS {
            let Ok(v) = map.get(&counter_index(reason, svc), 0) else { continue };
            let (p, b) = v.iter().fold((0u64, 0u64), |(p, b), c| (p + c.packets, b + c.bytes));
            out.push((reason, svc, p, b));
        }
    }
    out
}

/// Events sent and lost by the kernel, summed over CPUs.
pub fn read_event_stats(map: &PerCpuArray<MapData, u64>) -> (u64, u64) {
    let sum = |i| map.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0);
    (sum(event_stat::SENT), sum(event_stat::LOST))
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.into());
    l.set_value(value.into());
    l
}

fn counter(labels: Vec<LabelPair>, v: u64) -> Metric {
    let mut c = proto::Counter::default();
    c.set_value(v as f64);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_counter(c);
    m
}

fn family(name: &str, help: &str, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(MetricType::COUNTER);
    f.set_metric(metrics);
    f
}

/// Reasons shown for every configured service even at zero, so dashboards have series to rate.
const ALWAYS: [Reason; 5] =
    [Reason::Accepted, Reason::RateLimited, Reason::NotAllowed, Reason::Banned, Reason::Blocked];

/// Builds the packet and byte families; `name` gives a service id's label (None: not
/// configured).
pub fn families(
    counters: &[(Reason, u32, u64, u64)],
    events: (u64, u64),
    name: impl Fn(u32) -> Option<String>,
) -> Vec<MetricFamily> {
    let (mut packets, mut bytes) = (Vec::new(), Vec::new());
    for &(reason, svc, p, b) in counters {
        let service = if svc == 0 { Some("none".to_owned()) } else { name(svc) };
        let shown = p > 0 || (service.is_some() && svc != 0 && ALWAYS.contains(&reason));
        if !shown {
            continue;
        }
        let service = service.unwrap_or_else(|| format!("removed-{svc}"));
        let labels = || {
            vec![label("action", reason.action().name()), label("reason", reason.name()), label("service", &service)]
        };
        packets.push(counter(labels(), p));
        bytes.push(counter(labels(), b));
    }
    vec![
        family(PACKETS, "Packets seen by the XDP program, by verdict, reason and service.", packets),
        family(BYTES, "Bytes seen by the XDP program, by verdict, reason and service.", bytes),
        family(
            EVENTS,
            "Reports the XDP programs sent to the daemon (rate limits, scanners, SIP answers and proofs), and those lost \
             because the ring buffer was full.",
            vec![counter(vec![label("outcome", "sent")], events.0), counter(vec![label("outcome", "lost")], events.1)],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn exposition_names_labels_and_zero_series() {
        let counters = vec![
            (Reason::Accepted, 1, 10, 1000),
            (Reason::Banned, 0, 3, 180),
            (Reason::RateLimited, 2, 0, 0),
            (Reason::NonIp, 1, 0, 0),
            (Reason::Accepted, 9, 4, 40),
        ];
        let m = Metrics::default();
        m.bans_active.set(2);
        let names = |id| match id {
            1 => Some("sip".to_owned()),
            2 => Some("ssh".to_owned()),
            _ => None,
        };
        let text = m.render(families(&counters, (5, 1), names));
        assert!(
            text.contains("sipwall_packets_total{action=\"pass\",reason=\"accepted\",service=\"sip\"} 10"),
            "{text}"
        );
        assert!(text.contains("sipwall_bytes_total{action=\"drop\",reason=\"banned\",service=\"none\"} 180"), "{text}");
        assert!(
            text.contains("sipwall_packets_total{action=\"drop\",reason=\"rate_limited\",service=\"ssh\"} 0"),
            "{text}"
        );
        assert!(!text.contains("reason=\"non_ip\""), "zero series outside the always-shown set are left out");
        assert!(text.contains("service=\"removed-9\"} 4"), "{text}");
        assert!(text.contains("# TYPE sipwall_packets_total counter"));
        assert!(text.contains("sipwall_kernel_events_total{outcome=\"lost\"} 1"));
        assert!(text.contains("sipwall_bans_active 2"));
    }
}
