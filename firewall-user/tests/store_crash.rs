//! The ban store survives being killed in the middle of writing: a child process writes bans
//! and their history as fast as it can and is killed with SIGKILL in the middle of a write; the
//! database must open, pass SQLite's integrity check, and hold every ban the child saw saved.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sipwall::{
    datapath::bans::Ban,
    detection::jail::Jails,
    store::{HistoryEntry, Store},
};

const CHILD_ENV: &str = "SIPWALL_STORE_CRASH_DIR";

fn ban(i: u32) -> Ban {
    Ban {
        target: format!("{}/32", std::net::Ipv4Addr::from(0x0a00_0000 + i)).parse().unwrap(),
        expires_unix_ms: Some(u64::from(i) + 1_000_000),
        created_unix_ms: u64::from(i),
        reason: "crash test".into(),
        source: "test".into(),
    }
}

/// Runs in the child process: saves bans one by one and reports each once it is saved.
#[test]
#[ignore = "the writer process of store_survives_sigkill_during_writes"]
fn writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let start: u32 = std::env::var("SIPWALL_STORE_CRASH_START").unwrap().parse().unwrap();
    for i in start.. {
        let b = ban(i);
        store.put_ban(&b).unwrap();
        store
            .add_history(&HistoryEntry {
                target: b.target,
                jail: "test".into(),
                created_unix_ms: b.created_unix_ms,
                expires_unix_ms: b.expires_unix_ms,
                failures: 3,
                earlier: 0,
                reason: b.reason.clone(),
                lines: vec!["x".repeat(200); 3],
                users: vec![],
            })
            .unwrap();
        println!("saved {i}");
    }
}

#[test]
fn store_survives_sigkill_during_writes() {
    let dir = std::env::temp_dir().join(format!("sipwall-store-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().unwrap();
    let mut next = 0u32;
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "writer", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &dir)
            .env("SIPWALL_STORE_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // let it save a varying number of bans, then kill it while it writes the next one;
        // counted in bans, not in time, so a slow machine changes nothing but the duration
        let target = next + 5 + (round * 23 % 40) as u32;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut saved = None;
        while saved.is_none_or(|s| s < target) {
            assert!(Instant::now() < deadline, "round {round}: the writer saved nothing up to {target} in 120 s");
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(n) = l.strip_prefix("saved ") {
                        saved = Some(n.parse::<u32>().unwrap());
                    }
                }
                other => panic!("round {round}: the writer stopped before saving ban {target}: {other:?}"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let saved = saved.expect("the loop above ends only once a ban was saved");

        let conn = rusqlite::Connection::open(dir.join(sipwall::store::DB_FILE)).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(conn);
        let store = Store::open(&dir).unwrap();
        let (bans, bad) = store.load_bans().unwrap();
        assert_eq!(bad, 0);
        let have: std::collections::HashSet<_> = bans.iter().map(|b| b.target).collect();
        for i in 0..=saved {
            assert!(have.contains(&ban(i).target), "round {round}: ban {i} was reported saved but is gone");
        }
        assert!(store.count_history(&ban(saved).target, Jails::All, 0).unwrap() >= 1);
        next = saved + 1;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
