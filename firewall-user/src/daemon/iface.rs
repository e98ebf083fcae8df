//! The host's interfaces: the one carrying the default route (for `sipwall run` without
//! `--iface`), the addresses of all of them (never banned: fail2ban's `ignoreself`), and whether
//! an interface's frames carry the Ethernet header the XDP program reads.

use std::net::IpAddr;

use ipnet::IpNet;

/// Every address configured on this host's interfaces (in the daemon's network namespace).
pub fn local_addresses() -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: the family tells which sockaddr type `ifa_addr` points to.
            let addr = unsafe {
                match (*ifa.ifa_addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        Some(IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()))
                    }
                    libc::AF_INET6 => {
                        let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        Some(IpAddr::from(sa.sin6_addr.s6_addr))
                    }
                    _ => None,
                }
            };
            if let Some(a) = addr {
                out.push(IpNet::from(a));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: freeing the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(head) };
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
    fn link_types_without_an_ethernet_header_are_named() {
        assert_eq!(link_kind(1), None);
        assert_eq!(link_kind(772), None, "loopback frames carry a zeroed Ethernet header");
        assert!(link_kind(65534).unwrap().contains("WireGuard"));
        assert!(link_kind(512).unwrap().contains("PPP"));
        assert!(check_ethernet("lo").is_ok());
        assert!(check_ethernet("no-such-interface").is_ok(), "left to the attach to report");
    }
}
