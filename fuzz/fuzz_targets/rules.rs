//! `Rules::parse` on arbitrary UTF-8 text.
//!
//! Checks: it never panics (a panic it catches itself does not count); an accepted file has
//! no error, its SIP signatures build, every jail's custom detector is defined and every
//! network has its place in the text (`Rules::parse` compiles the custom detectors itself and
//! rejects those that do not compile); a rejected one has at least one error; every diagnostic
//! about the rules text has a position inside the text (line 1 to the number of lines, column
//! within the line, the excerpt being that line) or none at all (line 0, column 0, no
//! excerpt); one input in eight, chosen by its bytes, parses to the same result a second time
//! (a second parse doubles the time an input takes).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sipwall::rules::{jails::DetectorKind, Diagnostic, Rules};

const NAME: &str = "fuzz.toml";
/// Relative blocklist paths resolve here, where nothing exists.
const BASE: &str = "/nonexistent/sipwall-fuzz";

fn check_diagnostic(text: &str, d: &Diagnostic) {
    if d.file != NAME {
        // a blocklist file's own diagnostic: its positions are in that file
        return;
    }
    if d.line == 0 {
        assert_eq!(d.column, 0, "no position but a column: {d:?}");
        assert!(d.excerpt.is_none(), "no position but an excerpt: {d:?}");
        return;
    }
    // lines as an editor counts them: a text ending in LF has an empty last line, where an
    // error at the end of the text (an unterminated table, say) is reported
    let lines = text.split('\n').count();
    assert!(d.line >= 1 && d.line <= lines, "line {} outside 1..={lines}: {d:?}", d.line);
    let chars = text.split('\n').nth(d.line - 1).unwrap().chars().count();
    // column in characters, 1-based; one past the last character points at the line's end
    assert!(d.column >= 1 && d.column <= chars + 1, "column {} outside 1..={}: {d:?}", d.column, chars + 1);
    if d.line <= text.lines().count() {
        assert_eq!(d.excerpt.as_deref(), text.lines().nth(d.line - 1), "excerpt is not line {}: {d:?}", d.line);
    }
    // printing never panics
    let _ = d.to_string();
}

fuzz_target!(
    // libfuzzer-sys's panic hook aborts on every panic, even one the library catches itself
    // (`Rules::parse` guards the TOML parser with `catch_unwind`); the default hook lets those
    // go, and a panic that reaches the target still aborts the run.
    init: drop(std::panic::take_hook()),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // `[block] files` are read from disk: keep away from device and kernel files
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let base = Path::new(BASE);
    let first = Rules::parse(NAME, text, base);
    match &first {
        Ok((rules, warnings)) => {
            assert!(!warnings.iter().any(Diagnostic::is_error), "accepted with an error: {warnings:?}");
            warnings.iter().for_each(|d| check_diagnostic(text, d));
            assert_eq!(rules.text, text);
            assert_eq!(rules.origin, NAME);
            // what the daemon does with accepted rules must not fail
            rules.sip.signatures().unwrap_or_else(|e| panic!("accepted rules whose signatures do not build: {e}"));
            for jail in &rules.detection.jails {
                if let DetectorKind::Custom(name) = &jail.detector {
                    assert!(
                        rules.detection.detectors.contains_key(name),
                        "jail `{}` uses detector `{name}`, which is not defined",
                        jail.name
                    );
                }
            }
            // every network bound for the kernel's tables has its place in the text
            let nets = rules.allow.len()
                + rules.block.len()
                + rules.services.iter().map(|s| s.allow_from.as_ref().map_or(0, Vec::len)).sum::<usize>();
            assert_eq!(rules.placed.len(), nets, "placed {:?}", rules.placed);
            for &p in &rules.placed {
                assert!(p <= text.len() && text.is_char_boundary(p), "placed offset {p} not in the text");
            }
        }
        Err(rejected) => {
            assert!(rejected.errors().next().is_some(), "rejected without an error: {:?}", rejected.0);
            rejected.0.iter().for_each(|d| check_diagnostic(text, d));
            let _ = rejected.to_string();
        }
    }
    // the same text parses the same again, checked for one input in eight
    if data.iter().fold(0u8, |h, &b| h.rotate_left(3) ^ b) & 7 != 0 {
        return;
    }
    let again = Rules::parse(NAME, text, base);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert!(a == b, "accepted rules re-parse differently:\n{a:?}\n{b:?}"),
        (Err(a), Err(b)) => assert_eq!(a.0, b.0, "rejected rules re-parse with other diagnostics"),
        _ => panic!("re-parsing changes the verdict: {first:?} then {again:?}"),
    }
}
