//! The store against real SQLite files in a temporary directory: round trips, write groups,
//! and recovery from a corrupt or unwritable file.

use std::{os::unix::fs::PermissionsExt, path::Path};

use ipnet::IpNet;
use rusqlite::Connection;

use super::{HistoryEntry, Opened, Store, DB_FILE};
use crate::{datapath::bans::Ban, detection::jail::Jails};

fn ban(t: &str, exp: Option<u64>) -> Ban {
    Ban {
        target: t.parse().unwrap(),
        expires_unix_ms: exp,
        created_unix_ms: 5,
        reason: "r".into(),
        source: "manual".into(),
    }
}

#[test]
fn bans_round_trip_and_survive_reopening() {
    let dir = std::env::temp_dir().join(format!("sipwall-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let s = Store::open(&dir).unwrap();
        s.put_ban(&ban("198.51.100.1/32", Some(1000))).unwrap();
        s.put_ban(&ban("2001:db8::/64", None)).unwrap();
        s.put_ban(&ban("198.51.100.1/32", Some(2000))).unwrap();
        assert!(s.delete_ban(&"2001:db8::/64".parse().unwrap()).unwrap());
        assert!(!s.delete_ban(&"2001:db8::/64".parse().unwrap()).unwrap());
    }
    let mut s = Store::open(&dir).unwrap();
    let (bans, bad) = s.load_bans().unwrap();
    assert_eq!((bans, bad), (vec![ban("198.51.100.1/32", Some(2000))], 0));
    s.replace_all([ban("10.0.0.0/8", None)].iter()).unwrap();
    assert_eq!(s.load_bans().unwrap().0, vec![ban("10.0.0.0/8", None)]);
    let h = |jail: &str, at: u64| HistoryEntry {
        target: "198.51.100.1/32".parse().unwrap(),
        jail: jail.into(),
        created_unix_ms: at,
        expires_unix_ms: Some(at + 1000),
        failures: 3,
        earlier: 0,
        reason: "r".into(),
        lines: vec!["a line".into()],
        users: vec![],
    };
    for (j, at) in [("asterisk", 10), ("sshd", 20), ("asterisk", 30)] {
        s.add_history(&h(j, at)).unwrap();
    }
    let t = "198.51.100.1/32".parse().unwrap();
    assert_eq!(s.count_history(&t, Jails::Only("asterisk"), 0).unwrap(), 2);

    assert_eq!(s.count_history(&t, Jails::Others("asterisk"), 0).unwrap(), 1);

    assert_eq!(s.count_history(&t, Jails::All, 15).unwrap(), 2);
    let newest = s.history(&t, 2).unwrap();
    assert_eq!(newest, vec![h("asterisk", 30), h("sshd", 20)]);
    assert_eq!(s.purge_history(25).unwrap(), 2);
    s.set_settings("service.", &[("sip".into(), "1".into()), ("ssh".into(), "2".into())]).unwrap();
    s.set_settings("link.", &[("eth0".into(), "native".into())]).unwrap();
    s.set_settings("service.", &[("sip".into(), "3".into())]).unwrap();
    assert_eq!(s.settings("service.").unwrap(), vec![("sip".to_owned(), "3".to_owned())]);
    assert_eq!(s.settings("link.").unwrap(), vec![("eth0".to_owned(), "native".to_owned())]);
    assert_eq!(s.count_history(&t, Jails::All, 0).unwrap(), 1);
    s.add_history(&h(crate::detection::jail::MANUAL, 40)).unwrap();
    s.add_history(&h("sshd", 50)).unwrap();
    assert_eq!(s.count_history(&t, Jails::Others("asterisk"), 0).unwrap(), 1, "by hand: not counted");
    assert_eq!(s.count_history(&t, Jails::All, 0).unwrap(), 3);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_group_of_writes_reaches_the_disk_at_its_commit_and_reads_see_it_before() {
    let dir = std::env::temp_dir().join(format!("sipwall-store-group-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut s = Store::open(&dir).unwrap();
    // another process reading the file, as `sipwall` commands do
    let other = || -> i64 {
        let c = Connection::open(dir.join(DB_FILE)).unwrap();
        c.query_row("SELECT COUNT(*) FROM bans", [], |r| r.get(0)).unwrap()
    };
    s.commit().unwrap();
    s.begin().unwrap();
    s.begin().unwrap();
    for i in 0..100 {
        s.put_ban(&ban(&format!("198.51.100.{i}/32"), None)).unwrap();
    }
    assert!(s.delete_ban(&"198.51.100.0/32".parse().unwrap()).unwrap());
    let t: IpNet = "198.51.100.7/32".parse().unwrap();
    s.add_history(&HistoryEntry {
        target: t,
        jail: "sshd".into(),
        created_unix_ms: 10,
        expires_unix_ms: None,
        failures: 1,
        earlier: 0,
        reason: "r".into(),
        lines: vec![],
        users: vec![],
    })
    .unwrap();
    assert_eq!(s.count_history(&t, Jails::All, 0).unwrap(), 1, "the group's own writes are read back");
    assert_eq!(s.load_bans().unwrap().0.len(), 99);
    assert_eq!(other(), 0, "nothing of an open group is on disk");
    s.commit().unwrap();
    assert_eq!(other(), 99);
    // writes that need a transaction of their own close the open group first
    s.begin().unwrap();
    s.put_ban(&ban("203.0.113.1/32", None)).unwrap();
    s.set_settings("service.", &[("sip".into(), "1".into())]).unwrap();
    assert_eq!(other(), 100);
    s.begin().unwrap();
    s.replace_all([ban("10.0.0.0/8", None)].iter()).unwrap();
    s.commit().unwrap();
    assert_eq!(Store::open(&dir).unwrap().load_bans().unwrap().0, vec![ban("10.0.0.0/8", None)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn broken(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".broken-"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_corrupt_store_is_moved_aside_and_a_new_one_started() {
    let dir = std::env::temp_dir().join(format!("sipwall-store-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // garbage where the database should be
    std::fs::write(dir.join(DB_FILE), b"this is not an SQLite database, it is garbage".repeat(100)).unwrap();
    let (s, opened) = Store::open_or_recover(&dir).unwrap();
    let Opened::MovedAside { error, kept } = opened else { panic!("{opened:?}") };
    assert!(error.to_string().contains("not a database"), "{error}");
    assert!(std::fs::read(&kept).unwrap().starts_with(b"this is not an SQLite"), "kept as it was");
    s.put_ban(&ban("198.51.100.1/32", None)).unwrap();
    drop(s);
    let (s, opened) = Store::open_or_recover(&dir).unwrap();
    assert!(matches!(opened, Opened::Healthy), "{opened:?}");
    assert_eq!(s.load_bans().unwrap().0.len(), 1);
    drop(s);

    // a valid header over damaged pages: found by the check, not halfway through the bans
    {
        let s = Store::open(&dir).unwrap();
        for i in 0..2000u32 {
            s.put_ban(&ban(&format!("10.{}.{}.1/32", i / 256, i % 256), None)).unwrap();
        }
        s.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
    }
    let mut bytes = std::fs::read(dir.join(DB_FILE)).unwrap();
    let page = 4096;
    assert!(bytes.len() > 4 * page);
    for b in &mut bytes[2 * page..3 * page] {
        *b = 0xA5;
    }
    std::fs::write(dir.join(DB_FILE), &bytes).unwrap();
    let (s, opened) = Store::open_or_recover(&dir).unwrap();
    assert!(matches!(opened, Opened::MovedAside { .. }), "{opened:?}");
    assert_eq!(s.load_bans().unwrap().0.len(), 0);
    assert_eq!(broken(&dir).iter().filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm")).count(), 2);

    // a store that cannot be written at all: in memory, never a failed start
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(dir.join(DB_FILE)).unwrap(); // a directory where the file should be
    std::fs::write(dir.join(DB_FILE).join("x"), b"x").unwrap();
    let mut perms = std::fs::metadata(&dir).unwrap().permissions();
    perms.set_mode(0o500);
    std::fs::set_permissions(&dir, perms).unwrap();
    let res = Store::open_or_recover(&dir);
    let mut perms = std::fs::metadata(&dir).unwrap().permissions();
    perms.set_mode(0o700);
    std::fs::set_permissions(&dir, perms).unwrap();
    let (s, opened) = res.unwrap();
    // root may rename in a read-only directory; either way the daemon gets a store
    assert!(matches!(opened, Opened::InMemory { .. } | Opened::MovedAside { .. }), "{opened:?}");
    s.put_ban(&ban("198.51.100.2/32", None)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
