//! The log detectors fed arbitrary lines through `Detector::feed`: the built-in Asterisk
//! detector, the built-in sshd detector (modes `normal` and `aggressive`), and fail2ban's own
//! sshd filter (`filter.d/sshd.conf`, `mode = aggressive`) pasted as a custom detector: the
//! most demanding of fail2ban's filters for the custom detector (a `prefregex` with
//! `<F-MLFID>`, `<F-NOFAIL>`, `<F-MLFFORGET>`, `<F-MLFGAINED>`, `<F-ALT_USER>`, lookaheads and
//! conditionals).
//!
//! The input is split into lines at LF and fed in order to one instance of each detector, so
//! the multi-line state (sshd connections, `<F-MLFID>`) is exercised too.
//!
//! Checks: no panic; every address an event names (a failure's source, each candidate of an
//! ambiguous line) is written in the input: in the line itself for the stateless Asterisk
//! detector, in that line or an earlier one for the detectors that keep connections; a host
//! name or user an event names is written there too; an ambiguous event has at least two
//! candidates, addresses and host names counted together, each list sorted and without
//! repeats; a failure stands for at least one attempt.

#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    sync::{Arc, OnceLock},
};

use libfuzzer_sys::fuzz_target;
use sipwall::{
    detection::detect::{
        asterisk::Asterisk,
        custom::{Custom, Filter},
        sshd::{Mode, Sshd},
        Detector, Event,
    },
    rules::Rules,
};

/// fail2ban 1.0.2's `filter.d/sshd.conf` (Debian 12) with `mode = aggressive`, pasted as
/// docs/rules.md says.
const FILTER: &str = r#"
[detectors.f2b-sshd]
daemon = 'sshd'
prefregex = '''^<F-MLFID>%(__prefix_line)s</F-MLFID>%(__pref)s<F-CONTENT>.+</F-CONTENT>$'''
failregex = '''
    %(cmnfailre)s
    <mdre-<mode>>
    %(cfooterre)s
'''
maxlines = 1

