//! Requests and responses on the control socket.

use serde::{Deserialize, Serialize};

use crate::bans::Ban;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// What happened, or what went wrong and what to do.
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bans: Vec<BanView>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Self {
        Self { ok: true, message: message.into(), bans: Vec::new() }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self { ok: false, message: message.into(), bans: Vec::new() }
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
