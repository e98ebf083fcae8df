//! The monitoring files the package installs from `dist/`: the alert rules pass `promtool check
//! rules` and their unit tests (`promtool test rules`), each alert is tested firing and quiet,
//! the dashboard's expressions parse and follow its variables, and every metric name the
//! dashboard and the rules use is one the daemon exports.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use sipwall::metrics::Metrics;
use sipwall_tests::tools;

use crate::promql::{dashboard_queries, metric_names, rule_exprs, test_series};

/// The alerts of `dist/prometheus/alerts.yml`.
const ALERTS: [&str; 11] = [
    "SipwallDown",
    "SipwallNotAttached",
    "SipwallLogSourceDown",
    "SipwallMapNearlyFull",
    "SipwallKernelEventsLost",
    "SipwallStoreUnhealthy",
    "SipwallBanStorm",
    "SipwallWebhookFailing",
    "SipwallMailFailing",
    "SipwallFeedFailing",
    "SipwallCrowdsecDown",
];

/// The families the dashboard shows: drops by reason and service, bans by jail, ban latency,
/// rate-limited sources, map fill, log sources, SIP scanners and wire failures, and health.
const ON_THE_DASHBOARD: [&str; 12] = [
    "sipwall_packets_total",
    "sipwall_bans_total",
    "sipwall_ban_latency_seconds_bucket",
    "sipwall_rate_limit_events_total",
    "sipwall_map_entries",
    "sipwall_map_capacity",
    "sipwall_log_source_up",
    "sipwall_sip_scanner_packets_total",
    "sipwall_sip_failures_answered_total",
    "sipwall_xdp_attached",
    "sipwall_store_healthy",
    "sipwall_kernel_events_total",
];

fn dist(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist").join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(dist(p)).unwrap_or_else(|e| panic!("reading dist/{p}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("grafana/sipwall.json")).expect("dist/grafana/sipwall.json is JSON")
}

/// Runs promtool; whether it succeeded, and what it wrote.
fn promtool(args: &[&Path]) -> (bool, String) {
    let out = Command::new("promtool").args(args).output().expect("run promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    if !tools::available("promtool", "prometheus", "monitoring::alert_rules_pass_promtool_check_and_their_unit_tests") {
        return;
    }
    let rules = dist("prometheus/alerts.yml");
    let (ok, out) = promtool(&[Path::new("check"), Path::new("rules"), &rules]);
    assert!(ok, "promtool check rules {}:\n{out}", rules.display());
    assert!(out.contains(&format!("SUCCESS: {} rules found", ALERTS.len())), "{out}");
    let tests = dist("prometheus/alerts_test.yml");
    let (ok, out) = promtool(&[Path::new("test"), Path::new("rules"), &tests]);
    assert!(ok, "promtool test rules {}:\n{out}", tests.display());
}

#[test]
fn every_alert_is_documented_and_tested_firing_and_quiet() {
    let rules = read("prometheus/alerts.yml");
    let names: BTreeSet<String> = rule_exprs(&rules).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ALERTS.iter().map(|a| a.to_string()).collect(), "the alerts of alerts.yml");
    for chunk in rules.split("- alert: ").skip(1) {
        let name = chunk.lines().next().unwrap_or_default();
        for key in ["for: ", "severity: ", "summary: ", "description: "] {
            assert!(chunk.contains(key), "alert {name} has no `{}`", key.trim());
        }
    }
    let tests = read("prometheus/alerts_test.yml");
    let lines: Vec<&str> = tests.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let (mut firing, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = l.strip_prefix("alertname: ") else { continue };
        match (lines.get(i + 1).copied(), lines.get(i + 2).copied()) {
            (Some("exp_alerts: []"), _) => quiet.insert(name.to_owned()),
            (Some("exp_alerts:"), Some(next)) if next.starts_with("- exp_labels") => firing.insert(name.to_owned()),
            other => panic!("alertname {name}: expected exp_alerts after it, found {other:?}"),
        };
    }
    for a in ALERTS {
        assert!(firing.contains(a), "alerts_test.yml has no case where {a} fires");
        assert!(quiet.contains(a), "alerts_test.yml has no case where {a} stays quiet");
    }
}

/// A dashboard query with Grafana's variables replaced by values, as Prometheus would get it.
fn substituted(expr: &str) -> String {
    let mut e = expr.to_owned();
    for (var, value) in [
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
        ("$job", "sipwall"),
        ("$instance", "pbx:9977"),
    ] {
        e = e.replace(var, value);
    }
    e
}

/// The selectors of a query (of `sipwall_*` and of `up`) that do not keep to the job and the
/// instance chosen on the dashboard.
fn unfiltered(q: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for (i, _) in q.char_indices() {
        let rest = &q[i..];
        if q[..i].ends_with(ident) || !(rest.starts_with("sipwall_") || rest.starts_with("up{")) {
            continue;
        }
        let name: String = rest.chars().take_while(|&c| ident(c)).collect();
        if !rest[name.len()..].starts_with(r#"{job=~"$job",instance=~"$instance""#) {
            out.push(name);
        }
    }
    out
}

