//! What one sshd message says: a failure or a harmless step of a connection, its source if
//! written, the user tried, and whether the connection ends or succeeded.
//!
//! The source is read from the end of the message, where sshd writes it after everything the
//! client chose (user names, identification strings): `… from ADDR port N ssh2`.

use super::Mode;
use crate::detection::detect::{find_all, host, rsplit_once, rsplit_space, split_once, split_space};

/// The source as written: an address, or a host name (never resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Src {
    Ip(std::net::IpAddr),
    Name(String),
    /// Several different addresses or names could be the source: the addresses and the
    /// names, each sorted and once.
    Ambiguous(Vec<std::net::IpAddr>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Msg<'a> {
    pub src: Option<Src>,
    pub user: Option<&'a str>,
    /// Not a failure by itself (counted if the connection fails later).
    pub nofail: bool,
    /// The connection ends with this message.
    pub forget: bool,
    /// The connection logged in.
    pub gained: bool,
    pub rule: &'static str,
}

fn fail(rule: &'static str) -> Msg<'static> {
    Msg { rule, ..Msg::default() }
}

fn host_token(t: &str) -> Option<Src> {
    if let Some(a) = host::addr(t) {
        return Some(Src::Ip(a));
    }
    let name_ok = !t.is_empty()
        && t.contains('.')
        && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        && t.bytes().any(|c| c.is_ascii_alphabetic());
    name_ok.then(|| Src::Name(t.to_owned()))
}

/// Strips from the end: spaces, `[preauth]` (if allowed), and up to `max` of ` port N`,
/// ` on S`, and ` sshN` (if `ssh` is allowed). Returns what is left.
fn strip_suffix(s: &str, preauth: bool, ssh: bool, max: usize) -> Option<(&str, bool)> {
    let mut t = s.trim_end();
    let mut had_preauth = false;
    if preauth {
        if let Some(r) = t.strip_suffix(" [preauth]") {
            t = r.trim_end();
            had_preauth = true;
        }
    }
    if ssh {
        if let Some((r, last)) = rsplit_space(t) {
            if last.strip_prefix("ssh").is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit())) {
                t = r;
            }
        }
    }
    for _ in 0..max {
        let Some((r, last)) = rsplit_space(t) else { break };
        let Some((r2, word)) = rsplit_space(r) else { break };
        if (word == "port" && host::is_port(last)) || word == "on" {
            t = r2;
        } else {
            break;
        }
    }
    Some((t, had_preauth))
}

/// `… HOST` at the end of `s` after suffixes: (text before the host, host).
fn host_at_end(s: &str, preauth: bool, ssh: bool, max: usize) -> Option<(&str, Src, bool)> {
    let (t, had_preauth) = strip_suffix(s, preauth, ssh, max)?;
    let (before, last) = rsplit_space(t).unwrap_or(("", t));
    Some((before, host_token(last)?, had_preauth))
}

/// `USER from HOST[suffixes]$`, read from the end: the last ` from ` followed by a host and
/// nothing but the suffixes.
fn user_from_host(s: &str, preauth: bool, ssh: bool, max: usize) -> Option<(&str, Src)> {
    let (t, _) = strip_suffix(s, preauth, ssh, max)?;
    let (before, h) = rsplit_once(t, " from ").or_else(|| t.strip_prefix("from ").map(|h| ("", h)))?;
    Some((before, host_token(h)?))
}

/// `from HOST[ port N][ on S][ sshN]` at `p` in `rest`, followed by the end or `: INFO`:
/// the host, and whether it ends the message.
fn from_host(rest: &str, p: usize) -> Option<(Src, bool)> {
    let after = &rest[p + 5..];
    let (h, mut tail) = split_space(after).map(|(h, t)| (h, Some(t))).unwrap_or((after, None));
    let src = host_token(h.strip_suffix(':').unwrap_or(h))?;
    let colon_after_host = h.ends_with(':');
    let mut ended = tail.is_none() && !colon_after_host;
    let mut info = colon_after_host;
    while let Some(t) = tail {
        let (w, next) = split_space(t).map(|(a, b)| (a, Some(b))).unwrap_or((t, None));
        let w2 = w.strip_suffix(':');
        let word = w2.unwrap_or(w);
        let is_ssh = word.strip_prefix("ssh").is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit()));
        if let (true, Some(nx)) = (word == "port" || word == "on", next) {
            let (v, n2) = split_space(nx).map(|(a, b)| (a, Some(b))).unwrap_or((nx, None));
            let v_colon = v.ends_with(':');
            if word == "port" && !host::is_port(v.trim_end_matches(':')) {
                break;
            }
            if v_colon {
                info = true;
                break;
            }
            tail = n2;
            ended = n2.is_none();
            continue;
        }
        if is_ssh {
            if w2.is_some() {
                info = true;
                break;
            }
            tail = next;
            ended = next.is_none();
            continue;
        }
        break;
    }
    (ended || info).then_some((src, ended))
}

