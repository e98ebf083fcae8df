//! CrowdSec without sipwall: a private Local API (no agent, no Central API) and two of Debian's
//! crowdsec-firewall-bouncer (nftables and ipset backends), each in a namespace of its own.
//! Decisions made with cscli reach both bouncers' sets, a deleted one leaves them, and decisions
//! outlive a restart of the LAPI while the bouncers keep pulling.

use std::time::Duration;

use sipwall_tests::{
    crowdsec::{Backend, FirewallBouncer, Lapi},
    netns::wait_for,
    require_root,
};

/// How long a decision may take to reach a bouncer that pulls every second.
const PULL_LIMIT: Duration = Duration::from_secs(30);

/// Waits until `addr` is in (`want`) or out of every bouncer's sets.
fn settle(bouncers: &[&FirewallBouncer], addr: &str, want: bool, lapi: &Lapi) {
    for b in bouncers {
        assert!(
            wait_for(PULL_LIMIT, || b.has(addr) == want),
            "{:?} bouncer: {addr} {} its sets in {PULL_LIMIT:?}; they hold {:?}\nbouncer log:\n{}\nLAPI log:\n{}",
            b.backend,
            if want { "never entered" } else { "never left" },
            b.entries(),
            b.log_text(),
            lapi.log_text()
        );
    }
}

#[test]
fn debian_firewall_bouncer_enforces_cscli_decisions_of_a_private_lapi() {
    require_root!();
    let mut lapi = Lapi::start();
    let nft = FirewallBouncer::start(&lapi, Backend::Nftables);
    let ipset = FirewallBouncer::start(&lapi, Backend::Ipset);
    let both = [&nft, &ipset];

    let log = lapi.log_text();
    assert!(log.contains("CrowdSec Local API listening on 0.0.0.0:8080"), "{log}");
    assert!(log.contains("Communication with CrowdSec Central API disabled from args"), "{log}");
    assert!(log.contains("push and pull to Central API disabled"), "{log}");
    assert!(!log.contains("api.crowdsec.net"), "the Central API was contacted:\n{log}");
    // each bouncer pulled over its own link
    for b in both {
        let addr = lapi.bouncer_address(&b.ns).expect("pulled");
        assert!(addr.starts_with("10.201."), "{:?} bouncer pulled from {addr}", b.backend);
    }

    lapi.cscli(&["decisions", "add", "--ip", "198.51.100.23", "--duration", "1h"]);
    lapi.cscli(&["decisions", "add", "--ip", "2001:db8::23", "--duration", "1h"]);
    settle(&both, "198.51.100.23", true, &lapi);
    settle(&both, "2001:db8::23", true, &lapi);
    assert!(!nft.has("198.51.100.24") && !ipset.has("198.51.100.24"), "only the banned address");

    // a range: the ipset backend (hash:net) holds it whole; 0.0.25's nftables sets have no
    // interval flag, so that backend keeps the range's first address only
    lapi.cscli(&["decisions", "add", "--range", "203.0.113.0/28", "--duration", "1h"]);
    settle(&[&ipset], "203.0.113.5", true, &lapi);
    settle(&[&nft], "203.0.113.0", true, &lapi);
    assert!(ipset.has("203.0.113.15") && !ipset.has("203.0.113.16"), "{:?}", ipset.entries());
    assert!(
        !nft.has("203.0.113.5"),
        "the nftables backend now holds ranges whole ({:?}): the note on Backend::Nftables is out of date",
        nft.entries()
    );

    lapi.cscli(&["decisions", "delete", "--ip", "198.51.100.23"]);
    settle(&both, "198.51.100.23", false, &lapi);
    assert!(ipset.has("203.0.113.5") && ipset.has("2001:db8::23"), "only that decision went");

    // the LAPI goes away: the bouncers keep their sets; back on the same database, the decisions
    // are still there and the bouncers pull new ones again
    lapi.stop();
    assert!(ipset.has("203.0.113.5") && nft.has("2001:db8::23"), "sets outlive the LAPI");
    lapi.restart();
    let decisions = lapi.decisions();
    let listed = |scope: &str, value: &str| decisions.iter().any(|d| d.0 == scope && d.1 == value && d.2 == "ban");
    assert!(listed("Range", "203.0.113.0/28") && listed("Ip", "2001:db8::23"), "{decisions:?}");
    assert!(!listed("Ip", "198.51.100.23"), "a deleted decision came back: {decisions:?}");
    lapi.cscli(&["decisions", "add", "--ip", "192.0.2.77", "--duration", "1h"]);
    settle(&both, "192.0.2.77", true, &lapi);
    assert!(ipset.has("203.0.113.5") && both.iter().all(|b| b.has("2001:db8::23")), "{:?}", ipset.entries());
    assert_eq!(lapi.log_text().matches("CrowdSec Local API listening on").count(), 2);
}
