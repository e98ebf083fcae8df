//! Blocklist feeds end to end: `sipwall run` fetches a list from an HTTP server in the lab's
//! host namespace and drops the listed source's frames; with the server gone, a restarted
//! daemon puts the saved list in force before any fetch, and the failures are counted.

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use sipwall_tests::{
    alerts::PYTHON,
    daemon::{DaemonProc, LOG_JAILS_OFF},
    netns::{wait_for, Lab},
    require_root,
    traffic::{frame, send_all, Receiver},
};

const PORT: u16 = 8099;
const LISTED: &str = "192.0.2.99";
const CLEAN: &str = "192.0.2.10";

/// Python's `http.server` serving `dir`, killed when dropped.
struct FeedServer(Child);

impl FeedServer {
    fn start(lab: &Lab, dir: &std::path::Path) -> Self {
        let child = lab
            .cmd(&lab.host, PYTHON)
            .args(["-m", "http.server", &PORT.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let up = wait_for(Duration::from_secs(30), || {
            let probe = format!("import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/drop.txt')");
            lab.cmd(&lab.host, PYTHON).args(["-c", &probe]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        });
        assert!(up, "the feed server did not come up");
        FeedServer(child)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rules() -> String {
    format!(
        "[allow]\nsources = [\"127.0.0.0/8\", \"::1/128\"]\n\n[services.sip]\nports = [\"5060/udp\"]\n\n{LOG_JAILS_OFF}\n\
         [block]\n[[block.feeds]]\nname = \"lab\"\nurl = \"http://127.0.0.1:{PORT}/drop.txt\"\nformat = \"plain\"\n\
         refresh = \"1m\"\n"
    )
}

/// Sends a burst from the listed and from a clean source; how many of each arrived.
fn burst(lab: &Lab, rx: &Receiver, round: &str) -> (usize, usize) {
    let (listed, clean) = (format!("listed-{round}"), format!("clean-{round}"));
    let mut frames = Vec::new();
    for i in 0..50 {
        frames.push(frame(lab, LISTED, 5060, false, &listed, i));
        frames.push(frame(lab, CLEAN, 5060, false, &clean, i));
    }
    send_all(lab, frames);
    rx.settle();
    (rx.count(&listed), rx.count(&clean))
}

#[test]
fn a_fetched_list_drops_its_sources_and_its_saved_copy_outlives_the_server() {
    require_root!();
    let lab = Lab::new();
    let www = lab.scratch_dir("feed-www");
    std::fs::write(www.join("drop.txt"), format!("# lab list\n{LISTED}\n198.51.100.0/24\nnot-an-address\n")).unwrap();
    let server = FeedServer::start(&lab, &www);
    let mut d = DaemonProc::start(&lab, &rules());
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_feed_entries", "feed=\"lab\"") == 2),
        "{}",
        d.log_text()
    );
    assert_eq!(d.metric("sipwall_feed_lines_skipped_total", "feed=\"lab\""), 1);
    assert!(d.metric("sipwall_feed_last_success_timestamp_seconds", "feed=\"lab\"") > 1_700_000_000);
    assert!(d.dir.join("state/feeds/lab").exists(), "the list is saved");
    let rx = Receiver::start(&lab);
    let (listed, clean) = burst(&lab, &rx, "fetched");
    assert_eq!(listed, 0, "a listed source's frames are dropped\n{}", d.log_text());
    assert!(clean > 40, "a clean source's frames pass: {clean} of 50");

    // the server goes away: a restarted daemon enforces the saved list, and counts the failure
    d.stop();
    drop(server);
    d.spawn(&lab);
    assert!(d.log_text().contains("feed lab: its saved list of 2 networks applies"), "{}", d.log_text());
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_feed_failures_total", "reason=\"network\"") >= 1),
        "{}",
        d.log_text()
    );
    assert_eq!(d.metric("sipwall_feed_entries", "feed=\"lab\""), 2);
    let (listed, clean) = burst(&lab, &rx, "saved");
    assert_eq!(listed, 0, "the saved list stays in force while the feed fails\n{}", d.log_text());
    assert!(clean > 40, "{clean} of 50");
}

#[test]
fn a_reload_starts_a_new_feed_and_a_feed_taken_out_takes_its_list_with_it() {
    require_root!();
    let lab = Lab::new();
    let www = lab.scratch_dir("feed-www2");
    std::fs::write(www.join("drop.txt"), format!("{LISTED}\n")).unwrap();
    std::fs::write(www.join("more.json"), r#"{"ips": ["192.0.2.20"]}"#).unwrap();
    let _server = FeedServer::start(&lab, &www);
    let mut d = DaemonProc::start(&lab, &rules());
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_feed_entries", "feed=\"lab\"") == 1),
        "{}",
        d.log_text()
    );
    let rx = Receiver::start(&lab);
    assert_eq!(burst(&lab, &rx, "one").0, 0, "{}", d.log_text());

    // a second feed added by a reload is fetched at once
    let second = format!(
        "\n[[block.feeds]]\nname = \"more\"\nurl = \"http://127.0.0.1:{PORT}/more.json\"\nformat = \"json\"\nrefresh = \"1h\"\n"
    );
    std::fs::write(&d.config, format!("{}{second}", rules())).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_feed_entries", "feed=\"more\"") == 1),
        "{}",
        d.log_text()
    );
    let mut frames = Vec::new();
    for i in 0..50 {
        frames.push(frame(&lab, "192.0.2.20", 5060, false, "more", i));
    }
    send_all(&lab, frames);
    rx.settle();
    assert_eq!(rx.count("more"), 0, "the second feed's source is dropped\n{}", d.log_text());
    assert_eq!(burst(&lab, &rx, "two").0, 0, "the first feed's list stays through the reload");

    // the first feed taken out of the rules: its list goes, the other stays
    let only_second = rules()
        .replace("[[block.feeds]]\nname = \"lab\"", "[[block.feeds]]\nname = \"gone\"")
        .replace(&format!("url = \"http://127.0.0.1:{PORT}/drop.txt\"\nformat = \"plain\"\nrefresh = \"1m\"\n"), "");
    let only_second = only_second.replace("[block]\n[[block.feeds]]\nname = \"gone\"\n", "[block]\n");
    std::fs::write(&d.config, format!("{only_second}{second}")).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || d.metric("sipwall_rules_reloads_total", "result=\"applied\"") == 2),
        "{}",
        d.log_text()
    );
    let (listed, clean) = burst(&lab, &rx, "three");
    assert!(listed > 40, "a feed taken out lifts its blocks: {listed} of 50\n{}", d.log_text());
    assert!(clean > 40, "{clean} of 50");
    assert!(
        wait_for(Duration::from_secs(60), || !d.metrics().contains("sipwall_feed_entries{feed=\"lab\"}")),
        "the stopped feed's gauge goes: {}",
        d.metrics()
    );
    assert_eq!(d.metric("sipwall_feed_entries", "feed=\"more\""), 1);
    d.stop();
}
