//! Asterisk's configuration syntax: templates and inheritance, `(+)`, sections that share a
//! name, includes (globs, cycles, depth), comments, `#exec`, and bad lines.

use super::*;

#[test]
fn templates_and_inheritance() {
    let dir = Dir::new(
        "inherit",
        &[(
            "t.conf",
            "[base](!)\ntype=endpoint\nallow=ulaw\n\
             [codecs](!,base)\nallow=alaw\n\
             [phone](base,codecs)\nallow=g722\n\
             [plain]\nx = 1\n",
        )],
    );
    let cfg = dir.load("t.conf");
    assert!(cfg.notes.is_empty(), "{:?}", cfg.notes);
    let visible: Vec<&str> = cfg.sections().map(|s| s.name.as_str()).collect();
    assert_eq!(visible, ["phone", "plain"]);
    let codecs = &cfg.sections[1];
    assert!(codecs.template);
    assert_eq!(entries(codecs), [("type", "endpoint", 2), ("allow", "ulaw", 3), ("allow", "alaw", 5)]);
    let phone = cfg.section("PHONE").unwrap();
    assert_eq!(phone.inherits, ["base", "codecs"]);
    assert_eq!(
        entries(phone),
        [
            ("type", "endpoint", 2),
            ("allow", "ulaw", 3),
            ("type", "endpoint", 2),
            ("allow", "ulaw", 3),
            ("allow", "alaw", 5),
            ("allow", "g722", 7),
        ]
    );
    assert!(phone.entries[..5].iter().all(|e| e.inherited) && !phone.entries[5].inherited);
    assert_eq!(phone.origin, Origin::new("t.conf", 6));
    assert_eq!(phone.first("TYPE").unwrap().value, "endpoint");
    assert_eq!(phone.last("allow").unwrap().value, "g722");
    assert_eq!(phone.all("allow").count(), 4);
}

#[test]
fn plus_adds_to_the_earlier_section_and_needs_one() {
    let dir = Dir::new(
        "plus",
        &[("t.conf", "[tmpl](!)\nt=1\n[a]\nk=1\n[b]\nk=9\n[a](+)\nk=2\n[a](tmpl,+)\nk=3\n[zz](+)\nk=4\nafter=5\n")],
    );
    let cfg = dir.load("t.conf");
    let names: Vec<&str> = cfg.sections().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "zz"]);
    assert_eq!(entries(&cfg.sections[1]), [("k", "1", 4), ("k", "2", 8), ("t", "1", 2), ("k", "3", 10)]);
    // No [zz] to add to: Asterisk refuses the file; read on, [zz] is a section of its own.
    assert!(cfg.rejected);
    let errors = notes(&cfg.notes, Level::Error);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("t.conf:11: error: `(+)` adds to section [zz]"), "{errors:?}");
    assert!(errors[0].contains("Asterisk refuses all of t.conf"), "{errors:?}");
    assert_eq!(entries(cfg.section("zz").unwrap()), [("k", "4", 12), ("after", "5", 13)]);
}

#[test]
fn sections_sharing_a_name_stay_apart_in_file_order() {
    let dir = Dir::new(
        "same-name",
        &[("pjsip.conf", "[alice]\ntype=endpoint\naors=alice\n\n[alice-auth]\ntype=auth\n\n[alice]\ntype=aor\n")],
    );
    let cfg = dir.load("pjsip.conf");
    let alices: Vec<_> = cfg.sections().filter(|s| s.name == "alice").collect();
    assert_eq!(alices.len(), 2);
    assert_eq!(alices[0].first("type").unwrap().value, "endpoint");
    assert_eq!(alices[1].first("type").unwrap().value, "aor");
    assert_eq!(alices[1].origin.line, 8);
    assert_eq!(cfg.section("alice").unwrap().origin.line, 1);
}

#[test]
fn includes_follow_globs_and_stop_at_a_cycle() {
    let dir = Dir::new(
        "include",
        &[
            ("main.conf", "[general]\na=1\n#include \"inc/part_*.conf\"\nb=2\n#tryinclude <absent.conf>\n"),
            ("inc/part_1.conf", "c=3\n[other]\nd=4\n"),
            ("inc/part_2.conf", "#include main.conf\ne=5\n"),
            ("inc/.part_hidden.conf", "[hidden]\n"),
            ("inc/part_x.txt", "[wrong]\n"),
        ],
    );
    let cfg = dir.load("main.conf");
    assert_eq!(cfg.files, [PathBuf::from("main.conf"), "inc/part_1.conf".into(), "inc/part_2.conf".into()]);
    // An included file goes on in the section that was current; the including file goes
    // on in its own.
    let general = cfg.section("general").unwrap();
    assert_eq!(entries(general), [("a", "1", 2), ("c", "3", 1), ("b", "2", 4)]);
    assert_eq!(general.entries[1].origin.file, Path::new("inc/part_1.conf"));
    assert_eq!(entries(cfg.section("other").unwrap()), [("d", "4", 3), ("e", "5", 2)]);
    assert_eq!(cfg.sections.len(), 2);
    let warnings = notes(&cfg.notes, Level::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with(
        "inc/part_2.conf:1: warning: `#include main.conf` includes main.conf, which is already being read"
    ));
    assert!(!cfg.rejected);
}