/// sshd's `Failed METHOD for [invalid user ]USER from ADDR port N ssh2[: INFO]`.
fn failed(rest: &str) -> Option<Msg<'_>> {
    let (method, rest) = split_once(rest, " for ")?;
    let (invalid, rest) = match rest.strip_prefix("invalid user ") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let positions = rest.starts_with("from ").then_some(0).into_iter().chain(find_all(rest, " from ").map(|i| i + 1));
    let mut cands = positions.filter_map(|p| from_host(rest, p).map(|(src, ended)| (p, src, ended)));
    let first = cands.next()?;
    // a user name without spaces cannot hide a " from ": the first candidate is the source
    let (at, src) = if first.0 > 0 && !rest[..first.0 - 1].contains(' ') {
        (first.0, first.1)
    } else {
        let all: Vec<_> = std::iter::once(first).chain(cands).collect();
        let at_end: Vec<_> = all.iter().filter(|c| c.2).cloned().collect();
        let chosen = if all.len() == 1 || at_end.is_empty() { all } else { at_end };
        (chosen[0].0, settle_src(chosen.into_iter().map(|c| c.1).collect())?)
    };
    let nofail = method == "publickey" && !invalid;
    Some(Msg {
        src: Some(src),
        user: Some(rest[..at].trim_end()),
        nofail,
        rule: if nofail { "sshd-failed-publickey" } else { "sshd-failed" },
        ..Msg::default()
    })
}

fn settle_src(c: Vec<Src>) -> Option<Src> {
    let (mut addrs, mut names) = (Vec::new(), Vec::new());
    for s in c {
        match s {
            Src::Ip(a) => addrs.push(a),
            Src::Name(n) => names.push(n),
            Src::Ambiguous(a, n) => {
                addrs.extend(a);
                names.extend(n);
            }
        }
    }
    addrs.sort();
    addrs.dedup();
    names.sort();
    names.dedup();
    match (addrs.len(), names.len()) {
        (0, 0) => None,
        (1, 0) => addrs.pop().map(Src::Ip),
        (0, 1) => names.pop().map(Src::Name),
        _ => Some(Src::Ambiguous(addrs, names)),
    }
}

const NOT_ALLOWED: [&str; 5] = [
    " not allowed because not listed in AllowUsers",
    " not allowed because listed in DenyUsers",
    " not allowed because not in any group",
    " not allowed because a group is listed in DenyGroups",
    " not allowed because none of user's groups are listed in AllowGroups",
];

fn pam(rest: &str) -> Option<Msg<'_>> {
    // pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=A [user=U]
    let (module, rest) = split_once(rest, "(")?;
    if !(module.starts_with("pam_") && module[4..].bytes().all(|c| c.is_ascii_lowercase())) {
        return None;
    }
    let rest = rest.strip_prefix("sshd:auth):")?.trim_start().strip_prefix("authentication failure;")?;
    let (_, after_ruser) = split_once(rest, "ruser=")?;
    let (ruser, after) = after_ruser.split_once(char::is_whitespace)?;
    let after = after.trim_start().strip_prefix("rhost=")?;
    let (rhost, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
    let tail = tail.trim();
    let user = match tail.strip_prefix("user=") {
        Some(u) => strip_suffix(u, true, false, 3).map(|(u, _)| u),
        None if tail.is_empty() || tail == "[preauth]" => None,
        None => return None,
    };
    let user = user.or_else(|| (!ruser.is_empty()).then_some(ruser));
    Some(Msg { src: Some(host_token(rhost)?), user, nofail: true, rule: "sshd-pam", ..Msg::default() })
}

fn closed(m: &str, mode: Mode) -> Option<Msg<'_>> {
    // (Connection (closed|reset)|Disconnected) (by|from)[ (invalid|authenticating) user U] HOST…
    let rest = ["Connection closed by ", "Connection reset by ", "Disconnected from "]
        .iter()
        .find_map(|p| m.strip_prefix(p))?;
    let (before, src, preauth) = host_at_end(rest, true, false, 2)?;
    let user = before.strip_prefix("invalid user ").or_else(|| before.strip_prefix("authenticating user "));
    if user.is_none() && !before.is_empty() {
        return None;
    }
    let disconnected_user = m.starts_with("Disconnected") && user.is_some();
    let failure = match mode {
        Mode::Normal => false,
        Mode::Ddos | Mode::Aggressive => preauth,
        Mode::Extra => disconnected_user && preauth,
    };
    Some(Msg { src: Some(src), user, nofail: !failure, forget: true, rule: "sshd-closed-preauth", ..Msg::default() })
}

