//! The filters the netfilter benchmark puts on the receiving side, one at a time, each holding
//! the same bans: how each is installed (and how long that takes), what counts its drops, and
//! how it is taken down again. Two rows are references, not filters: the XDP floor (the least
//! any XDP filter costs on this path) and no filter at all.

use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    process::{Command, Output, Stdio},
    time::Instant,
};

use aya::{
    maps::{Array, MapData, PerCpuArray},
    programs::{Xdp, XdpMode},
    Ebpf,
};
use firewall_common::trafficgen;
use sipwall::{datapath::bans::Ban, store::Store};
use sipwall_tests::{
    daemon::{DaemonProc, LOG_JAILS_OFF},
    netns::{in_netns, Lab},
};

use crate::{netfilter::LEGIT, util::human};

/// fail2ban's chain for the benchmark's jail, as its iptables actions name it (`f2b-<name>`).
const F2B_CHAIN: &str = "f2b-sipwall";
/// `add element` statements carry this many bans each.
const NFT_BATCH: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    Sipwall,
    NftInput,
    NftIngress,
    IpsetRaw,
    IptablesChain,
    XdpFloor,
    NoFilter,
}

/// In the order they run and are listed; sipwall first, the others are compared with it.
pub const ALL: [Contender; 7] = [
    Contender::Sipwall,
    Contender::NftInput,
    Contender::NftIngress,
    Contender::IpsetRaw,
    Contender::IptablesChain,
    Contender::XdpFloor,
    Contender::NoFilter,
];

impl Contender {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sipwall => "sipwall (XDP, native on veth)",
            Self::NftInput => "nftables set, `inet filter input`",
            Self::NftIngress => "nftables set, `netdev` ingress hook",
            Self::IpsetRaw => "iptables + ipset `hash:net`, `raw PREROUTING`",
            Self::IptablesChain => "iptables chain, one `REJECT` rule per ban (fail2ban)",
            Self::XdpFloor => "XDP floor: drops all but the legitimate source, no bans",
            Self::NoFilter => "no filter",
        }
    }

    /// Installs the filter with `bans` in namespace `lab.host` on interface `ifname`. The
    /// linear chain is filled one `iptables` call per ban, as fail2ban does, up to `one_by_one`
    /// bans; beyond that by `iptables-restore`, and the note says why.
    pub fn install(self, lab: &Lab, ifname: &str, bans: &[Ipv4Addr], one_by_one: usize) -> Installed {
        let ns = lab.host.clone();
        let timed = |secs| (Some(secs), None);
        let (counter, (install, note)) = match self {
            Self::Sipwall => {
                let (d, secs) = sipwall(lab, ifname, bans);
                (Counter::Sipwall(Box::new(d)), timed(secs))
            }
            Self::NftInput => {
                let hook = "type filter hook input priority filter;";
                (Counter::Nft { family: "inet", chain: "input" }, timed(nft_set(&ns, "inet", "input", hook, bans)))
            }
            Self::NftIngress => {
                let hook = format!("type filter hook ingress device \"{ifname}\" priority -500;");
                (
                    Counter::Nft { family: "netdev", chain: "ingress" },
                    timed(nft_set(&ns, "netdev", "ingress", &hook, bans)),
                )
            }
            Self::IpsetRaw => (Counter::Ipset, timed(ipset_raw(&ns, bans))),
            Self::IptablesChain => (Counter::Chain, f2b_chain(&ns, bans, one_by_one)),
            Self::XdpFloor => (Counter::Floor(Box::new(floor(&ns, ifname))), (None, None)),
            Self::NoFilter => (Counter::None, (None, None)),
        };
        Installed { ns, counter, install, note }
    }
}

/// A table `filter` of `family` with a set `banned` and a chain on `hook` that drops its
/// sources; returns the seconds `nft -f` took to add the elements, [`NFT_BATCH`] to an
/// `add element` statement.
fn nft_set(ns: &str, family: &str, chain: &str, hook: &str, bans: &[Ipv4Addr]) -> f64 {
    let table = format!(
        "table {family} filter {{\n  set banned {{ type ipv4_addr; }}\n  chain {chain} {{ {hook} \
         policy accept; ip saddr @banned counter drop; }}\n}}\n"
    );
    ok(ns, "nft", &["-f", "-"], Some(table.as_bytes()));
    let mut elements = String::new();
    for batch in bans.chunks(NFT_BATCH) {
        let list: Vec<String> = batch.iter().map(Ipv4Addr::to_string).collect();
        writeln!(elements, "add element {family} filter banned {{ {} }}", list.join(", ")).unwrap();
    }
    let t = Instant::now();
    ok(ns, "nft", &["-f", "-"], Some(elements.as_bytes()));
    t.elapsed().as_secs_f64()
}

