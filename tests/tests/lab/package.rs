//! The Debian package (`cargo xtask deb`; the test tiers package the debug build and pass it as
//! `SIPWALL_DEB`): it installs with `dpkg -i`, its unit passes `systemd-analyze verify`, the
//! unit's own `ExecStartPre` and `ExecStart` lines run in a lab namespace under the unit's
//! capability bounding set and with no new privileges, the daemon says it is ready the way
//! `Type=notify` expects, bans work there and stay enforced once it stops, and `dpkg --purge`
//! ends that enforcement (its `prerm` detaches the program) and leaves nothing behind.

use std::{
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use sipwall_tests::{
    daemon::DaemonProc,
    netns::{require_tool, Lab},
    require_root,
    traffic::{frame, Flow, Receiver},
    unit::{command_line, Unit},
};

const UNIT: &str = "/lib/systemd/system/sipwall.service";
const BINARY: &str = "/usr/sbin/sipwall";

const RULES: &str = r#"
[services.sip]
ports = ["5060/udp"]

[jails.asterisk]
enabled = false

[jails.sshd]
enabled = false
"#;

/// The package under test, or `None` (skipped loudly; a failure under CI).
fn package() -> Option<PathBuf> {
    match std::env::var_os("SIPWALL_DEB") {
        Some(p) => Some(p.into()),
        None if sipwall_tests::ci() => panic!("SIPWALL_DEB is not set: run the tiers with `cargo xtask test`"),
        None => {
            eprintln!(
                "\n*** SKIPPED the package test: SIPWALL_DEB is not set (`cargo xtask test` builds the package) ***\n"
            );
            None
        }
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "sipwall"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Purges the package however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "sipwall"]).output();
    }
}

#[test]
fn the_package_installs_runs_its_unit_under_its_capabilities_and_purges_cleanly() {
    require_root!();
    let Some(deb) = package() else { return };
    require_tool("dpkg", "dpkg");
    require_tool("setpriv", "util-linux");
    require_tool("systemd-analyze", "systemd");
    assert!(
        !Path::new("/sys/fs/bpf/sipwall").exists(),
        "a sipwall on this machine keeps its program pinned in /sys/fs/bpf/sipwall, which removing the \
         package would detach: `sipwall detach` first"
    );
    assert!(
        !installed(),
        "the sipwall package is installed on this machine; the test installs and purges its own: \
         `dpkg --purge sipwall` first"
    );
    let _purge = Purge;
    run("dpkg", &["-i", deb.to_str().unwrap()]);
    let files: Vec<PathBuf> = run("dpkg", &["-L", "sipwall"]).lines().map(PathBuf::from).collect();
    for want in [
        BINARY,
        "/etc/sipwall/rules.toml",
        "/etc/default/sipwall",
        UNIT,
        "/usr/share/man/man8/sipwall.8.gz",
        "/usr/share/man/man8/sipwall-run.8.gz",
        "/usr/share/bash-completion/completions/sipwall",
        "/usr/share/zsh/vendor-completions/_sipwall",
        "/usr/share/fish/vendor_completions.d/sipwall.fish",
        "/usr/share/sipwall/grafana/sipwall.json",
        "/usr/share/sipwall/prometheus/alerts.yml",
    ] {
        assert!(files.iter().any(|f| f == Path::new(want)) && Path::new(want).exists(), "{want} not installed");
    }
    assert_eq!(
        std::fs::read_to_string("/etc/sipwall/rules.toml").unwrap(),
        include_str!("../../../rules/default.toml"),
        "the conffile is the default rules"
    );
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "sipwall"]);
    assert!(conffiles.contains("/etc/sipwall/rules.toml"), "{conffiles}");
    // the installed manual pages are the ones the unit's Documentation= names
    let verify = Command::new("systemd-analyze").args(["verify", UNIT]).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stderr).into_owned() + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && !said.contains("sipwall"), "systemd-analyze verify {UNIT}:\n{said}");

    let unit = Unit::parse(&std::fs::read_to_string(UNIT).unwrap());
    assert_eq!(unit.one("Service", "Type"), "notify");
    assert_eq!(unit.one("Service", "ExecReload"), "/bin/kill -HUP $MAINPID");
    enforces_under_the_unit_until_purged(&unit, &files);
}

/// After the purge: not installed, none of its files, its directories or its state left.
fn purged(files: &[PathBuf]) {
    assert!(!installed(), "still installed after dpkg --purge");
    for f in files.iter().filter(|f| f.starts_with("/etc") || f.starts_with("/usr/sbin") || f.starts_with("/lib")) {
        assert!(!f.is_file(), "{} left after purge", f.display());
    }
    for dir in ["/etc/sipwall", "/var/lib/sipwall"] {
        assert!(!Path::new(dir).exists(), "{dir} left after purge");
    }
}