/// `Received disconnect from HOST[ port N]:CODE: …`
fn received_disconnect(rest: &str, mode: Mode) -> Option<Msg<'static>> {
    let (head, tail) = split_once(rest, ":")?;
    let (h, port) = split_space(head).map(|(h, p)| (h, Some(p))).unwrap_or((head, None));
    if let Some(p) = port {
        if !p.strip_prefix("port ").is_some_and(host::is_port) {
            return None;
        }
    }
    let src = host_token(h)?;
    let tail = tail.trim_start();
    let (code, text) = split_once(tail, ":")?;
    let text = text.trim();
    let msg = |nofail, rule| Some(Msg { src: Some(src.clone()), nofail, forget: true, rule, ..Msg::default() });
    match code.trim() {
        "3" if strip_suffix(text, true, false, 3)?.0.ends_with(": Auth fail") => msg(false, "sshd-auth-fail"),
        "11" => msg(true, "sshd-disconnect"),
        "14" if matches!(mode, Mode::Extra | Mode::Aggressive)
            && (text.starts_with("No supported authentication methods available")
                || text.starts_with("No authentication methods available")) =>
        {
            msg(false, "sshd-no-auth-methods")
        }
        _ => None,
    }
}

/// Classifies one sshd message (after the syslog header).
pub fn classify(raw: &str, mode: Mode) -> Option<Msg<'_>> {
    let mut m = raw.trim_end();
    for p in ["error: ", "fatal: "] {
        m = m.strip_prefix(p).unwrap_or(m);
    }
    m = m.strip_prefix("PAM: ").unwrap_or(m);
    let ddos = matches!(mode, Mode::Ddos | Mode::Aggressive);
    let extra = matches!(mode, Mode::Extra | Mode::Aggressive);

    if let Some(r) = m.strip_prefix("Failed ") {
        return failed(r);
    }
    for p in [
        "Authentication failure for ",
        "authentication failure for ",
        "Authentication error for ",
        "authentication error for ",
        "Authentication failed for ",
        "authentication failed for ",
    ] {
        if let Some(r) = m.strip_prefix(p) {
            // "… from HOST[ via IF]"
            let r = match rsplit_once(r, " via ") {
                Some((a, b)) if !b.contains(' ') => a,
                _ => r,
            };
            let (user, src) = user_from_host(r, true, false, 3)?;
            return Some(Msg { src: Some(src), user: Some(user), rule: "sshd-auth-failure", ..Msg::default() });
        }
    }
    if let Some(r) = m.strip_prefix("User not known to the underlying authentication module for ") {
        let (user, src) = user_from_host(r, true, false, 3)?;
        return Some(Msg { src: Some(src), user: Some(user), rule: "sshd-unknown-user", ..Msg::default() });
    }
    if let Some(r) = m.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let h = r.split_whitespace().next()?;
        return Some(Msg {
            src: Some(host_token(h)?),
            user: Some("ROOT"),
            rule: "sshd-root-refused",
            ..Msg::default()
        });
    }
    if let Some(r) = m
        .strip_prefix("Invalid user ")
        .or_else(|| m.strip_prefix("Illegal user "))
        .or_else(|| m.strip_prefix("illegal user "))
        .or_else(|| m.strip_prefix("invalid user "))
    {
        let (user, src) = user_from_host(r, true, false, 3)?;
        return Some(Msg { src: Some(src), user: Some(user), rule: "sshd-invalid-user", ..Msg::default() });
    }
    if let Some(r) = m.strip_prefix("User ") {
        if let Some(head) =
            NOT_ALLOWED.iter().find_map(|s| strip_suffix(r, true, false, 3).and_then(|(t, _)| t.strip_suffix(s)))
        {
            let (user, src) = user_from_host(head, false, false, 0)?;
            return Some(Msg { src: Some(src), user: Some(user), rule: "sshd-not-allowed", ..Msg::default() });
        }
        if let Some((user, _)) = split_once(r, " not allowed because account is locked") {
            return Some(Msg { user: Some(user), rule: "sshd-account-locked", ..Msg::default() });
        }
        return None;
    }
    if let Some(r) = m.strip_prefix("refused connect from ") {
        let inner = r.trim_end().strip_suffix(')')?;
        let (_, h) = rsplit_once(inner, " (")?;
        return Some(Msg { src: Some(host_token(h)?), rule: "sshd-refused-connect", ..Msg::default() });
    }
    if let Some(r) = m.strip_prefix("Received disconnect from ") {
        return received_disconnect(r, mode);
    }
    if m.starts_with("pam_") {
        return pam(m);
    }
    if let Some(r) = m.strip_prefix("maximum authentication attempts exceeded for ") {
        let (user, src) = user_from_host(r, true, true, 2)?;
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        return Some(Msg { src: Some(src), user: Some(user), rule: "sshd-max-auth", ..Msg::default() });
    }
    if let Some(r) = m.strip_prefix("Disconnecting: Too many authentication failures") {
        let (t, _) = strip_suffix(r, true, false, 3)?;
        let user = match t.strip_prefix(" for ") {
            Some(u) => Some(u),
            None if t.is_empty() => None,
            None => return None,
        };
        return Some(Msg { user, rule: "sshd-too-many-failures", ..Msg::default() });
    }
    if let Some(r) = m.strip_prefix("Disconnecting ").or_else(|| m.strip_prefix("Disconnecting from ")) {
        // Disconnecting (invalid|authenticating) user U HOST[ port N]: Change of username or service not allowed: …
        let mut cands = Vec::new();
        for i in find_all(r, ": Change of username or service not allowed:") {
            if let Some((before, src, _)) = host_at_end(&r[..i], false, false, 2) {
                if before.starts_with("invalid user ") || before.starts_with("authenticating user ") {
                    cands.push(src);
                }
            }
        }
        let src = settle_src(cands)?;
        return Some(Msg { src: Some(src), forget: true, rule: "sshd-change-of-user", ..Msg::default() });
    }
    if let Some(r) = m.strip_prefix("Accepted ") {
        let (_method, rest) = split_once(r, " for ")?;
        let (user, h) = match split_once(rest, " from ") {
            Some((u, after)) if !u.contains(' ') => (u, after),
            _ => rsplit_once(rest, " from ")?,
        };
        let h = h.split_whitespace().next()?;
        return Some(Msg {
            src: Some(host_token(h)?),
            user: Some(user),
            gained: true,
            forget: true,
            rule: "sshd-accepted",
            ..Msg::default()
        });
    }
    if let Some(r) = m.strip_prefix("Connection from ") {
        let h = r.split_whitespace().next()?;
        return Some(Msg { src: Some(host_token(h)?), nofail: true, rule: "sshd-connection", ..Msg::default() });
    }
    if let Some(msg) = closed(m, mode) {
        return Some(msg);
    }
    if ddos {
        if let Some(r) = m.strip_prefix("Did not receive identification string from ") {
            let h = r.split_whitespace().next()?;
            return Some(Msg { src: Some(host_token(h)?), rule: "sshd-no-identification", ..Msg::default() });
        }
        if let Some(r) = m.strip_prefix("kex_exchange_identification: ") {
            let r = r.strip_prefix("read: ").unwrap_or(r);
            let known = [
                "client sent invalid protocol identifier",
                "Client sent invalid protocol identifier",
                "Connection closed by remote host",
                "connection closed by remote host",
                "Connection reset by peer",
                "connection reset by peer",
            ];
            return known.iter().any(|k| r.starts_with(k)).then(|| fail("sshd-kex-identification"));
        }
        if let Some(r) = m.strip_prefix("Bad protocol version identification '") {
            let (_, src) = user_from_host(r, false, false, 1)?;
            return Some(Msg { src: Some(src), rule: "sshd-bad-protocol", ..Msg::default() });
        }
        if let Some(r) = m.strip_prefix("SSH: Server;Ltype: ") {
            let (kind, rest) = split_once(r, ";Remote: ")?;
            if !matches!(kind, "Authname" | "Version" | "Kex") {
                return None;
            }
            let (h, _) = split_once(rest, ";")?;
            let (h, port) = rsplit_once(h, "-")?;
            port.parse::<u16>().ok()?;
            return Some(Msg { src: Some(host_token(h)?), nofail: true, rule: "sshd-ltype", ..Msg::default() });
        }
        if m.starts_with("Read from socket failed: Connection reset by peer") {
            return Some(Msg { forget: true, ..fail("sshd-socket-reset") });
        }
        if let Some(r) = m.strip_prefix("banner exchange: Connection from ") {
            let (head, _) = split_once(r, ": invalid format")?;
            let h = head.split_whitespace().next()?;
            return Some(Msg { src: Some(host_token(h)?), rule: "sshd-banner-exchange", ..Msg::default() });
        }
    }
    if extra {
        if let Some(r) = m.strip_prefix("Unable to negotiate with ") {
            let (head, tail) = split_once(r, ": no matching ")?;
            split_once(tail, " found")?;
            let h = head.split_whitespace().next()?;
            return Some(Msg { src: Some(host_token(h)?), rule: "sshd-negotiation", ..Msg::default() });
        }
        if m.starts_with("Unable to negotiate a ") || (m.starts_with("no matching ") && m.contains(" found:")) {
            return Some(fail("sshd-negotiation"));
        }
    }
    None
}
