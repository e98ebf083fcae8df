//! fail2ban filter syntax to a regular expression: `%(name)s` and `<name>` interpolation of
//! definitions (fail2ban's `common.conf` ones built in, the filter's own added), then the tags
//! `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<DNS>`, `<CIDR>`, `<SUBNET>`, `<F-NAME>…</F-NAME>`.

use std::collections::HashMap;

/// fail2ban's address expressions (`failregex.py`), with its group names.
const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
const DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";
const CIDR: &str = r"(?P<cidr>\d+)";

/// The definitions of fail2ban's `common.conf` (log type `file`) that filters refer to.
pub const COMMON: [(&str, &str); 13] = [
    ("_daemon", r"\S*"),
    ("__pid_re", r"(?:\[\d+\])"),
    ("__daemon_re", r"[\[\(]?<_daemon>(?:\(\S+\))?[\]\)]?:?"),
    ("__daemon_extra_re", r"\[ID \d+ \S+\]"),
    ("__daemon_combs_re", r"(?:<__pid_re>?:\s+<__daemon_re>|<__daemon_re><__pid_re>?:?)"),
    ("__kernel_prefix", r"kernel:\s?\[ *\d+\.\d+\]:?"),
    ("__hostname", r"\S+"),
    ("__md5hex", r"(?:[\da-f]{2}:){15}[\da-f]{2}"),
    ("__bsd_syslog_verbose", r"<[^.]+\.[^.]+>"),
    ("__vserver", r"@vserver_\S+"),
    ("__date_ambit", r"(?:\[\])"),
    (
        "__prefix_line",
        r"<__date_ambit>?\s*(?:<__bsd_syslog_verbose>\s+)?(?:<__hostname>\s+)?(?:<__kernel_prefix>\s+)?(?:<__vserver>\s+)?(?:<__daemon_combs_re>\s+)?(?:<__daemon_extra_re>\s+)?",
    ),
    ("__pam_auth", r"pam_unix"),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("`{0}` refers to itself (through other definitions)")]
    Cycle(String),
    #[error("`%({0})s` is not defined: add it to `definitions`")]
    Undefined(String),
    #[error("`</F-{0}>` closes a tag that is not open")]
    Unopened(String),
    #[error("`<F-{0}>` is opened twice")]
    Reopened(String),
}

/// The filter's definitions on top of fail2ban's common ones.
pub struct Definitions<'a> {
    own: &'a HashMap<String, String>,
}

