//! Typed reading of a parsed TOML document that collects every error instead of stopping at the
//! first, each with the span of the offending key or value.

use std::{ops::Range, time::Duration};

use toml_edit::{Item, TableLike, Value};

use super::diag::{Diagnostic, Severity};
use crate::duration;

/// Collects diagnostics for one source file.
pub struct Reader<'s> {
    pub file: &'s str,
    pub src: &'s str,
    pub diags: Vec<Diagnostic>,
    /// Where each network bound for the kernel's tables was written (byte offsets), in the
    /// order they were read.
    pub placed: Vec<usize>,
}

impl<'s> Reader<'s> {
    pub fn new(file: &'s str, src: &'s str) -> Self {
        Self { file, src, diags: Vec::new(), placed: Vec::new() }
    }

    pub fn error(&mut self, span: Option<Range<usize>>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::at(Severity::Error, self.file, self.src, span, msg.into()));
    }

    pub fn warn(&mut self, span: Option<Range<usize>>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::at(Severity::Warning, self.file, self.src, span, msg.into()));
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// A table of the document (`[name]` or inline) and where it is.
#[derive(Clone)]
pub struct Section<'a> {
    pub table: &'a dyn TableLike,
    pub path: &'a str,
    pub span: Option<Range<usize>>,
}

/// Human name of a TOML item's type, for "expected X, found Y".
pub fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
    }
}

fn value_span(table: &dyn TableLike, key: &str) -> Option<Range<usize>> {
    let (k, item) = table.get_key_value(key)?;
    item.span().or_else(|| k.span())
}

/// The closest known name, for "did you mean".
pub fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// The durations a key accepts besides positive ones.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durations {
    Positive,
    /// Also forever (`-1`, `"forever"`).
    OrForever,
    /// Also 0 (the key's feature off).
    OrZero,
}

impl<'a> Section<'a> {
    /// Reports every key not in `known`.
    pub fn check_keys(&self, r: &mut Reader, known: &[&str]) {
        for (key, _) in self.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let span = self.table.get_key_value(key).and_then(|(k, _)| k.span());
            let hint = match suggest(key, known) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => format!("; expected one of: {}", known.join(", ")),
            };
            r.error(span, format!("unknown key `{key}` in [{}]{hint}", self.path));
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get_key_value(key).and_then(|(k, _)| k.span()).or(self.span.clone())
    }

    pub fn value_span(&self, key: &str) -> Option<Range<usize>> {
        value_span(self.table, key)
    }

    /// A nested table, if present and a table.
    pub fn table(&self, r: &mut Reader, key: &str, path: &'a str) -> Option<Section<'a>> {
        let item = self.table.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(Section { table: t, path, span: self.key_span(key) }),
            None => {
                r.error(self.value_span(key), format!("`{key}` must be a table, found {}", type_name(item)));
                None
            }
        }
    }

    /// Every sub-table, in file order, with its name.
    pub fn tables(&self, r: &mut Reader) -> Vec<(&'a str, &'a dyn TableLike, Option<Range<usize>>)> {
        let mut out = Vec::new();
        for (name, item) in self.table.iter() {
            match item.as_table_like() {
                Some(t) => out.push((name, t, self.key_span(name))),
                None => r.error(
                    self.value_span(name),
                    format!("[{}.{name}] must be a table, found {}", self.path, type_name(item)),
                ),
            }
        }
        out
    }

    pub fn string(&self, r: &mut Reader, key: &str) -> Option<(String, Range<usize>)> {
        let item = self.table.get(key)?;
        let span = self.value_span(key).unwrap_or(0..0);
        match item.as_str() {
            Some(s) => Some((s.to_owned(), inner(span))),
            None => {
                r.error(Some(span), format!("`{key}` must be a string, found {}", type_name(item)));
                None
            }
        }
    }

    pub fn bool(&self, r: &mut Reader, key: &str) -> Option<bool> {
        let item = self.table.get(key)?;
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                r.error(self.value_span(key), format!("`{key}` must be true or false, found {}", type_name(item)));
                None
            }
        }
    }

    /// A duration key: `"10m"`-style text, or plain seconds as an integer, as fail2ban writes
    /// them (`bantime = -1` is forever); `None` inside for forever.
    pub fn duration(&self, r: &mut Reader, key: &str, kind: Durations) -> Option<Option<Duration>> {
        let item = self.table.get(key)?;
        let span = self.value_span(key);
        let text = match (item.as_integer(), item.as_str()) {
            (Some(i), _) => i.to_string(),
            (_, Some(t)) => t.to_owned(),
            _ => {
                r.error(span, format!("`{key}` must be a duration like \"10m\" or a number of seconds"));
                return None;
            }
        };
        match duration::parse(&text) {
            Ok(None) if kind != Durations::OrForever => {
                r.error(span, format!("`{key}` cannot be forever"));
                None
            }
            Ok(Some(d)) if d.is_zero() && kind != Durations::OrZero => {
                r.error(span, format!("`{key}` must be longer than 0"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                r.error(span, e);
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn uint(&self, r: &mut Reader, key: &str, min: u64, max: u64) -> Option<u64> {
        let item = self.table.get(key)?;
        let span = self.value_span(key);
        match item.as_integer() {
            Some(v) if v >= 0 && (min..=max).contains(&(v as u64)) => Some(v as u64),
            Some(v) => {
                r.error(span, format!("`{key}` must be between {min} and {max}, found {v}"));
                None
            }
            None => {
                r.error(span, format!("`{key}` must be an integer, found {}", type_name(item)));
                None
            }
        }
    }

    /// An array of strings, each with the span of its text (inside the quotes).
    pub fn strings(&self, r: &mut Reader, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let item = self.table.get(key)?;
        let Some(arr) = item.as_array() else {
            r.error(self.value_span(key), format!("`{key}` must be an array of strings, found {}", type_name(item)));
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut ok = true;
        for v in arr.iter() {
            match v.as_str() {
                Some(s) => out.push((s.to_owned(), inner(v.span().unwrap_or(0..0)))),
                None => {
                    ok = false;
                    r.error(
                        v.span(),
                        format!("`{key}` must contain only strings, found {}", type_name(&Item::Value(v.clone()))),
                    );
                }
            }
        }
        ok.then_some(out)
    }
}

/// The span of a string's text without its quotes.
fn inner(span: Range<usize>) -> Range<usize> {
    if span.end > span.start + 1 {
        span.start + 1..span.end - 1
    } else {
        span
    }
}
