//! The family names the metrics module reports against what its exposition emits.

use std::collections::BTreeSet;

use firewall_common::reason::Reason;
use prometheus::{core::Collector, IntCounterVec, IntGaugeVec};

use super::{kernel, Metrics};

fn count(v: &IntCounterVec) {
    let labels = vec!["x"; v.desc()[0].variable_labels.len()];
    v.with_label_values(&labels).inc();
}

fn set(v: &IntGaugeVec) {
    let labels = vec!["x"; v.desc()[0].variable_labels.len()];
    v.with_label_values(&labels).set(1);
}

/// The family names of an exposition text, from its `# TYPE` lines.
fn emitted(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn family_names_are_the_families_the_exposition_emits() {
    let m = Metrics::default();
    m.bans_active.set(1);
    m.rules_loaded_timestamp.set(1);
    m.store_healthy.set(1);
    m.known_good.set(1);
    m.ban_latency.observe(0.001);
    for v in [
        &m.map_entries,
        &m.map_capacity,
        &m.xdp_attached,
        &m.feature_enabled,
        &m.blocklist_healthy,
        &m.log_source_up,
        &m.feed_entries,
        &m.feed_last_success,
        &m.crowdsec_up,
        &m.crowdsec_decisions,
    ] {
        set(v);
    }
    for v in [
        &m.rate_limit_events,
        &m.sip_failures_answered,
        &m.sip_scanner_packets,
        &m.sip_method_limit_events,
        &m.rules_reloads,
        &m.bans_refused,
        &m.ban_actions,
        &m.log_lines,
        &m.log_lines_malformed,
        &m.failures,
        &m.failures_skipped,
        &m.sip_proofs,
        &m.bans_total,
        &m.webhook,
        &m.mail,
        &m.feed_failures,
        &m.feed_lines_skipped,
        &m.crowdsec_skipped,
        &m.crowdsec_pulls,
        &m.crowdsec_pushed,
    ] {
        count(v);
    }
    let counters = vec![(Reason::Accepted, 1, 1, 60)];
    let text = m.render(kernel::families(&counters, (1, 0), |_| Some("sip".to_owned())));
    let names: BTreeSet<String> = m.family_names().into_iter().collect();
    assert_eq!(names.len(), m.family_names().len(), "each name once");
    assert_eq!(emitted(&text), names, "{text}");
    assert!(names.contains("sipwall_ban_latency_seconds") && text.contains("sipwall_ban_latency_seconds_bucket{"));
}

#[test]
fn family_names_include_families_without_a_sample() {
    let m = Metrics::default();
    let text = m.render(kernel::families(&[], (0, 0), |_| None));
    let names = m.family_names();
    for quiet in ["sipwall_bans_total", "sipwall_log_source_up", "sipwall_xdp_attached", kernel::PACKETS] {
        assert!(!text.contains(&format!("# TYPE {quiet} ")), "{quiet} has no sample yet: {text}");
        assert!(names.iter().any(|n| n == quiet), "{quiet} missing from {names:?}");
    }
    assert!(text.contains("sipwall_kernel_events_total{outcome=\"lost\"} 0"), "{text}");
}

#[test]
fn delivery_results_are_there_before_the_first_delivery() {
    let m = Metrics::default();
    let text = m.render(kernel::families(&[], (0, 0), |_| None));
    for family in ["sipwall_webhook_deliveries_total", "sipwall_mail_deliveries_total"] {
        for result in super::DELIVERY_RESULTS {
            assert!(text.contains(&format!("{family}{{result=\"{result}\"}} 0\n")), "{family} {result}:\n{text}");
        }
    }
}
