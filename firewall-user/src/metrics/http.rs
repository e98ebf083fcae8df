//! The `/metrics` endpoint (HTTP/1.1, hyper).

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Produces the exposition text; runs on a blocking thread (it reads BPF maps).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, render: Render) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("metrics accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(respond(req, render).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                log::debug!("metrics connection: {e}");
            }
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
