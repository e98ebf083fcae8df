//! The service manager's readiness protocol (`sd_notify`, `Type=notify` units): a datagram to
//! the socket named in `$NOTIFY_SOCKET` once the program is attached and the tables hold the
//! rules and the bans, and when the daemon stops. Without that variable (not started by a
//! service manager) nothing is sent.

use std::{
    io,
    os::{linux::net::SocketAddrExt, unix::net::UnixDatagram},
    path::Path,
};

/// The daemon enforces: systemd's start job ends here, so units ordered after sipwall start
/// with the firewall in place.
pub fn ready(status: &str) {
    send(&format!("READY=1\nMAINPID={}\nSTATUS={status}", std::process::id()));
}

pub fn stopping() {
    send("STOPPING=1");
}

fn send(message: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send_to(Path::new(&socket), message) {
        log::warn!("telling the service manager ({}): {e}", socket.to_string_lossy());
    }
}

/// Sends `message` to a path, or to an abstract socket when the name starts with `@`.
fn send_to(socket: &Path, message: &str) -> io::Result<()> {
    let s = UnixDatagram::unbound()?;
    let name = socket.as_os_str().as_encoded_bytes();
    match name.strip_prefix(b"@") {
        Some(abstract_name) => {
            s.send_to_addr(message.as_bytes(), &std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?)?
        }
        None => s.send_to(message.as_bytes(), socket)?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("sipwall-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        send_to(&path, "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("sipwall-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(Path::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
