//! sip.conf as chan_sip's `reload_config` reads it: the UDP, TCP and TLS listeners of
//! `[general]`, peers with a fixed `host=`, and `register =>` lines.

use std::net::{IpAddr, Ipv4Addr};

use super::{
    addr,
    conf::{atoi, is_false, is_true, Config, Entry, Level, Origin, Section},
    discover::Ctx,
    found::{Listener, Protocol, TrunkKind},
    parse::strip,
};

/// chan_sip's `STANDARD_SIP_PORT` and `STANDARD_TLS_PORT`.
const SIP_PORT: u16 = 5060;
const TLS_PORT: u16 = 5061;

pub(super) fn read(ctx: &mut Ctx) {
    let Some(cfg) = ctx.load_for("chan_sip", "sip.conf") else { return };
    let general = cfg.section("general");
    listeners(ctx, &cfg, general);
    if let Some(g) = general {
        for e in g.all("register") {
            register(ctx, g, e);
        }
    }
    for s in cfg.sections() {
        if !s.name.eq_ignore_ascii_case("general") && !s.name.eq_ignore_ascii_case("authentication") {
            peer(ctx, s, "chan_sip", TrunkKind::SipPeer);
        }
    }
}

/// An address option with the line that set it.
type Placed = (IpAddr, Option<u16>, Origin);

fn listeners(ctx: &mut Ctx, cfg: &Config, general: Option<&Section>) {
    let file = Origin::new(cfg.files.first().cloned().unwrap_or_default(), 0);
    let mut udp: Placed = (Ipv4Addr::UNSPECIFIED.into(), None, general.map_or(file, |g| g.origin.clone()));
    let mut bindport: Option<(u16, Origin)> = None;
    let (mut tcp, mut tcp_bind): (Option<Origin>, Option<Placed>) = (None, None);
    let (mut tls, mut tls_bind): (Option<Origin>, Option<Placed>) = (None, None);
    for e in general.iter().flat_map(|g| &g.entries) {
        match e.key.to_ascii_lowercase().as_str() {
            "bindaddr" | "udpbindaddr" => udp = address(ctx, e).unwrap_or(udp),
            // sscanf("%5d"): the leading digits count; 0 leaves the address's port.
            "bindport" => match atoi(&e.value).and_then(|p| u16::try_from(p).ok()) {
                Some(0) => bindport = None,
                Some(p) => bindport = Some((p, e.origin.clone())),
                None => {
                    let msg = format!("invalid bindport `{}`; chan_sip ignores it", e.value);
                    ctx.note(Level::Warning, Some(&e.origin), msg);
                }
            },
            // Anything but a "no" word turns TCP on (`!ast_false`), and nothing turns it off.
            "tcpenable" if !is_false(&e.value) => tcp = Some(e.origin.clone()),
            "tcpbindaddr" => tcp_bind = address(ctx, e).or(tcp_bind),
            "tlsenable" | "sslenable" => tls = is_true(&e.value).then(|| e.origin.clone()),
            "tlsbindaddr" | "sslbindaddr" => tls_bind = address(ctx, e).or(tls_bind),
            _ => {}
        }
    }
    let (ip, port, origin) = match bindport {
        Some((p, origin)) => (udp.0, p, origin),
        None => (udp.0, udp.1.unwrap_or(SIP_PORT), udp.2),
    };
    let listener = |protocol, bind, port, origin| Listener {
        protocol,
        port,
        bind,
        source: format!("chan_sip {}", Protocol::name(protocol)),
        origin: Some(origin),
    };
    ctx.listen(listener(Protocol::SipUdp, ip, port, origin));
    if let Some(on) = tcp {
        // Without tcpbindaddr, TCP takes the UDP address and port.
        let (bind, p, at) = tcp_bind.map_or((ip, port, on), |(b, p, o)| (b, p.unwrap_or(SIP_PORT), o));
        ctx.listen(listener(Protocol::SipTcp, bind, p, at));
    }
    if let Some(on) = tls {
        // Without tlsbindaddr, TLS takes the UDP address on 5061.
        let (bind, p, at) = tls_bind.map_or((ip, TLS_PORT, on), |(b, p, o)| (b, p.unwrap_or(TLS_PORT), o));
        ctx.listen(listener(Protocol::SipTls, bind, p, at));
    }
}

