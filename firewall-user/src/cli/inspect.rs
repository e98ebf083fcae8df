//! `sipwall why ADDR` and `sipwall status`: questions to the running daemon.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use clap::Args;

use super::bans::send;
use crate::{
    control::protocol::{PendingView, Request, StatusView, WhyView},
    datapath::clock,
    duration,
};

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The address to explain.
    pub address: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(clock::from_unix_ms(ms)).to_string()
}

fn left(expires: Option<u64>, now: u64) -> String {
    match expires {
        Some(e) if e > now => format!("until {} ({} left)", when(e), secs((e - now).div_ceil(1000))),
        Some(e) => format!("expired {}", when(e)),
        None => "forever".into(),
    }
}

/// `n` seconds the way rules files write durations (`10m`).
fn secs(n: u64) -> String {
    duration::format(Some(Duration::from_secs(n)))
}

/// What a jail holds against the address: failures it counts, or unproven ones it set aside.
fn failures(p: &PendingView, counted: bool) -> String {
    let within = secs(p.findtime_secs);
    if counted {
        format!("counting: {} has {} of {} failures within {within}", p.jail, p.failures, p.maxretry)
    } else {
        format!(
            "not counted: {} saw {} unproven failures within {within} (a forged packet could produce them)",
            p.jail, p.failures
        )
    }
}

/// Log lines quoted under what they led to, `indent` deep.
fn quote(out: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        out.push_str(&format!("{indent}> {l}\n"));
    }
}

pub fn why(socket: &Path, a: &WhyArgs) -> i32 {
    let r = match send(socket, Request::Why { target: a.address.clone() }) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let v = r.why.unwrap_or_default();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return 0;
    }
    print!("{}", render_why(&r.message, &v, clock::unix_ms(SystemTime::now())));
    0
}

pub fn render_why(verdict: &str, v: &WhyView, now: u64) -> String {
    let mut out = format!("{verdict}\n");
    if let Some(a) = &v.allowed_by {
        out.push_str(&format!("  allow list: {a}\n"));
    }
    for (jail, n) in &v.ignored_by {
        out.push_str(&format!("  ignored by jail {jail}: {n}\n"));
    }
    if let Some(b) = &v.blocked_by {
        out.push_str(&format!("  blocked network: {b}\n"));
    }
    for b in &v.bans {
        out.push_str(&format!("  ban: {} {} by {}: {}\n", b.target, left(b.expires_unix_ms, now), b.source, b.reason));
    }
    if let Some((how, until)) = &v.known_good {
        out.push_str(&format!("  known good: {how}, {}\n", left(Some(*until), now)));
    }
    if let Some(t) = &v.proven_by {
        out.push_str(&format!("  proven: it echoed the host's {t} within the last hour\n"));
    }
    let counted = v.pending.iter().map(|p| (p, true));
    let set_aside = v.unproven.iter().map(|p| (p, false));
    for (p, counted) in counted.chain(set_aside) {
        out.push_str(&format!("  {}\n", failures(p, counted)));
        quote(&mut out, "    ", &p.lines);
    }
    if !v.history.is_empty() {
        out.push_str("  ban history, newest first:\n");
        for h in &v.history {
            let length = match h.expires_unix_ms {
                Some(e) => duration::format(Some(Duration::from_millis(e.saturating_sub(h.created_unix_ms)))),
                None => "forever".into(),
            };
            out.push_str(&format!("    {} by {} for {length}: {}\n", when(h.created_unix_ms), h.jail, h.reason));
            if !h.users.is_empty() {
                out.push_str(&format!("      users tried: {}\n", h.users.join(", ")));
            }
            quote(&mut out, "      ", &h.lines);
        }
    }
    out
}

pub fn status(socket: &Path, a: &StatusArgs) -> i32 {
    let r = match send(socket, Request::Status) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Some(v) = r.status else {
        eprintln!("sipwall: the daemon sent no status");
        return 1;
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print!("{}", render_status(&v));
    }
    0
}

