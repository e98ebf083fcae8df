//! Every detector on mangled lines: truncated anywhere, multi-byte characters anywhere. A
//! detector may find nothing or a shortened address, but never panics.

use super::{asterisk::Asterisk, sshd, Detector};

const LINES: [&str; 8] = [
    "[2012-02-13 17:21:54] NOTICE[1638] chan_sip.c: Registration from '<sip:301@example.com>' failed for '1.2.3.4' - Wrong password",
    "Nov 4 18:30:40 localhost asterisk[32229]: NOTICE[32257]: chan_sip.c:23417 in handle_request_register: Registration from '<sip:301@example.com>' failed for '192.168.200.100:36998' - Wrong password",
    "[2013-05-13 07:10:53] SECURITY[1204] res_security_log.c: SecurityEvent=\"InvalidAccountID\",EventTV=\"1\",Severity=\"Error\",Service=\"SIP\",EventVersion=\"1\",AccountID=\"0\",SessionID=\"0x7f\",LocalAddress=\"IPV4/UDP/1.2.3.4/5060\",RemoteAddress=\"IPV4/UDP/6.7.8.9/5070\"",
    "[2017-12-14 22:18:00] NOTICE[1943] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:x@4.5.6.7>' failed for '[2001:db8::9]:43678' (callid: U) - No matching endpoint found",
    "<38>1 2019-07-08T17:40:17.954167-04:00 host sshd 55555 - [timeQuality tzKnown=\"1\"] Failed password for root from 192.0.2.1 port 22 ssh2",
    "Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT from 194.117.26.69 port 50273 ssh2",
    "Jun 21 16:47:48 host sshd[9252]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root",
    "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Received disconnect from 192.0.2.9 port 22:3: x: Auth fail [preauth]",
];

fn detectors() -> Vec<Box<dyn Detector>> {
    vec![Box::new(Asterisk), Box::new(sshd::Sshd::new(sshd::Mode::Aggressive))]
}

/// The addresses the sample lines hold.
fn known(h: std::net::IpAddr) -> bool {
    let s = h.to_string();
    LINES.iter().any(|l| l.contains(&s))
}

#[test]
fn mangled_lines_never_panic() {
    let mut out = Vec::new();
    for line in LINES {
        let cuts: Vec<usize> = line.char_indices().map(|(i, _)| i).chain([line.len()]).collect();
        for &i in &cuts {
            for d in &mut detectors() {
                d.feed(&line[..i], &mut out);
                d.feed(&line[i..], &mut out);
                // characters that cannot be part of an address: whatever is found was in the line
                for insert in ["Ж", "€", "\u{1F600}", "\0", "'", "\"", "]", "[", " "] {
                    out.clear();
                    d.feed(&format!("{}{insert}{}", &line[..i], &line[i..]), &mut out);
                    for ev in &out {
                        if let Some(h) = ev.host() {
                            assert!(known(h), "{h} read from {:?}", format!("{}{insert}{}", &line[..i], &line[i..]));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn substring_searches_agree_with_std() {
    // haystacks of every length around the word and `NEAR` boundaries, needles that occur once,
    // several times, overlapping, or not at all
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"ab: '\xc3\xa9";
    for _ in 0..20_000 {
        let len = (next() % 48) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| alphabet[(next() % 7) as usize]).collect();
        let h = String::from_utf8_lossy(&bytes).into_owned();
        for pat in ["a", " ", "'", "ab", " a", "a:", "' '", "ba a", "  ", "é", "zz"] {
            assert_eq!(super::find(&h, pat), h.find(pat), "find {pat:?} in {h:?}");
            assert_eq!(super::rfind(&h, pat), h.rfind(pat), "rfind {pat:?} in {h:?}");
        }
        assert_eq!(super::split_space(&h), h.split_once(' '), "{h:?}");
        assert_eq!(super::rsplit_space(&h), h.rsplit_once(' '), "{h:?}");
    }
}
