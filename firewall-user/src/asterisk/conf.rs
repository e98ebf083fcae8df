//! Asterisk's configuration files as `main/config.c` reads them: sections, templates and
//! inheritance, repeated keys, includes, each value with the file and line it came from.

use std::{
    fmt, io,
    path::{Path, PathBuf},
};

use super::parse::Loader;

/// Where something was written: a file (relative to the configuration directory when it is
/// inside it) and a 1-based line; line 0 stands for the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl Origin {
    pub fn new(file: impl Into<PathBuf>, line: usize) -> Self {
        Self { file: file.into(), line }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// How much a note matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Asterisk refuses the file, stops reading it, or rejects the object over this.
    Error,
    /// Asterisk skips the line or the value, or sipwall cannot use it (a name that does not
    /// resolve): something is missing from the report.
    Warning,
    /// Worth knowing; nothing is missing because of it.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "note",
        })
    }
}

/// A problem or a remark about the configuration, with where it is when it is somewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub level: Level,
    pub origin: Option<Origin>,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{o}: {}: {}", self.level, self.message),
            None => write!(f, "{}: {}", self.level, self.message),
        }
    }
}

/// `key = value` or `key => value` in a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// Written `=>` (Asterisk's "object" form; modules treat it as `=`).
    pub object: bool,
    /// Copied from a template or section named in the header's `(…)`.
    pub inherited: bool,
    /// Where the line is: for an inherited entry, in the template.
    pub origin: Origin,
}

/// `[name]` and its entries: the inherited ones first, in the order of the header's `(…)`,
/// then its own, then those added by later `[name](+)` sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// `[name](!)`: a template, which modules never see; others inherit from it.
    pub template: bool,
    /// The templates and sections named in the header's `(…)`, in order.
    pub inherits: Vec<String>,
    pub entries: Vec<Entry>,
    /// The header line.
    pub origin: Origin,
}

impl Section {
    /// The first entry for `key` (case-insensitive), as `ast_variable_retrieve` finds it.
    pub fn first(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// The last entry for `key`: the one in force where a module reads every entry in turn
    /// and each assignment replaces the one before (most single-valued options).
    pub fn last(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// Every entry for `key`, in order (`match=`, `permit=`, `register =>`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key.eq_ignore_ascii_case(key))
    }
}

/// One configuration file with everything it includes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Every section in file order, templates included; several may share a name.
    pub sections: Vec<Section>,
    /// Every file read, the top one first.
    pub files: Vec<PathBuf>,
    /// Problems found while reading, in order.
    pub notes: Vec<Note>,
    /// A line of the top file makes Asterisk refuse the whole file (the note says which);
    /// what follows that line is read anyway, so the report shows what was meant.
    pub rejected: bool,
}

impl Config {
    /// Reads `name` (relative to `dir` unless absolute) and its includes. A missing or
    /// unreadable top file is an error; everything else becomes a note.
    pub fn load(dir: &Path, name: &str) -> Result<Config, ConfError> {
        let path = if name.starts_with('/') { PathBuf::from(name) } else { dir.join(name) };
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ConfError::Missing { path }),
            Err(source) => return Err(ConfError::Read { path, source }),
            Ok(m) if !m.is_file() => {
                let source = io::Error::other("not a regular file");
                return Err(ConfError::Read { path, source });
            }
            Ok(_) => {}
        }
        let bytes = std::fs::read(&path).map_err(|source| ConfError::Read { path: path.clone(), source })?;
        Ok(Loader::new(dir, &path).run(&bytes))
    }

    /// The sections modules see (templates left out), in file order.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| !s.template)
    }

    /// The first section named `name` (case-insensitive) that is not a template: the one
    /// `ast_variable_browse(cfg, "general")` reads.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections().find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// `ast_true`: the words Asterisk reads as yes.
pub fn is_true(v: &str) -> bool {
    ["yes", "true", "y", "t", "1", "on"].iter().any(|t| v.trim().eq_ignore_ascii_case(t))
}

/// `ast_false`: the words Asterisk reads as no (anything else is neither).
pub fn is_false(v: &str) -> bool {
    ["no", "false", "n", "f", "0", "off"].iter().any(|t| v.trim().eq_ignore_ascii_case(t))
}

/// C's `atoi`/`sscanf("%d")`: the number the value starts with (blanks and a sign allowed),
/// `None` when it starts with none.
pub fn atoi(v: &str) -> Option<i64> {
    let t = v.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    let n: i64 = digits[..end.min(18)].parse().ok()?;
    Some(sign * n)
}

/// Why a configuration file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read {}: {source}; sipwall needs read access to Asterisk's configuration", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
