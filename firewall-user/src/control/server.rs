//! The daemon side of the control socket: root only (directory 0700, socket 0600, and the
//! peer's uid checked with SO_PEERCRED).

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};

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
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let h = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session(stream, h).await {
                            log::debug!("control connection: {e}");
                        }
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
    BufReader::new(rd).read_line(&mut line).await?;
    let resp = if uid != 0 {
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
