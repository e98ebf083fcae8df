//! Addresses as Asterisk's options write them: `ADDR[:PORT]`, `[v6]:port`, host names, SIP
//! URIs, and the networks of pjsip identify's `match`.

use std::net::IpAddr;

use ipnet::IpNet;

/// What an address option names: a network (a single address is a /32 or /128), or a host
/// name to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Net(IpNet),
    Name(String),
}

impl Target {
    fn host(host: &str) -> Result<Target, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Target::Net(IpNet::from(ip)));
        }
        let name_like = host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if host.is_empty() || !name_like || host.starts_with(['.', '-']) {
            return Err(format!("`{host}` is neither an IP address nor a host name"));
        }
        Ok(Target::Name(host.to_ascii_lowercase()))
    }
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (two colons or
/// more: no port), as `ast_sockaddr_split_hostport` does. Port 0 means "not given".
pub(super) fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let t = text.trim();
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("`{t}`: `[` without its `]`"));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("`{t}`: `{after}` after the `]`")),
            },
        }
    } else {
        match t.matches(':').count() {
            1 => t.split_once(':').map(|(h, p)| (h, Some(p))).expect("one colon"),
            _ => (t, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{t}` has no host"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("`{p}` in `{t}` is not a port number (1 to 65535)"))?),
    };
    Ok((host, port.filter(|p| *p != 0)))
}

/// `ADDR[:PORT]` with a literal address, as `ast_sockaddr_parse` reads it (no names).
pub(super) fn sockaddr(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let (host, port) = split_host_port(text)?;
    let ip = host.parse().map_err(|_| format!("`{host}` is not an IP address (a name is not accepted here)"))?;
    Ok((ip, port))
}

/// A host with an optional port: an IP address or a name.
pub(super) fn host_port(text: &str) -> Result<(Target, Option<u16>), String> {
    let (host, port) = split_host_port(text)?;
    Ok((Target::host(host)?, port))
}

/// The host and port of a `sip:`/`sips:` URI (`sip:user@host:port;params?headers`, bare or
/// in `<…>`).
pub(super) fn sip_uri(text: &str) -> Result<(Target, Option<u16>), String> {
    let t = text.trim();
    let inner = t.strip_prefix('<').map_or(t, |r| r.split_once('>').map_or(r, |(u, _)| u));
    let lower = inner.to_ascii_lowercase();
    let Some(rest) = ["sip:", "sips:"].iter().find(|s| lower.starts_with(**s)).map(|s| &inner[s.len()..]) else {
        return Err(format!("`{t}` is not a sip: or sips: URI"));
    };
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = hostport.split_once(';').map_or(hostport, |(h, _)| h);
    host_port(hostport).map_err(|e| format!("in `{t}`: {e}"))
}

/// One entry of pjsip identify's `match`: `IP`, `IP:port`, `[v6]:port`, a network as
/// `IP/len` or `IP/netmask` (a port may stand before the slash: `3.2.1.0:5061/24`), or a
/// host name with an optional port. Host bits under the mask are dropped, as the ACL does.
pub(super) fn match_entry(text: &str) -> Result<Target, String> {
    let t = text.trim();
    if let Some((addr, mask)) = t.rsplit_once('/') {
        let (ip, _) = sockaddr(addr).map_err(|e| format!("`{t}`: {e}"))?;
        let len = prefix_len(ip, mask.trim()).map_err(|e| format!("`{t}`: {e}"))?;
        let net = IpNet::new(ip, len).expect("length checked");
        return Ok(Target::Net(net.trunc()));
    }
    if let Ok((ip, _)) = sockaddr(t) {
        return Ok(Target::Net(IpNet::from(ip)));
    }
    host_port(t).map(|(target, _)| target)
}

/// `24`, or a netmask of the address's family (`255.255.255.0`); the mask must be contiguous.
fn prefix_len(ip: IpAddr, mask: &str) -> Result<u8, String> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if let Ok(len) = mask.parse::<u8>() {
        return if len <= max { Ok(len) } else { Err(format!("prefix length {len} is more than {max}")) };
    }
    let bits: u128 = match (ip, mask.parse::<IpAddr>()) {
        (IpAddr::V4(_), Ok(IpAddr::V4(m))) => u128::from(u32::from(m)) << 96,
        (IpAddr::V6(_), Ok(IpAddr::V6(m))) => u128::from(m),
        _ => return Err(format!("`{mask}` is neither a prefix length nor a netmask of the address's family")),
    };
    if bits.leading_ones() + bits.trailing_zeros() != 128 && bits != 0 {
        return Err(format!("netmask `{mask}` is not contiguous"));
    }
    Ok(bits.leading_ones() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Target {
        Target::Net(s.parse().unwrap())
    }

    #[test]
    fn host_and_port_forms() {
        assert_eq!(split_host_port("0.0.0.0:5060").unwrap(), ("0.0.0.0", Some(5060)));
        assert_eq!(split_host_port("[::]:5061").unwrap(), ("::", Some(5061)));
        assert_eq!(split_host_port("[2001:db8::1]").unwrap(), ("2001:db8::1", None));
        assert_eq!(split_host_port("2001:db8::1").unwrap(), ("2001:db8::1", None));
        assert_eq!(split_host_port("example.com:0").unwrap(), ("example.com", None));
        assert!(split_host_port("1.2.3.4:http").unwrap_err().contains("port number"));
        assert!(split_host_port("[::1:5060").is_err());
        assert!(sockaddr("pbx.example.com:5060").unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn sip_uris() {
        let p = |s: &str| sip_uri(s).unwrap();
        assert_eq!(p("sip:sip.example.com"), (Target::Name("sip.example.com".into()), None));
        assert_eq!(p("sip:user@203.0.113.5:5070;transport=tcp"), (net("203.0.113.5/32"), Some(5070)));
        assert_eq!(p("<sips:proxy.example.net;lr>"), (Target::Name("proxy.example.net".into()), None));
        assert_eq!(p("SIP:a@b@[2001:db8::5]:5080?x=y@z"), (net("2001:db8::5/128"), Some(5080)));
        assert!(sip_uri("tel:+15551234").unwrap_err().contains("not a sip"));
    }

    #[test]
    fn identify_matches() {
        assert_eq!(match_entry("203.0.113.5").unwrap(), net("203.0.113.5/32"));
        assert_eq!(match_entry("203.0.113.5:5060").unwrap(), net("203.0.113.5/32"));
        assert_eq!(match_entry("198.51.100.7/24").unwrap(), net("198.51.100.0/24"));
        assert_eq!(match_entry("3.2.1.0:5061/24").unwrap(), net("3.2.1.0/24"));
        assert_eq!(match_entry("192.0.2.0/255.255.255.128").unwrap(), net("192.0.2.0/25"));
        assert_eq!(match_entry("[2001:db8::1]:5060").unwrap(), net("2001:db8::1/128"));
        assert_eq!(match_entry("2001:db8:1::/48").unwrap(), net("2001:db8:1::/48"));
        assert_eq!(match_entry("Sip.Example.com:5060").unwrap(), Target::Name("sip.example.com".into()));
        assert!(match_entry("192.0.2.0/255.0.255.0").unwrap_err().contains("contiguous"));
        assert!(match_entry("192.0.2.0/33").is_err());
        assert!(match_entry("sip.example.com/24").is_err());
        assert!(match_entry("bad host!").is_err());
    }
}
