//! Prometheus metrics: the daemon's own gauges and counters, plus the XDP program's per-CPU
//! counters summed at scrape time.

pub mod http;
pub mod kernel;
#[cfg(test)]
mod tests;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// The names of the registered families, in registration order.
    registered: Vec<String>,
    pub bans_active: IntGauge,
    pub map_entries: IntGaugeVec,
    pub map_capacity: IntGaugeVec,
    pub xdp_attached: IntGaugeVec,
    pub feature_enabled: IntGaugeVec,
    pub rate_limit_events: IntCounterVec,
    pub sip_failures_answered: IntCounterVec,
    pub sip_scanner_packets: IntCounterVec,
    pub sip_method_limit_events: IntCounterVec,
    pub rules_reloads: IntCounterVec,
    pub rules_loaded_timestamp: IntGauge,
    pub blocklist_healthy: IntGaugeVec,
    pub store_healthy: IntGauge,
    pub bans_refused: IntCounterVec,
    pub ban_actions: IntCounterVec,
    pub log_lines: IntCounterVec,
    pub log_lines_malformed: IntCounterVec,
    pub log_source_up: IntGaugeVec,
    pub failures: IntCounterVec,
    pub failures_skipped: IntCounterVec,
    pub known_good: IntGauge,
    pub sip_proofs: IntCounterVec,
    pub bans_total: IntCounterVec,
    pub ban_latency: Histogram,
    pub webhook: IntCounterVec,
    pub mail: IntCounterVec,
    pub feed_entries: IntGaugeVec,
    pub feed_last_success: IntGaugeVec,
    pub feed_failures: IntCounterVec,
    pub feed_lines_skipped: IntCounterVec,
    pub crowdsec_up: IntGaugeVec,
    pub crowdsec_decisions: IntGaugeVec,
    pub crowdsec_skipped: IntCounterVec,
    pub crowdsec_pulls: IntCounterVec,
    pub crowdsec_pushed: IntCounterVec,
}

