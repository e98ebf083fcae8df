//! The `[sip]` section: defaults, a full section read back, and each mistake placed and explained.

use std::{path::Path, time::Duration};

use firewall_common::sip::{Method, MethodSet, DEFAULT_SCANNER_USER_AGENTS, DEFAULT_SIGNATURES};

use super::{accept, reject};
use crate::rules::{sip::SipRules, Limit, Rules};

const SIP_SERVICE: &str = "[services.sip]\nports = [\"5060/udp\"]\n";

fn sip_reject(section: &str) -> Vec<(usize, usize, String)> {
    reject(&format!("{SIP_SERVICE}{section}"))
}

#[test]
fn sip_defaults_when_the_section_is_absent() {
    let (r, w) = accept(SIP_SERVICE);
    assert!(w.is_empty(), "{w:?}");
    let sip = &r.sip;
    assert!(sip.inspect);
    assert!(!sip.inspect_required, "left out, a kernel without the inspector is no reason to stay down");
    assert!(!sip.stealth_options);
    assert_eq!(sip.allowed_methods, MethodSet::STANDARD);
    assert!(sip.method_limits.is_empty());
    assert_eq!(sip.reinspect, Duration::from_secs(300));
    assert_eq!(sip.scanner_user_agents, DEFAULT_SCANNER_USER_AGENTS);
    assert_eq!(sip.scanner_uris, ["sip:nm@nm"]);
    assert_eq!(sip.signatures().unwrap(), DEFAULT_SIGNATURES);
    assert_eq!(Rules::default_rules().sip, SipRules::default());
}

