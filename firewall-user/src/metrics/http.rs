//! The `/metrics` endpoint (HTTP/1.1, hyper), bounded so a client cannot hold the daemon's
//! descriptors: at most [`MAX_CONNECTIONS`] at once (more wait in the listen backlog), a request's
//! headers within [`HEADER_TIMEOUT`], and a connection closed after [`MAX_LIFETIME`].

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send a request's headers (also the idle time between requests).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection is kept at most, keep-alive included.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// Produces the exposition text; runs on a blocking thread (it reads BPF maps).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, render: Render) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(respond(req, render).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            match tokio::time::timeout(MAX_LIFETIME, conn).await {
                Ok(Err(e)) => log::debug!("metrics connection: {e}"),
                Err(_) => log::debug!("metrics connection closed after {}s", MAX_LIFETIME.as_secs()),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

async fn respond(req: Request<Incoming>, render: Render) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => {
            let text = tokio::task::spawn_blocking(move || render())
                .await
                .unwrap_or_else(|e| format!("# render failed: {e}\n"));
            (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        ("GET", "/") => (StatusCode::OK, "text/plain; charset=utf-8", "sipwall: metrics at /metrics\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: try /metrics\n".to_owned()),
    };
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn idle_clients_cannot_hold_the_endpoint() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(|| "sipwall_up 1\n".to_owned())));
        // more clients than slots, each sending half a request and nothing more
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS + 4 {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
            idle.push(c);
        }
        let started = Instant::now();
        let mut scrape = tokio::net::TcpStream::connect(addr).await.unwrap();
        scrape.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut body = String::new();
        tokio::time::timeout(Duration::from_secs(120), scrape.read_to_string(&mut body))
            .await
            .expect("the scrape is served once the idle clients time out")
            .unwrap();
        assert!(body.contains("sipwall_up 1"), "{body}");
        assert!(started.elapsed() >= HEADER_TIMEOUT / 2, "served only after slots were freed");
        // the idle clients were closed by the server
        for mut c in idle {
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(120), c.read(&mut buf)).await.unwrap().unwrap_or(0);
            let got = String::from_utf8_lossy(&buf[..n]);
            assert!(n == 0 || got.starts_with("HTTP/1.1 408"), "{got}");
        }
    }
}
