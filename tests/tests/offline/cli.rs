//! The `sipwall` command line without a daemon: `check`, and what the control commands say when
//! nothing answers.

use std::process::Command;

use sipwall_tests::daemon::sipwall_bin;

fn sipwall(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sipwall_bin()).args(args).output().expect("run sipwall");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn root(p: &str) -> String {
    format!("{}/../{p}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_accepts_the_shipped_rules() {
    for f in ["rules/example.toml", "rules/default.toml"] {
        let (code, out, err) = sipwall(&["check", &root(f)]);
        assert_eq!(code, 0, "{f}: {out}{err}");
        assert!(out.contains(": OK (3 services") || out.contains(": OK (4 services"), "{out}");
    }
}

#[test]
fn check_reports_every_error_with_position_and_exits_78() {
    let dir = std::env::temp_dir().join(format!("sipwall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "[allow]\nsources = [\"10.0.0.0/33\"]\n[services.sip]\nports = [\"5060\"]\nrate = 0\n").unwrap();
    let (code, _, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("bad.toml:2:13: error: prefix length `33`"), "{err}");
    assert!(err.contains("bad.toml:4:11: error: `5060` needs a protocol"), "{err}");
    assert!(err.contains("bad.toml:5:8: error: `rate` must be between 1 and 10000000, found 0"), "{err}");
    assert!(err.contains("3 errors"), "{err}");
    let (code, _, err) = sipwall(&["check", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 78);
    assert!(err.contains("cannot read the rules file"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_names_the_alerts_and_places_their_mistakes() {
    let dir = std::env::temp_dir().join(format!("sipwall-cli-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw"), "secret\n").unwrap();
    let f = dir.join("alerts.toml");
    let alerts = "[webhook]\nurl = \"https://hooks.example.com/x\"\nevents = [\"ban\", \"unban\"]\n\n\
                  [mail]\nto = \"admin@example.com\"\nfrom = \"sipwall@example.com\"\nserver = \"smtp.example.com\"\n\
                  username = \"u\"\npassword_file = \"pw\"\nmode = \"digest\"\n";
    std::fs::write(&f, alerts).unwrap();
    let (code, out, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\nwebhook: https://hooks.example.com/… (ban, unban)\n"), "{out}");
    let mail = "\nmail: to admin@example.com through smtp.example.com:587 with STARTTLS (ban, reban, unban, expire; a digest every 1h)\n";
    assert!(out.contains(mail), "{out}");
    assert!(!out.contains("secret"), "{out}");
    std::fs::write(&f, alerts.replace("smtp.example.com", "smtp.example.com:25\"\ntls = \"none")).unwrap();
    let (code, _, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("alerts.toml:8:11: error: tls = \"none\" sends mail and password in clear"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn control_commands_explain_a_missing_daemon() {
    let (code, _, err) = sipwall(&["--socket", "/nonexistent/sipwall.sock", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the sipwall daemon at /nonexistent/sipwall.sock"), "{err}");
    let (code, _, err) = sipwall(&["ban", "1.2.3.4", "--for", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a duration"), "{err}");
}

#[test]
fn check_names_the_feeds_it_does_not_fetch_and_places_their_mistakes() {
    let dir = std::env::temp_dir().join(format!("sipwall-cli-feeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("feeds.toml");
    let feeds = "[block]\n[[block.feeds]]\nurl = \"https://www.voipbl.org/update/\"\nformat = \"voipbl\"\nrefresh = \"4h\"\n\n\
                 [[block.feeds]]\nname = \"apiban\"\nurl = \"https://apiban.org/api/{key}/banned\"\nformat = \"apiban\"\n\
                 key_file = \"apiban.key\"\n";
    std::fs::write(&f, feeds).unwrap();
    let (code, out, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "\nfeed www.voipbl.org-update: https://www.voipbl.org/update/ (voipbl) every 4h; not fetched by check"
        ),
        "{out}"
    );
    assert!(out.contains("\nfeed apiban: https://apiban.org/api/{key}/banned (apiban) every 1h;"), "{out}");
    std::fs::write(&f, feeds.replace("\"voipbl\"", "\"csv\"").replace("key_file = \"apiban.key\"\n", "")).unwrap();
    let (code, _, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("feeds.toml:4:11: error: unknown feed format `csv`"), "{err}");
    assert!(err.contains("feeds.toml:9:8: error: the feed `url` has `{key}` but the feed has no `key_file`"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_says_what_the_crowdsec_link_does_and_places_its_mistakes() {
    let dir = std::env::temp_dir().join(format!("sipwall-cli-crowdsec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bouncer.key"), "0123456789abcdef0123456789abcdef\n").unwrap();
    // as `cscli machines add sipwall-pbx1 --auto -u URL -f FILE` writes it
    std::fs::write(dir.join("machine.yaml"), "url: http://10.0.0.1:8080\nlogin: sipwall-pbx1\npassword: Zx9qk2\n")
        .unwrap();
    let f = dir.join("crowdsec.toml");
    let rules = "[crowdsec]\napi_key_file = \"bouncer.key\"\ncredentials_file = \"machine.yaml\"\n";
    std::fs::write(&f, rules).unwrap();
    let (code, out, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "\ncrowdsec: http://10.0.0.1:8080/: pulls decisions every 10s (every origin); pushes the bans of every \
             jail as machine sipwall-pbx1\n"
        ),
        "{out}"
    );
    assert!(!out.contains("Zx9qk2") && !out.contains("0123456789abcdef"), "secrets printed:\n{out}");
    std::fs::write(&f, rules.replace("bouncer.key", "missing.key")).unwrap();
    let (code, _, err) = sipwall(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("crowdsec.toml:2:17: error: cannot read api_key_file"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
