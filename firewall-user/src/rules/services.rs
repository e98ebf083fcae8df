//! `[services.NAME]`: port sets with optional `allow_from` and per-source rate limits.

use ipnet::IpNet;

use super::{
    ports::{self, PortRange},
    reader::{Reader, Section},
};
use firewall_common::service::MAX_SERVICES;

/// What a TCP segment costs against the service's rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpLimit {
    /// Only connection attempts (SYN without ACK): established sessions are never throttled.
    Syn,
    /// Every segment.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Packets per second, per source.
    pub rate: u32,
    /// Packets a source may send at once before the rate applies.
    pub burst: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub ports: Vec<PortRange>,
    /// Whether the rules wrote `ports`, or left them to Asterisk's configuration.
    pub ports_from: PortsFrom,
    /// `Some`: only these sources (and the global allow list) may reach the service.
    pub allow_from: Option<Vec<IpNet>>,
    pub limit: Option<Limit>,
    pub limit_tcp: TcpLimit,
}

/// Where a service's ports come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortsFrom {
    /// Written in the rules: they stay as written.
    Rules,
    /// Not written (`sip`, `iax` and `rtp` only): the standard ports, until Asterisk's
    /// configuration names others.
    Standard,
    /// Not written, and taken from Asterisk's configuration: where each was found.
    Asterisk(Vec<String>),
}

/// The services whose `ports` may be left out, and their standard ports.
pub const STANDARD_PORTS: [(&str, &[&str]); 3] =
    [("sip", &["5060/udp", "5060/tcp", "5061/tcp"]), ("iax", &["4569/udp"]), ("rtp", &["10000-20000/udp"])];

/// The standard ports of service `name`, if it may leave `ports` out.
pub fn standard_ports(name: &str) -> Option<Vec<PortRange>> {
    let (_, list) = STANDARD_PORTS.iter().find(|(n, _)| *n == name)?;
    Some(list.iter().map(|p| ports::parse(p).expect("valid standard ports")).collect())
}

const KEYS: &[&str] = &["ports", "allow_from", "rate", "burst", "limit_tcp"];
pub const MAX_RATE: u64 = 10_000_000;

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some('a'..='z'))
        && n.len() <= 32
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub fn read(r: &mut Reader, sec: &Section) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    // (range, owning service) of every port range accepted so far, to report overlaps.
    let mut taken: Vec<(PortRange, String)> = Vec::new();
    for (name, table, span) in sec.tables(r) {
        let path = format!("services.{name}");
        let s = Section { table, path: &path, span: span.clone() };
        s.check_keys(r, KEYS);
        if !valid_name(name) {
            r.error(
                span.clone(),
                format!("service name `{name}` must start with a-z and hold only a-z, 0-9, `_` or `-` (at most 32)"),
            );
        }
        let mut ports = Vec::new();
        let mut ports_from = PortsFrom::Rules;
        match s.strings(r, "ports") {
            None if !s.has("ports") => match standard_ports(name) {
                Some(std) => {
                    ports_from = PortsFrom::Standard;
                    for p in std {
                        match taken.iter().find(|(q, _)| q.overlaps(&p)) {
                            Some((q, owner)) => r.error(
                                span.clone(),
                                format!(
                                    "[{path}] has no `ports`, so it takes the standard {p}, which overlaps {q} of \
                                     service `{owner}`: write the ports of one of them"
                                ),
                            ),
                            None => {
                                taken.push((p, name.to_owned()));
                                ports.push(p);
                            }
                        }
                    }
                }
                None => r.error(span.clone(), format!("[{path}] needs `ports`, like ports = [\"5060/udp\"]")),
            },
            None => {}
            Some(list) if list.is_empty() => r.error(s.value_span("ports"), format!("[{path}] `ports` is empty")),
            Some(list) => {
                for (text, sp) in list {
                    match ports::parse(&text) {
                        Ok(p) => {
                            if let Some((q, owner)) = taken.iter().find(|(q, _)| q.overlaps(&p)) {
                                r.error(
                                    Some(sp),
                                    format!("{p} overlaps {q} of service `{owner}`: a port belongs to one service"),
                                );
                            } else {
                                taken.push((p, name.to_owned()));
                                ports.push(p);
                            }
                        }
                        Err(e) => r.error(Some(sp), e),
                    }
                }
            }
        }
        let allow_from = super::table_nets(r, &s, "allow_from");
        if s.table.get("allow_from").and_then(|i| i.as_array()).is_some_and(|a| a.is_empty()) {
            r.warn(
                s.value_span("allow_from"),
                format!("`allow_from` of `{name}` is empty: only the global allow list reaches this service"),
            );
        }
        let rate = s.uint(r, "rate", 1, MAX_RATE);
        let burst = s.uint(r, "burst", 1, MAX_RATE);
        if s.has("burst") && !s.has("rate") {
            r.error(s.key_span("burst"), format!("[{path}] has `burst` but no `rate`: add rate = PACKETS_PER_SECOND"));
        }
        let limit = rate.map(|rate| Limit { rate: rate as u32, burst: burst.unwrap_or(rate) as u32 });
        let limit_tcp = match s.string(r, "limit_tcp") {
            None => TcpLimit::Syn,
            Some((v, _)) if v == "syn" => TcpLimit::Syn,
            Some((v, _)) if v == "all" => TcpLimit::All,
            Some((v, sp)) => {
                r.error(
                    Some(sp),
                    format!(
                        "`limit_tcp` must be \"syn\" (connection attempts) or \"all\" (every segment), found \"{v}\""
                    ),
                );
                TcpLimit::Syn
            }
        };
        out.push(Service { name: name.to_owned(), ports, ports_from, allow_from, limit, limit_tcp });
    }
    if out.len() > MAX_SERVICES as usize {
        r.error(sec.span.clone(), format!("{} services defined; at most {MAX_SERVICES} fit", out.len()));
    }
    out
}
