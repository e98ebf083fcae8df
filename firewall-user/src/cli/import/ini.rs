//! One fail2ban configuration file read as Python's `ConfigParser` reads it (fail2ban's
//! settings: `=` or `:`, `#` and `;` comment lines, `;` inline comments after a space,
//! indented continuation lines, option names in lower case, no duplicates within a file).

use std::path::{Path, PathBuf};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// Continuation lines joined with `\n`, each trimmed, as ConfigParser joins them.
    pub text: String,
    pub file: PathBuf,
    pub line: usize,
}

/// The sections of one file in the order written; `DEFAULT` is a section like the others here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IniFile {
    pub path: PathBuf,
    pub sections: Vec<(String, Vec<(String, Value)>)>,
}

impl IniFile {
    pub fn section(&self, name: &str) -> Option<&[(String, Value)]> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, o)| o.as_slice())
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&Value> {
        self.section(section)?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A line ConfigParser would refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}:{line}: {message}", file.display())]
pub struct ParseError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Reads and parses `path`.
pub fn read(path: &Path) -> Result<IniFile, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        file: path.to_owned(),
        line: 0,
        message: format!("cannot read the file: {e}"),
    })?;
    parse(path, &text)
}

/// Where a `;` starts an inline comment: at the start of the line or after white space.
fn inline_comment(line: &str) -> Option<usize> {
    line.match_indices(';').map(|(i, _)| i).find(|&i| i == 0 || line[..i].ends_with(char::is_whitespace))
}

pub fn parse(path: &Path, text: &str) -> Result<IniFile, ParseError> {
    let err = |line: usize, message: String| ParseError { file: path.to_owned(), line, message };
    let mut file = IniFile { path: path.to_owned(), sections: Vec::new() };
    // (section index, option index) of the value continuation lines extend
    let mut current: Option<usize> = None;
    let mut option: Option<usize> = None;
    let mut indent_level = 0usize;
    for (idx, raw) in text.lines().enumerate() {
        let lnnum = idx + 1;
        let full_comment = ["#", ";"].iter().any(|p| raw.trim().starts_with(p));
        let comment_at = if full_comment { Some(0) } else { inline_comment(raw) };
        let value = raw[..comment_at.unwrap_or(raw.len())].trim();
        if value.is_empty() {
            // an empty line belongs to the value being written; a comment line does not
            if comment_at.is_none() {
                if let (Some(s), Some(o)) = (current, option) {
                    file.sections[s].1[o].1.text.push('\n');
                }
            }
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if let (Some(s), Some(o), true) = (current, option, indent > indent_level) {
            let v = &mut file.sections[s].1[o].1.text;
            v.push('\n');
            v.push_str(value);
            continue;
        }
        indent_level = indent;
        if let Some(name) = value.strip_prefix('[').and_then(|v| v.rfind(']').map(|end| &v[..end])) {
            if name.is_empty() {
                return Err(err(lnnum, format!("`{value}`: a section needs a name")));
            }
            if file.sections.iter().any(|(n, _)| n == name) {
                return Err(err(lnnum, format!("section `[{name}]` appears twice in this file")));
            }
            file.sections.push((name.to_owned(), Vec::new()));
            current = Some(file.sections.len() - 1);
            option = None;
            continue;
        }
        let Some(s) = current else {
            return Err(err(lnnum, format!("`{value}` comes before any [section] header")));
        };
        let Some(delim) = value.find(['=', ':']) else {
            return Err(err(lnnum, format!("`{value}` is neither `name = value` nor a [section] header")));
        };
        let key = value[..delim].trim().to_lowercase();
        if key.is_empty() {
            return Err(err(lnnum, format!("`{value}` has no option name before `{}`", &value[delim..=delim])));
        }
        let section = &mut file.sections[s];
        if section.1.iter().any(|(k, _)| *k == key) {
            return Err(err(lnnum, format!("option `{key}` appears twice in section [{}] of this file", section.0)));
        }
        let text = value[delim + 1..].trim().to_owned();
        section.1.push((key, Value { text, file: path.to_owned(), line: lnnum }));
        option = Some(section.1.len() - 1);
    }
    // ConfigParser strips the end of a joined value (trailing empty lines)
    for (_, opts) in &mut file.sections {
        for (_, v) in opts {
            let end = v.text.trim_end().len();
            v.text.truncate(end);
        }
    }
    Ok(file)
}