impl<'a> Definitions<'a> {
    pub fn new(own: &'a HashMap<String, String>) -> Self {
        Definitions { own }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.own.get(name).map(String::as_str).or_else(|| COMMON.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    /// Replaces `%(name)s` (must be defined) and `<name>` (only if defined: `<HOST>` and the
    /// like are tags, left for `tags`) until none is left.
    pub fn interpolate(&self, text: &str) -> Result<String, Error> {
        // names built from other references (`<mdre-<mode>>`) resolve on a later pass
        let mut s = self.expand(text, &mut Vec::new())?;
        for _ in 0..8 {
            let next = self.expand(&s, &mut Vec::new())?;
            if next == s {
                break;
            }
            s = next;
        }
        Ok(s)
    }

    fn expand(&self, text: &str, stack: &mut Vec<String>) -> Result<String, Error> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(['%', '<']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("%%") {
                // ConfigParser's escaped percent sign, as pasted from a fail2ban filter
                out.push('%');
                rest = after;
                continue;
            }
            let reference = if let Some(r) = tail.strip_prefix("%(") {
                r.find(")s").map(|end| (&r[..end], end + 4, true))
            } else {
                tail[1..].find('>').map(|end| (&tail[1..1 + end], end + 2, false))
            };
            match reference {
                Some((name, len, strict)) if is_name(name) => match self.get(name) {
                    Some(value) => {
                        if stack.iter().any(|s| s == name) {
                            return Err(Error::Cycle(name.to_owned()));
                        }
                        stack.push(name.to_owned());
                        out.push_str(&self.expand(value, stack)?);
                        stack.pop();
                        rest = &tail[len..];
                    }
                    None if strict => return Err(Error::Undefined(name.to_owned())),
                    None => {
                        out.push_str(&tail[..1]);
                        rest = &tail[1..];
                    }
                },
                _ => {
                    out.push_str(&tail[..1]);
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'-'))
}

/// Group name of a custom `F-` tag: lower case, `F-ID` → `fid`, `F-PORT` → `fport`.
fn group_name(tag: &str) -> String {
    match tag {
        "ID" => "fid".into(),
        "PORT" => "fport".into(),
        t => t.to_ascii_lowercase().replace('-', "_"),
    }
}

/// Replaces fail2ban's tags with expressions and named groups, and Python's `(?(name)…)`
/// conditionals with the `(?(<name>)…)` form.
pub fn tags(regex: &str) -> Result<String, Error> {
    let addr = format!(r"\[?(?:{IP4}|{IP6})\]?");
    let mut out = String::with_capacity(regex.len() * 2);
    let mut open: Vec<String> = Vec::new();
    let mut rest = regex;
    while let Some(i) = rest.find(['<', '(']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(r) = tail.strip_prefix("(?(") {
            if let Some(end) = r.find(')') {
                let name = &r[..end];
                if is_name(name) && !name.bytes().all(|c| c.is_ascii_digit()) && !name.starts_with('<') {
                    out.push_str(&format!("(?(<{name}>)"));
                    rest = &r[end + 1..];
                    continue;
                }
            }
            out.push_str("(?(");
            rest = r;
            continue;
        }
        if let Some(after) = tail.strip_prefix('(') {
            out.push('(');
            rest = after;
            continue;
        }
        let Some(end) = tail[1..].find('>') else {
            out.push('<');
            rest = &tail[1..];
            continue;
        };
        let tag = &tail[1..1 + end];
        let len = end + 2;
        let replacement = match tag {
            "HOST" => Some(format!("(?:{addr}|{DNS})")),
            "ADDR" | "F-ADDR/" => Some(addr.clone()),
            "IP4" | "F-IP4/" => Some(IP4.to_owned()),
            "IP6" | "F-IP6/" => Some(IP6.to_owned()),
            "DNS" | "F-DNS/" => Some(DNS.to_owned()),
            "CIDR" | "F-CIDR/" => Some(CIDR.to_owned()),
            "SUBNET" | "F-SUBNET/" => Some(format!(r"\[?(?:{IP4}|{IP6})(?:/{CIDR})?\]?")),
            "F-ID/" => Some(r"(?P<fid>\S+)".to_owned()),
            "F-PORT/" => Some(r"(?P<fport>\w+)".to_owned()),
            _ => None,
        };
        if let Some(r) = replacement {
            out.push_str(&r);
            rest = &tail[len..];
            continue;
        }
        if let Some(name) = tag.strip_prefix("/F-").filter(|n| is_tag(n)) {
            if let Some(pos) = open.iter().position(|o| o == name) {
                open.remove(pos);
                out.push(')');
            } else {
                return Err(Error::Unopened(name.to_owned()));
            }
            rest = &tail[len..];
            continue;
        }
        if let Some(name) = tag.strip_prefix("F-").filter(|n| is_tag(n)) {
            if open.iter().any(|o| o == name) {
                return Err(Error::Reopened(name.to_owned()));
            }
            open.push(name.to_owned());
            out.push_str(&format!("(?P<{}>", group_name(name)));
            rest = &tail[len..];
            continue;
        }
        out.push('<');
        rest = &tail[1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_tag(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_definitions() {
        let own: HashMap<String, String> = [
            ("_daemon".to_owned(), "asterisk".to_owned()),
            ("a".to_owned(), "x%(b)s".to_owned()),
            ("b".to_owned(), "<c>".to_owned()),
            ("c".to_owned(), "y".to_owned()),
        ]
        .into();
        let d = Definitions::new(&own);
        assert_eq!(d.interpolate("%(a)s-<HOST>").unwrap(), "xy-<HOST>");
        assert_eq!(d.interpolate("<__daemon_re>").unwrap(), r"[\[\(]?asterisk(?:\(\S+\))?[\]\)]?:?");
        assert_eq!(d.interpolate("%(nope)s"), Err(Error::Undefined("nope".into())));
        let own: HashMap<String, String> =
            [("mode".to_owned(), "ddos".to_owned()), ("re-ddos".to_owned(), "z".to_owned())].into();
        assert_eq!(Definitions::new(&own).interpolate("<re-<mode>>").unwrap(), "z");
        let own: HashMap<String, String> =
            [("a".to_owned(), "<b>".to_owned()), ("b".to_owned(), "%(a)s".to_owned())].into();
        assert_eq!(Definitions::new(&own).interpolate("<a>"), Err(Error::Cycle("a".into())));
    }

    #[test]
    fn tags_become_groups() {
        assert_eq!(tags("<F-USER>.*</F-USER>").unwrap(), "(?P<user>.*)");
        assert_eq!(tags("(?P<x>a)?(?(x)b|c)").unwrap(), "(?P<x>a)?(?(<x>)b|c)");
        assert_eq!(tags("(a)?(?(1)b)").unwrap(), "(a)?(?(1)b)");
        assert!(tags("<HOST>").unwrap().contains("(?P<ip4>"));
        assert_eq!(tags("</F-USER>"), Err(Error::Unopened("USER".into())));
        assert_eq!(tags("a<b"), Ok("a<b".into()));
    }
}