[detectors.f2b-sshd.definitions]
__pref = '''(?:(?:error|fatal): (?:PAM: )?)?'''
__suff = '''(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*'''
__on_port_opt = '''(?: (?:port \d+|on \S+)){0,2}'''
__authng_user = '''(?: (?:invalid|authenticating) user <F-USER>\S+|.*?</F-USER>)?'''
__alg_match = '''(?:(?:\w+ (?!found\b)){0,2}\w+)'''
__pam_auth = '''pam_[a-z]+'''
cmnfailre = '''
    ^[aA]uthentication (?:failure|error|failed) for <F-USER>.*</F-USER> from <HOST>( via \S+)?%(__suff)s$
    ^User not known to the underlying authentication module for <F-USER>.*</F-USER> from <HOST>%(__suff)s$
    <cmnfailre-failed-pub-<publickey>>
    ^Failed <cmnfailed> for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>%(__on_port_opt)s(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)
    ^<F-USER>ROOT</F-USER> LOGIN REFUSED FROM <HOST>
    ^[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> from <HOST>%(__suff)s$
    ^User <F-USER>\S+|.*?</F-USER> from <HOST> not allowed because not listed in AllowUsers%(__suff)s$
    ^User <F-USER>\S+|.*?</F-USER> from <HOST> not allowed because listed in DenyUsers%(__suff)s$
    ^User <F-USER>\S+|.*?</F-USER> from <HOST> not allowed because not in any group%(__suff)s$
    ^refused connect from \S+ \(<HOST>\)
    ^Received <F-MLFFORGET>disconnect</F-MLFFORGET> from <HOST>%(__on_port_opt)s:\s*3: .*: Auth fail%(__suff)s$
    ^User <F-USER>\S+|.*?</F-USER> from <HOST> not allowed because a group is listed in DenyGroups%(__suff)s$
    ^User <F-USER>\S+|.*?</F-USER> from <HOST> not allowed because none of user's groups are listed in AllowGroups%(__suff)s$
    ^<F-NOFAIL>%(__pam_auth)s\(sshd:auth\):\s+authentication failure;</F-NOFAIL>(?:\s+(?:(?:logname|e?uid|tty)=\S*)){0,4}\s+ruser=<F-ALT_USER>\S*</F-ALT_USER>\s+rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?%(__suff)s$
    ^maximum authentication attempts exceeded for <F-USER>.*</F-USER> from <HOST>%(__on_port_opt)s(?: ssh\d*)?%(__suff)s$
    ^User <F-USER>\S+|.*?</F-USER> not allowed because account is locked%(__suff)s
    ^<F-MLFFORGET>Disconnecting</F-MLFFORGET>(?: from)?(?: (?:invalid|authenticating)) user <F-USER>\S+</F-USER> <HOST>%(__on_port_opt)s:\s*Change of username or service not allowed:\s*.*\[preauth\]\s*$
    ^Disconnecting: Too many authentication failures(?: for <F-USER>\S+|.*?</F-USER>)?%(__suff)s$
    ^<F-NOFAIL>Received <F-MLFFORGET>disconnect</F-MLFFORGET></F-NOFAIL> from <HOST>%(__on_port_opt)s:\s*11:
    <mdre-<mode>-other>
    ^<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>(?:\s|$)
'''
cmnfailed-any = '''\S+'''
cmnfailed-ignore = '''\b(?!publickey)\S+'''
cmnfailed-invalid = '''<cmnfailed-ignore>'''
cmnfailed-nofail = '''(?:<F-NOFAIL>publickey</F-NOFAIL>|\S+)'''
cmnfailed = '''<cmnfailed-<publickey>>'''
mdre-normal = ''
mdre-normal-other = '''^<F-NOFAIL><F-MLFFORGET>(Connection (?:closed|reset)|Disconnected)</F-MLFFORGET></F-NOFAIL> (?:by|from)%(__authng_user)s <HOST>(?:%(__suff)s|\s*)$'''
mdre-ddos = '''
    ^Did not receive identification string from <HOST>
    ^kex_exchange_identification: (?:read: )?(?:[Cc]lient sent invalid protocol identifier|[Cc]onnection (?:closed by remote host|reset by peer))
    ^Bad protocol version identification '.*' from <HOST>
    ^<F-NOFAIL>SSH: Server;Ltype:</F-NOFAIL> (?:Authname|Version|Kex);Remote: <HOST>-\d+;[A-Z]\w+:
    ^Read from socket failed: Connection <F-MLFFORGET>reset</F-MLFFORGET> by peer
    ^banner exchange: Connection from <HOST><__on_port_opt>: invalid format
'''
mdre-ddos-other = '''
    ^<F-MLFFORGET>(Connection (?:closed|reset)|Disconnected)</F-MLFFORGET> (?:by|from)%(__authng_user)s <HOST>%(__on_port_opt)s\s+\[preauth\]\s*$
    ^<F-NOFAIL><F-MLFFORGET>(Connection (?:closed|reset)|Disconnected)</F-MLFFORGET></F-NOFAIL> (?:by|from)%(__authng_user)s <HOST>(?:%(__on_port_opt)s|\s*)$
'''
mdre-extra = '''
    ^Received <F-MLFFORGET>disconnect</F-MLFFORGET> from <HOST>%(__on_port_opt)s:\s*14: No(?: supported)? authentication methods available
    ^Unable to negotiate with <HOST>%(__on_port_opt)s: no matching <__alg_match> found.
    ^Unable to negotiate a <__alg_match>
    ^no matching <__alg_match> found:
'''
mdre-extra-other = '''^<F-MLFFORGET>Disconnected</F-MLFFORGET>(?: from)?(?: (?:invalid|authenticating)) user <F-USER>\S+|.*?</F-USER> <HOST>%(__on_port_opt)s \[preauth\]\s*$'''
mdre-aggressive = '''
    %(mdre-ddos)s
    %(mdre-extra)s
'''
mdre-aggressive-other = '''%(mdre-ddos-other)s'''
publickey = 'nofail'
cmnfailre-failed-pub-invalid = '''^Failed publickey for invalid user <F-USER>(?P<cond_user>\S+)|(?:(?! from ).)*?</F-USER> from <HOST>%(__on_port_opt)s(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)'''
cmnfailre-failed-pub-any = ''
cmnfailre-failed-pub-nofail = '''<cmnfailre-failed-pub-invalid>'''
cmnfailre-failed-pub-ignore = ''
cfooterre = '''^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>'''
mode = 'aggressive'
"#;

fn filter() -> &'static Arc<Filter> {
    static COMPILED: OnceLock<Arc<Filter>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let (rules, _) = Rules::parse("filters.toml", FILTER, Path::new("/nonexistent"))
            .unwrap_or_else(|e| panic!("the pasted fail2ban filter is rejected:\n{e}"));
        let spec = &rules.detection.detectors["f2b-sshd"];
        Arc::new(Filter::new(spec).expect("the pasted filter compiles"))
    })
}

/// IPv4 in dotted decimal with up to three digits an octet (`030` is 30, as the detectors
/// read logs).
fn lenient_v4(s: &str) -> Option<Ipv4Addr> {
    let mut o = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut o {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *octet = p.parse::<u16>().ok()?.try_into().ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(o))
}

