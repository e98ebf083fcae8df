//! The line-by-line reading of `config_text_file_load` and `process_text_line`
//! (main/config.c): section headers with their `(…)` options, `#include` and friends, and
//! `key = value` lines, with Asterisk's rules for each.
//!
//! Where Asterisk gives up on a file (a line it cannot parse makes it stop reading the file,
//! and refuse the whole configuration when that file is the top one) this notes an error and
//! reads on as if the line said what it evidently means: a header without its `]` or `)`
//! still opens its section, one adding to or inheriting from a section that does not exist
//! opens a section of its own. The report then shows what was meant, and the note what
//! Asterisk will do.

use std::path::{Path, PathBuf};

use super::{
    comments::Comments,
    conf::{Config, Entry, Level, Note, Origin, Section},
    glob,
};

/// Asterisk's `MAX_INCLUDE_LEVEL`: the top file and ten nested includes.
const MAX_INCLUDE_LEVEL: usize = 10;
/// `fgets` into an 8192-byte buffer: a line of 8191 bytes or more (its newline aside) is
/// skipped whole.
const MAX_LINE: usize = 8191;

/// The section a line applies to: a header being built, or one already in the list.
enum Target {
    New(Section),
    Existing(usize),
}

pub(super) struct Loader<'a> {
    dir: &'a Path,
    top: PathBuf,
    cfg: Config,
    /// Asterisk's `cfg->current`: the section an included file starts in.
    current: Option<usize>,
    /// The files being read, outermost first (canonical paths), to catch include cycles.
    stack: Vec<PathBuf>,
}

impl<'a> Loader<'a> {
    pub fn new(dir: &'a Path, top: &Path) -> Self {
        Self { dir, top: top.to_path_buf(), cfg: Config::default(), current: None, stack: Vec::new() }
    }

    /// Reads the top file, already in `bytes`.
    pub fn run(mut self, bytes: &[u8]) -> Config {
        let top = self.top.clone();
        self.read(&top, bytes, 1);
        self.cfg
    }

