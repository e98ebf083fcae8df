//! The ban webhook: each ban is POSTed as JSON to `[webhook] url`, from a queue of its own, so a
//! slow or dead receiver never holds up detection. Failed deliveries are retried with growing
//! pauses; when the queue is full, new notifications are dropped and counted.

use std::time::Duration;

use prometheus::IntCounterVec;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

use crate::rules::jails::Webhook;

/// Notifications waiting at most.
const QUEUE: usize = 1024;

pub struct Notifier {
    tx: mpsc::Sender<String>,
    counter: IntCounterVec,
}

impl Notifier {
    /// Starts the sender task.
    pub fn start(hook: Webhook, counter: IntCounterVec) -> (Notifier, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(deliver(hook, rx, counter.clone()));
        (Notifier { tx, counter }, task)
    }

    /// Queues a notification; never waits.
    pub fn send(&self, body: String) {
        if self.tx.try_send(body).is_err() {
            self.counter.with_label_values(&["dropped"]).inc();
        }
    }
}

async fn deliver(hook: Webhook, mut rx: mpsc::Receiver<String>, counter: IntCounterVec) {
    while let Some(body) = rx.recv().await {
        let mut pause = Duration::from_millis(500);
        for attempt in 0..=hook.retries {
            match tokio::time::timeout(hook.timeout, post(&hook.url, &body)).await {
                Ok(Ok(())) => {
                    counter.with_label_values(&["delivered"]).inc();
                    break;
                }
                outcome => {
                    let why = match outcome {
                        Ok(Err(e)) => e,
                        _ => format!("no answer within {}s", hook.timeout.as_secs_f64()),
                    };
                    if attempt == hook.retries {
                        log::warn!("webhook {}: {why}; giving up on this notification", hook.url);
                        counter.with_label_values(&["failed"]).inc();
                    } else {
                        counter.with_label_values(&["retried"]).inc();
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }
    }
}

/// `http://host[:port]/path` → (host:port, host, path).
pub fn split_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_owned(), path.to_owned()))
}

/// One HTTP/1.1 POST; success is a 2xx status.
async fn post(url: &str, body: &str) -> Result<(), String> {
    let (addr, host, path) = split_url(url)?;
    let mut s = TcpStream::connect(&addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sipwall/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| format!("sending: {e}"))?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let r = s.read(&mut head[n..]).await.map_err(|e| format!("reading the answer: {e}"))?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let status = std::str::from_utf8(&head[..n]).unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with("HTTP/1.") && code.starts_with('2') {
        Ok(())
    } else {
        Err(format!("answered `{}`", status.lines().next().unwrap_or("nothing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/hook").unwrap(),
            ("127.0.0.1:8080".into(), "127.0.0.1:8080".into(), "/hook".into())
        );
        assert_eq!(
            split_url("http://example.com").unwrap(),
            ("example.com:80".into(), "example.com".into(), "/".into())
        );
        assert_eq!(split_url("http://[::1]:9/x").unwrap().0, "[::1]:9");
        assert!(split_url("https://x").is_err());
    }

    #[tokio::test]
    async fn delivers_and_retries_until_the_receiver_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let counter = IntCounterVec::new(prometheus::Opts::new("t", "t"), &["result"]).unwrap();
        let hook = Webhook { url, timeout: Duration::from_secs(5), retries: 3 };
        let (n, _task) = Notifier::start(hook, counter.clone());
        n.send(r#"{"event":"ban"}"#.into());
        // first attempt: refuse with a 503; second: accept
        for (i, answer) in ["HTTP/1.1 503 Busy\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n"].iter().enumerate() {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = String::new();
            while !got.contains(r#"{"event":"ban"}"#) {
                let k = s.read(&mut buf).await.unwrap();
                assert!(k > 0, "attempt {i}: connection closed early");
                got.push_str(&String::from_utf8_lossy(&buf[..k]));
            }
            assert!(got.starts_with("POST /hook HTTP/1.1\r\n"), "{got}");
            s.write_all(answer.as_bytes()).await.unwrap();
        }
        for _ in 0..100 {
            if counter.with_label_values(&["delivered"]).get() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counter.with_label_values(&["delivered"]).get(), 1);
        assert_eq!(counter.with_label_values(&["retried"]).get(), 1);
    }
}
