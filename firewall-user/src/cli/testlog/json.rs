//! One finding per line, as JSON or as text.

use std::{io::Write, net::IpAddr};

use crate::detection::detect::{Event, Proof};

/// A JSON string (quoted and escaped). Only ASCII bytes are ever escaped, so the text is
/// scanned byte by byte and copied in runs.
fn json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(b"\"")?;
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => b"",
            _ => continue,
        };
        out.write_all(&b[start..i])?;
        if esc.is_empty() {
            write!(out, "\\u{:04x}", c)?;
        } else {
            out.write_all(esc)?;
        }
        start = i + 1;
    }
    out.write_all(&b[start..])?;
    out.write_all(b"\"")
}

/// The fields of a finding that its detector fixes, after the line number:
/// `,"jail":…,"detector":…,"host":`.
pub fn source_fields(jail: &str, detector: &str) -> Vec<u8> {
    let mut v = b",\"jail\":".to_vec();
    json_str(&mut v, jail).expect("writing to memory");
    v.extend_from_slice(b",\"detector\":");
    json_str(&mut v, detector).expect("writing to memory");
    v.extend_from_slice(b",\"host\":");
    v
}

/// The fields of a finding that its kind fixes, after the host: `,"kind":…,"rule":…`.
pub fn kind_fields(kind: &str, rule: &str) -> Vec<u8> {
    let mut v = b",\"kind\":".to_vec();
    json_str(&mut v, kind).expect("writing to memory");
    v.extend_from_slice(b",\"rule\":");
    json_str(&mut v, rule).expect("writing to memory");
    v
}

/// `n` in decimal, at the end of `buf`; returns where it starts.
fn decimal(buf: &mut [u8], mut n: u64) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// An address as a JSON string (IPv4 without the formatting machinery: the common case).
fn write_ip(out: &mut impl Write, ip: IpAddr) -> std::io::Result<()> {
    match ip {
        IpAddr::V4(a) => {
            // "255.255.255.255": 17 bytes at most, written back to front
            let mut buf = [0u8; 17];
            let mut i = buf.len() - 1;
            buf[i] = b'"';
            for (k, o) in a.octets().iter().rev().enumerate() {
                if k > 0 {
                    i -= 1;
                    buf[i] = b'.';
                }
                i = decimal(&mut buf[..i], u64::from(*o));
            }
            i -= 1;
            buf[i] = b'"';
            out.write_all(&buf[i..])
        }
        IpAddr::V6(a) => write!(out, "\"{a}\""),
    }
}

/// One finding as a JSON object on its own line; `source` and `kind` are the fields made by
/// `source_fields` and `kind_fields`.
pub fn write_json(out: &mut impl Write, line: u64, source: &[u8], kind: &[u8], ev: &Event) -> std::io::Result<()> {
    let mut buf = [0u8; 28];
    let at = decimal(&mut buf, line);
    buf[at - 8..at].copy_from_slice(b"{\"line\":");
    out.write_all(&buf[at - 8..])?;
    out.write_all(source)?;
    match ev {
        Event::Failure(f) => write_ip(out, f.host)?,
        Event::Hostname { name, .. } => json_str(out, name)?,
        Event::Ambiguous { .. } => out.write_all(b"null")?,
    }
    out.write_all(kind)?;
    match ev {
        Event::Failure(f) => {
            if let Some(u) = &f.user {
                out.write_all(b",\"user\":")?;
                json_str(out, u)?;
            }
            out.write_all(b",\"evidence\":")?;
            json_str(out, f.proof.name())?;
        }
        Event::Ambiguous { candidates, names, .. } => {
            out.write_all(b",\"candidates\":[")?;
            for (i, c) in candidates.iter().enumerate() {
                write!(out, "{}\"{c}\"", if i > 0 { "," } else { "" })?;
            }
            for (i, n) in names.iter().enumerate() {
                out.write_all(if i + candidates.len() > 0 { b"," } else { b"" })?;
                json_str(out, n)?;
            }
            out.write_all(b"]")?;
        }
        Event::Hostname { .. } => {}
    }
    out.write_all(b"}\n")
}

pub fn write_text(
    out: &mut impl Write,
    line: u64,
    jail: &str,
    detector: &str,
    rule: &str,
    ev: &Event,
) -> std::io::Result<()> {
    match ev {
        Event::Failure(f) => match f.proof {
            Proof::Proven => writeln!(out, "{line}: {jail} ({detector}, {rule}): {}", f.host),
            // the daemon may still find it proven on the wire, which a log replay cannot see
            Proof::Unproven => writeln!(
                out,
                "{line}: {jail} ({detector}, {rule}): {} (unproven: a forged packet could produce it; counts only \
                 if the address proved itself on the wire, or with trust_unproven)",
                f.host
            ),
        },
        Event::Hostname { name, .. } => {
            writeln!(out, "{line}: {jail} ({detector}, {rule}): {name} (a host name: never resolved, never banned)")
        }
        Event::Ambiguous { candidates, names, .. } => writeln!(
            out,
            "{line}: {jail} ({detector}, {rule}): ambiguous: any of {} (nobody banned)",
            candidates.iter().map(ToString::to_string).chain(names.iter().cloned()).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::detect::Failure;

    #[test]
    fn json_lines_are_valid_json() {
        let ev = Event::Failure(Failure {
            host: "192.0.2.1".parse().unwrap(),
            user: Some("a\"b\\c\u{1}\u{e9}".into()),
            attempts: 1,
            rule: "sshd-failed",
            proof: Proof::Unproven,
        });
        let mut out = Vec::new();
        let (source, kind) = (source_fields("sshd", "sshd"), kind_fields("failure", "sshd-failed"));
        write_json(&mut out, 7, &source, &kind, &ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["line"], 7);
        assert_eq!(v["host"], "192.0.2.1");
        assert_eq!(v["user"], "a\"b\\c\u{1}\u{e9}");
        assert_eq!(v["evidence"], "unproven");
        let ev = Event::Ambiguous {
            candidates: vec!["192.0.2.1".parse().unwrap(), "::1".parse().unwrap()],
            names: vec!["h\"x.example".into()],
            rule: "x",
        };
        let mut out = Vec::new();
        write_json(&mut out, 1, &source_fields("j\"", "d"), &kind_fields("ambiguous", "x"), &ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["host"].is_null());
        assert_eq!(v["candidates"][1], "::1");
        assert_eq!(v["candidates"][2], "h\"x.example");
        assert_eq!(v["jail"], "j\"");
        for (line, ip) in [(0, "0.0.0.0"), (18_446_744_073_709_551_615, "255.255.255.255"), (10, "10.0.20.1")] {
            let ev = Event::failure(ip.parse().unwrap(), None, "x");
            let mut out = Vec::new();
            write_json(&mut out, line, &source_fields("j", "d"), &kind_fields("failure", "x"), &ev).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!((v["line"].as_u64(), v["host"].as_str()), (Some(line), Some(ip)));
        }
    }
}