    /// `path` as shown in origins: relative to the configuration directory when inside it.
    fn shown(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.dir).map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
    }

    fn note(&mut self, level: Level, origin: Option<Origin>, message: String) {
        self.cfg.notes.push(Note { level, origin, message });
    }

    /// A line Asterisk cannot get past: it stops reading this file, and refuses everything
    /// when the file is the top one.
    fn fatal(&mut self, origin: &Origin, level: usize, what: String) {
        let consequence = if level == 1 {
            self.cfg.rejected = true;
            format!("Asterisk refuses all of {} over this line", origin.file.display())
        } else {
            format!("Asterisk stops reading {} here", origin.file.display())
        };
        self.note(Level::Error, Some(origin.clone()), format!("{what}; {consequence}"));
    }

    /// Reads one file at include `level` (the top file is 1).
    fn read(&mut self, path: &Path, bytes: &[u8], level: usize) {
        let shown = self.shown(path);
        self.cfg.files.push(shown.clone());
        self.stack.push(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
        // Each file starts in the section that was current, and its own header lines do not
        // move the including file's section (`cat` is a local in config_text_file_load).
        let mut cat = self.current;
        let mut comments = Comments::default();
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (i, raw) in lines.into_iter().enumerate() {
            let origin = Origin::new(&shown, i + 1);
            if raw.len() >= MAX_LINE {
                self.note(
                    Level::Warning,
                    Some(origin),
                    format!("line longer than {} bytes; Asterisk skips it", MAX_LINE - 1),
                );
                continue;
            }
            let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
            let text = comments.strip(raw, i + 1);
            for line in comments.stray_closes.drain(..) {
                let message = "`--;` closes no `;--` block comment; Asterisk reads the lines after it as a comment \
                               until the next `;--`"
                    .to_owned();
                self.cfg.notes.push(Note { level: Level::Warning, origin: Some(Origin::new(&shown, line)), message });
            }
            let Some(text) = text else { continue };
            let text = String::from_utf8_lossy(&text);
            let text = strip(&text);
            if text.is_empty() {
                continue;
            }
            // Asterisk would stop here; reading on shows the rest of what was meant.
            self.line(text, &origin, &mut cat, level);
        }
        if let Some(line) = comments.unterminated() {
            let message = "block comment `;--` never closed; the rest of the file is comment".to_owned();
            self.note(Level::Warning, Some(Origin::new(&shown, line)), message);
        }
        self.stack.pop();
    }

    fn line(&mut self, text: &str, origin: &Origin, cat: &mut Option<usize>, level: usize) {
        if text.starts_with('[') {
            self.header(text, origin, cat, level)
        } else if let Some(directive) = text.strip_prefix('#') {
            self.directive(directive, origin, level)
        } else {
            self.assignment(text, origin, *cat, level)
        }
    }

    /// `[name]`, `[name](!)`, `[name](tmpl,…)`, `[name](+)`, or any mix in the parentheses.
    fn header(&mut self, text: &str, origin: &Origin, cat: &mut Option<usize>, level: usize) {
        // After a mistake Asterisk would stop at, the header still opens the section it
        // evidently means.
        let close = text.find(']').unwrap_or_else(|| {
            self.fatal(origin, level, "no closing `]` in the section header".into());
            text.len()
        });
        let name = &text[1..close];
        let options = text.get(close + 1..).and_then(|t| t.strip_prefix('(')).map(|rest| {
            let end = rest.find(')').unwrap_or_else(|| {
                self.fatal(origin, level, "no closing `)` in the section header".into());
                rest.len()
            });
            &rest[..end]
        });
        let mut target = Target::New(Section {
            name: name.to_owned(),
            template: false,
            inherits: Vec::new(),
            entries: Vec::new(),
            origin: origin.clone(),
        });
        for opt in options.into_iter().flat_map(|o| o.split(',')) {
            if opt.eq_ignore_ascii_case("!") {
                match &mut target {
                    Target::New(s) => s.template = true,
                    Target::Existing(i) => self.cfg.sections[*i].template = true,
                }
            } else if let Some(filter) = opt.strip_prefix('+') {
                let Some(i) = self.find(name, Filter::Plain(filter)) else {
                    let msg = format!("`(+)` adds to section [{name}], but there is none before this line");
                    self.fatal(origin, level, msg);
                    continue;
                };
                if let Target::New(s) = target {
                    let existing = &mut self.cfg.sections[i];
                    existing.template |= s.template;
                    existing.entries.extend(s.entries);
                    existing.inherits.extend(s.inherits);
                }
                target = Target::Existing(i);
                self.current = Some(i);
            } else {
                let Some(base) = self.find(opt, Filter::TemplatesToo) else {
                    let msg =
                        format!("[{name}] inherits from `{opt}`, but there is no such section or template before it");
                    self.fatal(origin, level, msg);
                    continue;
                };
                let copied = self.cfg.sections[base].entries.iter().map(|e| Entry { inherited: true, ..e.clone() });
                let copied: Vec<Entry> = copied.collect();
                let section = match &mut target {
                    Target::New(s) => s,
                    Target::Existing(i) => &mut self.cfg.sections[*i],
                };
                section.entries.extend(copied);
                section.inherits.push(opt.to_owned());
            }
        }
        let index = match target {
            Target::New(s) => {
                self.cfg.sections.push(s);
                let i = self.cfg.sections.len() - 1;
                self.current = Some(i);
                i
            }
            Target::Existing(i) => i,
        };
        *cat = Some(index);
    }

    /// The first section named `name` (case-insensitive; an empty name matches any) that
    /// passes `filter`, as `category_get_sep` looks it up.
    fn find(&self, name: &str, filter: Filter) -> Option<usize> {
        self.cfg.sections.iter().position(|s| {
            (name.is_empty() || s.name.eq_ignore_ascii_case(name))
                && match filter {
                    Filter::TemplatesToo => true,
                    Filter::Plain(f) => !s.template && entries_match(s, f),
                }
        })
    }

    /// `#include`, `#tryinclude`, `#exec` (never run).
    fn directive(&mut self, text: &str, origin: &Origin, level: usize) {
        let end = text.bytes().position(|b| b <= b' ').unwrap_or(text.len());
        let (word, arg) = (&text[..end], dequote(strip(&text[end..])));
        let tried = if word.eq_ignore_ascii_case("include") {
            false
        } else if word.eq_ignore_ascii_case("tryinclude") {
            true
        } else if word.eq_ignore_ascii_case("exec") {
            let msg = format!(
                "`#exec {arg}` skipped: sipwall never runs programs named in Asterisk's configuration, so what it \
                 would print is not read (Asterisk runs it only with execincludes=yes in asterisk.conf)"
            );
            self.note(Level::Warning, Some(origin.clone()), msg);
            return;
        } else {
            self.note(
                Level::Warning,
                Some(origin.clone()),
                format!("unknown directive `#{word}`; Asterisk ignores the line"),
            );
            return;
        };
        if arg.is_empty() {
            self.note(
                Level::Warning,
                Some(origin.clone()),
                format!("`#{word}` needs a file name; Asterisk ignores the line"),
            );
            return;
        }
        self.include(arg, tried, origin, level);
    }

    fn include(&mut self, arg: &str, tried: bool, origin: &Origin, level: usize) {
        let directive = if tried { "#tryinclude" } else { "#include" };
        if level > MAX_INCLUDE_LEVEL {
            let msg = format!("`{directive} {arg}` nests includes more than {MAX_INCLUDE_LEVEL} deep");
            if tried {
                self.note(Level::Warning, Some(origin.clone()), format!("{msg}; Asterisk skips it"));
            } else {
                self.fatal(origin, level, msg);
            }
            return;
        }
        let pattern = if arg.starts_with('/') { arg.to_owned() } else { format!("{}/{arg}", self.dir.display()) };
        let mut read = 0;
        for path in glob::expand(&pattern) {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() {
                let msg = format!("{} is not a regular file; Asterisk ignores it", path.display());
                self.note(Level::Warning, Some(origin.clone()), msg);
                continue;
            }
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if self.stack.contains(&canonical) {
                let msg = format!(
                    "`{directive} {arg}` includes {}, which is already being read (an include cycle); read once here, \
                     where Asterisk reads it again and again up to {MAX_INCLUDE_LEVEL} levels deep",
                    self.shown(&path).display()
                );
                self.note(Level::Warning, Some(origin.clone()), msg);
                read += 1;
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => {
                    read += 1;
                    self.read(&path, &bytes, level + 1);
                }
                Err(e) => {
                    let msg = format!("cannot read {}: {e}; sipwall needs read access to it", path.display());
                    self.note(Level::Warning, Some(origin.clone()), msg);
                }
            }
        }
        if read == 0 && !tried {
            let msg = format!("`#include {arg}`: no such file (use #tryinclude for a file that may be absent)");
            self.fatal(origin, level, msg);
        }
    }

    /// `key = value`, `key => value`, `key += more`.
    fn assignment(&mut self, text: &str, origin: &Origin, cat: Option<usize>, level: usize) {
        let Some(cat) = cat else {
            return self.fatal(origin, level, "a setting before any [section] header".into());
        };
        // A leading backslash lets the key start with a character that would mean something
        // else (`\[`, `\#`, `\=`).
        let (body, escaped) = match text.strip_prefix('\\') {
            // the escaped character is skipped whole, whatever its length in UTF-8
            Some(rest) if rest.bytes().next().is_some_and(|b| b > b' ') => {
                (rest, rest.chars().next().map_or(1, char::len_utf8))
            }
            Some(_) => return self.fatal(origin, level, "invalid escape `\\` at the start of the line".into()),
            None => (text, 0),
        };
        let Some(eq) = body[escaped..].find('=').map(|i| i + escaped) else {
            let msg = "no `=` in this line; Asterisk ignores it".to_owned();
            self.note(Level::Warning, Some(origin.clone()), msg);
            return;
        };
        let section = &mut self.cfg.sections[cat];
        if eq > escaped && body.as_bytes()[eq - 1] == b'+' {
            let key = strip(&body[..eq - 1]);
            if let Some(prev) = section.entries.iter_mut().rev().find(|e| e.key == key) {
                let joined = format!("{}{}", prev.value, &body[eq + 1..]);
                prev.value = strip(&joined).to_owned();
                return;
            }
            return self.push(cat, key, strip(&body[eq + 1..]), false, origin);
        }
        let key = strip(&body[..eq]);
        let (value, object) = match body[eq + 1..].strip_prefix('>') {
            Some(v) => (v, true),
            None => (&body[eq + 1..], false),
        };
        self.push(cat, key, strip(value), object, origin)
    }

    fn push(&mut self, cat: usize, key: &str, value: &str, object: bool, origin: &Origin) {
        if key.is_empty() {
            self.note(Level::Warning, Some(origin.clone()), "no name before the `=`; Asterisk ignores the line".into());
            return;
        }
        let entry =
            Entry { key: key.to_owned(), value: value.to_owned(), object, inherited: false, origin: origin.clone() };
        self.cfg.sections[cat].entries.push(entry);
    }
}

