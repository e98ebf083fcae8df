//! The parser against small configuration directories, one written per test: Asterisk's
//! syntax corner by corner.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::*;

mod syntax;

/// A configuration directory for one test, removed when the test ends.
struct Dir(PathBuf);

impl Dir {
    /// Writes `files` (name, content; names may hold subdirectories) into a directory of
    /// this test's own.
    fn new(test: &str, files: &[(&str, &str)]) -> Dir {
        let path = std::env::temp_dir().join(format!("sipwall-asterisk-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        for (name, text) in files {
            let file = path.join(name);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, text).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Reads one file of the directory with [`Config::load`].
    fn load(&self, name: &str) -> Config {
        Config::load(&self.0, name).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `(key, value, line)` of a section's entries, to compare in one assertion.
fn entries(s: &Section) -> Vec<(&str, &str, usize)> {
    s.entries.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.origin.line)).collect()
}

/// The notes of `level` as displayed.
fn notes(notes: &[Note], level: Level) -> Vec<String> {
    notes.iter().filter(|n| n.level == level).map(Note::to_string).collect()
}
