//! Asterisk's configuration in the rules: the ports of the `sip`, `iax` and `rtp` services that
//! the rules leave out, and the trunks, which are allow-listed like `[allow]` sources.

use std::net::{IpAddr, ToSocketAddrs};

use ipnet::IpNet;

use super::{
    diag::{Diagnostic, Severity},
    ports::{PortRange, Proto},
    services::PortsFrom,
    Rules,
};
use crate::asterisk::{self, Discovered, Level, Transport};

/// A trunk in the allow list: its network and what it is (`trunk itsp (pjsip identify,
/// pjsip.conf:42)`).
pub type TrunkNet = (IpNet, String);

/// Resolves a host name through the system's resolver, once.
pub fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    let addrs = (name, 0).to_socket_addrs().map_err(|e| e.to_string())?;
    let mut v: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// Reads the Asterisk configuration the rules name (`[asterisk]`), when discovery is on, and
/// puts what it found in `rules`; returns its warnings and notes as diagnostics.
pub fn apply(rules: &mut Rules, resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>) -> Vec<Diagnostic> {
    let Some(dir) = rules.asterisk.config_dir.clone().filter(|_| rules.asterisk.discover) else { return Vec::new() };
    merge(rules, asterisk::discover(&dir, resolve))
}

/// What `sipwall check` and `sipwall status` say of Asterisk's configuration: where it was read,
/// what it holds, and which services took its ports.
pub fn describe(rules: &Rules) -> Vec<String> {
    let Some(d) = &rules.discovered else {
        return match &rules.asterisk.config_dir {
            Some(dir) if !rules.asterisk.discover => {
                vec![format!("asterisk: {} not read (discover = false)", dir.display())]
            }
            _ => Vec::new(),
        };
    };
    let mut out = vec![format!("asterisk: read {} ({} files)", d.dir.display(), d.files.len())];
    out.extend(d.describe().into_iter().map(|l| format!("  {l}")));
    for s in &rules.services {
        match &s.ports_from {
            PortsFrom::Asterisk(from) => out.push(format!("  service {} takes {}", s.name, from.join(", "))),
            PortsFrom::Standard => out.push(format!(
                "  service {} keeps its standard ports ({}): Asterisk's configuration names none",
                s.name,
                s.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )),
            PortsFrom::Rules => {}
        }
    }
    if !rules.trunks.is_empty() {
        out.push(format!("  {} trunk networks are allow-listed", rules.trunks.len()));
    }
    out
}

fn warning(rules: &Rules, msg: String) -> Diagnostic {
    Diagnostic::at(Severity::Warning, &rules.origin, "", None, msg)
}

/// Puts `found` in `rules`.
pub fn merge(rules: &mut Rules, found: Discovered) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let dir = found.dir.display().to_string();
    for n in &found.notes {
        if n.level != Level::Info {
            diags.push(warning(rules, format!("Asterisk configuration {dir}: {n}")));
        }
    }
    let proto = |t: Transport| match t {
        Transport::Udp => Proto::Udp,
        Transport::Tcp => Proto::Tcp,
    };
    let mut wanted: Vec<(&str, Vec<(PortRange, String)>)> = Vec::new();
    for svc in ["sip", "iax"] {
        let mut ports: Vec<(PortRange, String)> = Vec::new();
        for l in found.listeners.iter().filter(|l| l.protocol.service() == svc) {
            let p = PortRange { proto: proto(l.transport()), lo: l.port, hi: l.port };
            if !ports.iter().any(|(q, _)| *q == p) {
                let at = l.origin.as_ref().map_or_else(|| "Asterisk's default".to_owned(), ToString::to_string);
                ports.push((p, format!("{p} ({}, {at})", l.source)));
            }
        }
        wanted.push((svc, ports));
    }
    if let Some(r) = &found.rtp {
        let at = r.origin.as_ref().map_or_else(|| "Asterisk's default".to_owned(), ToString::to_string);
        let p = PortRange { proto: Proto::Udp, lo: r.first, hi: r.last };
        wanted.push(("rtp", vec![(p, format!("{p} ({at})"))]));
    }
    for (svc, ports) in wanted {
        if ports.is_empty() {
            continue;
        }
        let Some(i) = rules.services.iter().position(|s| s.name == svc) else { continue };
        if rules.services[i].ports_from == PortsFrom::Rules {
            continue;
        }
        let mut kept = Vec::new();
        let mut origins = Vec::new();
        for (p, why) in ports {
            let clash =
                rules.services.iter().enumerate().find(|(j, s)| *j != i && s.ports.iter().any(|q| q.overlaps(&p)));
            match clash {
                Some((_, s)) => diags.push(warning(
                    rules,
                    format!(
                        "Asterisk listens on {why}, but service `{}` has that port: `{svc}` goes without it",
                        s.name
                    ),
                )),
                None => {
                    kept.push(p);
                    origins.push(why);
                }
            }
        }
        if !kept.is_empty() {
            let s = &mut rules.services[i];
            s.ports = kept;
            s.ports_from = PortsFrom::Asterisk(origins);
        }
    }
    let mut trunks = Vec::new();
    for t in &found.trunks {
        for n in &t.nets {
            if too_wide(n) {
                diags.push(warning(
                    rules,
                    format!(
                        "trunk {} ({}, {}) covers {n}, wider than a /{} network: not allow-listed; write it in \
                         [allow] if every address in it must pass",
                        t.name,
                        t.kind,
                        t.origin,
                        if n.addr().is_ipv4() { WIDEST_V4 } else { WIDEST_V6 }
                    ),
                ));
                continue;
            }
            trunks.push((*n, label(t)));
        }
    }
    rules.trunks = trunks;
    rules.discovered = Some(found);
    diags
}

/// The widest networks a trunk is allow-listed for: a provider's range, not much of the Internet.
const WIDEST_V4: u8 = 16;
const WIDEST_V6: u8 = 32;

fn too_wide(n: &IpNet) -> bool {
    n.prefix_len() < if n.addr().is_ipv4() { WIDEST_V4 } else { WIDEST_V6 }
}

fn label(t: &asterisk::Trunk) -> String {
    format!("trunk {} ({}, {})", t.name, t.kind, t.origin)
}

/// On a reload, a trunk name that resolved before and does not now keeps its earlier addresses:
/// a resolver down while Asterisk's configuration is rewritten must not unprotect a trunk.
pub fn keep_resolved_trunks(rules: &mut Rules, current: &Rules) {
    let (Some(new), Some(old)) = (&rules.discovered, &current.discovered) else { return };
    let mut kept = Vec::new();
    for t in new.trunks.iter().filter(|t| t.nets.is_empty()) {
        let before = old.trunks.iter().find(|o| o.kind == t.kind && o.name == t.name && o.text == t.text);
        if let Some(o) = before.filter(|o| !o.nets.is_empty()) {
            log::warn!(
                "{}: `{}` does not resolve now; its addresses of the last load stay allow-listed",
                label(t),
                t.text
            );
            kept.extend(o.nets.iter().filter(|n| !too_wide(n)).map(|n| (*n, format!("{} (kept)", label(t)))));
        }
    }
    rules.trunks.extend(kept);
}