/// A registry that keeps the names of what it holds: a label vector without a sample is missing
/// from `gather()`, but dashboards and alerts may name it all the same.
struct Reg {
    registry: Registry,
    names: Vec<String>,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &mut Reg, m: T) -> T {
    r.names.extend(m.desc().iter().map(|d| d.fq_name.clone()));
    r.registry.register(Box::new(m.clone())).expect("metric names are unique");
    m
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Reg { registry: Registry::new(), names: Vec::new() };
        let m = Self {
            bans_active: reg(
                &mut r,
                IntGauge::new("sipwall_bans_active", "Bans in force (addresses and networks).").unwrap(),
            ),
            map_entries: reg(
                &mut r,
                IntGaugeVec::new(Opts::new("sipwall_map_entries", "Entries in each BPF map."), &["map"]).unwrap(),
            ),
            map_capacity: reg(
                &mut r,
                IntGaugeVec::new(Opts::new("sipwall_map_capacity", "Entries each BPF map can hold."), &["map"])
                    .unwrap(),
            ),
            xdp_attached: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new(
                        "sipwall_xdp_attached",
                        "1 for each interface the XDP program is attached to, by mode; 0 for one that no longer exists.",
                    ),
                    &["iface", "mode"],
                )
                .unwrap(),
            ),
            feature_enabled: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new(
                        "sipwall_feature_enabled",
                        "1 for each optional part the kernel accepted and sipwall uses, 0 for one it refused \
                         (sip_inspector, egress_classifier, tcx).",
                    ),
                    &["feature"],
                )
                .unwrap(),
            ),
            sip_failures_answered: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_sip_failures_answered_total",
                        "SIP failures (403, 404) the host answered, read on egress.",
                    ),
                    &["status"],
                )
                .unwrap(),
            ),
            sip_scanner_packets: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_sip_scanner_packets_total",
                        "SIP packets the inspector dropped for a scanner signature, by signature of the rules \
                         in force (unknown: replaced by a reload).",
                    ),
                    &["signature"],
                )
                .unwrap(),
            ),
            sip_method_limit_events: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_sip_method_limit_events_total",
                        "Reports of a source going over a per-method SIP limit (method_limits, sampled per source).",
                    ),
                    &["method"],
                )
                .unwrap(),
            ),
            rate_limit_events: reg(
                &mut r,
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
                &mut r,
                IntCounterVec::new(
                    Opts::new("sipwall_rules_reloads_total", "Rules reloads by result (applied, rejected, failed)."),
                    &["result"],
                )
                .unwrap(),
            ),
            rules_loaded_timestamp: reg(
                &mut r,
                IntGauge::new(
                    "sipwall_rules_loaded_timestamp_seconds",
                    "When the rules in force were applied (Unix time).",
                )
                .unwrap(),
            ),
            blocklist_healthy: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new(
                        "sipwall_blocklist_healthy",
                        "0 for a blocklist file that could not be read whole (its last good version stays in force), 1 otherwise.",
                    ),
                    &["file"],
                )
                .unwrap(),
            ),
            store_healthy: reg(
                &mut r,
                IntGauge::new(
                    "sipwall_store_healthy",
                    "1 while the ban store on disk holds every ban in force; 0 when it could not be opened or written (bans are enforced all the same).",
                )
                .unwrap(),
            ),
            bans_refused: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_bans_refused_total",
                        "Bans not made, by who asked and why: full (the ban table is full; bans in force are never evicted), allow_listed, error.",
                    ),
                    &["source", "reason"],
                )
                .unwrap(),
            ),
            ban_actions: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new("sipwall_ban_actions_total", "Bans added, lifted and expired, by who asked."),
                    &["action", "source"],
                )
                .unwrap(),
            ),
            log_lines: reg(
                &mut r,
                IntCounterVec::new(Opts::new("sipwall_log_lines_total", "Log lines read, by jail."), &["jail"]).unwrap(),
            ),
            log_lines_malformed: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_log_lines_malformed_total",
                        "Log lines not read as written: too_long (over 64 KiB, skipped unjudged), invalid_utf8 (bytes replaced, then judged).",
                    ),
                    &["jail", "reason"],
                )
                .unwrap(),
            ),
            log_source_up: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new("sipwall_log_source_up", "1 while a log source is being read, 0 while missing or failing."),
                    &["jail", "source"],
                )
                .unwrap(),
            ),
            failures: reg(
                &mut r,
                IntCounterVec::new(Opts::new("sipwall_failures_total", "Failures counted, by jail."), &["jail"])
                    .unwrap(),
            ),
            failures_skipped: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_failures_skipped_total",
                        "Failures not counted: ignored (allow list, ignore, own address), already_banned, \
                         hostname (a name, never resolved), ambiguous (several addresses could be the source), \
                         unproven (a forged packet could produce it; the jail has no trust_unproven), known_good \
                         (unproven evidence against a source that authenticated), duplicate (another source of the \
                         jail reported the same failure).",
                    ),
                    &["jail", "reason"],
                )
                .unwrap(),
            ),
            known_good: reg(
                &mut r,
                IntGauge::new(
                    "sipwall_known_good_sources",
                    "Sources known good: they authenticated (a challenged REGISTER or INVITE answered 2xx).",
                )
                .unwrap(),
            ),
            sip_proofs: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_sip_proofs_total",
                        "Requests that proved their source receives the host's packets, by the token they echoed: \
                         nonce (of a challenge), to_tag (of an answer).",
                    ),
                    &["token"],
                )
                .unwrap(),
            ),
            bans_total: reg(
                &mut r,
                IntCounterVec::new(Opts::new("sipwall_bans_total", "Bans issued, by jail."), &["jail"]).unwrap(),
            ),
            ban_latency: reg(
                &mut r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "sipwall_ban_latency_seconds",
                        "From reading the log line (or rate-limit report) that completes a ban to the ban in the kernel.",
                    )
                    .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
                )
                .unwrap(),
            ),
            webhook: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_webhook_deliveries_total",
                        "Ban notifications to the webhook: delivered, retried, failed (gave up), dropped (queue full).",
                    ),
                    &["result"],
                )
                .unwrap(),
            ),
            mail: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_mail_deliveries_total",
                        "Alert mails (one per event, or one per digest): delivered, retried, failed (gave up), dropped (queue full).",
                    ),
                    &["result"],
                )
                .unwrap(),
            ),
            feed_entries: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new("sipwall_feed_entries", "Networks of each blocklist feed's list in force."),
                    &["feed"],
                )
                .unwrap(),
            ),
            feed_last_success: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new(
                        "sipwall_feed_last_success_timestamp_seconds",
                        "When each blocklist feed last answered with a list in force (200 applied, or 304) (Unix time).",
                    ),
                    &["feed"],
                )
                .unwrap(),
            ),
            feed_failures: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_feed_failures_total",
                        "Failed refreshes of each blocklist feed (its last good list stays in force), by reason: network, status, too_large, format, key_file, apply, client.",
                    ),
                    &["feed", "reason"],
                )
                .unwrap(),
            ),
            feed_lines_skipped: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_feed_lines_skipped_total",
                        "Entries of blocklist feed answers skipped as not an address or CIDR.",
                    ),
                    &["feed"],
                )
                .unwrap(),
            ),
            crowdsec_up: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new(
                        "sipwall_crowdsec_up",
                        "1 while the last request to CrowdSec's Local API worked, by role: bouncer (pulls decisions), machine (pushes bans).",
                    ),
                    &["role"],
                )
                .unwrap(),
            ),
            crowdsec_decisions: reg(
                &mut r,
                IntGaugeVec::new(
                    Opts::new(
                        "sipwall_crowdsec_decisions",
                        "CrowdSec decisions held from the decision stream, by origin (crowdsec, cscli, CAPI, lists, …); those refused are also in sipwall_crowdsec_decisions_skipped_total.",
                    ),
                    &["origin"],
                )
                .unwrap(),
            ),
            crowdsec_skipped: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_crowdsec_decisions_skipped_total",
                        "CrowdSec decisions not enforced, by reason: type, scope, origin, invalid, expired, own (a ban this host pushed), allow_listed, refused.",
                    ),
                    &["reason"],
                )
                .unwrap(),
            ),
            crowdsec_pulls: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_crowdsec_pulls_total",
                        "Pulls of CrowdSec's decision stream, by result: ok, network, denied, status, answer.",
                    ),
                    &["result"],
                )
                .unwrap(),
            ),
            crowdsec_pushed: reg(
                &mut r,
                IntCounterVec::new(
                    Opts::new(
                        "sipwall_crowdsec_pushed_total",
                        "Jail bans pushed to CrowdSec as alerts, by result: sent, failed (retried later), rejected (refused by the Local API, dropped), dropped (queue full), unproven (never pushed).",
                    ),
                    &["result"],
                )
                .unwrap(),
            ),
            registry: r.registry,
            registered: r.names,
        };
        // every result from the start: an alert on `increase()` sees a first failure only if its
        // series was there, at 0, before it
        for result in DELIVERY_RESULTS {
            m.webhook.with_label_values(&[result]);
            m.mail.with_label_values(&[result]);
        }
        m
    }
}

/// The `result` label of `sipwall_webhook_deliveries_total` and `sipwall_mail_deliveries_total`.
pub const DELIVERY_RESULTS: [&str; 4] = ["delivered", "retried", "failed", "dropped"];

impl Metrics {
    /// Every metric family the exposition can hold, sorted: the registered ones, whether or not
    /// they have a sample yet, and the kernel counters of [`kernel::FAMILIES`]. Histograms appear
    /// by their base name (`_bucket`, `_sum` and `_count` follow from it).
    pub fn family_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.registered.clone();
        names.extend(kernel::FAMILIES.iter().map(|&n| n.to_owned()));
        names.sort();
        names
    }

    /// The exposition text: registered metrics followed by the kernel counters.
    pub fn render(&self, kernel: Vec<prometheus::proto::MetricFamily>) -> String {
        let mut families = self.registry.gather();
        // the text encoder refuses a family without a sample (no packet counted yet, no service)
        families.extend(kernel.into_iter().filter(|f| !f.get_metric().is_empty()));
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out).expect("text encoding");
        String::from_utf8(out).expect("utf-8")
    }
}
