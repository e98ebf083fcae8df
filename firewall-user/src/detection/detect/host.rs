//! Addresses as daemons write them in logs: IPv4 (leading zeros tolerated), IPv6, bracketed
//! IPv6, IPv4-mapped IPv6 (taken as the IPv4 address), with or without a `:port`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::split_once;

/// IPv4 in dotted decimal; `030` reads as 30 (logs never mean octal).
fn v4(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let (mut o, mut i) = ([0u8; 4], 0usize);
    for (k, octet) in o.iter_mut().enumerate() {
        let (mut v, start) = (0u32, i);
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i == start || v > 255 {
            return None;
        }
        *octet = v as u8;
        if k < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (i == b.len()).then(|| Ipv4Addr::from(o))
}

/// An IP address, exactly (no port, no brackets).
pub fn addr(s: &str) -> Option<IpAddr> {
    if let Some(a) = v4(s) {
        return Some(IpAddr::V4(a));
    }
    // IPv6 text has two colons at least (`::`); `1.2.3.4:5060` is no IPv6 address
    s.bytes().filter(|&c| c == b':').nth(1)?;
    let a: Ipv6Addr = s.parse().ok()?;
    Some(match a.to_ipv4_mapped() {
        Some(m) => IpAddr::V4(m),
        None => IpAddr::V6(a),
    })
}

/// An address optionally followed by `:port`, IPv6 optionally in brackets: `1.2.3.4`,
/// `1.2.3.4:5060`, `[2001:db8::1]:5060`, `2001:db8::1`.
pub fn addr_port(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, tail) = split_once(rest, "]")?;
        if !(tail.is_empty() || (tail.starts_with(':') && is_port(&tail[1..]))) {
            return None;
        }
        return addr(a);
    }
    // one colon: IPv4 and a port (IPv6 text has two at least); otherwise an address alone
    let mut colons = s.bytes().enumerate().filter(|(_, c)| *c == b':').map(|(i, _)| i);
    match (colons.next(), colons.next()) {
        (Some(i), None) => is_port(&s[i + 1..]).then(|| v4(&s[..i]).map(IpAddr::V4)).flatten(),
        _ => addr(s),
    }
}

pub fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit())
}

/// The longest prefix of `s` made of address characters (hex digits, `.`, `:`).
pub fn addr_chars(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':')).unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_the_forms_logs_use() {
        assert_eq!(addr("192.030.0.6"), Some(ip("192.30.0.6")));
        assert_eq!(addr("::ffff:218.249.210.161"), Some(ip("218.249.210.161")));
        assert_eq!(addr("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(addr("1.2.3"), None);
        assert_eq!(addr("1.2.3.4.5"), None);
        assert_eq!(addr("256.1.1.1"), None);
        assert_eq!(addr("1.2.3.4444"), None);
        assert_eq!(addr("1..3.4"), None);
        assert_eq!(addr("1.2.3.4."), None);
        assert_eq!(addr("255.255.255.255"), Some(ip("255.255.255.255")));
        assert_eq!(addr("example.com"), None);
        assert_eq!(addr_port("1.2.3.4:5060"), Some(ip("1.2.3.4")));
        assert_eq!(addr_port("[2001:db8::1]:5060"), Some(ip("2001:db8::1")));
        assert_eq!(addr_port("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(addr_port("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(addr_port("1.2.3.4:x"), None);
        assert_eq!(addr_port("[1.2.3.4]:5060x"), None);
        assert_eq!(addr_chars("1.2.3.4 port 22"), "1.2.3.4");
    }
}
