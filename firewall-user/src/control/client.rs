//! The CLI side of the control socket.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use super::protocol::{Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the sipwall daemon at {path}: {source} (is `sipwall run` running, and are you root?)")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the daemon at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon sent an answer this sipwall does not understand: {0}")]
    Protocol(String),
}

/// Sends one request and waits for its response.
pub fn call(socket: &Path, req: &Request) -> Result<Response, ClientError> {
    let path = socket.display().to_string();
    let io = |source| ClientError::Io { path: path.clone(), source };
    let mut s = UnixStream::connect(socket).map_err(|source| ClientError::Connect { path: path.clone(), source })?;
    s.set_read_timeout(Some(Duration::from_secs(120))).map_err(io)?;
    let mut line = serde_json::to_string(req).expect("requests serialise");
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(format!("{e}: {answer:?}")))
}