/// Whether `a` is written somewhere in `text`, in any of the forms logs use: dotted decimal
/// (leading zeros allowed), any IPv6 text form, IPv4-mapped IPv6 for an IPv4 address.
fn written(a: IpAddr, text: &str) -> bool {
    if text.contains(&a.to_string()) {
        return true;
    }
    let b = text.as_bytes();
    let is_addr_char = |c: u8| c.is_ascii_hexdigit() || c == b'.' || c == b':';
    // the longest IPv6 text: eight groups of four, or six and an IPv4 address
    const LONGEST: usize = 45;
    for i in 0..b.len() {
        if !is_addr_char(b[i]) {
            continue;
        }
        let mut j = i;
        while j < b.len() && j - i < LONGEST && is_addr_char(b[j]) {
            j += 1;
            let s = &text[i..j];
            let found = match a {
                IpAddr::V4(v4) => {
                    lenient_v4(s) == Some(v4) || s.parse::<Ipv6Addr>().ok().and_then(|x| x.to_ipv4_mapped()) == Some(v4)
                }
                IpAddr::V6(v6) => s.parse::<Ipv6Addr>().ok() == Some(v6),
            };
            if found {
                return true;
            }
        }
    }
    false
}

/// Checks the events a detector pushed for one line against `text`, the text it may have read
/// them from.
fn check(who: &str, events: &[Event], text: &str) {
    for ev in events {
        match ev {
            Event::Failure(f) => {
                assert!(written(f.host, text), "{who}: failure of {} not written in {text:?}: {ev:?}", f.host);
                assert!(f.attempts >= 1, "{who}: {ev:?}");
                if let Some(u) = &f.user {
                    assert!(text.contains(u.as_str()), "{who}: user {u:?} not written in {text:?}: {ev:?}");
                }
            }
            Event::Ambiguous { candidates, names, .. } => {
                assert!(candidates.len() + names.len() >= 2, "{who}: ambiguous with fewer than two candidates: {ev:?}");
                assert!(candidates.is_sorted() && names.is_sorted(), "{who}: candidates not sorted: {ev:?}");
                assert!(
                    candidates.windows(2).all(|w| w[0] != w[1]) && names.windows(2).all(|w| w[0] != w[1]),
                    "{who}: ambiguous with a candidate twice: {ev:?}"
                );
                for c in candidates {
                    assert!(written(*c, text), "{who}: candidate {c} not written in {text:?}: {ev:?}");
                }
                for n in names {
                    assert!(
                        !n.is_empty() && text.contains(n.as_str()),
                        "{who}: name {n:?} not written in {text:?}: {ev:?}"
                    );
                }
            }
            Event::Hostname { name, .. } => {
                assert!(!name.is_empty(), "{who}: empty host name: {ev:?}");
                assert!(text.contains(name.as_str()), "{who}: host name {name:?} not written in {text:?}: {ev:?}");
            }
        }
    }
}

/// A date the custom detector's date detection finds at once: a syslog date, the form of the
/// pasted filter's lines.
const DATE: &str = "Dec  5 06:25:11 ";
const MONTHS: [&str; 12] =
    ["Jan ", "Feb ", "Mar ", "Apr ", "May ", "Jun ", "Jul ", "Aug ", "Sep ", "Oct ", "Nov ", "Dec "];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // fail2ban's date detection tries every date template at every position of a line without a
    // date, which is most of the time an input takes: when the first byte is not a multiple of
    // four, the custom detector gets `DATE` before each line that does not start with a month
    let dated = data.first().is_some_and(|b| b % 4 != 0);
    let mut asterisk = Asterisk;
    let mut sshd = [("sshd normal", Sshd::new(Mode::Normal)), ("sshd aggressive", Sshd::new(Mode::Aggressive))];
    let mut custom = Custom::new(filter().clone());
    let mut out = Vec::new();
    let mut end = 0;
    let mut with_date = String::new();
    for line in text.split_inclusive('\n') {
        end += line.len();
        let line = line.strip_suffix('\n').unwrap_or(line);
        out.clear();
        asterisk.feed(line, &mut out);
        check("asterisk", &out, line);
        // the lines so far: a connection's source may have been named by an earlier line
        let so_far = &text[..end];
        for (who, d) in &mut sshd {
            out.clear();
            d.feed(line, &mut out);
            check(who, &out, so_far);
        }
        out.clear();
        if dated && !MONTHS.iter().any(|m| line.starts_with(m)) {
            with_date.clear();
            with_date.push_str(DATE);
            with_date.push_str(line);
            custom.feed(&with_date, &mut out);
        } else {
            custom.feed(line, &mut out);
        }
        // `DATE` holds no address and ends in a space: what the events name is in the input
        check("fail2ban sshd", &out, so_far);
    }
});
