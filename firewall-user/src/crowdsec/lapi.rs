//! The Local API's HTTP endpoints sipwall uses: the decision stream (bouncer key), the machine
//! login and the alerts (JWT).

use reqwest::{header::AUTHORIZATION, StatusCode};
use serde::Deserialize;

use super::decisions::Stream;
use crate::{
    daemon::alerts::{chain, http},
    rules::{
        alerts::Secret,
        crowdsec::{Crowdsec, Machine},
    },
};

/// A stream answer larger than this is a failed pull (the Central API's community list, tens of
/// thousands of decisions, is a few MB).
pub const MAX_STREAM_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LapiError {
    #[error("{0}")]
    Network(String),
    /// 401 or 403: the key or the password is not accepted.
    #[error("the Local API refused the credentials ({0})")]
    Denied(StatusCode),
    #[error("the Local API answered {0}: {1}")]
    Status(StatusCode, String),
    #[error("the Local API's answer is not what was expected: {0}")]
    Answer(String),
    #[error("the decision stream is larger than {MAX_STREAM_BYTES} bytes")]
    TooLarge,
}

impl LapiError {
    /// The `result` label of a failed request.
    pub fn reason(&self) -> &'static str {
        match self {
            LapiError::Network(_) => "network",
            LapiError::Denied(_) => "denied",
            LapiError::Status(..) => "status",
            LapiError::Answer(_) | LapiError::TooLarge => "answer",
        }
    }
}

fn network(e: reqwest::Error) -> LapiError {
    LapiError::Network(chain(&e))
}

/// The start of an error answer, for the log (it is the server's text, cut short).
fn excerpt(body: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(body).chars().take(200).collect();
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

pub struct Lapi {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

impl Lapi {
    pub fn new(c: &Crowdsec) -> Result<Self, String> {
        let http = http::builder(&c.api_url, c.ca_file.as_ref())
            .map_err(|e| format!("[crowdsec]: {e}"))?
            .timeout(c.timeout)
            .build()
            .map_err(|e| format!("[crowdsec]: cannot make the HTTP client: {}", chain(&e)))?;
        Ok(Lapi { base: c.api_url.clone(), http })
    }

    async fn body(resp: reqwest::Response, max: u64) -> Result<(StatusCode, Vec<u8>), LapiError> {
        let status = resp.status();
        let body = http::body(resp, max).await.map_err(|e| match e {
            http::BodyError::TooLarge => LapiError::TooLarge,
            http::BodyError::Network(e) => network(e),
        })?;
        Ok((status, body))
    }

    fn check(status: StatusCode, body: &[u8]) -> Result<(), LapiError> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(LapiError::Denied(status)),
            s => Err(LapiError::Status(s, excerpt(body))),
        }
    }

    /// `GET /v1/decisions/stream`: every decision in force with `startup`, else the changes since
    /// this bouncer's last pull.
    pub async fn stream(&self, key: &Secret, startup: bool) -> Result<Stream, LapiError> {
        let url = format!("{}v1/decisions/stream?startup={startup}&scopes=ip,range", self.base);
        let resp = self.http.get(url).header("X-Api-Key", &key.0).send().await.map_err(network)?;
        let (status, body) = Self::body(resp, MAX_STREAM_BYTES).await?;
        Self::check(status, &body)?;
        serde_json::from_slice(&body).map_err(|e| LapiError::Answer(e.to_string()))
    }

    /// `POST /v1/watchers/login`: a JWT for the machine.
    pub async fn login(&self, m: &Machine, scenarios: &[String]) -> Result<String, LapiError> {
        let req = serde_json::json!({ "machine_id": m.login, "password": m.password.0, "scenarios": scenarios });
        let resp =
            self.http.post(format!("{}v1/watchers/login", self.base)).json_body(&req).send().await.map_err(network)?;
        let (status, body) = Self::body(resp, 1 << 20).await?;
        Self::check(status, &body)?;
        let l: Login = serde_json::from_slice(&body).map_err(|e| LapiError::Answer(e.to_string()))?;
        Ok(l.token)
    }

    /// `POST /v1/alerts`: alerts with their decisions.
    pub async fn push(&self, token: &str, alerts: &serde_json::Value) -> Result<(), LapiError> {
        let resp = self
            .http
            .post(format!("{}v1/alerts", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json_body(alerts)
            .send()
            .await
            .map_err(network)?;
        let (status, body) = Self::body(resp, 1 << 20).await?;
        Self::check(status, &body)
    }
}

/// A JSON body without reqwest's `json` feature.
trait JsonBody {
    fn json_body(self, v: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &serde_json::Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json").body(v.to_string())
    }
}