pub fn render_status(v: &StatusView) -> String {
    let mut out = format!("rules: {}\nbans active: {}\n", v.rules, v.bans_active);
    if !v.kernel.is_empty() {
        let on = |e: bool| if e { "on" } else { "OFF" };
        let features: Vec<String> = v.features.iter().map(|f| format!("{} {}", f.name, on(f.enabled))).collect();
        out.push_str(&format!("kernel: Linux {}; {}\n", v.kernel, features.join(", ")));
    }
    out.push_str(&format!("known good sources: {}\n", v.known_good));
    if !v.asterisk.is_empty() {
        out.push('\n');
        for l in &v.asterisk {
            out.push_str(l);
            out.push('\n');
        }
    }
    if let Some(c) = &v.crowdsec {
        out.push_str(&format!("\ncrowdsec: {}\n", c.api_url));
        for r in &c.roles {
            let state = match (&r.problem, r.up) {
                (_, true) => "up".to_owned(),
                (Some(p), false) => format!("DOWN: {p}"),
                (None, false) => "not connected yet".to_owned(),
            };
            out.push_str(&format!("  {}: {state}; {}\n", r.role, r.detail));
        }
    }
    for j in &v.jails {
        out.push_str(&format!(
            "\njail {} ({}): maxretry {} within {}, bantime {}{}\n",
            j.name,
            j.detector,
            j.maxretry,
            secs(j.findtime_secs),
            j.bantime,
            if j.increment { " (longer for repeat offenders)" } else { "" }
        ));
        out.push_str(&format!(
            "  lines read {}, failures {}, sources being counted {}, with unproven failures set aside {}, bans {} \
             ({} active)\n",
            j.lines, j.failures, j.tracked, j.unproven, j.bans_total, j.bans_active
        ));
        for s in &j.sources {
            let state = match (&s.problem, s.up) {
                (_, true) => "reading".to_owned(),
                (Some(p), false) => format!("DOWN: {p}"),
                (None, false) => "DOWN".to_owned(),
            };
            out.push_str(&format!("  source {}: {state}, {} lines\n", s.source, s.lines));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HistoryEntry;

    fn pending(jail: &str, failures: u32, lines: &[&str]) -> PendingView {
        PendingView {
            jail: jail.into(),
            failures,
            maxretry: 5,
            findtime_secs: 600,
            lines: lines.iter().map(|l| l.to_string()).collect(),
            users: vec![],
        }
    }

    #[test]
    fn why_quotes_the_lines_under_each_jail_and_ban() {
        let v = WhyView {
            pending: vec![pending("sshd", 2, &["Failed password for root", "Failed password for admin"])],
            unproven: vec![pending("asterisk", 3, &["Wrong password"])],
            history: vec![HistoryEntry {
                target: "192.0.2.7/32".parse().unwrap(),
                jail: "sshd".into(),
                created_unix_ms: 0,
                expires_unix_ms: Some(3_600_000),
                failures: 5,
                earlier: 0,
                reason: "5 failures".into(),
                lines: vec!["Invalid user test".into()],
                users: vec!["root".into(), "test".into()],
            }],
            ..WhyView::default()
        };
        assert_eq!(
            render_why("not dropped", &v, 0),
            "not dropped\n\
             \x20 counting: sshd has 2 of 5 failures within 10m\n\
             \x20   > Failed password for root\n\
             \x20   > Failed password for admin\n\
             \x20 not counted: asterisk saw 3 unproven failures within 10m (a forged packet could produce them)\n\
             \x20   > Wrong password\n\
             \x20 ban history, newest first:\n\
             \x20   1970-01-01T00:00:00Z by sshd for 1h: 5 failures\n\
             \x20     users tried: root, test\n\
             \x20     > Invalid user test\n"
        );
    }
}
