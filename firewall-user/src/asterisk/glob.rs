//! The file patterns of `#include`, expanded as glibc's `glob(GLOB_NOMAGIC | GLOB_BRACE)`
//! does for Asterisk: `{a,b}` alternatives in order, `*`, `?` and `[…]` per path component,
//! hidden files only for a pattern that starts with a dot, each alternative's matches sorted.

use std::path::{Component, Path, PathBuf};

/// The paths `pattern` names. A pattern without wildcards names itself, whether or not it
/// exists; with wildcards, only existing paths are returned.
pub(super) fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for alt in braces(pattern) {
        if !has_wildcards(&alt) {
            out.push(PathBuf::from(alt));
            continue;
        }
        let mut found = walk(Path::new(&alt));
        found.sort();
        out.extend(found);
    }
    out
}

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Every path matching `pattern`, one component at a time.
fn walk(pattern: &Path) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = match comp {
            Component::Normal(p) => p.to_string_lossy().into_owned(),
            other => {
                paths.iter_mut().for_each(|p| p.push(other.as_os_str()));
                continue;
            }
        };
        if !has_wildcards(&part) {
            paths.iter_mut().for_each(|p| p.push(&part));
            continue;
        }
        let mut next = Vec::new();
        for base in &paths {
            let dir = if base.as_os_str().is_empty() { Path::new(".") } else { base.as_path() };
            let Ok(rd) = std::fs::read_dir(dir) else { continue };
            for name in rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()) {
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if matches(part.as_bytes(), name.as_bytes()) {
                    next.push(base.join(&name));
                }
            }
        }
        paths = next;
    }
    paths.retain(|p| p.symlink_metadata().is_ok());
    paths
}

/// `{a,b}c` → `ac`, `bc`; nested braces expand from the outside in. A `{` without its `}`
/// is literal.
fn braces(pattern: &str) -> Vec<String> {
    let b = pattern.as_bytes();
    let Some(open) = b.iter().position(|&c| c == b'{') else { return vec![pattern.to_owned()] };
    let (mut depth, mut commas, mut close) = (0, Vec::new(), None);
    for (i, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else { return vec![pattern.to_owned()] };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut cuts = vec![open];
    cuts.extend(commas);
    cuts.push(close);
    cuts.windows(2).flat_map(|w| braces(&format!("{head}{}{tail}", &pattern[w[0] + 1..w[1]]))).collect()
}

/// `fnmatch(pattern, name, 0)` for one path component: `*`, `?`, `[…]` with `!`/`^` and
/// ranges, and `\` quoting the next character.
fn matches(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: the pattern after it and the name position it took.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class(&pat[p..], name[n]) {
                Some((hit, len)) => hit.then_some(len),
                None => (name[n] == b'[').then_some(1),
            },
            Some(b'\\') if p + 1 < pat.len() => (pat[p + 1] == name[n]).then_some(2),
            Some(&c) => (c == name[n]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                p += len;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[…]` class at the start of `pat`: whether `c` is in it and the class's length; `None`
/// when there is no closing `]` (the `[` is then an ordinary character).
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&hi| hi != b']') {
            hit |= (lo..=pat[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_fnmatch() {
        assert!(matches(b"pjsip_*.conf", b"pjsip_trunks.conf"));
        assert!(matches(b"pjsip_*.conf", b"pjsip_.conf"));
        assert!(!matches(b"pjsip_*.conf", b"pjsip_trunks.conf.bak"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"*a*b", b"xxaxxb"));
        assert!(matches(b"[a-c]x", b"bx"));
        assert!(!matches(b"[!a-c]x", b"bx"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"\\*", b"*"));
        assert!(!matches(b"\\*", b"a"));
        assert!(matches(b"[x", b"[x"));
    }

    #[test]
    fn braces_expand_in_order() {
        assert_eq!(braces("a{b,c}d"), vec!["abd", "acd"]);
        assert_eq!(braces("{x,y{1,2}}"), vec!["x", "y1", "y2"]);
        assert_eq!(braces("no{brace"), vec!["no{brace"]);
    }
}
