//! The host's interfaces: the one carrying the default route (for `sipwall run` without
//! `--iface`), the addresses of all of them (never banned: fail2ban's `ignoreself`), and whether
//! an interface's frames carry the Ethernet header the XDP program reads.

use std::net::IpAddr;

use ipnet::IpNet;

/// Every address configured on this host's interfaces (in the daemon's network namespace).
pub fn local_addresses() -> Vec<IpNet> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out: Vec<IpNet> = addrs
        .filter_map(|ifa| {
            let sa = ifa.address?;
            let ip = match (sa.as_sockaddr_in(), sa.as_sockaddr_in6()) {
                (Some(v4), _) => IpAddr::V4(v4.ip()),
                (_, Some(v6)) => IpAddr::V6(v6.ip()),
                _ => return None,
            };
            Some(IpNet::from(ip))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The interface of the IPv4 default route (`/proc/net/route`), else of the IPv6 one.
pub fn default_route_iface() -> Option<String> {
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    from_route_tables(&v4, &v6)
}

pub fn from_route_tables(v4: &str, v6: &str) -> Option<String> {
    for line in v4.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        if f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000" && f[0] != "lo" {
            return Some(f[0].to_owned());
        }
    }
    for line in v6.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // dest plen src splen nexthop metric refcnt use flags iface
        if f.len() >= 10 && f[0].chars().all(|c| c == '0') && f[1] == "00" && f[9] != "lo" {
            return Some(f[9].to_owned());
        }
    }
    None
}

/// An interface whose frames reach XDP without an Ethernet header: the program would read
/// their IP header as one and pass them as `non_ip`, so bans would not hold there.
#[derive(Debug, thiserror::Error)]
#[error(
    "{iface} is {kind} (link type {arphrd}): its packets reach XDP without an Ethernet header, so sipwall's \
     program cannot read them and bans would not hold there; attach to the Ethernet interface the traffic \
     arrives on (for a VPN, the one its tunnel runs over, which sees only the tunnel's own packets) or leave \
     {iface} out of --iface"
)]
pub struct NoEthernet {
    pub iface: String,
    pub arphrd: u16,
    pub kind: &'static str,
}

/// Checks that `iface` carries Ethernet frames (its `type` in sysfs, an `ARPHRD_*` value). An
/// interface sysfs does not know is left to the attach, which names the problem.
pub fn check_ethernet(iface: &str) -> Result<(), NoEthernet> {
    let Ok(text) = std::fs::read_to_string(format!("/sys/class/net/{iface}/type")) else { return Ok(()) };
    let Ok(arphrd) = text.trim().parse::<u16>() else { return Ok(()) };
    match link_kind(arphrd) {
        None => Ok(()),
        Some(kind) => Err(NoEthernet { iface: iface.to_owned(), arphrd, kind }),
    }
}

/// `None` for the link types whose frames start with an Ethernet header (Ethernet, Wi-Fi,
/// bridges, bonds, VLANs, veth and loopback); a name for the others.
pub fn link_kind(arphrd: u16) -> Option<&'static str> {
    Some(match arphrd {
        // ARPHRD_ETHER, ARPHRD_LOOPBACK
        1 | 772 => return None,
        65534 => "a link without a link-layer header (tun, WireGuard)",
        512 => "a PPP link",
        768 => "an IPIP tunnel",
        769 => "an IPv6-in-IPv6 tunnel",
        776 => "a SIT tunnel",
        778 => "a GRE tunnel",
        823 => "an IPv6 GRE tunnel",
        32 => "an InfiniBand link",
        _ => "not an Ethernet link",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  ens3\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  ens3\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(from_route_tables(v4, "").as_deref(), Some("ens3"));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth1\n";
        assert_eq!(from_route_tables("Iface\n", v6).as_deref(), Some("eth1"));
        assert_eq!(from_route_tables("Iface\n", ""), None);
    }

    #[test]
    fn local_addresses_hold_every_ipv6_address_the_kernel_lists() {
        let got = local_addresses();
        assert!(got.iter().all(|n| n.prefix_len() == n.max_prefix_len()), "{got:?}");
        let v6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
        for hex in v6.lines().filter_map(|l| l.split_whitespace().next()) {
            let a = std::net::Ipv6Addr::from(u128::from_str_radix(hex, 16).unwrap());
            assert!(got.contains(&IpNet::from(IpAddr::V6(a))), "{a} missing from {got:?}");
            if a.is_loopback() {
                // loopback is up, so its IPv4 address is there too, in the right byte order
                assert!(got.contains(&"127.0.0.1/32".parse().unwrap()), "{got:?}");
            }
        }
    }

    #[test]
    fn link_types_without_an_ethernet_header_are_named() {
        assert_eq!(link_kind(1), None);
        assert_eq!(link_kind(772), None, "loopback frames carry a zeroed Ethernet header");
        assert!(link_kind(65534).unwrap().contains("WireGuard"));
        assert!(link_kind(512).unwrap().contains("PPP"));
        assert!(check_ethernet("lo").is_ok());
        assert!(check_ethernet("no-such-interface").is_ok(), "left to the attach to report");
    }
}
