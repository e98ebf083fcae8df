//! The date in a log line, removed as fail2ban's date detector removes it (`filter.py`
//! `processLine`): only the matched date goes, the text around it stays, so `[2012-02-13
//! 17:21:54] NOTICE` reads `[] NOTICE` (hence `__date_ambit`) and a syslog line keeps the space
//! after the date. The date itself is not read: a failure counts when sipwall reads the line.

use std::borrow::Cow;

use fancy_regex::Regex;

use crate::detect::prefix;

/// Where a filter looks for the date.
#[derive(Debug)]
pub enum Dates {
    /// `{^LN-BEG}`: fail2ban's default formats, at the start of the line after at most two
    /// non-word characters (`^(?:\W{0,2})?`).
    LineStart,
    /// A `datepattern`: one expression per line, the first that matches wins.
    Patterns(Vec<Regex>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "`%{0}` is not a date directive sipwall knows; use %Y %y %m %d %e %H %k %I %l %M %S %f %p \
         %b %B %a %A %z %Z %j (or their %Ex forms), or {{^LN-BEG}} for fail2ban's default formats"
    )]
    Directive(String),
    #[error("`{0}` is not supported: write the date with % directives, {{DATE}} or {{^LN-BEG}}")]
    Special(String),
    #[error("{0}")]
    Regex(String),
}

impl Dates {
    /// `datepattern` as written (after the definitions were substituted); `None` is fail2ban's
    /// `common.conf` default, `{^LN-BEG}`.
    pub fn new(pattern: Option<&str>) -> Result<Dates, Error> {
        let lines: Vec<&str> =
            pattern.map(|p| p.lines().map(str::trim).filter(|l| !l.is_empty()).collect()).unwrap_or_default();
        if lines.is_empty() || lines.iter().all(|l| matches!(*l, "{^LN-BEG}" | "^" | "{DEFAULT}")) {
            return Ok(Dates::LineStart);
        }
        let mut regexes = Vec::new();
        for l in lines {
            if l == "{^LN-BEG}" {
                // the default formats after custom ones: approximated by a leading ISO or syslog date
                regexes.push(template(&format!("{{^LN-BEG}}{SYSLOG}"))?);
                regexes.push(template(&format!("{{^LN-BEG}}{ISO}"))?);
                continue;
            }
            regexes.push(template(l)?);
        }
        Ok(Dates::Patterns(regexes))
    }

    /// `line` without its date.
    pub fn strip<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let span = match self {
            Dates::LineStart => line_start(line),
            Dates::Patterns(rs) => rs.iter().find_map(|r| {
                let caps = r.captures(line).ok()??;
                let m = caps.get(1)?;
                Some((m.start(), m.end()))
            }),
        };
        match span {
            None => Cow::Borrowed(line),
            Some((0, e)) => Cow::Borrowed(&line[e..]),
            Some((s, e)) => Cow::Owned(format!("{}{}", &line[..s], &line[e..])),
        }
    }
}

/// The span of a date at the start of `line`, after at most two non-word characters.
fn line_start(line: &str) -> Option<(usize, usize)> {
    let mut s = 0;
    for c in line.chars().take(2) {
        if c.is_alphanumeric() || c == '_' {
            break;
        }
        s += c.len_utf8();
    }
    // `\W{0,2}` backtracks: try the longest skip first, then shorter ones
    let mut starts = vec![s];
    while s > 0 {
        s -= line[..s].chars().next_back().map_or(1, char::len_utf8);
        starts.push(s);
    }
    starts.into_iter().find_map(|s| {
        let rest = &line[s..];
        let day = weekday(rest);
        let n = day + prefix::time_len(&rest[day..])?;
        // fail2ban's word-end boundary: the date ends before a non-word character
        let next = rest[n..].chars().next();
        if next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        Some((s, s + n))
    })
}

/// Length of an optional leading `Mon ` (a weekday, fail2ban's `(?:%a )?`).
fn weekday(s: &str) -> usize {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    match s.get(..4) {
        Some(d) if DAYS.contains(&&d[..3]) && d.ends_with(' ') && prefix::time_len(&s[4..]).is_some() => 4,
        _ => 0,
    }
}

