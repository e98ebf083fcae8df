//! The daemon side of the control socket: root only (directory 0700, socket 0600, and the
//! peer's uid checked with SO_PEERCRED). A request is one line of at most [`MAX_REQUEST`]
//! bytes, sent within [`REQUEST_TIMEOUT`]; at most [`MAX_SESSIONS`] are served at once.

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::Semaphore,
};

/// Longest request line: the largest request (a ban with its reason) is far shorter.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Time a client has to send its request.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Sessions served at once; more wait in the listen backlog.
pub const MAX_SESSIONS: usize = 32;

use super::protocol::{Request, Response};

/// Handles one request; runs on a blocking thread (it may write many map entries).
pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("opening the control socket {path}: {source}")]
pub struct BindError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A bound control socket; removes its file when dropped.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    pub fn bind(path: &Path) -> Result<Self, BindError> {
        let err = |source| BindError { path: path.into(), source };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
        }
        // A stale socket from a daemon that died: refuse if someone still answers on it.
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another sipwall daemon is listening there; stop it or pass --socket",
                )));
            }
            std::fs::remove_file(path).map_err(err)?;
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        Ok(Self { listener, path: path.into() })
    }

    pub async fn serve(self, handler: Handler) {
        let slots = Arc::new(Semaphore::new(MAX_SESSIONS));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { return };
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let h = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session(stream, h).await {
                            log::debug!("control connection: {e}");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    log::warn!("control socket accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn session(stream: UnixStream, handler: Handler) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    // one byte more than allowed tells a request that is too long from one that fits
    let mut reader = BufReader::new(rd.take(MAX_REQUEST as u64 + 1));
    let resp = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Some(Response::error(format!("no request within {}s", REQUEST_TIMEOUT.as_secs()))),
        Ok(_) if line.len() > MAX_REQUEST => Some(Response::error(format!("request longer than {MAX_REQUEST} bytes"))),
        Ok(r) => r.map(|_| None)?,
    };
    let resp = if let Some(r) = resp {
        r
    } else if uid != 0 {
        Response::error(format!("permission denied: uid {uid} is not root"))
    } else {
        match serde_json::from_str::<Request>(&line) {
            Ok(req) => tokio::task::spawn_blocking(move || handler(req))
                .await
                .unwrap_or_else(|e| Response::error(format!("internal error: {e}"))),
            Err(e) => Response::error(format!("malformed request: {e}")),
        }
    };
    let mut out = serde_json::to_string(&resp).expect("responses serialise");
    out.push('\n');
    wr.write_all(out.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn answer(c: &mut UnixStream) -> String {
        let mut out = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(120), c.read_to_string(&mut out)).await.unwrap().unwrap();
        out
    }

    #[tokio::test]
    async fn requests_are_bounded_in_size_and_time() {
        let dir = std::env::temp_dir().join(format!("sipwall-ctl-{}", std::process::id()));
        let path = dir.join("ctl.sock");
        let sock = ControlSocket::bind(&path).unwrap();
        tokio::spawn(sock.serve(Arc::new(|_| Response::ok("done".to_owned()))));

        let mut big = UnixStream::connect(&path).await.unwrap();
        // a line that never ends: cut off at the limit, not read into memory
        let junk = vec![b'x'; MAX_REQUEST * 4];
        let writer = tokio::spawn(async move {
            let _ = big.write_all(&junk).await;
            big
        });
        let mut big = writer.await.unwrap();
        // the daemon answers and closes with the rest unread, which the peer may see as a reset
        let mut out = String::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(120), big.read_to_string(&mut out)).await;
        match read.expect("answered without waiting for the line to end") {
            Ok(_) => assert!(out.contains("longer than 65536 bytes"), "{out}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }

        let mut silent = UnixStream::connect(&path).await.unwrap();
        assert!(answer(&mut silent).await.contains("no request within 10s"));

        let mut fine = UnixStream::connect(&path).await.unwrap();
        let req = serde_json::to_string(&Request::List).unwrap() + "\n";
        fine.write_all(req.as_bytes()).await.unwrap();
        let got = answer(&mut fine).await;
        let root = nix::unistd::geteuid().is_root();
        assert!(got.contains(if root { "done" } else { "permission denied" }), "{got}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
