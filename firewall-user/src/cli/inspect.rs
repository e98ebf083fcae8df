//! `sipwall why ADDR` and `sipwall status`: questions to the running daemon.

use std::{path::Path, time::SystemTime};

use clap::Args;

use super::bans::send;
use crate::{
    control::protocol::{Request, StatusView, WhyView},
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
        Some(e) if e > now => format!(
            "until {} ({} left)",
            when(e),
            duration::format(Some(std::time::Duration::from_secs((e - now).div_ceil(1000))))
        ),
        Some(e) => format!("expired {}", when(e)),
        None => "forever".into(),
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
    for p in &v.pending {
        out.push_str(&format!(
            "  counting: {} has {} of {} failures within {}\n",
            p.jail,
            p.failures,
            p.maxretry,
            duration::format(Some(std::time::Duration::from_secs(p.findtime_secs)))
        ));
        for l in &p.lines {
            out.push_str(&format!("    > {l}\n"));
        }
    }
    for p in &v.unproven {
        out.push_str(&format!(
            "  not counted: {} saw {} unproven failures within {} (a forged packet could produce them)\n",
            p.jail,
            p.failures,
            duration::format(Some(std::time::Duration::from_secs(p.findtime_secs)))
        ));
        for l in &p.lines {
            out.push_str(&format!("    > {l}\n"));
        }
    }
    if !v.history.is_empty() {
        out.push_str("  ban history, newest first:\n");
        for h in &v.history {
            let length = match h.expires_unix_ms {
                Some(e) => {
                    duration::format(Some(std::time::Duration::from_millis(e.saturating_sub(h.created_unix_ms))))
                }
                None => "forever".into(),
            };
            out.push_str(&format!("    {} by {} for {length}: {}\n", when(h.created_unix_ms), h.jail, h.reason));
            if !h.users.is_empty() {
                out.push_str(&format!("      users tried: {}\n", h.users.join(", ")));
            }
            for l in &h.lines {
                out.push_str(&format!("      > {l}\n"));
            }
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
    for j in &v.jails {
        out.push_str(&format!(
            "\njail {} ({}): maxretry {} within {}, bantime {}{}\n",
            j.name,
            j.detector,
            j.maxretry,
            duration::format(Some(std::time::Duration::from_secs(j.findtime_secs))),
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
