//! http.conf as main/http.c reads it: where Asterisk's HTTP and HTTPS servers listen, for
//! the SIP WebSocket transports that ride on them.

use std::net::IpAddr;

use super::{
    addr,
    conf::{is_true, Level, Origin},
    discover::Ctx,
    pjsip::bind_address,
};

/// http.c's `DEFAULT_PORT` and `DEFAULT_TLS_PORT`.
const HTTP_PORT: u16 = 8088;
const HTTPS_PORT: u16 = 8089;

/// The servers that run: address, port and the line that placed them.
#[derive(Clone, Debug, Default)]
pub(super) struct Http {
    pub plain: Option<(IpAddr, u16, Origin)>,
    pub tls: Option<(IpAddr, u16, Origin)>,
}

pub(super) fn read(ctx: &mut Ctx) -> Http {
    let mut out = Http::default();
    let Some(cfg) = ctx.load("http.conf") else { return out };
    let Some(general) = cfg.section("general") else { return out };
    let (mut enabled, mut tls_enabled) = (false, None);
    let (mut port, mut bindaddr, mut tls_bind) = (HTTP_PORT, None, None);
    for e in &general.entries {
        match e.key.to_ascii_lowercase().as_str() {
            "enabled" => enabled = is_true(&e.value),
            "bindport" => {
                port = e.value.trim().parse::<u16>().unwrap_or_else(|_| {
                    let msg = format!("invalid bindport `{}`; Asterisk uses {HTTP_PORT}", e.value);
                    ctx.note(Level::Warning, Some(&e.origin), msg);
                    HTTP_PORT
                });
            }
            "bindaddr" => bindaddr = Some(e),
            "tlsenable" | "sslenable" => tls_enabled = is_true(&e.value).then_some(&e.origin),
            "tlsbindaddr" | "sslbindaddr" => match addr::sockaddr(&e.value) {
                Ok((ip, p)) => tls_bind = Some((ip, p.unwrap_or(HTTPS_PORT), e.origin.clone())),
                Err(err) => ctx.note(Level::Warning, Some(&e.origin), format!("{}: {err}; Asterisk ignores it", e.key)),
            },
            _ => {}
        }
    }
    if enabled {
        match bindaddr {
            Some(e) => {
                if let Some((ip, p)) = bind_address(ctx, e, "the HTTP server") {
                    let port = p.unwrap_or(if port == 0 { HTTP_PORT } else { port });
                    out.plain = Some((ip, port, e.origin.clone()));
                }
            }
            None => {
                let msg = "enabled=yes without bindaddr=: Asterisk's HTTP server does not start".to_owned();
                ctx.note(Level::Warning, Some(&general.origin), msg);
            }
        }
    }
    if let Some(origin) = tls_enabled {
        // Without tlsbindaddr the HTTPS server takes the HTTP server's address, on 8089.
        out.tls = tls_bind.or_else(|| out.plain.as_ref().map(|(ip, _, _)| (*ip, HTTPS_PORT, origin.clone())));
    }
    out
}
