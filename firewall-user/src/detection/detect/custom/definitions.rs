//! A filter's definitions, resolved as fail2ban resolves them: first ConfigParser's `%(name)s`
//! (`%%` is a `%`), then fail2ban's `<name>` tags, innermost first, so that `<mdre-<mode>>`
//! becomes `<mdre-normal>` and then its value (`substituteRecursiveTags` in `helpers.py`).
//! fail2ban's `common.conf` definitions are built in; the filter's own override them.

use std::collections::HashMap;

/// fail2ban's `common.conf` (`[DEFAULT]` and the `[lt_*]` sections, as `section/name`).
pub const COMMON: [(&str, &str); 23] = [
    ("logtype", "file"),
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
    ("__prefix_line", "<lt_<logtype>/__prefix_line>"),
    ("__pam_auth", "pam_unix"),
    ("datepattern", "<lt_<logtype>/datepattern>"),
    (
        "lt_file/__prefix_line",
        r"<__date_ambit>?\s*(?:<__bsd_syslog_verbose>\s+)?(?:<__hostname>\s+)?(?:<__kernel_prefix>\s+)?(?:<__vserver>\s+)?(?:<__daemon_combs_re>\s+)?(?:<__daemon_extra_re>\s+)?",
    ),
    ("lt_file/datepattern", "{^LN-BEG}"),
    ("lt_short/__prefix_line", r"\s*(?:<__hostname>\s+)?(?:<_daemon><__pid_re>?:?\s+)?(?:<__kernel_prefix>\s+)?"),
    ("lt_short/datepattern", "{^LN-BEG}"),
    ("lt_journal/__prefix_line", "<lt_short/__prefix_line>"),
    ("lt_journal/datepattern", "{^LN-BEG}"),
    (
        "lt_rfc5424/__prefix_line",
        r#"\s*<__hostname> <__daemon_re> \d+ \S+ (?:[^\[\]\s]+|(?:\[(?:[^\]"]*|"[^"]*")*\])+)\s+"#,
    ),
    ("lt_rfc5424/datepattern", r"^<\d+>\d+\s+{DATE}"),
];

/// fail2ban gives up after this many replacements of one tag (`MAX_TAG_REPLACE_COUNT`).
const MAX_REPLACE: usize = 25;

