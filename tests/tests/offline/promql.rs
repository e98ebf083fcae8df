//! Just enough of the files in `dist/` to check them: the PromQL expressions of the Grafana
//! dashboard and of the alert rules, the series of the rules' unit tests, and the metric names
//! in them.

use std::collections::BTreeSet;

use serde_json::Value;

/// The metric names an expression selects that start with `prefix` (string literals skipped,
/// so a label value such as `reason=~"sip_.*"` is no name).
pub fn metric_names(expr: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while let Some((i, c)) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                match d {
                    '\\' if !escaped => escaped = true,
                    d if d == c && !escaped => break,
                    _ => escaped = false,
                }
            }
        } else if ident(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !ident(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            let word = &expr[i..end];
            if word.starts_with(prefix) {
                out.insert(word.to_owned());
            }
        }
    }
    out
}

/// The queries of a Grafana dashboard: each panel's targets (rows' panels included) and each
/// templating variable's query, with what holds them (for messages).
pub fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((format!("panel {title:?}"), e.to_owned()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dash["panels"], &mut out);
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let q = match &v["query"] {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("query").and_then(Value::as_str).unwrap_or_default().to_owned(),
            _ => continue,
        };
        if v["type"] == "query" {
            out.push((format!("variable {}", v["name"]), q));
        }
    }
    out
}

/// The `expr` of each rule of a rules file, with the rule's name: written on one line or as
/// a YAML block scalar (`>-`, `|`) on the more indented lines that follow.
pub fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut name = String::new();
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let key = trimmed.trim_start_matches("- ");
        if let Some(v) = key.strip_prefix("alert:").or_else(|| key.strip_prefix("record:")) {
            name = v.trim().to_owned();
        }
        let Some(v) = trimmed.strip_prefix("expr:") else { continue };
        let v = v.trim();
        if !v.starts_with(['>', '|']) {
            out.push((name.clone(), v.to_owned()));
            continue;
        }
        let indent = line.len() - trimmed.len();
        let block: Vec<&str> = lines[n + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .map(|l| l.trim())
            .collect();
        out.push((name.clone(), block.join(" ").trim().to_owned()));
    }
    out
}

/// The series of a promtool test file's `input_series`.
pub fn test_series(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- series:"))
        .map(|s| s.trim().trim_matches(['\'', '"']).to_owned())
        .collect()
}

#[test]
fn names_are_read_from_expressions_and_not_from_strings() {
    let e = r#"histogram_quantile(0.99, sum by (le) (rate(sipwall_ban_latency_seconds_bucket{job=~"sipwall_x"}[5m])))
        / on (instance) sipwall_bans_active unless sipwall:recorded or other_metric{reason=~'sipwall_y'}"#;
    let got: Vec<String> = metric_names(e, "sipwall_").into_iter().collect();
    assert_eq!(got, ["sipwall_ban_latency_seconds_bucket", "sipwall_bans_active"]);
}

#[test]
fn block_and_inline_exprs_are_read() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n      - alert: B\n        expr: >-\n          a_total\n          or b\n        for: 2m\n      - record: c:d\n        expr: |\n          sum(e)\n";
    assert_eq!(
        rule_exprs(yaml),
        [("A".into(), "up == 0".into()), ("B".into(), "a_total or b".into()), ("c:d".into(), "sum(e)".into())]
    );
}
