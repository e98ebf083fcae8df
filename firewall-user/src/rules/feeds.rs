//! `[[block.feeds]]`: blocklists fetched over HTTP(S) and refreshed in the background.

use std::{path::Path, path::PathBuf, time::Duration};

use super::{
    alerts::{read_ca_file, CaFile},
    reader::{type_name, Durations, Reader, Section},
};

/// How a feed's answer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One address or CIDR per line, `#` and `;` comments.
    Plain,
    /// VoIPBL's `update/` list: plain, with CRLF line ends.
    Voipbl,
    /// APIBAN's REST API, paged by ID.
    Apiban,
    /// A JSON array of strings, or an object with such an array under `json_field`.
    Json,
}

impl Format {
    pub const NAMES: &[&str] = &["plain", "voipbl", "apiban", "json"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// Names the feed in metrics and its cache file under `STATE_DIR/feeds/`.
    pub name: String,
    /// May hold `{key}`, replaced by the contents of `key_file` at each fetch.
    pub url: String,
    pub format: Format,
    pub refresh: Duration,
    /// Read at each refresh; its contents are never logged.
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<CaFile>,
    /// A larger answer is a failed fetch.
    pub max_bytes: u64,
    pub timeout: Duration,
    /// `json`: the array's field in an object answer.
    pub json_field: String,
    /// `apiban`: how long an address stays listed after an answer last named it.
    pub max_age: Duration,
}

pub const KEYS: &[&str] =
    &["name", "url", "format", "refresh", "key_file", "ca_file", "max_bytes", "timeout", "json_field", "max_age"];
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
pub const MIN_REFRESH: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 86400);
pub const DEFAULT_JSON_FIELD: &str = "ips";

