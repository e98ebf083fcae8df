//! Log injection, detectors and jails together: lines in Asterisk's and sshd's formats whose
//! attacker-controlled fields (From, Contact, display names, call ids, account and session ids,
//! user names) carry another address: one chosen by the attacker, this host's own, an
//! allow-listed office or trunk. With `maxretry = 1` every failure that counts is a ban: only the
//! real source may ever be banned. Every failure counts here as if its source had proved itself
//! on the wire: what is tested is which address a line names, not its proof.

use std::{collections::BTreeSet, net::IpAddr};

use ipnet::IpNet;
use sipwall::{
    daemon::iface::local_addresses,
    detection::detect::{asterisk::Asterisk, sshd, Detector, Event, Proof},
    detection::jail::{Engine, NoHistory, Outcome},
    rules::jails::{builtin, Detection},
};

const ATTACKER: &str = "203.0.113.66";
const VICTIM: &str = "198.51.100.20";
const TRUNK: &str = "51.5.6.7";
const OFFICE: &str = "188.10.11.12";

/// Every address an attacker would like to see banned, written into its own fields.
fn targets() -> Vec<String> {
    let own =
        local_addresses().into_iter().map(|n| n.addr().to_string()).filter(|a| a.contains('.')).collect::<Vec<_>>();
    [VICTIM, TRUNK, OFFICE, "127.0.0.1"].iter().map(|s| s.to_string()).chain(own).collect()
}

fn asterisk_lines(src: &str, t: &str) -> Vec<String> {
    vec![
        format!("[2026-11-22 10:00:00] NOTICE[1638] chan_sip.c: Registration from '\"{t}\" <sip:100@{t}>' failed for '{src}:5060' - Wrong password"),
        format!("[2026-11-22 10:00:00] NOTICE[1638] chan_sip.c: Registration from '<sip:x' failed for '{t}' - Wrong password@{t}>' failed for '{src}' - Wrong password"),
        format!("[2026-11-22 10:00:00] NOTICE[19388] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"{t}\" <sip:{t}@{t}>' failed for '{src}:5060' (callid: {t}) - No matching endpoint found"),
        format!("[2026-11-22 10:00:00] NOTICE[19388] res_pjsip/pjsip_distributor.c: Request from '<sip:a@{t}>' failed for '{src}:5060' (callid: z' failed for '{t}:5060' (callid: q) - Failed to authenticate"),
        format!("[2026-11-22 10:00:00] NOTICE[436][C-00000fa9] chan_sip.c: Call from '{t} ({t}:5060) to extension' ({src}:10836) to extension '011' rejected because extension not found in context 'default'."),
        format!("[2026-11-22 10:00:00] SECURITY[6988] res_security_log.c: SecurityEvent=\"InvalidAccountID\",EventTV=\"x\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"{t}\\\",RemoteAddress=\\\"IPV4/UDP/{t}/5060\",SessionID=\"\",RemoteAddress=\"IPV4/UDP/{t}/1\"\",LocalAddress=\"IPV4/UDP/127.0.0.1/5060\",RemoteAddress=\"IPV4/UDP/{src}/5061\""),
        format!("[2026-11-22 10:00:00] SECURITY[4583] res_security_log.c: SecurityEvent=\"ChallengeResponseFailed\",EventTV=\"x\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"{t}\",SessionID=\"{t}\",LocalAddress=\"IPV4/UDP/1.2.3.4/5060\",RemoteAddress=\"IPV4/UDP/{src}/5060\",Challenge=\"c\",Response=\"\",RemoteAddress=\"IPV4/UDP/{t}/1\",ExpectedResponse=\"\""),
        format!("[2026-11-22 10:00:00] WARNING[8447][C-00000244] Ext. s: \"Rejecting unknown SIP connection from {src}:5060\" from {t}"),
        format!("[2026-11-22 10:00:00] NOTICE[1638] chan_sip.c: Peer '{t}' is now Reachable. Registration from '<sip:x@{t}>' failed for '{t}' - Wrong password"),
    ]
}

fn sshd_lines(src: &str, t: &str, pid: u32) -> Vec<String> {
    vec![
        format!("Nov 22 10:00:00 pbx sshd[{pid}]: Failed password for invalid user from {t} port 22 ssh2 from {src} port 4711 ssh2"),
        format!("Nov 22 10:00:00 pbx sshd[{pid}]: Invalid user {t} from {src} port 4711"),
        format!("Nov 22 10:00:00 pbx sshd[{pid}]: Failed password for root from {src} port 4711 ssh2: from {t}"),
        format!("Nov 22 10:00:00 pbx sshd[{pid}]: Failed password for invalid user x from {t} port 1 ssh2 from {src} port 4711 ssh2"),
        format!("Nov 22 10:00:00 pbx sshd[{pid}]: error: PAM: Authentication failure for {t} from {src}"),
    ]
}

/// Feeds `lines` through `d` and a jail that bans on the first failure; returns who was banned.
fn banned(d: &mut dyn Detector, lines: &[String], jail: &str) -> BTreeSet<IpAddr> {
    let det = Detection {
        jails: builtin()
            .into_iter()
            .map(|mut j| {
                j.maxretry = 1;
                j
            })
            .collect(),
        ignoreself: true,
        ..Detection::default()
    };
    let mut never: Vec<IpNet> =
        ["51.5.6.0/24", "188.10.11.12/32", "127.0.0.0/8"].iter().map(|s| s.parse().unwrap()).collect();
    never.extend(local_addresses());
    let mut engine = Engine::new(&det, never, 64);
    let j = engine.index(jail).unwrap();
    let mut out = BTreeSet::new();
    let mut events = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        d.feed(l, &mut events);
        for e in events.drain(..) {
            if let Event::Failure(f) = e {
                if let Outcome::Ban(o) =
                    engine.failure(j, f.host, None, Some(l), n as u64 * 1000, &NoHistory, Proof::Proven)
                {
                    out.insert(o.target.addr());
                }
            }
        }
    }
    out
}

#[test]
fn only_the_real_source_is_ever_banned() {
    let attacker: IpAddr = ATTACKER.parse().unwrap();
    for t in targets() {
        let got = banned(&mut Asterisk, &asterisk_lines(ATTACKER, &t), "asterisk");
        assert!(got.iter().all(|a| *a == attacker), "asterisk, {t} in attacker fields: banned {got:?}");
        assert!(got.contains(&attacker), "asterisk: the real source is found despite the noise ({t})");
        let mut s = sshd::Sshd::new(sshd::Mode::Aggressive);
        let got = banned(&mut s, &sshd_lines(ATTACKER, &t, 4242), "sshd");
        assert_eq!(got, BTreeSet::from([attacker]), "sshd, {t} in the user name");
    }
}

#[test]
fn a_real_source_that_is_allow_listed_or_local_is_never_banned() {
    for src in [TRUNK, OFFICE, "127.0.0.1"] {
        // the address in the attacker fields is not the source either: nobody is banned
        let got = banned(&mut Asterisk, &asterisk_lines(src, ATTACKER), "asterisk");
        assert!(got.is_empty(), "source {src}: banned {got:?}");
        let mut s = sshd::Sshd::new(sshd::Mode::Aggressive);
        let got = banned(&mut s, &sshd_lines(src, ATTACKER, 4343), "sshd");
        assert!(got.is_empty(), "source {src}: banned {got:?}");
    }
}
