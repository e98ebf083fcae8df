//! Diagnostics with file, line and column, printed the way compilers do so editors can jump to
//! them.

use std::{fmt, ops::Range};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the problem has no position (a missing file, say).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    /// The offending source line, for the excerpt under the message.
    pub excerpt: Option<String>,
}

impl Diagnostic {
    pub fn at(severity: Severity, file: &str, src: &str, span: Option<Range<usize>>, msg: String) -> Self {
        let (line, column, excerpt) = match span {
            Some(s) => {
                let (l, c) = line_col(src, s.start);
                (l, c, src.lines().nth(l - 1).map(str::to_owned))
            }
            None => (0, 0, None),
        };
        Self { severity, file: file.to_owned(), line, column, message: msg, excerpt }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {sev}: {}", self.file, self.message)?;
        } else {
            write!(f, "{}:{}:{}: {sev}: {}", self.file, self.line, self.column, self.message)?;
        }
        if let Some(text) = &self.excerpt {
            let pad: String =
                text.chars().take(self.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            write!(f, "\n    | {text}\n    | {pad}^")?;
        }
        Ok(())
    }
}

/// A rejected rules file: every diagnostic found, errors and warnings.
#[derive(Debug, Clone)]
pub struct Rejected(pub Vec<Diagnostic>);

impl Rejected {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Rejected {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // byte 12 is the quote after "bé = " (é is two bytes)
        assert_eq!(line_col(src, 12), (2, 6));
    }

    #[test]
    fn display_points_at_the_column() {
        let src = "x = 1\nrate = \"fast\"\n";
        let d = Diagnostic::at(Severity::Error, "r.toml", src, Some(13..19), "bad".into());
        assert_eq!(d.to_string(), "r.toml:2:8: error: bad\n    | rate = \"fast\"\n    |        ^");
    }
}
