//! One refresh of a feed: a conditional GET (ETag, Last-Modified) for whole lists, or APIBAN's
//! pages from the saved ID on; answers over `max_bytes` are failures.

use reqwest::{
    header::{HeaderMap, HeaderValue, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED},
    StatusCode,
};

use super::{
    cache::Copy,
    formats::{self, NotTheFormat},
};
use crate::{
    daemon::alerts::{chain, http},
    rules::feeds::{Feed, Format},
};

/// APIBAN's first ID: asking from it returns every address listed.
pub const APIBAN_FIRST_ID: &str = "100";
/// Pages one refresh asks for at most (a server that never says "no new bans" ends there).
pub const APIBAN_MAX_PAGES: usize = 1000;

/// A refresh that worked.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 304: the saved copy is current.
    NotModified,
    /// The feed's new copy, and how many entries of the answers were skipped as unreadable.
    New { copy: Copy, skipped: u64 },
}

/// A refresh that did not work: the saved copy stays in force.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("key_file: {0}")]
    KeyFile(String),
    #[error("{0}")]
    Network(String),
    #[error("the server answered {0}")]
    Status(StatusCode),
    #[error("the answer is larger than max_bytes ({0} bytes)")]
    TooLarge(u64),
    #[error(transparent)]
    Format(#[from] NotTheFormat),
}

impl Failure {
    /// The `reason` label of `sipwall_feed_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::KeyFile(_) => "key_file",
            Failure::Network(_) => "network",
            Failure::Status(_) => "status",
            Failure::TooLarge(_) => "too_large",
            Failure::Format(_) => "format",
        }
    }
}

/// The HTTP client of one feed: rustls with the system's authorities and the feed's `ca_file`.
pub fn client(feed: &Feed) -> Result<reqwest::Client, String> {
    http::builder(&feed.url, feed.ca_file.as_ref())
        .map_err(|e| format!("feed {}: {e}", feed.name))?
        .timeout(feed.timeout)
        .build()
        .map_err(|e| format!("feed {}: cannot make the HTTP client: {}", feed.name, chain(&e)))
}

/// The validators of the saved copy, as request headers.
pub fn conditional_headers(copy: &Copy) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = copy.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(IF_NONE_MATCH, v);
    }
    if let Some(v) = copy.last_modified.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(IF_MODIFIED_SINCE, v);
    }
    h
}

/// The URL with the key of `key_file` in place of `{key}`.
fn url(feed: &Feed) -> Result<String, Failure> {
    let Some(path) = &feed.key_file else { return Ok(feed.url.clone()) };
    let key = std::fs::read_to_string(path).map_err(|e| Failure::KeyFile(format!("{}: {e}", path.display())))?;
    let key = key.trim();
    if key.is_empty() || key.contains(['/', '?', '#', ' ']) || key.contains(char::is_control) {
        return Err(Failure::KeyFile(format!("{} holds no usable key (one line, no / ? # or spaces)", path.display())));
    }
    Ok(feed.url.replace("{key}", key))
}

/// Errors without the URL: it may hold the key.
fn network(e: reqwest::Error) -> Failure {
    Failure::Network(chain(&e.without_url()))
}

/// GETs `url`; returns the status, the headers and the body (capped at `max` bytes).
async fn get(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    max: u64,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
    let resp = client.get(url).headers(headers).send().await.map_err(network)?;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = http::body(resp, max).await.map_err(|e| match e {
        http::BodyError::TooLarge => Failure::TooLarge(max),
        http::BodyError::Network(e) => network(e),
    })?;
    Ok((status, headers, body))
}

fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Refreshes `feed` whose saved copy is `copy`, at `now` (Unix seconds).
pub async fn refresh(client: &reqwest::Client, feed: &Feed, copy: &Copy, now: u64) -> Result<Outcome, Failure> {
    let url = url(feed)?;
    if feed.format == Format::Apiban {
        return apiban(client, feed, &url, copy, now).await;
    }
    let (status, headers, body) = get(client, &url, conditional_headers(copy), feed.max_bytes).await?;
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Outcome::NotModified);
    }
    if status != StatusCode::OK {
        return Err(Failure::Status(status));
    }
    let parsed = match feed.format {
        Format::Json => formats::json(&body, &feed.json_field)?,
        _ => formats::lines(&body)?,
    };
    let copy = Copy {
        etag: header(&headers, ETAG),
        last_modified: header(&headers, LAST_MODIFIED),
        apiban_id: None,
        entries: parsed.nets.into_iter().map(|n| (n, now)).collect(),
    };
    Ok(Outcome::New { copy, skipped: parsed.skipped })
}

/// APIBAN: every page from the saved ID on, added to the saved entries; entries no answer has
/// named for `max_age` are dropped.
async fn apiban(client: &reqwest::Client, feed: &Feed, url: &str, copy: &Copy, now: u64) -> Result<Outcome, Failure> {
    let mut next = copy.apiban_id.clone().unwrap_or_else(|| APIBAN_FIRST_ID.to_owned());
    let mut entries = copy.entries.clone();
    let mut skipped = 0;
    for _ in 0..APIBAN_MAX_PAGES {
        let page_url = format!("{}/{next}", url.trim_end_matches('/'));
        let (status, _, body) = get(client, &page_url, HeaderMap::new(), feed.max_bytes).await?;
        // "no new bans" comes as a 200 or as a 404 with that body
        let page = match status {
            StatusCode::OK => formats::apiban(&body)?,
            StatusCode::NOT_FOUND => match formats::apiban(&body) {
                Ok(p) if p.next.is_none() => p,
                _ => return Err(Failure::Status(status)),
            },
            s => return Err(Failure::Status(s)),
        };
        skipped += page.list.skipped;
        for n in page.list.nets {
            entries.insert(n, now);
        }
        match page.next {
            Some(id) if id != next => next = id,
            _ => break,
        }
    }
    let max_age = feed.max_age.as_secs();
    entries.retain(|_, seen| now.saturating_sub(*seen) <= max_age);
    let copy = Copy { etag: None, last_modified: None, apiban_id: Some(next), entries };
    Ok(Outcome::New { copy, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_validators_make_the_request_conditional() {
        assert!(conditional_headers(&Copy::default()).is_empty());
        let c = Copy {
            etag: Some("\"abc\"".into()),
            last_modified: Some("Sun, 06 Dec 2026 10:00:00 GMT".into()),
            ..Copy::default()
        };
        let h = conditional_headers(&c);
        assert_eq!(h.get(IF_NONE_MATCH).unwrap(), "\"abc\"");
        assert_eq!(h.get(IF_MODIFIED_SINCE).unwrap(), "Sun, 06 Dec 2026 10:00:00 GMT");
        let only_etag = Copy { etag: Some("W/\"1\"".into()), ..Copy::default() };
        let h = conditional_headers(&only_etag);
        assert_eq!((h.len(), h.get(IF_NONE_MATCH).unwrap().to_str().unwrap()), (1, "W/\"1\""));
    }

    #[test]
    fn an_answer_over_the_cap_is_a_too_large_failure() {
        assert_eq!(Failure::TooLarge(1024).reason(), "too_large");
    }

    #[test]
    fn the_key_goes_into_the_url_and_a_bad_key_file_fails() {
        let dir = std::env::temp_dir().join(format!("sipwall-feed-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut feed = crate::rules::feeds::tests::feed("https://apiban.org/api/{key}/banned", Format::Apiban);
        feed.key_file = Some(dir.join("key"));
        assert!(matches!(url(&feed), Err(Failure::KeyFile(_))));
        std::fs::write(dir.join("key"), "s3cr3t\n").unwrap();
        assert_eq!(url(&feed).unwrap(), "https://apiban.org/api/s3cr3t/banned");
        std::fs::write(dir.join("key"), "a/b\n").unwrap();
        let e = url(&feed).unwrap_err();
        assert!(!e.to_string().contains("a/b"), "the key is never shown: {e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