#[test]
fn sip_section_is_read_back() {
    let text = format!(
        "{SIP_SERVICE}{}",
        r#"[sip]
inspect = false
scanner_user_agents = ["friendly-scanner", "Evil Tool"]
scanner_uris = []
allowed_methods = ["REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]
stealth_options = true
method_limits = { REGISTER = { rate = 5, burst = 20 }, INVITE = { rate = 2 } }
reinspect = "90s"
"#
    );
    let (r, w) = accept(&text);
    assert!(w.is_empty(), "{w:?}");
    let sip = &r.sip;
    assert!(!sip.inspect);
    assert!(sip.stealth_options);
    assert_eq!(sip.reinspect, Duration::from_secs(90));
    assert_eq!(sip.scanner_user_agents, ["friendly-scanner", "Evil Tool"]);
    assert!(sip.scanner_uris.is_empty());
    let allowed: Vec<Method> = Method::ALL.into_iter().filter(|m| sip.allowed_methods.contains(*m)).collect();
    assert_eq!(allowed, [Method::Invite, Method::Ack, Method::Bye, Method::Cancel, Method::Register, Method::Options]);
    // ordered by method id, burst defaulting to rate
    assert_eq!(
        sip.method_limits,
        [(Method::Invite, Limit { rate: 2, burst: 2 }), (Method::Register, Limit { rate: 5, burst: 20 })]
    );
    let table = sip.signatures().unwrap();
    assert_eq!(table.count, 2);
    assert_eq!(table.signatures[1].text(), "evil tool");
    assert_eq!(sip.signature(1), Some("Evil Tool"));

    // the same limits written as tables
    let text = format!("{SIP_SERVICE}[sip.method_limits.REGISTER]\nrate = 5\nburst = 20\n");
    let (r, _) = accept(&text);
    assert_eq!(r.sip.method_limits, [(Method::Register, Limit { rate: 5, burst: 20 })]);
}

#[test]
fn sip_signature_errors_are_placed_on_the_entry() {
    let errs = sip_reject(
        r#"[sip]
scanner_user_agents = ["ok-scanner", "ab", "-dash", "OK-Scanner"]
scanner_uris = ["sip:ünicode@x", "sip:this-uri-is-far-longer-than-thirty-two-bytes@x"]
"#,
    );
    let got: Vec<String> = errs.iter().map(|e| format!("{}:{} {}", e.0, e.1, e.2)).collect();
    let want = [
        "4:39 `ab`: scanner signature 2 is 2 bytes; use at least 4 so it does not match ordinary words",
        "4:45 `-dash` never matches: signatures are looked for where a word starts, so the first character must \
         be a letter or a digit",
        "4:54 `OK-Scanner` is already in `scanner_user_agents` as `ok-scanner` (signatures ignore case); remove one",
        "5:18 `sip:ünicode@x`: scanner signature 5 has a byte that is not printable ASCII; use plain text",
        "5:35 `sip:this-uri-is-far-longer-than-thirty-two-bytes@x`: scanner signature 6 is 50 bytes, the kernel \
         matches at most 32; shorten it to its distinctive start",
    ];
    assert_eq!(got, want);
}

#[test]
fn sip_signature_table_limits() {
    // 33 signatures: 20 given and 13 default User-Agent ones
    let uris: Vec<String> = (0..20).map(|i| format!("\"sip:probe{i}@x\"")).collect();
    let errs = sip_reject(&format!("[sip]\nscanner_uris = [{}]\n", uris.join(", ")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].0, errs[0].1), (4, 331), "at the 20th URI, the first that does not fit");
    assert!(errs[0].2.starts_with("33 scanner signatures given, the kernel table holds 32"), "{errs:#?}");
    // five signatures with the same first four letters fill their slot
    let errs = sip_reject("[sip]\nscanner_user_agents = [\"scan1\", \"scan2\", \"scan3\", \"scan4\", \"scan5\"]\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].0, errs[0].1), (4, 61));
    assert!(errs[0].2.contains("signature 5 shares its first four letters' slot with 4 others"), "{errs:#?}");
    // the same text in both lists is two signatures for different fields
    let (r, _) =
        accept(&format!("{SIP_SERVICE}[sip]\nscanner_user_agents = [\"sipsak\"]\nscanner_uris = [\"SIPSAK\"]\n"));
    assert_eq!(r.sip.signatures().unwrap().count, 2);
}

#[test]
fn sip_method_errors() {
    let errs = sip_reject("[sip]\nallowed_methods = [\"INVITE\", \"invite\", \"FOO\"]\n");
    let got: Vec<(usize, usize, &str)> = errs.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0], (4, 31, "unknown method `invite`: method names are upper case on the wire: INVITE"), "{got:#?}");
    assert_eq!((got[1].0, got[1].1), (4, 41));
    assert!(got[1].2.starts_with("unknown method `FOO`; known methods: INVITE, ACK, BYE,"), "{got:#?}");
    assert!(got[1].2.ends_with("PUBLISH, INFO"), "{got:#?}");
    assert!(!got[1].2.contains("unknown,"), "Unknown is no method one can allow: {got:#?}");

    let errs = sip_reject("[sip]\nallowed_methods = []\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].0, errs[0].1), (4, 19));
    assert!(errs[0].2.contains("drops every request; leave the key out for the standard methods"), "{errs:#?}");

    let errs = sip_reject("[sip]\nallowed_methods = \"INVITE\"\ninspect = 1\nstealth_options = \"yes\"\nrefresh = 2\n");
    let got: Vec<(usize, usize, &str)> = errs.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!((got[0].0, got[0].1), (4, 19));
    assert!(got[0].2.contains("must be an array of strings"), "{got:#?}");
    assert_eq!((got[1].0, got[1].1), (5, 11));
    assert!(got[1].2.contains("`inspect` must be true or false"), "{got:#?}");
    assert_eq!((got[2].0, got[2].1), (6, 19));
    assert_eq!((got[3].0, got[3].1), (7, 1));
    assert!(got[3].2.starts_with("unknown key `refresh` in [sip]; expected one of: inspect,"), "{got:#?}");
}

#[test]
fn sip_method_limit_errors() {
    let errs = sip_reject(
        r#"[sip.method_limits]
register = { rate = 5 }
INVITE = { burst = 3 }
BYE = { rate = 0, burst = 20000000, per = 1 }
ACK = 5
"#,
    );
    let got: Vec<String> = errs.iter().map(|e| format!("{}:{} {}", e.0, e.1, e.2)).collect();
    let want = [
        "4:1 unknown method `register`: method names are upper case on the wire: REGISTER",
        "5:1 the limit of INVITE needs `rate`, like INVITE = { rate = 5, burst = 20 }",
        "6:16 `rate` must be between 1 and 10000000, found 0",
        "6:27 `burst` must be between 1 and 10000000, found 20000000",
        "6:37 unknown key `per` in [sip.method_limits.BYE]; expected one of: rate, burst",
        "7:7 [sip.method_limits.ACK] must be a table, found an integer",
    ];
    assert_eq!(got, want);
    let errs = sip_reject("[sip]\nmethod_limits = [\"REGISTER\"]\n");
    assert!(errs[0].2.contains("`method_limits` must be a table, found an array"), "{errs:#?}");
}

