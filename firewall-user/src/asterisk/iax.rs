//! iax.conf as chan_iax2's `set_config` reads it: the UDP port (`bindport`, each
//! `bindaddr`), peers with a fixed `host=`, and `register =>` lines.

use std::net::{IpAddr, Ipv4Addr};

use super::{
    addr,
    chan_sip::{address, peer},
    conf::{Level, Origin},
    discover::Ctx,
    found::{Listener, Protocol, TrunkKind},
};

/// chan_iax2's `IAX_DEFAULT_PORTNO`.
const IAX_PORT: u16 = 4569;

pub(super) fn read(ctx: &mut Ctx) {
    let Some(cfg) = ctx.load_for("chan_iax2", "iax.conf") else { return };
    let general = cfg.section("general");
    let file = Origin::new(cfg.files.first().cloned().unwrap_or_default(), 0);
    let mut port = (IAX_PORT, general.map_or(file, |g| g.origin.clone()));
    let mut bound = false;
    for e in general.iter().flat_map(|g| &g.entries) {
        match e.key.to_ascii_lowercase().as_str() {
            "bindport" => {
                port = match e.value.trim().parse::<u16>() {
                    Ok(p) if p >= 1024 => (p, e.origin.clone()),
                    _ => {
                        let msg = format!("bindport `{}` is not 1024 to 65535; Asterisk uses {IAX_PORT}", e.value);
                        ctx.note(Level::Warning, Some(&e.origin), msg);
                        (IAX_PORT, e.origin.clone())
                    }
                }
            }
            // Each bindaddr is a socket of its own, on its port or the bindport read so far.
            "bindaddr" => {
                if let Some((ip, p, origin)) = address(ctx, e) {
                    let origin = if p.is_some() { origin } else { port.1.clone() };
                    ctx.listen(listener(ip, p.unwrap_or(port.0), origin));
                    bound = true;
                }
            }
            _ => {}
        }
    }
    if !bound {
        ctx.listen(listener(Ipv4Addr::UNSPECIFIED.into(), port.0, port.1));
    }
    if let Some(g) = general {
        for e in g.all("register") {
            let Some(host) = register_host(&e.value) else {
                let msg = "register => needs user[:secret]@host[:port]; chan_iax2 skips it".to_owned();
                ctx.note(Level::Warning, Some(&e.origin), msg);
                continue;
            };
            match addr::host_port(host) {
                Ok((target, _)) => ctx.trunk(&g.name, TrunkKind::IaxRegister, host, target, &e.origin),
                Err(err) => ctx.note(Level::Warning, Some(&e.origin), format!("register =>: {err}")),
            }
        }
    }
    for s in cfg.sections() {
        if !s.name.eq_ignore_ascii_case("general") && !s.name.eq_ignore_ascii_case("callnumberlimits") {
            peer(ctx, s, "chan_iax2", TrunkKind::IaxPeer);
        }
    }
}

fn listener(bind: IpAddr, port: u16, origin: Origin) -> Listener {
    Listener { protocol: Protocol::Iax2, port, bind, source: "chan_iax2".into(), origin: Some(origin) }
}

/// `user[:secret]@host[:port]`: iax2_register splits at the first `@` and the host ends at
/// the next one, so unlike chan_sip a secret here cannot hold `@`.
fn register_host(value: &str) -> Option<&str> {
    let mut parts = value.split('@');
    let _user = parts.next()?;
    parts.next().filter(|h| !h.is_empty())
}
