//! Requests and responses on the control socket.

use serde::{Deserialize, Serialize};

use crate::{datapath::bans::Ban, store::HistoryEntry};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Ban an address or network; `duration` as `sipwall ban --for` takes it (None: forever).
    Ban {
        target: String,
        duration: Option<String>,
        reason: Option<String>,
    },
    Unban {
        target: String,
    },
    List,
    /// Why an address is (not) dropped: lists it is in, bans, failures counted, ban history.
    Why {
        target: String,
    },
    /// Jails, their sources, counters and active bans.
    Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    pub target: String,
    /// Unix ms; absent for permanent bans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_unix_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_secs: Option<u64>,
    pub created_unix_ms: u64,
    pub reason: String,
    pub source: String,
}

impl BanView {
    pub fn of(b: &Ban, now_unix_ms: u64) -> Self {
        Self {
            target: b.target.to_string(),
            expires_unix_ms: b.expires_unix_ms,
            remaining_secs: b.expires_unix_ms.map(|e| e.saturating_sub(now_unix_ms).div_ceil(1000)),
            created_unix_ms: b.created_unix_ms,
            reason: b.reason.clone(),
            source: b.source.clone(),
        }
    }
}

/// Failures a jail has counted against a source and not yet acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingView {
    pub jail: String,
    pub failures: u32,
    pub maxretry: u32,
    pub findtime_secs: u64,
    pub lines: Vec<String>,
    pub users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WhyView {
    pub address: String,
    /// The allow-list entry (or `this host`) that keeps it from ever being dropped or banned.
    pub allowed_by: Option<String>,
    /// Jails whose `ignore` list holds it: (jail, entry).
    pub ignored_by: Vec<(String, String)>,
    /// The blocked network holding it.
    pub blocked_by: Option<String>,
    /// Bans in force covering it.
    pub bans: Vec<BanView>,
    pub pending: Vec<PendingView>,
    /// Unproven failures the jails did not count (a forged packet could produce them).
    #[serde(default)]
    pub unproven: Vec<PendingView>,
    /// Known good (it authenticated): how, and until when (unix ms).
    #[serde(default)]
    pub known_good: Option<(String, u64)>,
    /// It proved it receives the host's packets (by the token it echoed) within the last hour:
    /// its log failures count as proven.
    #[serde(default)]
    pub proven_by: Option<String>,
    /// Its bans, newest first.
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceView {
    pub source: String,
    pub up: bool,
    pub lines: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailView {
    pub name: String,
    pub detector: String,
    pub findtime_secs: u64,
    pub maxretry: u32,
    /// `forever` or a duration like `6h`.
    pub bantime: String,
    pub increment: bool,
    pub sources: Vec<SourceView>,
    pub lines: u64,
    pub failures: u64,
    /// Sources with failures counted now.
    pub tracked: usize,
    /// Sources with unproven failures set aside now.
    #[serde(default)]
    pub unproven: usize,
    pub bans_total: u64,
    pub bans_active: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureView {
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub rules: String,
    pub bans_active: usize,
    pub jails: Vec<JailView>,
    /// The running kernel's release.
    #[serde(default)]
    pub kernel: String,
    /// The optional parts, by `sipwall_feature_enabled` label, and whether they are on.
    #[serde(default)]
    pub features: Vec<FeatureView>,
    /// Sources known good (they authenticated).
    #[serde(default)]
    pub known_good: usize,
    /// The link to CrowdSec's Local API, when `[crowdsec]` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crowdsec: Option<CrowdsecView>,
    /// What Asterisk's configuration gave the rules in force: its ports, trunks and notes, each
    /// with its file and line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asterisk: Vec<String>,
}

/// `[crowdsec]` as the daemon sees it: one entry per role it plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrowdsecView {
    pub api_url: String,
    pub roles: Vec<RoleView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleView {
    /// `bouncer` (pulls decisions) or `machine` (pushes bans).
    pub role: String,
    /// The last request worked.
    pub up: bool,
    /// What it did: decisions enforced and the last pull, or bans pushed and waiting.
    pub detail: String,
    /// Why the last request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// What happened, or what went wrong and what to do.
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bans: Vec<BanView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<WhyView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusView>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Self {
        Self { ok: true, message: message.into(), bans: Vec::new(), why: None, status: None }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self { ok: false, message: message.into(), bans: Vec::new(), why: None, status: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_json() {
        let r = Request::Ban { target: "1.2.3.4".into(), duration: Some("1h".into()), reason: None };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"cmd":"ban","target":"1.2.3.4","duration":"1h","reason":null}"#);
        assert_eq!(serde_json::from_str::<Request>(r#"{"cmd":"list"}"#).unwrap(), Request::List);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
    }
}
