//! The parser and discovery against small configuration directories, one written per test:
//! Asterisk's syntax corner by corner, every listener and its default, every kind of trunk,
//! and content modelled on the lab's installed Asterisk.

use std::{
    cell::Cell,
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
};

use super::*;

mod installed;
mod listeners;
mod syntax;
mod trunks;

/// A configuration directory for one test, removed when the test ends.
struct Dir(PathBuf);

impl Dir {
    /// Writes `files` (name, content; names may hold subdirectories) into a directory of
    /// this test's own.
    fn new(test: &str, files: &[(&str, &str)]) -> Dir {
        let path = std::env::temp_dir().join(format!("sipwall-asterisk-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        for (name, text) in files {
            let file = path.join(name);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, text).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Reads one file of the directory with [`Config::load`].
    fn load(&self, name: &str) -> Config {
        Config::load(&self.0, name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn discover(&self) -> Discovered {
        discover(&self.0, &resolver)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Names the tests resolve; any other name does not resolve.
fn resolver(name: &str) -> Result<Vec<IpAddr>, String> {
    let ips = |list: &[&str]| Ok(list.iter().map(|a| a.parse().unwrap()).collect());
    match name {
        "sip.provider.example" => ips(&["203.0.113.5", "203.0.113.6"]),
        "proxy.provider.example" => ips(&["203.0.113.20"]),
        "v6.provider.example" => ips(&["2001:db8:5::20"]),
        "pbx.lan.example" => ips(&["192.0.2.10"]),
        "empty.example" => Ok(Vec::new()),
        _ => Err("NXDOMAIN".into()),
    }
}

/// `(key, value, line)` of a section's entries, to compare in one assertion.
fn entries(s: &Section) -> Vec<(&str, &str, usize)> {
    s.entries.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.origin.line)).collect()
}

/// The notes of `level` as displayed.
fn notes(notes: &[Note], level: Level) -> Vec<String> {
    notes.iter().filter(|n| n.level == level).map(Note::to_string).collect()
}

/// Listeners as `(protocol, port, bind, origin)` strings.
fn listeners(d: &Discovered) -> Vec<String> {
    d.listeners
        .iter()
        .map(|l| {
            let at = l.origin.as_ref().map_or("default".to_owned(), Origin::to_string);
            format!("{} {}/{} {} {at}", l.protocol.name(), l.port, l.transport(), l.bind)
        })
        .collect()
}

/// Trunks as `name kind text → nets @ origin` strings.
fn trunks(d: &Discovered) -> Vec<String> {
    d.trunks
        .iter()
        .map(|t| {
            let nets: Vec<String> = t.nets.iter().map(ToString::to_string).collect();
            format!("{} [{}] {} → {} @ {}", t.name, t.kind, t.text, nets.join(" "), t.origin)
        })
        .collect()
}

#[test]
fn a_missing_directory_is_an_error_note() {
    let d = discover(Path::new("/nonexistent/asterisk"), &resolver);
    assert!(d.listeners.is_empty() && d.trunks.is_empty() && d.rtp.is_none());
    assert!(d.has_errors());
    assert!(d.notes[0].message.contains("astetcdir"), "{:?}", d.notes);
}

#[test]
fn each_name_is_resolved_once() {
    let dir = Dir::new(
        "resolve-once",
        &[(
            "pjsip.conf",
            "[itsp]\ntype=identify\nendpoint=itsp\nmatch=sip.provider.example\n\
             [itsp-reg]\ntype=registration\nserver_uri=sip:SIP.provider.example\n",
        )],
    );
    let calls = Cell::new(0);
    let counting = |name: &str| {
        calls.set(calls.get() + 1);
        resolver(name)
    };
    let d = discover(dir.path(), &counting);
    assert_eq!(calls.get(), 1);
    assert_eq!(d.trunks.len(), 2);
    assert_eq!(d.trunks[0].nets, d.trunks[1].nets);
    assert_eq!(d.trunk_nets().len(), 2);
}
