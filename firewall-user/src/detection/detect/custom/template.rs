//! One date template as fail2ban builds it (`datetemplate.py`): a `datepattern` line with
//! strptime directives, `EPOCH`/`LEPOCH`/`{EPOCH}` or `TAI64N`, wrapped in the word or line
//! boundaries fail2ban adds, with group 1 being the text taken out of the line.

use std::sync::LazyLock;

use fancy_regex::Regex;

/// Why a date pattern cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "`%{0}` is not a date directive sipwall knows; use %Y %y %m %d %H %k %I %l %M %S %f %p %b %B \
         %a %A %z %Z %j (or their %Ex forms), EPOCH, LEPOCH, TAI64N, {{DATE}} or {{^LN-BEG}} for \
         fail2ban's default formats"
    )]
    Directive(String),
    #[error("{0}")]
    Regex(String),
}

/// Where a template may start (fail2ban's `wordBegin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Anywhere (`wordBegin=False`).
    Anywhere,
    /// At the start of a word (`(?=^|\b|\W)`).
    Word,
    /// At the start of the line after at most two non-word characters (`{^LN-BEG}`).
    Line,
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    /// fail2ban's template name, used to skip duplicates.
    pub name: String,
    pub regex: Regex,
    /// Anchored at the line's start or end: a match there needs no search for a better one.
    pub anchored: bool,
    /// 100 for the anchored copies of the default templates, 1 otherwise.
    pub weight: f64,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a fixed expression")
}

