//! Asterisk's configuration in the rules: its ports fill the services that leave theirs out,
//! its trunks join the allow list, and what it cannot use is a warning.

use std::{net::IpAddr, path::PathBuf};

use crate::rules::{discovery, services::PortsFrom, Rules};

/// An Asterisk configuration directory: pjsip on 5080/udp with an identify section naming an
/// address and a name, chan_sip on 5070, RTP 16384-32767. Written once per test process.
fn asterisk_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sipwall-discovery-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("pjsip.conf"),
            "[transport-udp]\ntype=transport\nprotocol=udp\nbind=0.0.0.0:5080\n\n\
             [itsp]\ntype=identify\nendpoint=itsp\nmatch=203.0.113.5\nmatch=sip.itsp.example\n\n\
             [backup]\ntype=identify\nendpoint=backup\nmatch=nowhere.example\n",
        )
        .unwrap();
        std::fs::write(dir.join("sip.conf"), "[general]\nudpbindaddr=0.0.0.0:5070\n").unwrap();
        std::fs::write(dir.join("rtp.conf"), "[general]\nrtpstart=16384\nrtpend=32767\n").unwrap();
        dir
    })
    .clone()
}

fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    match name {
        "sip.itsp.example" => Ok(vec!["198.51.100.20".parse().unwrap(), "198.51.100.21".parse().unwrap()]),
        _ => Err("no such host".into()),
    }
}

fn discovered(services: &str) -> (Rules, Vec<String>) {
    let text = format!("[asterisk]\nconfig_dir = {:?}\n\n{services}", asterisk_dir().display().to_string());
    let (mut rules, _) = Rules::parse("t.toml", &text, std::path::Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    let diags = discovery::apply(&mut rules, &resolve).into_iter().map(|d| d.to_string()).collect();
    (rules, diags)
}

fn ports(r: &Rules, svc: &str) -> Vec<String> {
    r.services.iter().find(|s| s.name == svc).unwrap().ports.iter().map(ToString::to_string).collect()
}

#[test]
fn services_without_ports_take_asterisks_and_trunks_are_allow_listed() {
    let (r, diags) = discovered("[services.sip]\nrate = 50\n\n[services.rtp]\n\n[services.iax]\n");
    assert_eq!(ports(&r, "sip"), ["5080/udp", "5070/udp"]);
    assert!(
        matches!(&r.services[0].ports_from, PortsFrom::Asterisk(f) if f[0].contains("pjsip.conf:4")),
        "{:?}",
        r.services[0]
    );
    assert_eq!(ports(&r, "rtp"), ["16384-32767/udp"]);
    assert_eq!(ports(&r, "iax"), ["4569/udp"], "no iax.conf: the standard port");
    let allowed: Vec<String> = r.allowed().map(ToString::to_string).collect();
    for t in ["203.0.113.5/32", "198.51.100.20/32", "198.51.100.21/32"] {
        assert!(allowed.iter().any(|a| a == t), "{t} not in {allowed:?}");
    }
    let by = r.allowed_by(&"198.51.100.21/32".parse().unwrap()).unwrap();
    assert!(by.contains("trunk itsp (pjsip identify, pjsip.conf:"), "{by}");
    assert!(diags.iter().any(|d| d.contains("nowhere.example")), "a name that does not resolve warns: {diags:?}");
    let text = discovery::describe(&r).join("\n");
    assert!(text.contains("trunk itsp (pjsip identify, pjsip.conf:"), "{text}");
    assert!(text.contains("service sip takes 5080/udp"), "{text}");
    assert!(text.contains("service iax keeps its standard ports (4569/udp)"), "{text}");
    assert!(r.watched_files().iter().any(|f| f.ends_with("pjsip.conf")), "a change of pjsip.conf reloads");
}

#[test]
fn written_ports_win_and_a_taken_port_is_left_out() {
    let (r, diags) = discovered(
        "[services.sip]\nports = [\"5060/udp\"]\n\n[services.rtp]\n\n[services.media]\nports = [\"30000/udp\"]\n",
    );
    assert_eq!(ports(&r, "sip"), ["5060/udp"], "written by hand: kept");
    assert_eq!(r.services[0].ports_from, PortsFrom::Rules);
    assert_eq!(ports(&r, "rtp"), ["10000-20000/udp"], "its range overlaps `media`: the standard one stays");
    assert!(diags.iter().any(|d| d.contains("service `media` has that port")), "{diags:?}");
}

#[test]
fn discovery_off_or_no_directory_changes_nothing() {
    let text = format!(
        "[asterisk]\nconfig_dir = {:?}\ndiscover = false\n\n[services.sip]\n",
        asterisk_dir().display().to_string()
    );
    let (mut r, _) = Rules::parse("t.toml", &text, std::path::Path::new("/")).unwrap();
    assert!(discovery::apply(&mut r, &resolve).is_empty());
    assert!(r.discovered.is_none() && r.trunks.is_empty());
    assert_eq!(ports(&r, "sip"), ["5060/udp", "5060/tcp", "5061/tcp"]);
    assert!(discovery::describe(&r)[0].contains("not read (discover = false)"));
    let err = Rules::parse("t.toml", "[asterisk]\nconfig_dir = \"/nonexistent/asterisk\"\n", std::path::Path::new("/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.toml:2:15: error: config_dir /nonexistent/asterisk is not a directory"), "{err}");
}

#[test]
fn a_name_that_stops_resolving_keeps_its_addresses_and_wide_trunks_are_refused() {
    let (before, _) = discovered("[services.sip]\n");
    let text = format!("[asterisk]\nconfig_dir = {:?}\n\n[services.sip]\n", asterisk_dir().display().to_string());
    let (mut now, _) = Rules::parse("t.toml", &text, std::path::Path::new("/")).unwrap();
    // the resolver is down at this reload
    discovery::apply(&mut now, &|_: &str| -> Result<Vec<IpAddr>, String> { Err("timed out".into()) });
    assert!(!now.allowed().any(|n| n.to_string() == "198.51.100.20/32"));
    now.keep_good_lists(&before);
    let allowed: Vec<String> = now.allowed().map(ToString::to_string).collect();
    assert!(allowed.contains(&"198.51.100.20/32".to_owned()), "{allowed:?}");
    assert!(now.allowed_by(&"198.51.100.21/32".parse().unwrap()).unwrap().contains("(kept)"));

    let wide = std::env::temp_dir().join(format!("sipwall-discovery-wide-{}", std::process::id()));
    std::fs::create_dir_all(&wide).unwrap();
    std::fs::write(
        wide.join("pjsip.conf"),
        "[any]\ntype=identify\nendpoint=x\nmatch=0.0.0.0/0\nmatch=203.0.113.0/24\n",
    )
    .unwrap();
    let text = format!("[asterisk]\nconfig_dir = {:?}\n", wide.display().to_string());
    let (mut r, _) = Rules::parse("t.toml", &text, std::path::Path::new("/")).unwrap();
    let diags: Vec<String> = discovery::apply(&mut r, &resolve).iter().map(ToString::to_string).collect();
    let allowed: Vec<String> = r.allowed().map(ToString::to_string).collect();
    assert!(
        !allowed.contains(&"0.0.0.0/0".to_owned()) && allowed.contains(&"203.0.113.0/24".to_owned()),
        "{allowed:?}"
    );
    assert!(diags.iter().any(|d| d.contains("covers 0.0.0.0/0, wider than a /16")), "{diags:?}");
    std::fs::remove_dir_all(wide).unwrap();
}
