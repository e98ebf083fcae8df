//! `[crowdsec]` in the rules file: the bouncer key, the machine's credentials file as cscli
//! writes it, the defaults, and each mistake at its line and column.

use std::time::Duration;

use crate::rules::{crowdsec::credentials, Rules};

/// The files the rules name, written once per test process.
fn files() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sipwall-crowdsec-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bouncer.key"), "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::write(dir.join("two-lines.key"), "abc\ndef\n").unwrap();
        // as `cscli machines add pbx1 --password … -f FILE` writes it
        std::fs::write(dir.join("machine.yaml"), "url: http://10.0.0.1:8080\nlogin: pbx1\npassword: pw123456\n")
            .unwrap();
        std::fs::write(dir.join("no-url.yaml"), "login: 'pbx2'\npassword: \"p w\"\n").unwrap();
        std::fs::write(dir.join("no-password.yaml"), "url: http://10.0.0.1:8080\nlogin: pbx1\n").unwrap();
        dir
    })
    .clone()
}

fn parse(text: &str) -> Result<Rules, Vec<(usize, usize, String)>> {
    match Rules::parse("t.toml", text, &files()) {
        Ok((r, _)) => Ok(r),
        Err(e) => Err(e.errors().map(|d| (d.line, d.column, d.message.clone())).collect()),
    }
}

#[track_caller]
fn has(text: &str, line: usize, column: usize, needle: &str) {
    let errs = parse(text).err().unwrap_or_else(|| panic!("must be rejected:\n{text}"));
    assert!(
        errs.iter().any(|e| e.0 == line && e.1 == column && e.2.contains(needle)),
        "no error at {line}:{column} with {needle:?} in {errs:?}"
    );
}

#[test]
fn a_bouncer_and_a_machine() {
    let r = parse(
        "[jails.sshd]\nenabled = true\n\n[crowdsec]\napi_url = \"http://127.0.0.1:8080\"\napi_key_file = \"bouncer.key\"\n\
         update_frequency = \"2s\"\norigins = [\"crowdsec\", \"cscli\"]\ncredentials_file = \"machine.yaml\"\n\
         push_jails = [\"sshd\"]\ntimeout = \"3s\"\n",
    )
    .unwrap();
    let c = r.crowdsec.unwrap();
    assert_eq!(c.api_url, "http://127.0.0.1:8080/", "a final / is added");
    assert_eq!(c.timeout, Duration::from_secs(3));
    let b = c.bouncer.as_ref().unwrap();
    assert_eq!(b.key.0, "0123456789abcdef0123456789abcdef");
    assert_eq!(b.every, Duration::from_secs(2));
    assert_eq!(b.origins, ["crowdsec", "cscli"]);
    let m = c.machine.as_ref().unwrap();
    assert_eq!((m.login.as_str(), m.password.0.as_str()), ("pbx1", "pw123456"));
    assert!(m.pushes("sshd") && !m.pushes("asterisk"));
    assert!(
        !format!("{c:?}").contains("pw123456") && !format!("{c:?}").contains("0123456789abcdef"),
        "secrets unprinted"
    );
    assert!(c.describe().contains("pulls decisions every 2s"), "{}", c.describe());
}

#[test]
fn the_url_may_come_from_the_credentials_file_and_defaults_apply() {
    let c = parse("[crowdsec]\ncredentials_file = \"machine.yaml\"\n").unwrap().crowdsec.unwrap();
    assert_eq!(c.api_url, "http://10.0.0.1:8080/");
    assert!(c.bouncer.is_none());
    assert!(c.machine.unwrap().jails.is_empty(), "every jail");
    let c = parse("[crowdsec]\napi_url = \"https://lapi.example/\"\napi_key_file = \"bouncer.key\"\n")
        .unwrap()
        .crowdsec
        .unwrap();
    assert_eq!(c.bouncer.unwrap().every, Duration::from_secs(10));
    assert!(parse("").unwrap().crowdsec.is_none());
}

#[test]
fn mistakes_are_reported_where_they_are() {
    has("[crowdsec]\napi_url = \"http://h/\"\n", 1, 2, "needs `api_key_file`");
    has("[crowdsec]\napi_key_file = \"bouncer.key\"\n", 1, 2, "needs `api_url`");
    has("[crowdsec]\napi_url = \"ftp://h/\"\napi_key_file = \"bouncer.key\"\n", 2, 12, "http:// or https://");
    has("[crowdsec]\napi_url = \"not a url\"\napi_key_file = \"bouncer.key\"\n", 2, 12, "not a URL");
    has("[crowdsec]\napi_url = \"http://h/\"\napi_key_file = \"nosuch\"\n", 3, 17, "cannot read api_key_file");
    has("[crowdsec]\napi_url = \"http://h/\"\napi_key_file = \"two-lines.key\"\n", 3, 17, "alone on one line");
    has(
        "[crowdsec]\napi_url = \"http://h/\"\napi_key_file = \"bouncer.key\"\nupdate_frequency = \"500ms\"\n",
        4,
        20,
        "at least 1s",
    );
    has(
        "[crowdsec]\napi_url = \"http://h/\"\ncredentials_file = \"no-password.yaml\"\n",
        3,
        21,
        "needs `login:` and `password:`",
    );
    has(
        "[crowdsec]\napi_url = \"http://h/\"\ncredentials_file = \"machine.yaml\"\npush_jails = [\"nosuch\"]\n",
        4,
        16,
        "no jail `nosuch`",
    );
    has(
        "[crowdsec]\napi_url = \"http://h/\"\napi_key_file = \"bouncer.key\"\npush_jails = [\"sshd\"]\n",
        4,
        1,
        "needs `credentials_file`",
    );
    has(
        "[crowdsec]\napi_url = \"http://h/\"\ncredentials_file = \"machine.yaml\"\norigins = [\"cscli\"]\n",
        4,
        1,
        "needs `api_key_file`",
    );
    has("[crowdsec]\napi_url = \"http://h/\"\napi_key = \"abc\"\n", 3, 1, "unknown key `api_key`");
    has("[crowdsecs]\n", 1, 2, "did you mean [crowdsec]");
}

#[test]
fn credentials_files_as_cscli_writes_them() {
    let (url, login, pw) = credentials("url: http://127.0.0.1:8080\nlogin: pbx1\npassword: abc\n").unwrap();
    assert_eq!((url.as_deref(), login.as_str(), pw.as_str()), (Some("http://127.0.0.1:8080"), "pbx1", "abc"));
    let (url, login, pw) =
        credentials("# written by hand\r\nlogin: 'it''s'\r\npassword: \"a \\\"b\\\"\" # note\r\n").unwrap();
    assert_eq!((url, login.as_str(), pw.as_str()), (None, "it's", "a \"b\""));
    let (_, _, pw) = credentials("login: a\npassword: x # comment\nextra:\n  nested: 1\n").unwrap();
    assert_eq!(pw, "x");
    assert!(credentials("login: a\n").is_err());
    assert!(credentials("login: a\npassword: ''\n").is_err());
    assert!(credentials("just text\n").unwrap_err().contains("line 1"));
    assert!(credentials("login: 'a\npassword: b\n").is_err(), "an unclosed quote");
}