/// Longest text a resolved expression may reach. Each pass replaces every copy of a tag, so
/// definitions that write another one twice double the text per pass: 25 passes would need
/// gigabytes. fail2ban's own filters resolve to a few kilobytes.
pub const MAX_RESOLVED: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("`{0}` refers to itself (through other definitions)")]
    Cycle(String),
    #[error("`%({0})s` is not defined: add `{0}` to `definitions`")]
    Undefined(String),
    #[error(
        "`<{0}>` is neither a definition nor a fail2ban tag: add `{0}` to `definitions` (or set the \
         variable it is built from, such as `mode`), or write a literal `<` as `\\<`"
    )]
    UnknownTag(String),
    #[error(
        "resolving `<{0}>` makes the expression longer than {MAX_RESOLVED} bytes (definitions that each \
         write another one more than once double it at every step): write the expression out"
    )]
    TooLong(String),
    #[error("`<SKIPLINES>` needs fail2ban's multi-line buffer (`maxlines` above 1), which sipwall does not have")]
    SkipLines,
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

    /// `text` with every `%(name)s` and every defined `<name>` replaced; may span several lines.
    pub fn resolve(&self, text: &str) -> Result<String, Error> {
        let mut s = self.percent(text, &mut Vec::new())?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut from = 0;
        while let Some((start, end)) = find_tag(&s, from) {
            let name = &s[start + 1..end - 1];
            let Some(value) = self.get(name) else {
                from = end;
                continue;
            };
            let n = counts.entry(name.to_owned()).or_default();
            *n += 1;
            if *n > MAX_REPLACE {
                return Err(Error::Cycle(name.to_owned()));
            }
            let value = self.percent(value, &mut vec![name.to_owned()])?;
            let tag = s[start..end].to_owned();
            let copies = s.matches(tag.as_str()).count();
            if s.len() - copies * tag.len() + copies * value.len() > MAX_RESOLVED {
                return Err(Error::TooLong(name.to_owned()));
            }
            s = s.replace(&tag, &value);
            // fail2ban repeats its pass while tags remain: an outer `<…<inner>…>` resolves now
            from = 0;
        }
        Ok(s)
    }

    /// The expressions `lines` stand for: each resolved, then split into lines as fail2ban
    /// splits a multi-line `failregex`; blank lines and ConfigParser comment lines dropped.
    /// Each expression comes with the index of the written line it came from.
    pub fn expressions(&self, lines: &[String]) -> Result<Vec<(usize, String)>, (usize, Error)> {
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let resolved = self.resolve(line).map_err(|e| (i, e))?;
            for l in resolved.lines().map(str::trim) {
                if !l.is_empty() && !l.starts_with(['#', ';']) {
                    check_tags(l).map_err(|e| (i, e))?;
                    out.push((i, l.to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// ConfigParser's interpolation: `%(name)s` must be defined, `%%` is `%`.
    fn percent(&self, text: &str, stack: &mut Vec<String>) -> Result<String, Error> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("%%") {
                out.push('%');
                rest = after;
                continue;
            }
            let Some((name, len)) = tail.strip_prefix("%(").and_then(|r| r.find(")s").map(|e| (&r[..e], e + 4))) else {
                out.push('%');
                rest = &tail[1..];
                continue;
            };
            let value = self.get(name).ok_or_else(|| Error::Undefined(name.to_owned()))?;
            if stack.iter().any(|s| s == name) {
                return Err(Error::Cycle(name.to_owned()));
            }
            stack.push(name.to_owned());
            out.push_str(&self.percent(value, stack)?);
            stack.pop();
            rest = &tail[len..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The next `<name>` (fail2ban's `<([^ <>]+)>`) at or after `from`, as a byte range.
fn find_tag(s: &str, from: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut start = None;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match c {
            b'<' => start = Some(i),
            b'>' => {
                if let Some(st) = start.filter(|&st| i > st + 1) {
                    return Some((st, i + 1));
                }
                start = None;
            }
            b' ' => start = None,
            _ => {}
        }
    }
    None
}

/// fail2ban's own tags, which the regular expression translation turns into groups.
fn is_regex_tag(name: &str) -> bool {
    const PLAIN: [&str; 7] = ["HOST", "ADDR", "IP4", "IP6", "DNS", "CIDR", "SUBNET"];
    if PLAIN.contains(&name) {
        return true;
    }
    let inner = name.strip_prefix('/').unwrap_or(name);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    inner.strip_prefix("F-").is_some_and(|n| {
        !n.is_empty() && n.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    })
}

/// Rejects a `<name>` that is left after substitution and is no fail2ban tag: in fail2ban it
/// would stay as literal text and match nothing, which is almost always a missing definition.
/// `(?P<name>…)` groups, lookbehinds and text with regex syntax inside (`<[^.]+\.[^.]+>`) are
/// not names.
pub fn check_tags(expr: &str) -> Result<(), Error> {
    let mut from = 0;
    while let Some((start, end)) = find_tag(expr, from) {
        from = end;
        let name = &expr[start + 1..end - 1];
        let before = &expr[..start];
        if before.ends_with("(?P") || before.ends_with("(?") || before.ends_with('\\') {
            continue;
        }
        if name == "SKIPLINES" {
            return Err(Error::SkipLines);
        }
        let name_like = name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/' | b'.'));
        if name_like && !is_regex_tag(name) {
            return Err(Error::UnknownTag(name.to_owned()));
        }
    }
    Ok(())
}