/// Which sections a lookup by name may find.
#[derive(Clone, Copy)]
enum Filter<'f> {
    /// Inheritance (`TEMPLATES=include`): templates and sections alike.
    TemplatesToo,
    /// `(+)` or `(+filter)`: sections that are not templates, and whose entries pass the
    /// filter.
    Plain(&'f str),
}

/// `(+type=aor&foo=bar)`: every `name=value` must match some entry. Asterisk takes both as
/// unanchored regular expressions; they are compared here as substrings, which is the same
/// for the plain words such filters hold.
fn entries_match(s: &Section, filter: &str) -> bool {
    filter.split('&').map(strip).filter(|f| !f.is_empty()).all(|f| match f.split_once('=') {
        Some((n, v)) => {
            let (n, v) = (strip(n), strip(v));
            s.entries.iter().any(|e| e.key.contains(n) && e.value.contains(v))
        }
        None => false,
    })
}

/// `"file"` and `<file>` lose their quotes.
fn dequote(arg: &str) -> &str {
    for (open, close) in [('"', '"'), ('<', '>')] {
        if let Some(inner) = arg.strip_prefix(open) {
            return inner.strip_suffix(close).unwrap_or(arg);
        }
    }
    arg
}

/// `ast_strip`: C's `isspace` at both ends (vertical tab included, which `str::trim_ascii`
/// leaves).
pub(super) fn strip(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
}
