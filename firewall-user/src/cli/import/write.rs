//! The import written as a rules file: a header naming the files read and what was not
//! translated, then `[allow]`, `[detectors.NAME]` and `[jails.NAME]`.

use std::{fmt::Write, path::Path};

use super::{
    model::{DetectorOut, Imported, Increment, JailOut},
    values::duration,
};

/// Whether `c` may stand in a multi-line literal string.
fn multi_ok(c: char) -> bool {
    c == '\n' || c == '\t' || !c.is_control()
}

/// A TOML string: literal where it can be (regular expressions stay as written), else basic.
pub fn string(s: &str) -> String {
    let plain = |c: char| c != '\'' && (c == '\t' || !c.is_control());
    if s.chars().all(plain) {
        return format!("'{s}'");
    }
    if !s.contains("'''") && !s.ends_with('\'') && s.chars().all(multi_ok) {
        return format!("'''\n{s}'''");
    }
    basic(s)
}

/// A TOML basic string on one line: quotes, backslashes and every control character escaped,
/// so no text (a file name, a journal match) can end the string or start a line of its own.
pub fn basic(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be, else quoted.
pub fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_owned()
    } else {
        let s = string(k);
        if s.starts_with('\'') && !s.starts_with("'''") {
            s
        } else {
            basic(k)
        }
    }
}

fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        // a comment holds no control character but tab
        let line: String = line.chars().map(|c| if c.is_control() && c != '\t' { '?' } else { c }).collect();
        let _ = writeln!(out, "{}", format!("# {line}").trim_end());
    }
}

/// A multi-line value on lines of its own, so that each expression is one line of the file.
fn block(v: &str) -> String {
    if v.contains('\n') && !v.contains("'''") && !v.ends_with('\'') && v.chars().all(multi_ok) {
        format!("'''\n{}\n'''", v.trim_end_matches('\n'))
    } else {
        string(v)
    }
}

pub fn list<T: ToString>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(|i| basic(&i.to_string())).collect();
    format!("[{}]", parts.join(", "))
}

fn detector(out: &mut String, d: &DetectorOut) {
    let _ = writeln!(out, "\n[detectors.{}]", key(&d.name));
    for c in &d.comments {
        comment(out, c);
    }
    if let Some(p) = &d.prefregex {
        let _ = writeln!(out, "prefregex = {}", string(p));
    }
    let _ = writeln!(out, "failregex = {}", block(&d.failregex));
    if let Some(i) = &d.ignoreregex {
        let _ = writeln!(out, "ignoreregex = {}", block(i));
    }
    if let Some(p) = &d.datepattern {
        let _ = writeln!(out, "datepattern = {}", block(p));
    }
    if let Some(m) = d.maxlines {
        let _ = writeln!(out, "maxlines = {m}");
    }
    if !d.definitions.is_empty() {
        let _ = writeln!(out, "\n[detectors.{}.definitions]", key(&d.name));
        for (k, v) in &d.definitions {
            let _ = writeln!(out, "{} = {}", key(k), block(v));
        }
    }
}

/// Above an enabled asterisk jail: the source fail2ban has no equivalent of.
pub const AMI_HINT: &str = "Asterisk also reports these failures, structured, on its manager interface (AMI): add\n\
     \"ami:127.0.0.1:5038\" to logpath, and an AMI account with `read = security` in [asterisk]\n\
     ami_credentials (docs/rules.md#ami-sources); a failure seen in the log and on AMI counts once.";

fn jail(out: &mut String, j: &JailOut) {
    let _ = writeln!(out, "\n[jails.{}]", key(&j.name));
    for c in &j.comments {
        comment(out, c);
    }
    let _ = writeln!(out, "enabled = {}", j.enabled);
    if let Some(d) = &j.detector {
        let _ = writeln!(out, "detector = {}", string(d));
    }
    if let Some(m) = &j.mode {
        let _ = writeln!(out, "mode = {}", string(m));
    }
    if j.enabled && j.name == "asterisk" {
        comment(out, AMI_HINT);
    }
    if !j.logpath.is_empty() {
        let _ = writeln!(out, "logpath = {}", list(&j.logpath));
    }
    if let Some(t) = j.findtime {
        let _ = writeln!(out, "findtime = \"{}\"", duration(Some(t)));
    }
    if let Some(n) = j.maxretry {
        let _ = writeln!(out, "maxretry = {n}");
    }
    if let Some(b) = j.bantime {
        let _ = writeln!(out, "bantime = \"{}\"", duration(b));
    }
    if !j.ignore.is_empty() {
        let _ = writeln!(out, "ignore = {}", list(&j.ignore));
    }
    match &j.increment {
        None => {}
        Some(Increment::Off) => {
            let _ = writeln!(out, "increment = false");
        }
        Some(Increment::On { factor, multipliers, maxtime, overalljails, window }) => {
            let _ = writeln!(out, "\n[jails.{}.increment]", key(&j.name));
            if let Some(f) = factor {
                let _ = writeln!(out, "factor = {f:?}");
            }
            if !multipliers.is_empty() {
                let m: Vec<String> = multipliers.iter().map(u32::to_string).collect();
                let _ = writeln!(out, "multipliers = [{}]", m.join(", "));
            }
            if maxtime.is_none() {
                comment(out, "fail2ban sets no bantime.maxtime: no limit");
            }
            let _ = writeln!(out, "maxtime = \"{}\"", duration(*maxtime));
            if *overalljails {
                let _ = writeln!(out, "overalljails = true");
            }
            if let Some(w) = window {
                comment(out, "fail2ban's dbpurgeage: how long its database keeps the bans it counts");
                let _ = writeln!(out, "window = \"{}\"", duration(Some(*w)));
            }
        }
    }
}

/// The rules file for `imp`, read from `dir`.
pub fn rules(imp: &Imported, dir: &Path) -> String {
    let mut out = String::new();
    comment(&mut out, &format!("sipwall rules imported from the fail2ban configuration in {}", dir.display()));
    comment(&mut out, "by `sipwall import-fail2ban`. Files read, in fail2ban's order:");
    for f in &imp.files {
        comment(&mut out, &format!("  {}", f.display()));
    }
    comment(
        &mut out,
        "The built-in jails flood, sip-wire and scanner have no fail2ban equivalent and keep their\n\
         defaults (docs/rules.md).",
    );
    if !imp.notes.is_empty() {
        comment(&mut out, "\nNot translated:");
        for n in &imp.notes {
            comment(&mut out, &format!("  {}", n.to_string().replace('\n', " ")));
        }
    }
    if !imp.allow.is_empty() {
        let _ = writeln!(out, "\n[allow]");
        comment(&mut out, "fail2ban's ignoreip, common to every jail");
        let _ = writeln!(out, "sources = {}", list(&imp.allow));
    }
    for d in &imp.detectors {
        detector(&mut out, d);
    }
    for j in &imp.jails {
        jail(&mut out, j);
    }
    out
}