/// A name from a URL: its host and path, with every run of other characters a `-`.
pub fn slug(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let mut out = String::new();
    for c in rest.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s = out.trim_matches(['-', '.']);
    s.chars().take(64).collect::<String>().trim_end_matches('-').to_owned()
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('.')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn read_url(r: &mut Reader, s: &Section) -> Option<(String, std::ops::Range<usize>)> {
    let Some((url, span)) = s.string(r, "url") else {
        if !s.has("url") {
            r.error(s.span.clone(), "[[block.feeds]] needs `url`, like url = \"https://lists.example/drop.txt\"");
        }
        return None;
    };
    let parsed = match reqwest::Url::parse(&url.replace("{key}", "KEY")) {
        Ok(u) => u,
        Err(e) => {
            r.error(Some(span), format!("the feed `url` is not a URL ({e}): write it like https://HOST[:PORT]/PATH"));
            return None;
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        r.error(Some(span), "the feed `url` must be https:// or http:// with a host");
        return None;
    }
    Some((url, span))
}

fn read_format(r: &mut Reader, s: &Section) -> Option<Format> {
    let Some((text, span)) = s.string(r, "format") else {
        if !s.has("format") {
            r.error(s.span.clone(), "[[block.feeds]] needs `format`: one of plain, voipbl, apiban, json");
        }
        return None;
    };
    match Format::NAMES.iter().position(|n| *n == text) {
        Some(i) => Some([Format::Plain, Format::Voipbl, Format::Apiban, Format::Json][i]),
        None => {
            r.error(Some(span), format!("unknown feed format `{text}`; expected one of: plain, voipbl, apiban, json"));
            None
        }
    }
}

/// One `[[block.feeds]]` table.
fn read_one(r: &mut Reader, s: &Section, base: &Path) -> Option<Feed> {
    s.check_keys(r, KEYS);
    let url = read_url(r, s);
    let format = read_format(r, s);
    let refresh = s.duration(r, "refresh", Durations::Positive).flatten().unwrap_or(DEFAULT_REFRESH);
    if refresh < MIN_REFRESH {
        r.error(s.value_span("refresh"), "`refresh` must be at least 1m: feeds are not polled faster");
    }
    let key_file = s.string(r, "key_file").map(|(p, _)| base.join(p));
    let ca_file = if s.has("ca_file") { read_ca_file(r, s, base) } else { None };
    let max_bytes = s.uint(r, "max_bytes", 1024, 1 << 30).unwrap_or(DEFAULT_MAX_BYTES);
    let timeout = s.duration(r, "timeout", Durations::Positive).flatten().unwrap_or(DEFAULT_TIMEOUT);
    let max_age = s.duration(r, "max_age", Durations::Positive).flatten().unwrap_or(DEFAULT_MAX_AGE);
    let json_field = s.string(r, "json_field").map_or(DEFAULT_JSON_FIELD.to_owned(), |(f, _)| f);
    let (url, url_span) = url?;
    let format = format?;
    let has_key = url.contains("{key}");
    if has_key && key_file.is_none() {
        r.error(Some(url_span.clone()), "the feed `url` has `{key}` but the feed has no `key_file` to take it from");
    } else if !has_key && key_file.is_some() {
        r.error(s.value_span("key_file"), "`key_file` is given but the feed `url` has no `{key}` to put it in");
    }
    if format == Format::Apiban && !has_key {
        r.error(
            Some(url_span.clone()),
            "an apiban feed needs its key in the URL: url = \"https://apiban.org/api/{key}/banned\" and a `key_file`",
        );
    }
    if s.has("json_field") && format != Format::Json {
        r.error(s.key_span("json_field"), "`json_field` is for format = \"json\"");
    }
    if s.has("max_age") && format != Format::Apiban {
        r.error(s.key_span("max_age"), "`max_age` is for format = \"apiban\" (other feeds are whole lists)");
    }
    if url.starts_with("http://") && has_key {
        r.warn(Some(url_span), "the key in this http:// `url` travels in clear; use https://");
    }
    if url.starts_with("http://") && s.has("ca_file") {
        r.error(s.key_span("ca_file"), "`ca_file` is for an https:// feed `url`");
    }
    let name = match s.string(r, "name") {
        Some((n, span)) => {
            if !valid_name(&n) {
                r.error(Some(span), format!("feed name `{n}`: use letters, digits, `-`, `_` and `.` (64 at most)"));
            }
            n
        }
        None => slug(&url),
    };
    Some(Feed { name, url, format, refresh, key_file, ca_file, max_bytes, timeout, json_field, max_age })
}

/// `feeds` of `[block]`: an array of tables.
pub fn read(r: &mut Reader, block: &Section, base: &Path) -> Vec<Feed> {
    let Some(item) = block.table.get("feeds") else { return Vec::new() };
    let Some(aot) = item.as_array_of_tables() else {
        r.error(
            block.value_span("feeds"),
            format!("`feeds` must be written as [[block.feeds]] tables, found {}", type_name(item)),
        );
        return Vec::new();
    };
    let mut out: Vec<Feed> = Vec::new();
    for t in aot.iter() {
        let s = Section { table: t, path: "block.feeds", span: t.span() };
        let Some(f) = read_one(r, &s, base) else { continue };
        if out.iter().any(|o| o.name == f.name) {
            let span = s.value_span("name").or(s.value_span("url"));
            r.error(span, format!("a second feed named `{}`: give each feed its own `name`", f.name));
            continue;
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::Rules;

    /// A feed with the defaults.
    pub(crate) fn feed(url: &str, format: Format) -> Feed {
        Feed {
            name: slug(url),
            url: url.to_owned(),
            format,
            refresh: DEFAULT_REFRESH,
            key_file: None,
            ca_file: None,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
            json_field: DEFAULT_JSON_FIELD.to_owned(),
            max_age: DEFAULT_MAX_AGE,
        }
    }

    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        let e = Rules::parse("t.toml", text, Path::new("/etc/sipwall")).expect_err("must be rejected");
        e.errors().map(|d| (d.line, d.column, d.message.clone())).collect()
    }

    #[test]
    fn feeds_with_defaults_and_every_key() {
        let text = r#"[block]
[[block.feeds]]
url = "https://www.spamhaus.org/drop/drop.txt"
format = "plain"

[[block.feeds]]
name = "apiban"
url = "https://apiban.org/api/{key}/banned"
format = "apiban"
refresh = "10m"
key_file = "apiban.key"
max_bytes = 2048
timeout = "5s"
max_age = "2d"

[[block.feeds]]
name = "mine"
url = "http://lists.example:8080/ips.json"
format = "json"
json_field = "addresses"
"#;
        let (r, _) = Rules::parse("t.toml", text, Path::new("/etc/sipwall")).unwrap();
        assert_eq!(r.block_feeds.len(), 3);
        assert_eq!(r.block_feeds[0], feed("https://www.spamhaus.org/drop/drop.txt", Format::Plain));
        assert_eq!(r.block_feeds[0].name, "www.spamhaus.org-drop-drop.txt");
        let a = &r.block_feeds[1];
        assert_eq!((a.name.as_str(), a.format, a.refresh), ("apiban", Format::Apiban, Duration::from_secs(600)));
        assert_eq!(a.key_file.as_deref(), Some(Path::new("/etc/sipwall/apiban.key")));
        assert_eq!((a.max_bytes, a.timeout, a.max_age), (2048, Duration::from_secs(5), Duration::from_secs(172_800)));
        assert_eq!(r.block_feeds[2].json_field, "addresses");
    }

    #[test]
    fn a_key_over_plain_http_is_warned_about() {
        let text =
            "[block]\n[[block.feeds]]\nurl = \"http://l.example/{key}/list\"\nformat = \"plain\"\nkey_file = \"k\"\n";
        let (r, warnings) = Rules::parse("t.toml", text, Path::new("/")).unwrap();
        assert_eq!(r.block_feeds.len(), 1);
        let w: Vec<(usize, usize, &str)> = warnings.iter().map(|d| (d.line, d.column, d.message.as_str())).collect();
        assert_eq!(w, [(3, 8, "the key in this http:// `url` travels in clear; use https://")]);
    }

    #[test]
    fn feed_mistakes_have_a_line_and_column() {
        let text = r#"[block]
[[block.feeds]]
url = "ftp://lists.example/x"
format = "plain"
[[block.feeds]]
url = "https://lists.example/x"
format = "csv"
refresh = "10s"
colour = 1
[[block.feeds]]
url = "https://apiban.org/api/banned"
format = "apiban"
[[block.feeds]]
format = "json"
[[block.feeds]]
url = "https://l.example/{key}"
format = "plain"
[[block.feeds]]
name = "a b"
url = "https://l.example/a"
format = "voipbl"
json_field = "x"
[[block.feeds]]
name = "twice"
url = "https://l.example/b"
format = "plain"
[[block.feeds]]
name = "twice"
url = "https://l.example/c"
format = "plain"
"#;
        let errs = errors(text);
        let has = |line: usize, column: usize, needle: &str| {
            assert!(
                errs.iter().any(|e| e.0 == line && e.1 == column && e.2.contains(needle)),
                "{line}:{column} `{needle}` not in {errs:#?}"
            )
        };
        has(3, 8, "must be https:// or http://");
        has(7, 11, "unknown feed format `csv`");
        has(8, 11, "at least 1m");
        has(9, 1, "unknown key `colour`");
        has(11, 8, "apiban feed needs its key");
        has(13, 1, "needs `url`");
        has(16, 8, "has no `key_file`");
        has(19, 9, "feed name `a b`");
        has(22, 1, "`json_field` is for format = \"json\"");
        has(28, 8, "a second feed named `twice`");
    }

    #[test]
    fn feeds_must_be_tables() {
        let errs = errors("[block]\nfeeds = [\"https://x.example/\"]\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 9), "{errs:?}");
        assert!(errs[0].2.contains("[[block.feeds]]"), "{errs:?}");
    }

    #[test]
    fn slugs_name_host_and_path() {
        assert_eq!(slug("https://www.voipbl.org/update/"), "www.voipbl.org-update");
        assert_eq!(slug("https://apiban.org/api/{key}/banned"), "apiban.org-api-key-banned");
        assert!(valid_name(&slug(&format!("https://x.example/{}", "a".repeat(200)))));
    }

    #[test]
    fn the_documented_example_loads_and_every_key_is_documented() {
        let docs = include_str!("../../../docs/rules.md");
        let section = &docs[docs.find("### `[[block.feeds]]`").expect("docs/rules.md documents feeds")..];
        let example = section.split("```toml\n").nth(1).and_then(|t| t.split("```").next()).unwrap();
        let (r, _) = Rules::parse("docs/rules.md", &format!("[block]\n{example}"), Path::new("/")).unwrap();
        let names: Vec<&str> = r.block_feeds.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["www.spamhaus.org-drop-drop.txt", "apiban"]);
        let table = &section[..section.find("\n**Formats.**").unwrap()];
        for key in KEYS {
            assert!(table.contains(&format!("| `{key}` |")), "`{key}` is not in the table of docs/rules.md");
        }
        for name in Format::NAMES {
            assert!(section.contains(&format!("- `{name}`")), "format `{name}` is not documented");
        }
    }
}