/// `ADDR[:PORT]` with a literal address (chan_sip and chan_iax2 take no names here).
pub(super) fn address(ctx: &mut Ctx, e: &Entry) -> Option<Placed> {
    match addr::sockaddr(&e.value) {
        Ok((ip, port)) => Some((ip, port, e.origin.clone())),
        Err(err) => {
            ctx.note(Level::Warning, Some(&e.origin), format!("{}: {err}; Asterisk ignores the line", e.key));
            None
        }
    }
}

/// A peer or friend with a fixed `host=` (chan_sip and chan_iax2 alike): users are matched
/// by name, not address, and a section without `type=` is skipped ("lacks type").
pub(super) fn peer(ctx: &mut Ctx, s: &Section, module: &str, kind: TrunkKind) {
    let name = &s.name;
    let Some(ty) = s.first("type") else {
        let msg = format!("[{name}] has no type=; {module} skips it (\"lacks type\"), so its host= is no trunk");
        ctx.note(Level::Warning, Some(&s.origin), msg);
        return;
    };
    match ty.value.to_ascii_lowercase().as_str() {
        "peer" | "friend" => {}
        "user" => return,
        other => {
            let msg = format!("[{name}] has type `{other}`, neither peer, friend nor user; {module} skips it");
            ctx.note(Level::Warning, Some(&ty.origin), msg);
            return;
        }
    }
    let Some(host) = s.last("host").filter(|e| !e.value.eq_ignore_ascii_case("dynamic")) else { return };
    match addr::host_port(&host.value) {
        Ok((target, _)) => ctx.trunk(name, kind, &host.value, target, &host.origin),
        Err(err) => ctx.note(Level::Warning, Some(&host.origin), format!("[{name}] host=: {err}")),
    }
}

/// `register => [peer?][transport://]user[@domain][:secret[:authuser]]@host[:port][/extension][~expiry]`:
/// the host is what follows the last `@`, up to `~`, `/` and `:` (sip_parse_register_line);
/// the secret before it may hold `:` and `@`. Only `host[:port]` is kept as the text.
fn register(ctx: &mut Ctx, general: &Section, e: &Entry) {
    let Some(hostport) = register_host(&e.value) else {
        let msg = "register => needs user@host ([peer?][transport://]user[@domain][:secret[:authuser]]@host[:port]\
                   [/extension][~expiry]); chan_sip skips it";
        ctx.note(Level::Warning, Some(&e.origin), msg.to_owned());
        return;
    };
    match addr::host_port(hostport) {
        Ok((target, _)) => ctx.trunk(&general.name, TrunkKind::SipRegister, hostport, target, &e.origin),
        Err(err) => ctx.note(Level::Warning, Some(&e.origin), format!("register =>: {err}")),
    }
}

/// The `host[:port]` of a chan_sip register line.
pub(super) fn register_host(value: &str) -> Option<&str> {
    let (user, rest) = value.rsplit_once('@')?;
    let rest = rest.split('~').next().unwrap_or_default();
    let rest = rest.split('/').next().unwrap_or_default();
    let rest = strip(rest).trim_matches('"');
    (!user.is_empty() && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lines() {
        assert_eq!(register_host("1234:s3cr:et@sip.example.com"), Some("sip.example.com"));
        assert_eq!(register_host("tls://u@dom:p@ss:w0rd:auth@203.0.113.9:5071/1000~120"), Some("203.0.113.9:5071"));
        assert_eq!(register_host("peer?u:pw@[2001:db8::9]:5060/ext"), Some("[2001:db8::9]:5060"));
        assert_eq!(register_host("nohost"), None);
        assert_eq!(register_host("@sip.example.com"), None);
    }
}