#[test]
fn dashboard_expressions_parse_and_follow_the_job_and_instance() {
    assert_eq!(
        unfiltered(r#"up{job=~"$job",instance=~"$instance"} + sipwall_x{job="a"} / sipwall_log_source_up"#),
        ["sipwall_x", "sipwall_log_source_up"]
    );
    let queries: Vec<(String, String)> =
        dashboard_queries(&dashboard()).into_iter().filter(|(_, q)| !q.starts_with("label_values(")).collect();
    assert!(queries.len() >= 20, "{queries:?}");
    for (panel, q) in &queries {
        let loose = unfiltered(q);
        assert!(loose.is_empty(), "{panel}: {loose:?} without the $job and $instance matchers: {q}");
        assert!(!substituted(q).contains('$'), "{panel}: a variable the dashboard does not define: {q}");
    }
    if !tools::available("promtool", "prometheus", "monitoring::dashboard_expressions_parse (the promtool part)") {
        return;
    }
    // promtool parses PromQL in rules files: each query becomes a recording rule
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (panel, q)) in queries.iter().enumerate() {
        let expr = substituted(q).replace('\'', "''");
        yaml += &format!("      # {panel}\n      - record: dashboard:query_{i}\n        expr: '{expr}'\n");
    }
    let file = std::env::temp_dir().join(format!("sipwall-dashboard-{}.yml", std::process::id()));
    std::fs::write(&file, &yaml).unwrap();
    let (ok, out) = promtool(&[Path::new("check"), Path::new("rules"), &file]);
    std::fs::remove_file(&file).unwrap();
    assert!(ok, "the dashboard's queries as promtool reads them:\n{yaml}\n{out}");
}

#[test]
fn every_metric_name_used_is_exported_by_the_daemon() {
    let m = Metrics::default();
    let exported: BTreeSet<String> = m.family_names().into_iter().collect();
    // a histogram's series are its name with _bucket, _sum and _count
    let histograms: BTreeSet<String> = m
        .render(Vec::new())
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" histogram"))
        .map(str::to_owned)
        .collect();
    assert!(histograms.contains("sipwall_ban_latency_seconds"), "{histograms:?}");
    let known = |n: &str| {
        exported.contains(n)
            || ["_bucket", "_sum", "_count"].iter().any(|s| n.strip_suffix(s).is_some_and(|b| histograms.contains(b)))
    };
    for wrong in ["sipwall_ban_total", "sipwall_bans_active_count", "sipwall_ban_latency_seconds_total"] {
        assert!(!known(wrong), "{wrong} is no exported name");
    }

    let named = |from: String, text: &str| -> Vec<(String, String)> {
        metric_names(text, "sipwall_").into_iter().map(|n| (from.clone(), n)).collect()
    };
    let mut used: Vec<(String, String)> = dashboard_queries(&dashboard())
        .iter()
        .flat_map(|(panel, q)| named(format!("sipwall.json {panel}"), q))
        .collect();
    let on_dashboard: BTreeSet<String> = used.iter().map(|(_, n)| n.clone()).collect();
    for (alert, e) in rule_exprs(&read("prometheus/alerts.yml")) {
        used.extend(named(format!("alerts.yml {alert}"), &e));
    }
    for s in test_series(&read("prometheus/alerts_test.yml")) {
        used.extend(named("alerts_test.yml".to_owned(), &s));
    }
    let unknown: Vec<&(String, String)> = used.iter().filter(|(_, n)| !known(n)).collect();
    assert!(
        unknown.is_empty(),
        "metric names the daemon does not export (firewall-user/src/metrics): {unknown:?}\nexported: {exported:?}"
    );
    for want in ON_THE_DASHBOARD {
        assert!(on_dashboard.contains(want), "the dashboard does not show {want}");
    }
}

/// The value of `key:` in a rule's text, up to the end of its line.
fn field<'a>(rule: &'a str, key: &str) -> &'a str {
    rule.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim).unwrap_or_default()
}

#[test]
fn docs_list_each_alert_as_the_rules_define_it() {
    let rules = read("prometheus/alerts.yml");
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let exprs = rule_exprs(&rules);
    assert_eq!(exprs.len(), ALERTS.len());
    for ((name, expr), rule) in exprs.iter().zip(rules.split("- alert: ").skip(1)) {
        // a `|` in a table cell is written `\|`
        let cell = expr.replace('|', "\\|");
        let row = format!("| `{name}` | `{cell}` | {} | {} |", field(rule, "for:"), field(rule, "severity:"));
        assert!(doc.contains(&row), "docs/monitoring.md has no row\n{row}\nas alerts.yml defines the alert");
        assert!(
            doc.contains(&format!("### `{name}`\n")),
            "docs/monitoring.md does not say what to do when {name} fires"
        );
    }
}
