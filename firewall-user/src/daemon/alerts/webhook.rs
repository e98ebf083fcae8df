//! `[webhook]`: each event POSTed as JSON over http:// or https:// (reqwest with rustls), from a
//! queue of its own. Failed deliveries are retried with growing pauses; when the queue is full,
//! new notifications are dropped and counted.

use std::sync::Arc;

use prometheus::IntCounterVec;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::sync::mpsc;

use super::{chain, http, pauses, Alert, Queue};
use crate::rules::alerts::Webhook;

/// Builds the client and starts the sender task; its queue.
pub fn start(hook: Webhook, counter: IntCounterVec) -> Result<Queue, String> {
    let client = client(&hook)?;
    let (queue, rx) = Queue::new(hook.events, counter.clone());
    tokio::spawn(deliver(client, Arc::new(hook), rx, counter));
    Ok(queue)
}

fn client(hook: &Webhook) -> Result<reqwest::Client, String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &hook.headers {
        // checked when the rules were read
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else { continue };
        headers.append(n, v);
    }
    http::builder(&hook.url, hook.ca_file.as_ref())
        .map_err(|e| format!("webhook {}: {e}", hook.endpoint()))?
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(hook.timeout)
        .build()
        .map_err(|e| format!("webhook {}: cannot make the HTTP client: {}", hook.endpoint(), chain(&e)))
}

/// One POST; success is a 2xx status.
async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<(), String> {
    // the error without the URL, whose path may hold a token
    let answer = client.post(url).body(body).send().await.map_err(|e| chain(&e.without_url()))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

async fn deliver(
    client: reqwest::Client,
    hook: Arc<Webhook>,
    mut rx: mpsc::Receiver<Arc<Alert>>,
    counter: IntCounterVec,
) {
    while let Some(alert) = rx.recv().await {
        let body = alert.json(hook.lines).to_string();
        let mut pause = pauses();
        for attempt in 0..=hook.retries {
            let why = match tokio::time::timeout(hook.timeout, post(&client, &hook.url, body.clone())).await {
                Ok(Ok(())) => {
                    counter.with_label_values(&["delivered"]).inc();
                    break;
                }
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {}s", hook.timeout.as_secs_f64()),
            };
            if attempt == hook.retries {
                log::warn!("webhook {}: {why}; giving up on this notification", hook.endpoint());
                counter.with_label_values(&["failed"]).inc();
            } else {
                log::debug!("webhook {}: {why}; trying again", hook.endpoint());
                counter.with_label_values(&["retried"]).inc();
                tokio::time::sleep(pause.next().unwrap_or_default()).await;
            }
        }
    }
}