/// An ipset `banned` of type hash:net filled by `ipset restore` (the seconds it took are
/// returned), and the iptables rule in `raw PREROUTING` that drops its sources.
fn ipset_raw(ns: &str, bans: &[Ipv4Addr]) -> f64 {
    let mut restore = format!("create banned hash:net family inet maxelem {}\n", bans.len().max(65_536));
    for b in bans {
        writeln!(restore, "add banned {b}").unwrap();
    }
    let t = Instant::now();
    ok(ns, "ipset", &["restore"], Some(restore.as_bytes()));
    let secs = t.elapsed().as_secs_f64();
    let rule = ["-w", "-t", "raw", "-A", "PREROUTING", "-m", "set", "--match-set", "banned", "src", "-j", "DROP"];
    ok(ns, "iptables", &rule, None);
    secs
}

/// fail2ban's iptables-multiport chain (its actionstart: the chain, its RETURN, the jump from
/// INPUT for 5060/udp), a rule after the jump that counts what comes back, and the bans:
/// one call each up to `one_by_one` (the seconds they took), else by `iptables-restore` with a
/// note saying so.
fn f2b_chain(ns: &str, bans: &[Ipv4Addr], one_by_one: usize) -> (Option<f64>, Option<String>) {
    for args in [
        &["-w", "-N", F2B_CHAIN][..],
        &["-w", "-A", F2B_CHAIN, "-j", "RETURN"],
        &["-w", "-I", "INPUT", "-p", "udp", "-m", "multiport", "--dports", "5060", "-j", F2B_CHAIN],
        &["-w", "-A", "INPUT", "-p", "udp", "-m", "udp", "--dport", "5060"],
    ] {
        ok(ns, "iptables", args, None);
    }
    if bans.len() <= one_by_one {
        return (Some(one_call_per_ban(ns, bans)), None);
    }
    // the order fail2ban's inserts at the top leave: the newest ban first, RETURN last
    let mut restore = String::from("*filter\n");
    for b in bans.iter().rev() {
        writeln!(restore, "-A {F2B_CHAIN} -s {b}/32 -j REJECT --reject-with icmp-port-unreachable").unwrap();
    }
    writeln!(restore, "-A {F2B_CHAIN} -j RETURN\nCOMMIT").unwrap();
    ok(ns, "iptables", &["-w", "-F", F2B_CHAIN], None);
    let t = Instant::now();
    ok(ns, "iptables-restore", &["--noflush"], Some(restore.as_bytes()));
    let restored = t.elapsed().as_secs_f64();
    // what one more ban costs at this size (a documentation address, removed again)
    let one = one_call_per_ban(ns, &[Ipv4Addr::new(192, 0, 2, 1)]);
    ok(ns, "iptables", &["-w", "-D", F2B_CHAIN, "1"], None);
    let note = format!(
        "one call per ban not run above {}: the calls cost more as the chain grows, one more took {} at \
         this size; loaded by `iptables-restore` in {}",
        human(one_by_one),
        seconds(one),
        seconds(restored)
    );
    (None, Some(note))
}

/// The bans one `iptables` call each, as fail2ban's actionban runs them:
/// `iptables -w -I f2b-NAME 1 -s IP -j REJECT --reject-with icmp-port-unreachable`.
fn one_call_per_ban(ns: &str, bans: &[Ipv4Addr]) -> f64 {
    let bans = bans.to_vec();
    in_netns(ns, move || {
        let t = Instant::now();
        for b in &bans {
            let status = Command::new("iptables")
                .args(["-w", "-I", F2B_CHAIN, "1", "-s", &b.to_string(), "-j", "REJECT"])
                .args(["--reject-with", "icmp-port-unreachable"])
                .stdout(Stdio::null())
                .status()
                .expect("run iptables");
            assert!(status.success(), "iptables -I {F2B_CHAIN} 1 -s {b}: {status}");
        }
        t.elapsed().as_secs_f64()
    })
    .join()
    .unwrap()
}