static NO_WORD_BEGIN: LazyLock<Regex> = LazyLock::new(|| re(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)"));
static NO_WORD_END: LazyLock<Regex> = LazyLock::new(|| re(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$"));
static GROUPED: LazyLock<Regex> = LazyLock::new(|| re(r"(?<!\(\?)(?<!\\)\((?!\?)"));
static GROUP: LazyLock<Regex> = LazyLock::new(|| re(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$"));
static LINE_BEGIN: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))"));
static LINE_END: LazyLock<Regex> = LazyLock::new(|| re(r"(?<![\\|])(?:\$\)?)$"));
static STARS: LazyLock<Regex> = LazyLock::new(|| re(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$"));
static EPOCH_FIELD: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)(?<!\\)\{L?EPOCH\}"));

const EPOCH: &str = r"\d{10,11}\b(?:\.\d{3,6})?";
const LONG_EPOCH: &str = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?";

/// fail2ban's `DateTemplate.setRegex`: adds the boundaries and makes group 1 the date.
fn bounded(name: String, regex: &str, begin: Begin, end: bool, fold: bool, weight: f64) -> Result<Template, Error> {
    let mut regex = regex.trim().to_owned();
    let has = |r: &Regex, s: &str| r.is_match(s).unwrap_or(false);
    let bound_begin = begin != Begin::Anywhere && !has(&NO_WORD_BEGIN, &regex);
    let bound_end = end && !has(&NO_WORD_END, &regex);
    if !has(&GROUPED, &regex) {
        regex = GROUP.replace(&regex, "$1($2)$3").into_owned();
    }
    let mut anchored = false;
    if bound_begin {
        if begin == Begin::Line {
            regex = format!(r"^(?:\W{{0,2}})?{regex}");
            anchored = true;
        } else {
            regex = format!(r"(?=^|\b|\W){regex}");
        }
    }
    if bound_end {
        regex.push_str(r"(?=\b|\W|$)");
    }
    anchored |= has(&LINE_BEGIN, &regex) || has(&LINE_END, &regex);
    let regex = STARS.replace_all(&regex, |c: &fancy_regex::Captures<'_, str>| c[0].replace("**", ""));
    let regex = if fold { format!("(?i){regex}") } else { regex.into_owned() };
    let regex = Regex::new(&regex).map_err(|e| Error::Regex(format!("{e} (in the date expression `{regex}`)")))?;
    Ok(Template { name, regex, anchored, weight })
}

/// `EPOCH` (`DateEpoch`): seconds since 1970 at the line's start, after `[` or in `audit(…)`;
/// `long` (`LEPOCH`) also takes milli- and microseconds.
pub fn epoch(line_begin: bool, long: bool) -> Result<Template, Error> {
    let digits = if long { LONG_EPOCH } else { EPOCH };
    let name = format!("{}{}", if line_begin { "{^LN-BEG}" } else { "" }, if long { "LongEpoch" } else { "Epoch" });
    if line_begin {
        bounded(name, &format!("({digits})"), Begin::Line, true, false, 1.0)
    } else {
        let regex = format!(r"((?:^|(?<=^\[)|(?<=\baudit\()){digits})");
        bounded(name, &regex, Begin::Anywhere, true, false, 1.0)
    }
}

/// `TAI64N` (`DateTai64n`): `@` and 24 hex digits.
pub fn tai64n(line_begin: bool) -> Result<Template, Error> {
    let name = if line_begin { "{^LN-BEG}TAI64N" } else { "TAI64N" }.to_owned();
    bounded(name, "@[0-9a-f]{24}", if line_begin { Begin::Line } else { Begin::Anywhere }, true, false, 1.0)
}

/// fail2ban's `_getPatternTemplate`: one `datepattern` line.
pub fn from_line(pattern: &str, weight: f64) -> Result<Template, Error> {
    let key = if pattern.contains('%') { pattern.to_owned() } else { pattern.to_uppercase() };
    if key.contains("EPOCH") {
        let long = key.contains("LEPOCH");
        if EPOCH_FIELD.is_match(pattern).unwrap_or(false) {
            let digits = if long { LONG_EPOCH } else { EPOCH };
            let regex = EPOCH_FIELD.replace_all(pattern, format!("({digits})").as_str());
            return bounded(pattern.to_owned(), &format!("({regex})"), Begin::Word, true, false, weight);
        }
        match key.as_str() {
            "EPOCH" | "LEPOCH" => return epoch(false, long),
            "{^LN-BEG}EPOCH" | "^EPOCH" | "{^LN-BEG}LEPOCH" | "^LEPOCH" => return epoch(true, long),
            _ => {}
        }
    }
    match key.as_str() {
        "TAI64N" => tai64n(false),
        "{^LN-BEG}TAI64N" | "^TAI64N" => tai64n(true),
        _ => strptime(pattern, weight),
    }
}

/// `DatePatternRegex.setRegex`: `{UNB}` drops the boundaries, `{^LN-BEG}` anchors at the
/// line's start, `%` directives become expressions and `%a %A %b %B %p` make it ignore case.
fn strptime(pattern: &str, weight: f64) -> Result<Template, Error> {
    let (mut begin, mut end, mut body) = (Begin::Word, true, pattern);
    if let Some(rest) = body.strip_prefix("{UNB}") {
        (begin, end, body) = (Begin::Anywhere, false, rest);
    }
    if begin != Begin::Anywhere {
        if let Some(rest) = body.strip_prefix("{^LN-BEG}") {
            (begin, body) = (Begin::Line, rest);
        }
    }
    let mut regex = String::new();
    let mut fold = false;
    let mut rest = body;
    while let Some(i) = rest.find('%') {
        regex.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('%') {
            regex.push('%');
            rest = after;
            continue;
        }
        let (name, expr) = [tail.get(..3), tail.get(..1)]
            .into_iter()
            .flatten()
            .find_map(|n| directive(n).map(|e| (n, e)))
            .ok_or_else(|| Error::Directive(tail.chars().take(3).collect()))?;
        fold |= matches!(name, "a" | "A" | "b" | "B" | "p");
        regex.push_str(&expr);
        rest = &tail[name.len()..];
    }
    regex.push_str(rest);
    // Python's back reference to a named group, in the form fancy_regex reads
    let regex = regex.replace("(?P=_sep)", r"\k<_sep>");
    let name = if begin == Begin::Line { format!("{{^LN-BEG}}{body}") } else { body.to_owned() };
    bounded(name, &regex, begin, end, fold, weight)
}

/// fail2ban's `%ExY`: 20 and a decade from 2000 to three years from now (`strptime.py`).
fn year() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let next = 1970 + secs / 31_556_952 + 3;
    let decade = (next / 10 % 10).max(if next >= 2100 { 9 } else { 0 });
    format!(r"20[0-{decade}]\d")
}

const MONTHS: &str = "january|february|september|december|november|october|august|april|march|june|july|may";
const MONS: &str = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec";
const DAYS: &str = "wednesday|thursday|saturday|tuesday|monday|friday|sunday";
const DAYS3: &str = "mon|tue|wed|thu|fri|sat|sun";
const ZONE: &str = "[A-Z](?:[A-Z]{2,4})?";

/// fail2ban's strptime directives (`strptime.py` `timeRE`, over Python's `_strptime`), without
/// groups.
fn directive(d: &str) -> Option<String> {
    Some(match d {
        "Y" | "G" => r"\d{4}".into(),
        "ExY" => year(),
        "y" | "Exy" => r"\d{2}".into(),
        "m" => "(?:0?[1-9]|1[0-2])".into(),
        "Exm" => "(?:0[1-9]|1[0-2])".into(),
        "d" => "(?:[1-2]\\d|[0 ]?[1-9]|3[0-1])".into(),
        "Exd" => r"(?:[1-2]\d|0[1-9]|3[0-1])".into(),
        "H" => r"(?:[0-1]?\d|2[0-3])".into(),
        "ExH" => r"(?:[0-1]\d|2[0-3])".into(),
        "k" => r" ?(?:[0-2]?\d)".into(),
        "Exk" => r" ?(?:[0-1]?\d|2[0-3])".into(),
        "I" => "(?:1[0-2]|0[1-9]|[1-9])".into(),
        "l" => r" ?(?:1?\d)".into(),
        "Exl" => r" ?(?:1[0-2]|\d)".into(),
        "M" => r"(?:[0-5]?\d)".into(),
        "ExM" => r"(?:[0-5]\d)".into(),
        "S" => r"(?:[0-5]?\d|6[0-1])".into(),
        "ExS" => r"(?:[0-5]\d|6[0-1])".into(),
        "f" => "(?:[0-9]{1,6})".into(),
        "p" => "(?:am|pm)".into(),
        "b" => format!("(?:{MONS})"),
        "B" => format!("(?:{MONTHS})"),
        "a" => format!("(?:{DAYS3})"),
        "A" => format!("(?:{DAYS})"),
        "j" => r"(?:36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])".into(),
        "U" | "W" => r"(?:5[0-3]|[0-4]\d|\d)".into(),
        "V" => r"(?:5[0-3]|0[1-9]|[1-4]\d|\d)".into(),
        "w" => "[0-6]".into(),
        "u" => "[1-7]".into(),
        "z" => r"(?:Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)".into(),
        "Exz" => format!(r"(?:(?:{ZONE})?[+-][01]\d(?::?\d{{2}})?|{ZONE})"),
        "Z" => "(?:Z|[A-Z]{3,5})".into(),
        "ExZ" => format!("(?:{ZONE})"),
        _ => return None,
    })
}

/// fail2ban's default templates (`datedetector.py` `DEFAULT_TEMPLATES`), in its order.
pub const DEFAULTS: [&str; 17] = [
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
];

/// fail2ban's cached default list (`DateDetectorCache`): a copy anchored at the line's start
/// (weight 100) of every template that is not anchored already, then the 17 as written.
pub fn defaults() -> Result<Vec<Template>, Error> {
    let mut anchored = Vec::new();
    let mut plain = Vec::new();
    for d in DEFAULTS {
        if !d.starts_with("{^LN-BEG}") && !d.starts_with('^') {
            anchored.push(from_line(&format!("{{^LN-BEG}}{d}"), 100.0)?);
        }
        plain.push(from_line(d, 1.0)?);
    }
    anchored.extend(plain);
    Ok(anchored)
}

/// The text a default template puts in place of `{DATE}` (`DateTemplate.unboundPattern`).
pub fn unbound(default: &str) -> &str {
    match default {
        "EPOCH" => "Epoch",
        d => d.strip_prefix("{^LN-BEG}").unwrap_or(d),
    }
}
