//! Addresses and CIDR prefixes as written in rules and blocklist files.

use std::net::IpAddr;

use ipnet::IpNet;

/// Parses `ADDR` or `ADDR/LEN`. A prefix with host bits set (`10.0.0.1/24`) is accepted and
/// truncated, as iptables and ipset do; `Ok((net, true))` says it was.
pub fn parse(text: &str) -> Result<(IpNet, bool), String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty address".into());
    }
    match t.split_once('/') {
        None => t
            .parse::<IpAddr>()
            .map(|a| (IpNet::from(a), false))
            .map_err(|_| format!("`{t}` is not an IPv4 or IPv6 address")),
        Some((addr, len)) => {
            let a: IpAddr = addr.parse().map_err(|_| format!("`{addr}` in `{t}` is not an IPv4 or IPv6 address"))?;
            let max = if a.is_ipv4() { 32 } else { 128 };
            let l: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("prefix length `{len}` in `{t}` must be 0 to {max}"))?;
            let net = IpNet::new(a, l).expect("length checked");
            let trunc = net.trunc();
            Ok((trunc, trunc != net))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_prefixes() {
        assert_eq!(parse("1.2.3.4").unwrap().0.to_string(), "1.2.3.4/32");
        assert_eq!(parse("2001:db8::1").unwrap().0.to_string(), "2001:db8::1/128");
        assert_eq!(parse(" 10.0.0.0/8 ").unwrap(), ("10.0.0.0/8".parse().unwrap(), false));
        assert_eq!(parse("10.1.2.3/8").unwrap(), ("10.0.0.0/8".parse().unwrap(), true));
        assert_eq!(parse("::/0").unwrap().0.to_string(), "::/0");
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(parse("1.2.3.4/33").unwrap_err().contains("0 to 32"));
        assert!(parse("::1/129").unwrap_err().contains("0 to 128"));
        assert!(parse("1.2.3").unwrap_err().contains("not an IPv4 or IPv6"));
        assert!(parse("example.com/24").unwrap_err().contains("example.com"));
        assert!(parse("1.2.3.4/x").is_err());
        assert!(parse("").is_err());
    }
}