/// `sipwall run` on `ifname` with `bans` in its store, restored into the kernel at start
/// (returns the daemon and the seconds its log gives for that).
fn sipwall(lab: &Lab, ifname: &str, bans: &[Ipv4Addr]) -> (DaemonProc, f64) {
    let rules = format!(
        "[bans]\ncapacity = {}\n\n[services.sip]\nports = [\"5060/udp\"]\n\n{LOG_JAILS_OFF}",
        (bans.len() + 1024).max(1_000_000)
    );
    let mut d = DaemonProc::prepare(lab, &rules, &["--iface", ifname]);
    {
        let now = sipwall::datapath::clock::unix_ms(std::time::SystemTime::now());
        let mut store = Store::open(&d.dir.join("state")).expect("open the daemon's store");
        let bans: Vec<Ban> = bans
            .iter()
            .map(|a| Ban {
                target: ipnet::IpNet::from(std::net::IpAddr::V4(*a)),
                expires_unix_ms: Some(now + 6 * 3_600_000),
                created_unix_ms: now,
                reason: "asterisk: 3 failures within 10m".into(),
                source: "asterisk".into(),
            })
            .collect();
        store.replace_all(bans.iter()).expect("write the bans to the store");
    }
    d.spawn(lab);
    let log = d.log_text();
    let ms = log
        .lines()
        .rev()
        .find(|l| l.contains("restored "))
        .and_then(|l| l[l.rfind(" in ")? + 4..].trim_end_matches(" ms").trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no `restored … in … ms` line in the daemon's log:\n{log}"));
    (d, ms / 1000.0)
}

/// The generator object's floor program attached to the receiving end (detached when dropped),
/// and its drop counter.
struct Floor {
    _ebpf: Ebpf,
    dropped: PerCpuArray<MapData, u64>,
}

/// Attaches the floor program (`firewall_common::trafficgen::FLOOR_PROGRAM`) to `ifname` in
/// namespace `ns`, native mode, passing [`LEGIT`].
fn floor(ns: &str, ifname: &str) -> Floor {
    let ifname = ifname.to_owned();
    in_netns(ns, move || {
        let mut ebpf = Ebpf::load(sipwall::TRAFFICGEN_OBJECT).expect("load the generator's object");
        let mut pass: Array<MapData, u32> =
            Array::try_from(ebpf.take_map(trafficgen::PASS).expect("the floor's pass address")).unwrap();
        pass.set(0, u32::from(LEGIT).to_be(), 0).expect("write the pass address");
        let dropped = PerCpuArray::try_from(ebpf.take_map(trafficgen::DROPPED).expect("the floor's counter")).unwrap();
        let prog: &mut Xdp =
            ebpf.program_mut(trafficgen::FLOOR_PROGRAM).expect("the floor program").try_into().unwrap();
        prog.load().expect("load the floor program");
        prog.attach(&ifname, XdpMode::Driver).unwrap_or_else(|e| panic!("attach the floor to {ifname}: {e}"));
        Floor { _ebpf: ebpf, dropped }
    })
    .join()
    .unwrap()
}

enum Counter {
    Sipwall(Box<DaemonProc>),
    Floor(Box<Floor>),
    Nft { family: &'static str, chain: &'static str },
    Ipset,
    Chain,
    None,
}

/// A contender in place.
pub struct Installed {
    ns: String,
    counter: Counter,
    /// Seconds the bans took to install, as the contender's users install them.
    pub install: Option<f64>,
    /// Why `install` is missing, when it is.
    pub note: Option<String>,
}

impl Installed {
    /// Frames the filter has dropped (or rejected) so far.
    pub fn drops(&self) -> u64 {
        match &self.counter {
            Counter::Sipwall(d) => d.metric("sipwall_packets_total", r#"reason="banned""#),
            Counter::Nft { family, chain } => {
                let out = ok(&self.ns, "nft", &["list", "chain", family, "filter", chain], None);
                let text = String::from_utf8_lossy(&out.stdout);
                let at = text.find("counter packets ").expect("the rule's counter");
                number(&text[at + "counter packets ".len()..])
            }
            Counter::Ipset => iptables_counts(&self.ns, "raw", "PREROUTING")[0],
            // jumped into the chain, less what came back out of it
            Counter::Chain => {
                let c = iptables_counts(&self.ns, "filter", "INPUT");
                c[0] - c[1]
            }
            Counter::Floor(f) => f.dropped.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0),
            Counter::None => 0,
        }
    }

    /// Takes the filter down: the daemon stopped (its pins, and so its XDP program, go with
    /// it), the rules and sets removed.
    pub fn remove(self) {
        match self.counter {
            Counter::Sipwall(mut d) => {
                d.stop();
            }
            // the program goes with its object
            Counter::Floor(_) | Counter::None => {}
            _ => {
                // iptables-nft's tables are nftables tables: one flush takes both kinds
                ok(&self.ns, "nft", &["flush", "ruleset"], None);
                if matches!(self.counter, Counter::Ipset) {
                    ok(&self.ns, "ipset", &["destroy"], None);
                }
            }
        }
    }
}

/// A duration for the tables: ms under a second.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.1} s")
    }
}

/// The leading decimal number of `s`.
fn number(s: &str) -> u64 {
    s.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse().ok()).expect("a number")
}

/// The packet counters of `chain`'s rules, in order (`iptables -L -v -x -n`).
fn iptables_counts(ns: &str, table: &str, chain: &str) -> Vec<u64> {
    let out = ok(ns, "iptables", &["-w", "-t", table, "-L", chain, "-v", "-x", "-n"], None);
    String::from_utf8_lossy(&out.stdout).lines().skip(2).map(|l| number(l.trim_start())).collect()
}

/// Runs `program args` in namespace `ns` (from a thread that entered it: no `ip netns exec`
/// in the timings), with `stdin`; fails loudly.
fn ok(ns: &str, program: &'static str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let input = stdin.map(<[u8]>::to_vec);
    in_netns(ns, move || {
        let mut c = Command::new(program);
        c.args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| {
            panic!("{program}: {e} (scripts/setup --test installs Debian's nftables, iptables and ipset)")
        });
        let mut pipe = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            if let Some(input) = input {
                std::io::Write::write_all(&mut pipe, &input).expect("write to the command's stdin");
            }
        });
        let out = child.wait_with_output().expect("wait for the command");
        writer.join().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    })
    .join()
    .unwrap()
}

/// Which iptables this is (`iptables --version`: nf_tables or legacy).
pub fn iptables_version() -> String {
    let out = Command::new("iptables").arg("--version").output().expect("iptables --version");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
