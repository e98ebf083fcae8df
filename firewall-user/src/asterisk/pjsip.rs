//! pjsip.conf as res_pjsip's sorcery reads it: transports (listeners), identify `match`,
//! registration `server_uri`/`outbound_proxy` and aor `contact` (trunks).

use std::net::IpAddr;

use super::{
    addr::{self, Target},
    conf::{Config, Entry, Level, Origin, Section},
    discover::Ctx,
    found::{Listener, Protocol, TrunkKind},
    http::{self, Http},
    parse::strip,
};

pub(super) fn read(ctx: &mut Ctx) {
    let Some(cfg) = ctx.load_for("res_pjsip", "pjsip.conf") else { return };
    check_duplicates(ctx, &cfg);
    let identify = ctx.modules.loads("res_pjsip_endpoint_identifier_ip");
    let registration = ctx.modules.loads("res_pjsip_outbound_registration");
    let mut http = None;
    for s in cfg.sections() {
        let Some(ty) = s.first("type") else {
            let msg = format!("[{}] has no type=; pjsip makes nothing of it", s.name);
            ctx.note(Level::Warning, Some(&s.origin), msg);
            continue;
        };
        // Sorcery compares the type's value exactly (`type=Identify` is no identify).
        match ty.value.as_str() {
            "transport" => transport(ctx, s, &mut http),
            "identify" if identify => self::identify(ctx, s),
            "registration" if registration => self::registration(ctx, s),
            "aor" => aor(ctx, s),
            "identify" | "registration" => {
                let module = if ty.value == "identify" {
                    "res_pjsip_endpoint_identifier_ip"
                } else {
                    "res_pjsip_outbound_registration"
                };
                let msg = format!("{} [{}] is not used: modules.conf keeps {module} from loading", ty.value, s.name);
                ctx.note(Level::Info, Some(&s.origin), msg);
            }
            _ => {}
        }
    }
}

/// Two objects of one type with one name: sorcery then loads no object of that type at all
/// ("configuration contains a duplicate object").
fn check_duplicates(ctx: &mut Ctx, cfg: &Config) {
    let typed: Vec<(&str, &Section)> =
        cfg.sections().filter_map(|s| s.first("type").map(|t| (t.value.as_str(), s))).collect();
    for (i, (ty, s)) in typed.iter().enumerate() {
        if let Some((_, first)) = typed[..i].iter().find(|(t, f)| t == ty && f.name == s.name) {
            let msg = format!(
                "a second {ty} named {} (the first is at {}): Asterisk refuses every {ty} in pjsip.conf over it",
                s.name, first.origin
            );
            ctx.note(Level::Error, Some(&s.origin), msg);
        }
    }
}

fn transport(ctx: &mut Ctx, s: &Section, http: &mut Option<Http>) {
    let name = &s.name;
    let proto = s.last("protocol").map_or("udp".to_owned(), |e| e.value.to_ascii_lowercase());
    let protocol = match proto.as_str() {
        "udp" => Protocol::SipUdp,
        "tcp" => Protocol::SipTcp,
        "tls" => Protocol::SipTls,
        "ws" => Protocol::SipWs,
        "wss" => Protocol::SipWss,
        "flow" => {
            let msg = format!("transport {name} is a flow transport: it listens on nothing");
            ctx.note(Level::Info, Some(&s.origin), msg);
            return;
        }
        other => {
            let at = s.last("protocol").map_or(&s.origin, |e| &e.origin);
            let msg =
                format!("Asterisk rejects transport {name}: protocol `{other}` is not udp, tcp, tls, ws, wss or flow");
            ctx.note(Level::Error, Some(at), msg);
            return;
        }
    };
    if matches!(protocol, Protocol::SipWs | Protocol::SipWss) {
        return websocket(ctx, s, protocol, http);
    }
    let Some(bind) = s.last("bind").filter(|e| !e.value.is_empty()) else {
        let msg = format!("transport {name} has no bind=; Asterisk does not start it (\"binding not specified\")");
        ctx.note(Level::Error, Some(&s.origin), msg);
        return;
    };
    let Some((ip, port)) = bind_address(ctx, bind, &format!("transport {name}")) else { return };
    let port = port.unwrap_or(if protocol == Protocol::SipTls { 5061 } else { 5060 });
    let source = format!("pjsip {} transport {name}", protocol.name());
    ctx.listen(Listener { protocol, port, bind: ip, source, origin: Some(bind.origin.clone()) });
}

/// An address option that may hold a name (`pj_sockaddr_parse`, `ast_sockaddr_resolve`):
/// the first address it stands for, and its port if written.
pub(super) fn bind_address(ctx: &mut Ctx, e: &Entry, what: &str) -> Option<(IpAddr, Option<u16>)> {
    let parsed = addr::host_port(&e.value);
    let (target, port) = match parsed {
        Ok(p) => p,
        Err(err) => {
            ctx.note(Level::Error, Some(&e.origin), format!("Asterisk cannot use {what}'s address: {err}"));
            return None;
        }
    };
    let ip = match target {
        Target::Net(n) => n.addr(),
        Target::Name(host) => match ctx.resolve(&host).map(|a| a.first().copied()) {
            Ok(Some(ip)) => ip,
            answer => {
                let why = answer.err().unwrap_or_else(|| "no address".into());
                let msg = format!("{what} binds `{host}`, which does not resolve ({why}); its listener is left out");
                ctx.note(Level::Warning, Some(&e.origin), msg);
                return None;
            }
        },
    };
    Some((ip, port))
}

