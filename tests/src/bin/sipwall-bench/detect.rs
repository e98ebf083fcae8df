//! Detector throughput: one log of Asterisk and sshd lines (failures, successes and the noise
//! around them, as a busy PBX writes them), judged by `fail2ban-regex` with fail2ban's own
//! asterisk and sshd filters and by `sipwall test-log` with the built-in detectors, each pinned
//! to the same single CPU, in one run.

use std::{
    io::Write,
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use sipwall_tests::daemon::sipwall_bin;

use crate::util::{human, median, online_cpus, Rng};

/// Runs of `sipwall test-log` per filter; the median is reported.
const SIPWALL_RUNS: usize = 5;

fn ip(r: &mut Rng) -> String {
    let a = (r.next() as u32) | 0x0100_0000;
    format!("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)
}

const USERS: [&str; 8] = ["root", "admin", "test", "oracle", "ubuntu", "git", "pi", "user1"];

fn sshd_line(r: &mut Rng, t: &str) -> String {
    let (pid, port, src, user) = (r.below(60000) + 1000, r.below(60000) + 1024, ip(r), USERS[r.below(8) as usize]);
    let msg = match r.below(12) {
        0 | 1 => format!("Failed password for {user} from {src} port {port} ssh2"),
        2 => format!("Failed password for invalid user {user} from {src} port {port} ssh2"),
        3 => format!("Invalid user {user} from {src} port {port}"),
        4 => format!("Connection closed by authenticating user {user} {src} port {port} [preauth]"),
        5 => format!("Disconnected from invalid user {user} {src} port {port} [preauth]"),
        6 => format!("Accepted publickey for git from {src} port {port} ssh2: ED25519 SHA256:AbCdEf0123456789"),
        7 => format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={src}  user={user}"),
        8 => format!("Received disconnect from {src} port {port}:11: Bye Bye [preauth]"),
        9 => format!("Connection closed by {src} port {port} [preauth]"),
        10 => format!("error: maximum authentication attempts exceeded for {user} from {src} port {port} ssh2 [preauth]"),
        _ => return format!("{t} pbx CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
    };
    format!("{t} pbx sshd[{pid}]: {msg}")
}

fn asterisk_line(r: &mut Rng, t: &str) -> String {
    let (tid, src, ext) = (r.below(30000) + 1000, ip(r), r.below(900) + 100);
    let body = match r.below(10) {
        0 | 1 => format!("NOTICE[{tid}] chan_sip.c: Registration from '\"{ext}\" <sip:{ext}@{src}>' failed for '{src}:5060' - Wrong password"),
        2 => format!("NOTICE[{tid}] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"{ext}\" <sip:{ext}@{src}>' failed for '{src}:5060' (callid: {:x}) - No matching endpoint found", r.next()),
        3 => format!("NOTICE[{tid}][C-{:08x}] chan_sip.c: Call from '' ({src}:5060) to extension '011{ext}' rejected because extension not found in context 'default'.", r.below(1 << 30)),
        4 => format!("SECURITY[{tid}] res_security_log.c: SecurityEvent=\"InvalidAccountID\",EventTV=\"2026-11-22T10:00:00.000+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"{ext}\",SessionID=\"{:x}\",LocalAddress=\"IPV4/UDP/10.0.0.1/5060\",RemoteAddress=\"IPV4/UDP/{src}/5060\"", r.next()),
        5 => format!("VERBOSE[{tid}][C-{:08x}] pbx.c:     -- Executing [{ext}@from-internal:1] Dial(\"PJSIP/{ext}-0000002a\", \"PJSIP/{ext},30\") in new stack", r.below(1 << 30)),
        6 => format!("VERBOSE[{tid}] res_pjsip_registrar.c: Added contact 'sip:{ext}@{src}:5060' to AOR '{ext}' with expiration of 3600 seconds"),
        7 => format!("WARNING[{tid}] res_rtp_asterisk.c: RTP Read too short"),
        8 => format!("NOTICE[{tid}] chan_sip.c: Peer '{ext}' is now Reachable. (12ms / 2000ms)"),
        _ => format!("VERBOSE[{tid}] chan_sip.c: Registered SIP '{ext}' at {src}:5060"),
    };
    format!("[{t}] {body}")
}

fn write_log(path: &Path, n: usize) {
    let mut r = Rng(0x10c5_eed5);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let (h, m, s) = (10 + i / 360_000 % 12, i / 6000 % 60, i / 100 % 60);
        let line = if r.below(5) < 3 {
            sshd_line(&mut r, &format!("Nov 22 {h:02}:{m:02}:{s:02}"))
        } else {
            asterisk_line(&mut r, &format!("2026-11-22 {h:02}:{m:02}:{s:02}"))
        };
        writeln!(f, "{line}").unwrap();
    }
}

/// Runs a command on CPU 1 (CPU 0 if there is one) with its output going to `out` (piped:
/// returned); returns (seconds, stdout, stderr).
fn timed(cmd: &mut Command, out: Stdio) -> (f64, String, String) {
    let cpu = if online_cpus() > 1 { 1 } else { 0 };
    // SAFETY: sched_setaffinity is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
    let t = Instant::now();
    let out = cmd.stdout(out).stderr(Stdio::piped()).output().expect("run");
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    (secs, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// "Lines: N lines, I ignored, M matched, K missed" from fail2ban-regex.
fn f2b_matched(out: &str) -> u64 {
    let l = out.lines().find(|l| l.starts_with("Lines:")).unwrap_or("");
    let at = l.find(" matched").unwrap_or(0);
    l[..at].rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// "Lines: N, matched: M, unmatched: U" from sipwall test-log.
fn sipwall_matched(err: &str) -> u64 {
    let l = err.lines().find(|l| l.starts_with("Lines:")).unwrap_or("");
    l.split("matched: ").nth(1).and_then(|s| s.split(',').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

pub fn run(quick: bool) -> String {
    let n = if quick { 100_000 } else { 1_000_000 };
    let dir = std::env::temp_dir().join(format!("sipwall-bench-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("mixed.log");
    eprintln!("detect: writing {} log lines", human(n));
    write_log(&log, n);
    let have_f2b = Command::new("fail2ban-regex").arg("--version").output().is_ok_and(|o| o.status.success());
    let mut md = format!(
        "{} lines (60 % sshd, 40 % Asterisk: failures, logins, registrations, dialplan noise), one \
         CPU each; `sipwall test-log --json > FILE` (median of {SIPWALL_RUNS} runs) and `fail2ban-regex` \
         (Debian's fail2ban {}, one run).\n\n\
         | filter | fail2ban-regex | sipwall test-log | lines/s (sipwall) | × faster | lines matched (fail2ban-regex) | lines with a finding (sipwall) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        human(n),
        if have_f2b { "1.0.2" } else { "missing" }
    );
    for filter in ["sshd", "asterisk"] {
        eprintln!("detect: {filter}");
        // sipwall takes well under a second: the median of several runs, against one run of
        // fail2ban-regex (about a minute, where one run's noise is small)
        let runs: Vec<(f64, String)> = (0..SIPWALL_RUNS)
            .map(|_| {
                // the findings go to a file, as `sipwall test-log --json LOG > findings.json`
                let findings = std::fs::File::create(dir.join("findings.json")).unwrap();
                let (t, _, err) = timed(
                    Command::new(sipwall_bin()).args(["test-log", "--json", "--jail", filter]).arg(&log),
                    findings.into(),
                );
                (t, err)
            })
            .collect();
        let sw = median(runs.iter().map(|r| r.0).collect());
        let err = &runs[0].1;
        let sw_matched = sipwall_matched(err);
        let (f2b, f2b_m) = if have_f2b {
            let conf = format!("/etc/fail2ban/filter.d/{filter}.conf");
            let (t, out, _) = timed(Command::new("fail2ban-regex").arg(&log).arg(&conf), Stdio::piped());
            (Some(t), f2b_matched(&out))
        } else {
            (None, 0)
        };
        md.push_str(&format!(
            "| {filter} | {} | {:.2} s | {:.2} M | {} | {} | {} |\n",
            f2b.map_or("not installed".into(), |t| format!("{t:.1} s")),
            sw,
            n as f64 / sw / 1e6,
            f2b.map_or("–".into(), |t| format!("{:.0}", t / sw)),
            f2b_m,
            sw_matched
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    md
}
