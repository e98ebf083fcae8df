//! The fixed part in front of a log message: a timestamp (syslog, ISO 8601, bracketed, RFC 5424)
//! and the syslog header (`host ident[pid]:`). Only the message after it is the daemon's; the
//! header is written by the logger, so it is the trustworthy place for the connection id.

use super::{split_once, split_space};

/// A log line split into its header and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub host: Option<&'a str>,
    pub ident: Option<&'a str>,
    pub pid: Option<&'a str>,
    pub msg: &'a str,
}

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Whether `b` holds `n` ASCII digits at `at`.
#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> bool {
    b.get(at..at + n).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
}

/// Length of a `HH:MM:SS` (with optional fraction) at the start of `b`.
#[inline]
fn clock(b: &[u8]) -> Option<usize> {
    if !(digits(b, 0, 2) && b.get(2) == Some(&b':') && digits(b, 3, 2) && b.get(5) == Some(&b':') && digits(b, 6, 2)) {
        return None;
    }
    let mut n = 8;
    if b.get(n) == Some(&b'.') || b.get(n) == Some(&b',') {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    Some(n)
}

/// Length of a time zone (`Z`, `+HH:MM`, `+HHMM`) at the start of `b`.
fn zone(b: &[u8]) -> usize {
    match b.first() {
        Some(b'Z') => 1,
        Some(b'+' | b'-') if digits(b, 1, 2) => {
            if b.get(3) == Some(&b':') && digits(b, 4, 2) {
                6
            } else if digits(b, 3, 2) {
                5
            } else {
                3
            }
        }
        _ => 0,
    }
}

/// Length of a timestamp at the start of `s`, if there is one (the text is looked at as bytes:
/// a timestamp is ASCII, so every length returned ends on a character boundary).
pub fn time_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    // Mon DD HH:MM:SS[.frac] [YYYY]
    if b.len() >= 15 && b.first_chunk::<3>().is_some_and(|m| MONTHS.contains(&m)) && b[3] == b' ' {
        let d = 4 + b[4..].iter().take_while(|&&c| c == b' ').count();
        let dl = b[d..].iter().take_while(|c| c.is_ascii_digit()).count();
        if (1..=2).contains(&dl) && b.get(d + dl) == Some(&b' ') {
            let mut n = d + dl + 1 + clock(&b[d + dl + 1..])?;
            if b.get(n) == Some(&b' ') && digits(b, n + 1, 4) && matches!(b.get(n + 5), Some(b' ') | None) {
                n += 5; // " YYYY"
            }
            return Some(n);
        }
        return None;
    }
    // YYYY-MM-DD[T ]HH:MM:SS[.frac][zone]
    if digits(b, 0, 4)
        && b.get(4) == Some(&b'-')
        && digits(b, 5, 2)
        && b.get(7) == Some(&b'-')
        && digits(b, 8, 2)
        && matches!(b.get(10), Some(b'T' | b' '))
    {
        let n = 11 + clock(&b[11..])?;
        return Some(n + zone(&b[n..]));
    }
    None
}

/// Removes a leading timestamp, bracketed or not, and the spaces after it.
#[inline]
pub fn strip_time(line: &str) -> &str {
    if let Some(inner) = line.strip_prefix('[') {
        if let Some(n) = time_len(inner) {
            if inner.as_bytes().get(n) == Some(&b']') {
                return inner[n + 1..].trim_start();
            }
        }
        return line;
    }
    match time_len(line) {
        Some(n) => line[n..].trim_start(),
        None => line,
    }
}

/// `ident[pid]:`, `ident:`, `[ident]:` or `[ident]` as a header token.
#[inline]
fn ident_token(tok: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = tok.strip_prefix('[') {
        let inner = inner.strip_suffix(':').unwrap_or(inner);
        let name = inner.strip_suffix(']')?;
        return valid_ident(name).then_some((name, None));
    }
    let t = tok.strip_suffix(':')?;
    if let Some((name, pid)) = split_once(t, "[") {
        let pid = pid.strip_suffix(']')?;
        return (valid_ident(name) && pid.bytes().all(|c| c.is_ascii_digit())).then_some((name, Some(pid)));
    }
    valid_ident(t).then_some((t, None))
}

#[inline]
fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
}

/// Removes what some loggers put between the header and the message: Solaris' `[ID 800047
/// auth.info]` and a kernel timestamp `kernel: [  970.699396]:`.
fn strip_extras(mut msg: &str) -> &str {
    loop {
        if let Some(r) = msg.strip_prefix("[ID ") {
            let Some((inner, after)) = split_once(r, "]") else { return msg };
            let Some((id, facility)) = split_space(inner) else { return msg };
            if id.is_empty() || !id.bytes().all(|c| c.is_ascii_digit()) || facility.is_empty() || facility.contains(' ')
            {
                return msg;
            }
            msg = after.trim_start();
        } else if let Some(r) = msg.strip_prefix("kernel:") {
            let r = r.strip_prefix(' ').unwrap_or(r);
            let Some(r) = r.strip_prefix('[') else { return msg };
            let Some((stamp, after)) = split_once(r, "]") else { return msg };
            let stamp = stamp.trim_start();
            let Some((a, b)) = split_once(stamp, ".") else { return msg };
            if a.is_empty() || b.is_empty() || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
                return msg;
            }
            msg = after.strip_prefix(':').unwrap_or(after).trim_start();
        } else {
            return msg;
        }
    }
}

