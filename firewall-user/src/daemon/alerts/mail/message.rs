//! The text of alert mails, in fail2ban's manner: a subject like
//! `[sipwall] asterisk: banned 192.0.2.66 from HOST` and a plain text body (never HTML: the log
//! lines and the users are the attacker's text).

use std::{sync::Arc, time::Duration};

use ipnet::IpNet;

use super::super::{rfc3339, Alert};
use crate::{duration, rules::alerts::EventKind};

/// Longest log line shown, in bytes; a longer one is cut and ends in `…`.
pub const LINE_BYTES: usize = 1024;
/// Log lines shown per ban at most.
pub const LINES: usize = 10;
/// Events of a digest shown with their facts and lines; every event has a line of the list.
pub const DIGEST_DETAILED: usize = 50;

/// Events by kind: a digest's events past those it lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub bans: usize,
    pub unbans: usize,
    pub expiries: usize,
}

impl Tally {
    pub fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::Ban | EventKind::Reban => self.bans += 1,
            EventKind::Unban => self.unbans += 1,
            EventKind::Expire => self.expiries += 1,
        }
    }

    fn total(&self) -> usize {
        self.bans + self.unbans + self.expiries
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub body: String,
}

/// `192.0.2.66` for a single address, the prefix otherwise.
pub fn shown(target: &IpNet) -> String {
    if target.prefix_len() == target.max_prefix_len() {
        target.addr().to_string()
    } else {
        target.to_string()
    }
}

/// Text someone else wrote, made safe for one line of a plain text mail: control characters
/// become `?`, and it is cut to [`LINE_BYTES`].
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(LINE_BYTES + 3));
    for c in text.chars() {
        if out.len() + c.len_utf8() > LINE_BYTES {
            out.push('…');
            break;
        }
        out.push(if c.is_control() && c != '\t' { '?' } else { c });
    }
    out
}

fn who(a: &Alert) -> &str {
    a.jail.as_ref().map_or(a.source.as_str(), |j| j.jail.as_str())
}

/// What happened, for a subject or a digest line: `banned 192.0.2.66`.
fn happened(a: &Alert) -> String {
    let t = shown(&a.target);
    match a.kind {
        EventKind::Ban => format!("banned {t}"),
        EventKind::Reban => format!("banned {t} again"),
        EventKind::Unban => format!("unbanned {t}"),
        EventKind::Expire => format!("ban of {t} expired"),
    }
}

/// The facts of one event, as `key: value` lines, then its log lines if `lines`.
fn facts(a: &Alert, lines: bool, out: &mut String) {
    let mut row = |k: &str, v: &str| out.push_str(&format!("{k:<14}{v}\n"));
    row("event:", a.kind.name());
    row("target:", &a.target.to_string());
    row("time:", &rfc3339(a.at_unix_ms));
    row("by:", &a.source);
    row("reason:", &clean(&a.reason));
    let until = a.expires_unix_ms.map_or_else(|| "never".to_owned(), rfc3339);
    match a.kind {
        EventKind::Ban | EventKind::Reban => row("expires:", &until),
        EventKind::Unban => row("was until:", &until),
        EventKind::Expire => {}
    }
    if let Some(j) = &a.jail {
        row("bantime:", &duration::format(j.bantime));
        row("failures:", &j.failures.to_string());
        row("earlier bans:", &j.earlier.to_string());
        row("evidence:", j.evidence);
        if !j.users.is_empty() {
            let users: Vec<String> = j.users.iter().map(|u| clean(u)).collect();
            row("users tried:", &users.join(", "));
        }
        if lines && !j.lines.is_empty() {
            let shown_lines = &j.lines[j.lines.len().saturating_sub(LINES)..];
            out.push_str(&format!("\nThe log lines that led to the ban (the last {}):\n\n", shown_lines.len()));
            for l in shown_lines {
                out.push_str("    ");
                out.push_str(&clean(l));
                out.push('\n');
            }
        }
    }
}

fn whois_section(target: &IpNet, text: &str, out: &mut String) {
    out.push_str(&format!("\nwhois {}:\n\n", shown(target)));
    for l in text.lines() {
        out.push_str("    ");
        out.push_str(&clean(l));
        out.push('\n');
    }
}

const SIGNATURE: &str = "\n-- \nsipwall\n";

/// The mail of one event; `whois` is the whois text of its target, when asked for.
pub fn each(a: &Alert, host: &str, lines: bool, whois: Option<&str>) -> Text {
    let subject = match a.kind {
        EventKind::Ban | EventKind::Reban => format!("[sipwall] {}: {} from {host}", who(a), happened(a)),
        _ => format!("[sipwall] {}: {} on {host}", who(a), happened(a)),
    };
    let mut body = format!("sipwall on {host}: {}.\n\n", happened(a));
    facts(a, lines, &mut body);
    if let Some(w) = whois {
        whois_section(&a.target, w, &mut body);
    }
    body.push_str(SIGNATURE);
    Text { subject, body }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The digest of an interval's events (at least one), in the order they happened; `whois` holds
/// the whois text of some banned targets.
pub fn digest(
    events: &[Arc<Alert>],
    more: &Tally,
    host: &str,
    interval: Duration,
    lines: bool,
    whois: &[(IpNet, String)],
) -> Text {
    let mut all = *more;
    for a in events {
        all.count(a.kind);
    }
    let mut parts = Vec::new();
    for (n, one, many) in
        [(all.bans, "ban", "bans"), (all.unbans, "unban", "unbans"), (all.expiries, "expiry", "expiries")]
    {
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    let subject = format!("[sipwall] digest from {host}: {}", parts.join(", "));
    let mut body = format!("sipwall on {host}: {} in {}.\n\n", parts.join(", "), duration::format(Some(interval)));
    for a in events {
        body.push_str(&format!("{}  {}: {}\n", rfc3339(a.at_unix_ms), who(a), happened(a)));
    }
    if more.total() > 0 {
        body.push_str(&format!(
            "… and {} more, not listed (a digest lists {} events; `sipwall list` shows the bans in force)\n",
            more.total(),
            events.len()
        ));
    }
    for (i, a) in events.iter().take(DIGEST_DETAILED).enumerate() {
        body.push_str(&format!("\n{}. {}: {}\n\n", i + 1, who(a), happened(a)));
        facts(a, lines, &mut body);
    }
    if events.len() > DIGEST_DETAILED {
        body.push_str(&format!("\nThe first {DIGEST_DETAILED} events are shown in detail.\n"));
    }
    for (target, text) in whois {
        whois_section(target, text, &mut body);
    }
    body.push_str(SIGNATURE);
    Text { subject, body }
}
