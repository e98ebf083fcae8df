//! pjsip_wizard.conf as res_pjsip_config_wizard reads it: a `type=wizard` section makes an
//! identify, an aor and registrations from its `remote_hosts`, unless told otherwise.

use super::{
    addr::{self, Target},
    conf::{is_true, Level, Origin, Section},
    discover::Ctx,
    found::TrunkKind,
    parse::strip,
};

pub(super) fn read(ctx: &mut Ctx) {
    if !ctx.modules.loads("res_pjsip") {
        return;
    }
    let Some(cfg) = ctx.load_for("res_pjsip_config_wizard", "pjsip_wizard.conf") else { return };
    for s in cfg.sections().filter(|s| s.first("type").is_some_and(|t| t.value == "wizard")) {
        wizard(ctx, s);
    }
}

/// The addresses one wizard's objects hold: the identify's `match` (its own
/// `identify/match`, or the remote hosts), the aor's contacts (`aor/contact`, or
/// `contact_pattern` over the remote hosts), the registrations' servers
/// (`server_uri_pattern` over the remote hosts) and the outbound proxy.
fn wizard(ctx: &mut Ctx, s: &Section) {
    let name = &s.name;
    let yes = |key: &str| s.last(key).is_some_and(|e| is_true(&e.value));
    let hosts_entry = s.last("remote_hosts");
    let hosts: Vec<&str> =
        hosts_entry.map(|e| e.value.split(',').map(strip).filter(|h| !h.is_empty()).collect()).unwrap_or_default();
    let hosts_at = hosts_entry.map_or(&s.origin, |e| &e.origin);
    let mut found: Vec<(String, Target, Origin)> = Vec::new();
    let mut add = |ctx: &mut Ctx, text: &str, parsed: Result<Target, String>, at: &Origin| match parsed {
        Ok(t) if !found.iter().any(|(x, _, _)| x == text) => found.push((text.to_owned(), t, at.clone())),
        Ok(_) => {}
        Err(err) => ctx.note(Level::Warning, Some(at), format!("wizard {name}: {err}")),
    };

    if !yes("accepts_registrations") && !yes("sends_line_with_registrations") {
        let matches: Vec<_> = s.all("identify/match").collect();
        if !matches.is_empty() {
            for e in matches {
                for part in e.value.split(',').map(strip).filter(|p| !p.is_empty()) {
                    add(ctx, part, addr::match_entry(part), &e.origin);
                }
            }
        } else if hosts.is_empty() {
            let msg = format!(
                "Asterisk makes no identify for wizard {name}: it needs remote_hosts= when it does not accept \
                 registrations"
            );
            ctx.note(Level::Error, Some(&s.origin), msg);
        } else {
            for h in &hosts {
                add(ctx, h, addr::host_port(h).map(|(t, _)| t), hosts_at);
            }
        }
    }

    let contacts: Vec<_> = s.all("aor/contact").collect();
    if !contacts.is_empty() {
        for e in contacts {
            for part in e.value.split(',').map(strip).filter(|p| !p.is_empty()) {
                add(ctx, part, addr::sip_uri(part).map(|(t, _)| t), &e.origin);
            }
        }
    } else {
        let pattern = s.last("contact_pattern").map_or("sip:${REMOTE_HOST}", |e| e.value.as_str());
        for h in hosts.iter().filter(|_| !pattern.is_empty()) {
            let uri = pattern.replace("${REMOTE_HOST}", h);
            add(ctx, h, addr::sip_uri(&uri).map(|(t, _)| t), hosts_at);
        }
    }

    if yes("sends_registrations") {
        let pattern = s.last("server_uri_pattern").map_or("sip:${REMOTE_HOST}", |e| e.value.as_str());
        for h in hosts.iter().filter(|_| !pattern.is_empty()) {
            let uri = pattern.replace("${REMOTE_HOST}", h);
            add(ctx, h, addr::sip_uri(&uri).map(|(t, _)| t), hosts_at);
        }
    }

    if let Some(e) = s.last("outbound_proxy").filter(|e| !e.value.is_empty()) {
        add(ctx, &e.value, addr::sip_uri(&e.value).map(|(t, _)| t), &e.origin);
    }

    for (text, target, origin) in found {
        ctx.trunk(name, TrunkKind::Wizard, &text, target, &origin);
    }
}
