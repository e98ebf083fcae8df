//! A jail's ban as a CrowdSec alert with one decision: scenario `sipwall/<jail>`, the source,
//! the failures as events.

use ipnet::IpNet;
use serde_json::{json, Value};

use super::decisions::go_duration;
use crate::{daemon::alerts::Alert, rules::crowdsec::SCENARIO_PREFIX};

/// A ban without end is pushed for ten years: decisions always have a duration.
pub const FOREVER_SECS: u64 = 10 * 365 * 86_400;

/// Whether an alert is one this host pushes: a ban or a longer ban by a jail of `pushes`, on
/// proven evidence, with time left.
pub fn pushable(a: &Alert, pushes: impl Fn(&str) -> bool, now_ms: u64) -> Result<(), &'static str> {
    use crate::rules::alerts::EventKind;
    let Some(j) = &a.jail else { return Err("manual") };
    if !matches!(a.kind, EventKind::Ban | EventKind::Reban) {
        return Err("not_a_ban");
    }
    if j.evidence != crate::detection::detect::Proof::Proven.name() {
        return Err("unproven");
    }
    if !pushes(&j.jail) {
        return Err("jail");
    }
    if a.expires_unix_ms.is_some_and(|e| e <= now_ms + 1000) {
        return Err("expired");
    }
    Ok(())
}

/// `scope` and `value` of a target: `Ip` for one address, `Range` for a network.
fn scope(t: &IpNet) -> (&'static str, String) {
    if t.prefix_len() == t.max_prefix_len() {
        ("Ip", t.addr().to_string())
    } else {
        ("Range", t.to_string())
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(crate::datapath::clock::from_unix_ms(ms)).to_string()
}

/// The alert `POST /v1/alerts` takes, for a ban a jail made. Its decision lasts the time the
/// ban has left, whole seconds rounded down, so it never outlasts the ban it mirrors.
pub fn of(a: &Alert, now_ms: u64) -> Value {
    let j = a.jail.as_ref().expect("pushable alerts come from a jail");
    let scenario = format!("{SCENARIO_PREFIX}{}", j.jail);
    let secs = a.expires_unix_ms.map_or(FOREVER_SECS, |e| e.saturating_sub(now_ms) / 1000).max(1);
    let (scope, value) = scope(&a.target);
    let at = rfc3339(a.at_unix_ms);
    let mut source = json!({ "scope": scope, "value": value });
    source[if scope == "Ip" { "ip" } else { "range" }] = json!(value);
    let meta = |k: &str, v: &str| json!({ "key": k, "value": v });
    let mut events = vec![json!({
        "timestamp": at,
        "meta": [
            meta("source_ip", &value),
            meta("service", &j.jail),
            meta("evidence", j.evidence),
            meta("users", &j.users.join(", ")),
        ],
    })];
    events.extend(j.lines.iter().map(|l| json!({ "timestamp": at, "meta": [meta("log_line", l)] })));
    json!({
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": format!("{value} banned by sipwall jail {} after {} failures ({})", j.jail, j.failures, a.reason),
        "events_count": j.failures,
        "start_at": at,
        "stop_at": at,
        "capacity": j.failures,
        "leakspeed": "0s",
        "simulated": false,
        "remediation": true,
        "events": events,
        "source": source,
        "decisions": [{
            "origin": "crowdsec",
            "type": "ban",
            "scope": scope,
            "value": value,
            "duration": go_duration(secs),
            "scenario": scenario,
        }],
    })
}