/// `ExecStartPre` and `ExecStart` as the unit writes them, in the lab's host namespace under
/// `setpriv` with the unit's bounding set and `NoNewPrivileges=`; what the environment file
/// would say points the daemon at the lab (its interface, rules, state, socket and pins). Once
/// the daemon stopped, the purge's `prerm` must end the enforcement it left.
fn enforces_under_the_unit_until_purged(unit: &Unit, files: &[PathBuf]) {
    let lab = Lab::new();
    let mut d = DaemonProc::prepare(&lab, RULES, &[]);
    let notify_path = d.dir.join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let lab_env = [
        ("SIPWALL_IFACE", lab.host_if.clone()),
        ("SIPWALL_XDP_MODE", "native".to_owned()),
        ("SIPWALL_CONFIG", d.config.to_string_lossy().into_owned()),
        ("SIPWALL_STATE_DIR", d.dir.join("state").to_string_lossy().into_owned()),
        ("SIPWALL_SOCKET", d.socket.to_string_lossy().into_owned()),
        ("SIPWALL_PIN_DIR", d.pin_dir.to_string_lossy().into_owned()),
        ("NOTIFY_SOCKET", notify_path.to_string_lossy().into_owned()),
    ];
    let borrowed: Vec<(&str, &str)> = lab_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = unit.environment(&borrowed);
    let env_list: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(unit.one("Service", "NoNewPrivileges"), "yes");
    let caps = unit.bounding_set();
    assert!(
        !caps.is_empty() && !caps.iter().any(|c| c == "sys_admin"),
        "a bounded set without CAP_SYS_ADMIN: {caps:?}"
    );
    let mut jail = vec![
        "setpriv".to_owned(),
        format!("--bounding-set=-all,{}", caps.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(",")),
        "--inh-caps=-all".to_owned(),
        "--no-new-privs".to_owned(),
        "--".to_owned(),
    ];

    let pre = command_line(unit.one("Service", "ExecStartPre"), &env);
    assert_eq!(pre[..2], [BINARY, "check"], "{pre:?}");
    let out = lab.cmd(&lab.host, &jail[0]).args(&jail[1..]).args(&pre).envs(env_list.clone()).output().unwrap();
    assert!(out.status.success(), "ExecStartPre {pre:?}: {}", String::from_utf8_lossy(&out.stderr));

    let start = command_line(unit.one("Service", "ExecStart"), &env);
    assert_eq!(start, [BINARY, "run"], "every option comes from the environment");
    jail.extend(start);
    d.spawn_command(&lab, &jail, &env_list);
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !said.contains("READY=1") && Instant::now() < deadline {
        let mut buf = [0u8; 512];
        if let Ok(n) = notify.recv(&mut buf) {
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(
        said.contains("READY=1") && said.contains("MAINPID="),
        "no readiness notification: {said:?}\n{}",
        d.log_text()
    );
    assert!(said.contains(&format!("STATUS=enforcing on {}", lab.host_if)), "{said:?}");

    let rx = Receiver::start(&lab);
    let cli = |args: &[&str]| {
        let out = Command::new(BINARY).arg("--socket").arg(&d.socket).args(args).output().unwrap();
        assert!(out.status.success(), "sipwall {args:?}: {}\n{}", String::from_utf8_lossy(&out.stderr), d.log_text());
    };
    cli(&["ban", "192.0.2.99", "--for", "1h"]);
    let (lb, lo) = (lab.clone_for_flow(), lab.clone_for_flow());
    let banned = Flow::start(&lab, 200, move |i| frame(&lb, "192.0.2.99", 5060, false, "banned", i));
    let ok = Flow::start(&lab, 200, move |i| frame(&lo, "192.0.2.10", 5060, false, "ok", i));
    assert!(
        sipwall_tests::netns::wait_for(Duration::from_secs(30), || rx.count("ok") >= 100),
        "legitimate frames pass"
    );
    let status = d.stop();
    assert!(status.success(), "the daemon stopped on SIGTERM: {status}\n{}", d.log_text());
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("STOPPING=1 on SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    // the unit's stop keeps enforcing: the pinned program still drops the banned source
    let stopped = Instant::now();
    let before = rx.count("ok");
    assert!(
        sipwall_tests::netns::wait_for(Duration::from_secs(30), || rx.count("ok") >= before + 100),
        "after the stop"
    );
    let sent = banned.stop();
    assert!(sent > 100, "{sent} banned frames sent");
    rx.settle();
    assert_eq!(rx.count("banned"), 0, "a banned frame passed under the unit's capabilities\n{}", d.log_text());
    assert!(rx.last("ok").is_some_and(|t| t > stopped), "frames flowed after the daemon stopped");
    ok.stop();

    // the administrator's /etc/default/sipwall moved the pins and the socket: removal finds them
    let defaults = format!("SIPWALL_PIN_DIR={}\nSIPWALL_SOCKET={}\n", d.pin_dir.display(), d.socket.display());
    std::fs::write("/etc/default/sipwall", defaults).unwrap();
    let link = || {
        String::from_utf8_lossy(&lab.cmd(&lab.host, "ip").args(["link", "show", &lab.host_if]).output().unwrap().stdout)
            .into_owned()
    };
    assert!(link().contains("xdp"), "attached until the purge: {}", link());
    run("dpkg", &["--purge", "sipwall"]);
    purged(files);
    assert!(!link().contains("xdp"), "the purge detached the program: {}", link());
    let l = lab.clone_for_flow();
    let after = Flow::start(&lab, 200, move |i| frame(&l, "192.0.2.99", 5060, false, "after", i));
    assert!(
        sipwall_tests::netns::wait_for(Duration::from_secs(30), || rx.count("after") >= 10),
        "with the package gone, the banned source reaches the host again"
    );
    after.stop();
}
