//! `[webhook]`: each event POSTed as JSON to an http:// or https:// URL.

use std::{path::Path, time::Duration};

use super::{read_ca_file, read_events, CaFile, Events};
use crate::rules::reader::{Durations, Reader, Section};

#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub timeout: Duration,
    pub retries: u32,
    /// Sent with every request (tokens), in file order.
    pub headers: Vec<(String, String)>,
    /// Trusted besides the system's certificate authorities.
    pub ca_file: Option<CaFile>,
    pub events: Events,
    /// Send the log lines that led to a ban as `lines`.
    pub lines: bool,
}

impl Webhook {
    /// The URL as logs and `sipwall check` show it: scheme, host and port, the path left out,
    /// since chat services put their token there.
    pub fn endpoint(&self) -> String {
        endpoint(&self.url)
    }
}

/// `https://host:port/…` of `url`.
pub fn endpoint(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(the webhook)".to_owned() };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    // credentials in the authority are a secret too
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let elided = if path.is_empty() || path == "/" { "" } else { "/…" };
    format!("{scheme}://{host}{elided}")
}

/// Header values are tokens: left out of debug output.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, _)| (k.as_str(), "…")).collect();
        f.debug_struct("Webhook")
            .field("url", &self.endpoint())
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("headers", &headers)
            .field("ca_file", &self.ca_file)
            .field("events", &self.events)
            .field("lines", &self.lines)
            .finish()
    }
}

const KEYS: &[&str] = &["url", "timeout", "retries", "headers", "ca_file", "events", "lines"];

/// Headers the client writes itself.
const RESERVED: &[&str] = &["host", "content-length", "content-type", "transfer-encoding", "connection"];

fn read_url(r: &mut Reader, s: &Section) -> Option<String> {
    let Some((url, span)) = s.string(r, "url") else {
        if !s.has("url") {
            r.error(s.span.clone(), "[webhook] needs `url`, like url = \"https://hooks.example.com/sipwall\"");
        }
        return None;
    };
    let parsed = match reqwest::Url::parse(&url) {
        Ok(u) => u,
        Err(e) => {
            r.error(
                Some(span),
                format!("the webhook `url` is not a URL ({e}): write it like https://HOST[:PORT]/PATH"),
            );
            return None;
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        r.error(
            Some(span),
            format!("the webhook `url` must start with https:// or http://, not {}://", parsed.scheme()),
        );
        return None;
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        r.error(Some(span), "the webhook `url` has no host");
        return None;
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        r.error(Some(span), "put no user or password in the webhook `url`: send a token in `headers` instead");
        return None;
    }
    Some(url)
}

fn read_headers(r: &mut Reader, s: &Section) -> Vec<(String, String)> {
    let Some(t) = s.table(r, "headers", "webhook.headers") else { return Vec::new() };
    let mut out = Vec::new();
    for (name, _) in t.table.iter() {
        let key_span = t.table.get_key_value(name).and_then(|(k, _)| k.span());
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            r.error(
                key_span,
                format!("`{name}` is not a valid HTTP header name: letters, digits and -, like Authorization"),
            );
            continue;
        }
        if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            r.error(
                key_span,
                format!("the header `{name}` is set by sipwall itself; remove it from [webhook.headers]"),
            );
            continue;
        }
        let Some((value, span)) = t.string(r, name) else { continue };
        if reqwest::header::HeaderValue::from_str(&value).is_err() {
            r.error(
                Some(span),
                format!("the value of header `{name}` holds a character HTTP does not allow (a line break or control character)"),
            );
            continue;
        }
        out.push((name.to_owned(), value));
    }
    out
}

pub fn read(r: &mut Reader, s: &Section, base: &Path) -> Option<Webhook> {
    s.check_keys(r, KEYS);
    let url = read_url(r, s);
    let timeout = s.duration(r, "timeout", Durations::Positive).flatten().unwrap_or(Duration::from_secs(5));
    let retries = s.uint(r, "retries", 0, 100).unwrap_or(5) as u32;
    let headers = read_headers(r, s);
    let ca_file = if s.has("ca_file") { read_ca_file(r, s, base) } else { None };
    if let (Some(u), true) = (&url, ca_file.is_some()) {
        if u.starts_with("http://") {
            r.error(s.key_span("ca_file"), "`ca_file` is for an https:// `url`; this one is http://");
        }
    }
    let events = read_events(r, s);
    let lines = s.bool(r, "lines").unwrap_or(false);
    Some(Webhook { url: url?, timeout, retries, headers, ca_file, events, lines })
}