/// A ws/wss transport opens no port of its own: it is served by Asterisk's HTTP (ws) or
/// HTTPS (wss) server, through res_pjsip_transport_websocket.
fn websocket(ctx: &mut Ctx, s: &Section, protocol: Protocol, http: &mut Option<Http>) {
    let (name, kind) = (&s.name, protocol.name());
    if !ctx.modules.loads("res_pjsip_transport_websocket") {
        let msg = format!(
            "{kind} transport {name} is not served: modules.conf keeps res_pjsip_transport_websocket from loading"
        );
        ctx.note(Level::Info, Some(&s.origin), msg);
        return;
    }
    let server = http.get_or_insert_with(|| http::read(ctx));
    let found = if protocol == Protocol::SipWs { server.plain.clone() } else { server.tls.clone() };
    let Some((ip, port, origin)) = found else {
        let (server, how) = match protocol {
            Protocol::SipWs => ("HTTP", "enabled=yes and bindaddr="),
            _ => ("HTTPS", "tlsenable=yes and tlsbindaddr= or bindaddr="),
        };
        let msg = format!(
            "{kind} transport {name} rides on Asterisk's {server} server, which http.conf does not start ({how}): \
             no listener"
        );
        ctx.note(Level::Warning, Some(&s.origin), msg);
        return;
    };
    let source = format!("pjsip {kind} transport {name} (http.conf)");
    ctx.listen(Listener { protocol, port, bind: ip, source, origin: Some(origin) });
}

fn identify(ctx: &mut Ctx, s: &Section) {
    let name = &s.name;
    if s.last("endpoint").is_none_or(|e| e.value.is_empty()) {
        let msg = format!("Asterisk rejects identify {name}: it has no endpoint=");
        ctx.note(Level::Error, Some(&s.origin), msg);
        return;
    }
    // One bad network makes Asterisk reject the whole object; a name it cannot resolve
    // is only skipped.
    let mut found = Vec::new();
    for e in s.all("match") {
        for part in e.value.split(',').map(strip).filter(|p| !p.is_empty()) {
            match addr::match_entry(part) {
                Ok(t) => found.push((part, t, &e.origin)),
                Err(err) if part.contains('/') || addr::sockaddr(part).is_ok() => {
                    let msg = format!("Asterisk rejects identify {name}: {err}");
                    ctx.note(Level::Error, Some(&e.origin), msg);
                    return;
                }
                Err(err) => {
                    let msg = format!("identify {name}: {err}; Asterisk cannot resolve it, no address for it");
                    ctx.note(Level::Warning, Some(&e.origin), msg);
                }
            }
        }
    }
    for (text, target, origin) in found {
        ctx.trunk(name, TrunkKind::Identify, text, target, origin);
    }
}

fn registration(ctx: &mut Ctx, s: &Section) {
    let name = &s.name;
    let Some(server) = s.last("server_uri").filter(|e| !e.value.is_empty()) else {
        let msg = format!("Asterisk rejects registration {name}: it has no server_uri=");
        ctx.note(Level::Error, Some(&s.origin), msg);
        return;
    };
    match addr::sip_uri(&server.value) {
        Ok((t, _)) => ctx.trunk(name, TrunkKind::Registration, &server.value, t, &server.origin),
        Err(err) => {
            ctx.note(Level::Error, Some(&server.origin), format!("Asterisk rejects registration {name}: {err}"));
            return;
        }
    }
    if let Some(proxy) = s.last("outbound_proxy").filter(|e| !e.value.is_empty()) {
        uri_trunk(ctx, name, TrunkKind::Registration, proxy, "registration");
    }
}

/// A trunk from an entry holding one SIP URI; a bad one is a warning.
pub(super) fn uri_trunk(ctx: &mut Ctx, name: &str, kind: TrunkKind, e: &Entry, what: &str) {
    match addr::sip_uri(&e.value) {
        Ok((t, _)) => ctx.trunk(name, kind, &e.value, t, &e.origin),
        Err(err) => ctx.note(Level::Warning, Some(&e.origin), format!("{what} {name}, {}: {err}", e.key)),
    }
}

/// Static contacts (`contact=sip:trunk@203.0.113.5:5060`, several per line or several
/// lines): Asterisk sends to them without waiting for a registration.
fn aor(ctx: &mut Ctx, s: &Section) {
    let name = &s.name;
    let mut found: Vec<(&str, Target, &Origin)> = Vec::new();
    for e in s.all("contact") {
        for part in e.value.split(',').map(strip).filter(|p| !p.is_empty()) {
            match addr::sip_uri(part) {
                Ok((t, _)) => found.push((part, t, &e.origin)),
                Err(err) => {
                    ctx.note(Level::Error, Some(&e.origin), format!("Asterisk rejects aor {name}: {err}"));
                    return;
                }
            }
        }
    }
    for (text, target, origin) in found {
        ctx.trunk(name, TrunkKind::AorContact, text, target, origin);
    }
}
