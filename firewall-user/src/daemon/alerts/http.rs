//! What every outgoing HTTP client of sipwall shares (the webhook, blocklist feeds, CrowdSec's
//! Local API): rustls with [`tls::client_config`], sipwall's User-Agent, no proxy from the
//! environment, and answers read up to a size.

use super::tls;
use crate::rules::alerts::CaFile;

/// A client builder for `url`, trusting the system's authorities and `ca_file`; the caller adds
/// its timeout, headers and redirect policy.
pub fn builder(url: &str, ca_file: Option<&CaFile>) -> Result<reqwest::ClientBuilder, String> {
    let tls = tls::client_config(ca_file, url.starts_with("https://"))?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("sipwall/", env!("CARGO_PKG_VERSION")))
        .no_proxy())
}

/// Why an answer's body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit (by its Content-Length, or as it came).
    TooLarge,
    Network(reqwest::Error),
}

/// The body of `resp`, at most `max` bytes: a longer one is never kept in memory whole.
pub async fn body(mut resp: reqwest::Response, max: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|l| l > max) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Network)? {
        push_capped(&mut body, &chunk, max)?;
    }
    Ok(body)
}

/// Appends `chunk` to `body` unless that makes it larger than `max` bytes.
pub fn push_capped(body: &mut Vec<u8>, chunk: &[u8], max: u64) -> Result<(), BodyError> {
    if (body.len() + chunk.len()) as u64 > max {
        return Err(BodyError::TooLarge);
    }
    body.extend_from_slice(chunk);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_cap_counts_every_chunk() {
        let mut body = Vec::new();
        push_capped(&mut body, &[0; 600], 1024).unwrap();
        push_capped(&mut body, &[0; 424], 1024).unwrap();
        assert!(matches!(push_capped(&mut body, &[0], 1024), Err(BodyError::TooLarge)));
        assert_eq!(body.len(), 1024);
    }
}
