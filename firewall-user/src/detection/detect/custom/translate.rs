//! fail2ban's tags to a regular expression: `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<DNS>`,
//! `<CIDR>`, `<SUBNET>`, `<F-NAME>…</F-NAME>` (as in `failregex.py`), after the definitions
//! have been substituted.

/// fail2ban's address expressions (`failregex.py`), with its group names.
const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
const DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";
const CIDR: &str = r"(?P<cidr>\d+)";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("`</F-{0}>` closes a tag that is not open")]
    Unopened(String),
    #[error("`<F-{0}>` is opened twice")]
    Reopened(String),
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Group name of a custom `F-` tag: lower case, `F-ID` → `fid`, `F-PORT` → `fport`.
fn group_name(tag: &str) -> String {
    match tag {
        "ID" => "fid".into(),
        "PORT" => "fport".into(),
        t => t.to_ascii_lowercase().replace('-', "_"),
    }
}

/// A Python character class (after its `[`) as Rust's regex reads it, and what follows it.
/// Python takes `[`, `&&`, `--` and `~~` inside a class as characters, Rust as nested classes
/// and set operations; a `]` first in the class is a character in both.
fn class(r: &str) -> (String, &str) {
    let mut out = String::from("[");
    let mut rest = r;
    if let Some(after) = rest.strip_prefix('^') {
        out.push('^');
        rest = after;
    }
    if let Some(after) = rest.strip_prefix(']') {
        out.push_str("\\]");
        rest = after;
    }
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ']' => {
                out.push(']');
                return (out, &rest[i + 1..]);
            }
            '\\' => match chars.next() {
                // `\<` and `\>` are the characters in Python
                Some((_, e @ ('<' | '>'))) => out.push(e),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' => out.push_str("\\["),
            '&' | '-' | '~' if chars.peek().is_some_and(|(_, n)| *n == c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    // not closed: left for the regex compiler to report
    out.push_str(rest);
    (out, "")
}

/// Replaces fail2ban's tags with expressions and named groups, Python's `(?(name)…)`
/// conditionals with the `(?(<name>)…)` form, and writes character classes as Rust reads them.
pub fn tags(regex: &str) -> Result<String, Error> {
    let addr = format!(r"\[?(?:{IP4}|{IP6})\]?");
    let mut out = String::with_capacity(regex.len() * 2);
    let mut open: Vec<String> = Vec::new();
    let mut rest = regex;
    while let Some(i) = rest.find(['<', '(', '\\', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(r) = tail.strip_prefix('[') {
            let (c, after) = class(r);
            out.push_str(&c);
            rest = after;
            continue;
        }
        if let Some(r) = tail.strip_prefix('\\') {
            // Python reads `\<` and `\>` as the characters; Rust's regex as word boundaries
            match r.chars().next() {
                Some(c @ ('<' | '>')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => out.push('\\'),
            }
            rest = &r[r.chars().next().map_or(0, char::len_utf8)..];
            continue;
        }
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
    fn tags_become_groups() {
        assert_eq!(tags("<F-USER>.*</F-USER>").unwrap(), "(?P<user>.*)");
        assert_eq!(tags("(?P<x>a)?(?(x)b|c)").unwrap(), "(?P<x>a)?(?(<x>)b|c)");
        assert_eq!(tags("(a)?(?(1)b)").unwrap(), "(a)?(?(1)b)");
        assert!(tags("<HOST>").unwrap().contains("(?P<ip4>"));
        assert_eq!(tags("</F-USER>"), Err(Error::Unopened("USER".into())));
        assert_eq!(tags("a<b"), Ok("a<b".into()));
        assert_eq!(tags(r"\<x\> \(\\<"), Ok(r"<x> \(\\<".into()));
    }

    #[test]
    fn classes_are_written_as_rust_reads_them() {
        assert_eq!(tags(r"[^[]+"), Ok(r"[^\[]+".into()));
        assert_eq!(tags(r"[]a]"), Ok(r"[\]a]".into()));
        assert_eq!(tags(r"[^]]"), Ok(r"[^\]]".into()));
        assert_eq!(tags(r"[a&&b--c~~d]"), Ok(r"[a\&&b\--c\~~d]".into()));
        assert_eq!(tags(r"[\]\w<>(]<HOST>"), Ok(format!(r"[\]\w<>(]{}", tags("<HOST>").unwrap())));
        assert_eq!(tags(r"[\<]"), Ok(r"[<]".into()));
        for (py, text, hit) in [(r"^[^[]+\[", "abc[", true), (r"^x[^[]y", "x[y", false), (r"^[a-c]+$", "abc", true)] {
            let re = fancy_regex::Regex::new(&tags(py).unwrap()).unwrap();
            assert_eq!(re.is_match(text).unwrap(), hit, "{py} on {text}");
        }
    }
}