#[test]
fn a_missing_include_is_an_error_a_missing_tryinclude_is_not() {
    let dir = Dir::new(
        "missing-include",
        &[
            ("a.conf", "[s]\n#tryinclude nothere.conf\n#tryinclude none_*.conf\nk=1\n"),
            ("b.conf", "[s]\n#include nothere.conf\nk=2\n"),
            ("c.conf", "[s]\n#include b.conf\nk=3\n"),
        ],
    );
    let a = dir.load("a.conf");
    assert!(a.notes.is_empty() && !a.rejected, "{:?}", a.notes);
    let b = dir.load("b.conf");
    assert!(b.rejected);
    assert_eq!(notes(&b.notes, Level::Error).len(), 1);
    assert!(b.notes[0].to_string().starts_with("b.conf:2: error: `#include nothere.conf`: no such file"));
    assert_eq!(b.section("s").unwrap().last("k").unwrap().value, "2");
    // In an included file the same mistake stops that file only.
    let c = dir.load("c.conf");
    assert!(!c.rejected);
    assert!(c.notes[0].message.ends_with("Asterisk stops reading b.conf here"), "{:?}", c.notes);
}

#[test]
fn includes_nest_ten_deep_at_most() {
    let files: Vec<(String, String)> =
        (0..12).map(|i| (format!("n{i}.conf"), format!("[s{i}]\n#include n{}.conf\n", i + 1))).collect();
    let mut refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    refs.push(("n12.conf", "[s12]\n"));
    let dir = Dir::new("depth", &refs);
    let cfg = dir.load("n0.conf");
    // n0 is level 1; n10 (level 11) may not include n11.
    assert_eq!(cfg.files.len(), 11);
    let errors = notes(&cfg.notes, Level::Error);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("n10.conf:2: error: `#include n11.conf` nests includes more than 10 deep"));
}

#[test]
fn comments_block_comments_and_escaped_semicolons() {
    let dir = Dir::new(
        "comments",
        &[(
            "t.conf",
            "[s] ; trailing\nproxy = sip:proxy.example\\;lr ; the \\; stays\n\
             ;--\nhidden=1\n  ;-- nested --;\nhidden=2\n--;\nshown = yes\n\
             half = a ;-- gone --; b\n;------------\nlast=1\n",
        )],
    );
    let cfg = dir.load("t.conf");
    assert!(cfg.notes.is_empty(), "{:?}", cfg.notes);
    let s = cfg.section("s").unwrap();
    assert_eq!(
        entries(s),
        [("proxy", "sip:proxy.example;lr", 2), ("shown", "yes", 8), ("half", "a  b", 9), ("last", "1", 11)]
    );
}

#[test]
fn exec_is_never_run() {
    let dir = Dir::new("exec", &[]);
    let marker = dir.path().join("ran");
    let text = format!("[s]\n#exec \"/bin/touch {}\"\nk=1\n", marker.display());
    fs::write(dir.path().join("t.conf"), text).unwrap();
    let cfg = dir.load("t.conf");
    assert!(!marker.exists());
    let warnings = notes(&cfg.notes, Level::Warning);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("t.conf:2: warning: `#exec /bin/touch"), "{warnings:?}");
    assert!(warnings[0].contains("skipped"));
    assert_eq!(cfg.section("s").unwrap().last("k").unwrap().value, "1");
}

#[test]
fn bad_lines_are_notes_and_reading_goes_on() {
    let dir = Dir::new(
        "bad-lines",
        &[(
            "t.conf",
            "early=1\n[s]\njust words\n= nothing\n#frobnicate x\n#include\n\
             [broken\nk=1\nk+=2\nregister => u@h\n\\=odd=v\n",
        )],
    );
    let cfg = dir.load("t.conf");
    let shown: Vec<String> = cfg.notes.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 6, "{shown:?}");
    assert!(shown[0].starts_with("t.conf:1: error: a setting before any [section] header"));
    assert!(shown[1].starts_with("t.conf:3: warning: no `=`"));
    assert!(shown[2].starts_with("t.conf:4: warning: no name before the `=`"));
    assert!(shown[3].starts_with("t.conf:5: warning: unknown directive `#frobnicate`"));
    assert!(shown[4].starts_with("t.conf:6: warning: `#include` needs a file name"));
    assert!(shown[5].starts_with("t.conf:7: error: no closing `]`"));
    assert!(cfg.section("s").unwrap().entries.is_empty());
    let broken = cfg.section("broken").unwrap();
    assert!(broken.first("register").unwrap().object);
    assert_eq!(entries(broken), [("k", "12", 8), ("register", "u@h", 10), ("=odd", "v", 11)]);
}

#[test]
fn a_missing_template_is_an_error_and_left_out() {
    let dir = Dir::new("no-template", &[("t.conf", "[tmpl](!)\na=1\n[x](nosuch,tmpl)\nb=2\n")]);
    let cfg = dir.load("t.conf");
    assert!(cfg.rejected);
    let errors = notes(&cfg.notes, Level::Error);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("t.conf:3: error: [x] inherits from `nosuch`, but there is no such section"));
    let x = cfg.section("x").unwrap();
    assert_eq!(x.inherits, ["tmpl"]);
    assert_eq!(entries(x), [("a", "1", 2), ("b", "2", 4)]);
}

#[test]
fn an_escaped_first_character_of_any_length_and_any_byte_are_read_without_panic() {
    let dir = Dir::new("escapes", &[("t.conf", "[s]\n\\é = x\n\\[k] = y\n\\€=z\n")]);
    let cfg = dir.load("t.conf");
    let s = cfg.section("s").unwrap();
    assert_eq!(entries(s), [("é", "x", 2), ("[k]", "y", 3), ("€", "z", 4)]);
    // invalid UTF-8 after the backslash becomes U+FFFD: still no panic
    fs::write(dir.0.join("bad.conf"), b"[s]\n\\\xff\xfe = 1\n\\\xe2\x82 = 2\n").unwrap();
    let cfg = dir.load("bad.conf");
    assert_eq!(cfg.section("s").unwrap().entries.len(), 2);
}