/// Splits a syslog-style line: `[time] [host] ident[pid]: message`, RFC 5424, or a bare
/// message (as journal entries come).
pub fn syslog(line: &str) -> Header<'_> {
    let mut h = header(line);
    if h.ident.is_some() {
        h.msg = strip_extras(h.msg);
    }
    h
}

fn header(line: &str) -> Header<'_> {
    if let Some(h) = rfc5424(line) {
        return h;
    }
    let rest = strip_time(line);
    let bare = Header { host: None, ident: None, pid: None, msg: rest };
    let Some((first, after_first)) = split_space(rest) else { return bare };
    if let Some((ident, pid)) = ident_token(first) {
        return Header { host: None, ident: Some(ident), pid, msg: after_first.trim_start() };
    }
    // `[sshd] message` without a colon
    if first.starts_with('[') && first.ends_with(']') && valid_ident(&first[1..first.len() - 1]) {
        return Header {
            host: None,
            ident: Some(&first[1..first.len() - 1]),
            pid: None,
            msg: after_first.trim_start(),
        };
    }
    if let Some((second, after_second)) = split_space(after_first) {
        if let Some((ident, pid)) = ident_token(second) {
            return Header { host: Some(first), ident: Some(ident), pid, msg: after_second.trim_start() };
        }
        if second.starts_with('[') && second.ends_with(']') && valid_ident(&second[1..second.len() - 1]) {
            return Header {
                host: Some(first),
                ident: Some(&second[1..second.len() - 1]),
                pid: None,
                msg: after_second.trim_start(),
            };
        }
    }
    bare
}

/// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG` (RFC 5424).
fn rfc5424(line: &str) -> Option<Header<'_>> {
    let rest = line.strip_prefix('<')?;
    let (pri, rest) = split_once(rest, ">")?;
    if pri.is_empty() || !pri.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix("1 ")?;
    let mut it = rest.splitn(6, ' ');
    let (_time, host, app, procid, _msgid, sd_msg) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    // structured data: "-" or one or more [..] elements (values may hold escaped brackets)
    let msg = if let Some(m) = sd_msg.strip_prefix("- ") {
        m
    } else {
        let b = sd_msg.as_bytes();
        let (mut i, mut depth, mut in_quote) = (0, 0i32, false);
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b'"' => in_quote = !in_quote,
                b'[' if !in_quote => depth += 1,
                b']' if !in_quote => {
                    depth -= 1;
                    if depth == 0 && b.get(i + 1) != Some(&b'[') {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        sd_msg[i.min(b.len())..].trim_start()
    };
    Some(Header { host: nil(host), ident: nil(app), pid: nil(procid), msg })
}

/// RFC 5424's `-` (no value).
fn nil(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(strip_time("Jan  5 01:31:41 www sshd[1643]: x"), "www sshd[1643]: x");
        assert_eq!(strip_time("Feb 7 16:01:07 linux sshd[5106]: x"), "linux sshd[5106]: x");
        assert_eq!(strip_time("2015-04-16T18:02:50.321974+00:00 host sshd[2716]: x"), "host sshd[2716]: x");
        assert_eq!(strip_time("[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: x"), "NOTICE[1638] chan_sip.c: x");
        assert_eq!(strip_time("[Jan 18 17:39:50] NOTICE[12049]: x"), "NOTICE[12049]: x");
        assert_eq!(strip_time("NOTICE[566]: chan_sip.c:28926 x"), "NOTICE[566]: chan_sip.c:28926 x");
        assert_eq!(strip_time("Jan 18 17:39:50.123 2024 h x: y"), "h x: y");
    }

    #[test]
    fn syslog_headers() {
        let h = syslog("Feb 25 14:34:10 belka sshd[31602]: Failed password");
        assert_eq!((h.host, h.ident, h.pid, h.msg), (Some("belka"), Some("sshd"), Some("31602"), "Failed password"));
        let h = syslog("Nov 23 21:50:19 sshd[8148]: Disconnecting");
        assert_eq!((h.host, h.ident, h.pid, h.msg), (None, Some("sshd"), Some("8148"), "Disconnecting"));
        let h = syslog("Mar  3 00:17:22 [sshd]: User root");
        assert_eq!((h.ident, h.msg), (Some("sshd"), "User root"));
        let h = syslog("Jun 25 23:53:34 [sshd] User root from 1.2.3.4");
        assert_eq!((h.ident, h.msg), (Some("sshd"), "User root from 1.2.3.4"));
        let h = syslog("<38>1 2019-07-08T17:40:17.954167-04:00 host.example.com sshd 55555 - [timeQuality tzKnown=\"1\"][xxx@123 test=\"[brackets]\"] Failed unknown");
        assert_eq!(
            (h.host, h.ident, h.pid, h.msg),
            (Some("host.example.com"), Some("sshd"), Some("55555"), "Failed unknown")
        );
        let h = syslog("<38>1 2019-07-08T17:40:16.954167-04:00 h sshd 57915 - - Failed x");
        assert_eq!((h.ident, h.msg), (Some("sshd"), "Failed x"));
        let h = syslog("Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed x");
        assert_eq!((h.ident, h.msg), (Some("sshd"), "Failed x"));
        let h = syslog("srv sshd[20879]: kernel: [  970.699397] Failed x");
        assert_eq!((h.host, h.ident, h.msg), (Some("srv"), Some("sshd"), "Failed x"));
        let h = syslog("srv sshd[20880]: kernel:[12970.699398]: Failed x");
        assert_eq!(h.msg, "Failed x");
        let h = syslog("just a message: with a colon");
        assert_eq!((h.ident, h.msg), (None, "just a message: with a colon"));
    }
}