#[test]
fn sip_warnings_do_not_reject() {
    let text = format!(
        "{SIP_SERVICE}{}",
        r#"[sip]
allowed_methods = ["REGISTER", "INVITE", "REGISTER"]
stealth_options = true
method_limits = { MESSAGE = { rate = 1 } }
"#
    );
    let (r, w) = accept(&text);
    let got: Vec<String> = w.iter().map(|d| format!("{}:{} {}", d.line, d.column, d.message)).collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[0].starts_with("4:43 `REGISTER` is listed twice"), "{got:#?}");
    assert!(
        got[1].starts_with("5:19 `stealth_options` has no effect: OPTIONS is not in `allowed_methods`"),
        "{got:#?}"
    );
    assert!(got[2].starts_with("6:19 the limit of MESSAGE is never reached"), "{got:#?}");
    assert_eq!(r.sip.method_limits.len(), 1);

    // a [sip] section without a `sip` service to apply to
    let (_, w) = accept("[services.pbx]\nports = [\"5060/udp\"]\n[sip]\ninspect = true\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].line, w[0].column), (3, 2));
    assert!(w[0].message.starts_with("the [sip] section applies to the service named `sip`; there is none"));
}

#[test]
fn sip_errors_reject_the_whole_file() {
    // the `sipwall check` path: one bad [sip] key rejects every other section with it
    let text = format!(
        "[allow]\nsources = [\"10.0.0.0/8\"]\n{SIP_SERVICE}[sip]\nstealth_options = true\n\
         allowed_methods = [\"invite\"]\n"
    );
    let err = Rules::parse("t.toml", &text, Path::new("/nonexistent")).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("t.toml:7:21: error: unknown method `invite`"), "{shown}");
    assert_eq!(err.errors().count(), 1);
}

/// The commented `[sip]` of rules/example.toml and the complete section of docs/rules.md show the
/// defaults and one set of limits: they must read back as that.
#[test]
fn sip_examples_show_the_defaults() {
    let example = include_str!("../../../../rules/example.toml");
    let start = example.find("# [sip]\n").expect("rules/example.toml shows a commented [sip]");
    let block: String = example[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter(|l| !l.starts_with("# #"))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    let docs = include_str!("../../../../docs/rules.md");
    let start = docs.find("A complete section:\n\n```toml\n").expect("docs/rules.md shows a complete [sip]");
    let rest = &docs[start..];
    let body = &rest[rest.find("[sip]").unwrap()..];
    let doc_block = &body[..body.find("```").unwrap()];
    for (name, text) in [("rules/example.toml", block.as_str()), ("docs/rules.md", doc_block)] {
        let (r, w) = accept(&format!("{SIP_SERVICE}{text}"));
        assert!(w.is_empty(), "{name}: {w:?}");
        let limits =
            vec![(Method::Invite, Limit { rate: 2, burst: 10 }), (Method::Register, Limit { rate: 5, burst: 20 })];
        // both write `inspect = true`, which makes the inspector required
        let want = SipRules { method_limits: limits, inspect_required: true, ..SipRules::default() };
        assert_eq!(r.sip, want, "{name}:\n{text}");
    }
}

#[test]
fn sip_reinspect_takes_zero_but_not_forever() {
    for (text, want) in [("0", 0), ("\"0s\"", 0), ("60", 60), ("\"10m\"", 600)] {
        let (r, w) = accept(&format!("{SIP_SERVICE}[sip]\nreinspect = {text}\n"));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(r.sip.reinspect, Duration::from_secs(want), "{text}");
    }
    for (text, msg) in [
        ("\"forever\"", "`reinspect` cannot be forever"),
        ("-1", "`reinspect` cannot be forever"),
        ("\"soon\"", "`soon` is not a duration"),
        ("true", "`reinspect` must be a duration like \"10m\" or a number of seconds"),
    ] {
        let errs = sip_reject(&format!("[sip]\nreinspect = {text}\n"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!((errs[0].0, errs[0].1), (4, 13), "{text}");
        assert!(errs[0].2.starts_with(msg), "{text}: {errs:#?}");
    }
}
