//! `whois ADDR` for a mail, with a time limit and a size cap. A missing or failing tool gives a
//! note in the mail, never a failed mail.

use std::{net::IpAddr, process::Stdio, time::Duration};

use tokio::{io::AsyncReadExt, process::Command};

/// How long whois may take.
pub const TIME: Duration = Duration::from_secs(10);
/// Bytes of its answer kept.
pub const BYTES: usize = 8 * 1024;

/// What `program ADDR` prints, cut to [`BYTES`], or a note saying why there is nothing.
pub async fn whois_with(program: &str, addr: IpAddr) -> String {
    let child = Command::new(program)
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return format!("({program} is not installed: apt install whois)")
        }
        Err(e) => return format!("({program} could not be started: {e})"),
    };
    let Some(out) = child.stdout.take() else { return format!("({program} gave no output)") };
    let mut buf = Vec::new();
    let mut out = out.take(BYTES as u64 + 1);
    let read = out.read_to_end(&mut buf);
    let note = match tokio::time::timeout(TIME, read).await {
        Ok(Ok(_)) if buf.len() > BYTES => {
            buf.truncate(BYTES);
            format!("\n(cut at {BYTES} bytes)")
        }
        Ok(Ok(_)) => String::new(),
        Ok(Err(e)) => format!("\n(reading {program}: {e})"),
        Err(_) => format!("\n({program} gave no full answer within {}s)", TIME.as_secs()),
    };
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() && note.is_empty() {
        return format!("({program} had nothing to say about {addr})");
    }
    format!("{text}{note}")
}

/// Debian's `whois`.
pub async fn whois(addr: IpAddr) -> String {
    whois_with("whois", addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_tool_is_a_note() {
        let t = whois_with("/nonexistent/whois", "192.0.2.1".parse().unwrap()).await;
        assert_eq!(t, "(/nonexistent/whois is not installed: apt install whois)");
    }

    #[tokio::test]
    async fn the_answer_is_kept_and_capped() {
        // `echo ADDR` answers with the address; `yes ADDR` never stops: cut at the cap
        let t = whois_with("echo", "192.0.2.1".parse().unwrap()).await;
        assert_eq!(t, "192.0.2.1");
        let t = whois_with("yes", "192.0.2.1".parse().unwrap()).await;
        assert!(t.ends_with(&format!("(cut at {BYTES} bytes)")), "{}", &t[t.len() - 60..]);
        assert!(t.len() < BYTES + 40, "{}", t.len());
    }
}