const SYSLOG: &str = "(?:%a )?%b %d %k:%M:%S(?:\\.%f)?(?: %ExY)?";
const ISO: &str = "%ExY(?:-)%m-%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\\s*%z)?";

/// fail2ban's `strptime` directives (`strptime.py` `timeRE`) as expressions, without groups.
fn directive(d: &str) -> Option<&'static str> {
    Some(match d {
        "Y" | "ExY" => r"\d{4}",
        "y" | "Exy" => r"\d{2}",
        "m" => r"(?:0?[1-9]|1[0-2])",
        "Exm" => r"(?:0[1-9]|1[0-2])",
        "d" | "e" => r"(?:[1-2]\d|[0 ]?[1-9]|3[0-1])",
        "Exd" => r"(?:[1-2]\d|0[1-9]|3[0-1])",
        "H" => r"(?:[0-1]?\d|2[0-3])",
        "ExH" => r"(?:[0-1]\d|2[0-3])",
        "k" | "Exk" => r" ?(?:[0-2]?\d)",
        "I" => r"(?:1[0-2]|0[1-9]|[1-9])",
        "l" | "Exl" => r" ?(?:1?\d)",
        "M" => r"(?:[0-5]?\d)",
        "ExM" => r"(?:[0-5]\d)",
        "S" => r"(?:[0-5]?\d|6[0-1])",
        "ExS" => r"(?:[0-5]\d|6[0-1])",
        "f" => r"(?:[0-9]{1,6})",
        "p" => r"(?:[AaPp][Mm])",
        "b" | "B" => r"(?:[A-Z][a-z]{2,8})",
        "a" | "A" => r"(?:[A-Z][a-z]{2,8})",
        "j" => r"(?:36[0-6]|3[0-5]\d|[12]\d\d|0?[1-9]\d|0{0,2}[1-9])",
        "z" | "Exz" => r"(?:Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
        "Z" | "ExZ" => r"(?:Z|[A-Z]{3,5})",
        _ => return None,
    })
}

/// One `datepattern` line as fail2ban's `DateTemplate.setRegex` builds it: group 1 is the date.
fn template(pattern: &str) -> Result<Regex, Error> {
    let (line_begin, pattern) = match pattern.strip_prefix("{^LN-BEG}") {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    if pattern.contains("EPOCH") || pattern.contains("TAI64N") || pattern.contains("{UNB}") {
        return Err(Error::Special(pattern.to_owned()));
    }
    // `{DATE}` stands for the default formats (fail2ban's `preMatch`)
    let pattern = pattern.replace("{DATE}", &format!("(?:{ISO}|{SYSLOG})"));
    let mut re = String::new();
    let mut rest = pattern.as_str();
    while let Some(i) = rest.find('%') {
        re.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('%') {
            re.push('%');
            rest = after;
            continue;
        }
        let len = if tail.starts_with("Ex") { 3 } else { 1 };
        let name = tail.get(..len).ok_or_else(|| Error::Directive(tail.to_owned()))?;
        re.push_str(directive(name).ok_or_else(|| Error::Directive(name.to_owned()))?);
        rest = &tail[len..];
    }
    re.push_str(rest);
    let anchored = re.starts_with('^');
    let body = re.strip_prefix('^').unwrap_or(&re);
    let (body, end_anchor) = match body.strip_suffix('$') {
        Some(b) if !b.ends_with('\\') => (b, "$"),
        _ => (body, ""),
    };
    let full = if line_begin {
        format!(r"^(?:\W{{0,2}})?({body}){end_anchor}(?=\b|\W|$)")
    } else if anchored {
        format!(r"^({body}){end_anchor}(?=\b|\W|$)")
    } else {
        format!(r"(?:^|\b|(?<=\W))({body}){end_anchor}(?=\b|\W|$)")
    };
    Regex::new(&full).map_err(|e| Error::Regex(format!("{e} (in the date expression `{full}`)")))
}
