//! `sipwall test-log LOGFILE`: what fail2ban-regex does for a filter, for the jails of a rules
//! file: each line judged by each jail's detector, one by one as in a replay (timestamps play
//! no part), then totals, a summary of the lines nothing matched, and the speed.

use std::{
    io::{Read, Write},
    net::IpAddr,
    path::PathBuf,
    time::Instant,
};

use clap::Args;
use rustc_hash::FxHashMap;

use super::{lines::LineReader, EXIT_CONFIG};
use crate::{
    daemon::detection::detector,
    detect::{Detector, Event},
    rules::Rules,
};

#[derive(Debug, Args)]
pub struct TestLogArgs {
    /// Rules file whose jails judge the lines (default: the embedded default rules).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this jail (even if it is disabled in the rules).
    #[arg(long)]
    pub jail: Option<String>,
    /// One JSON object per finding on stdout (line, jail, detector, host, …); summary on stderr.
    #[arg(long)]
    pub json: bool,
    /// Print unmatched lines (all of them, not a sample).
    #[arg(long)]
    pub print_unmatched: bool,
    /// The log file to judge (`-` for standard input).
    pub logfile: PathBuf,
}

/// Unmatched lines shown in the summary without --print-unmatched.
const SAMPLE: usize = 5;

pub fn test_log(a: &TestLogArgs) -> i32 {
    let rules = match &a.config {
        Some(p) => match Rules::load(p) {
            Ok((r, _)) => r,
            Err(e) => {
                eprintln!("{e}");
                return EXIT_CONFIG;
            }
        },
        None => Rules::default_rules(),
    };
    let det = &rules.detection;
    let jails: Vec<_> = match &a.jail {
        Some(name) => match det.jail(name) {
            Some(j) if j.detector.reads_logs() => vec![j],
            Some(_) => {
                eprintln!("sipwall: jail `{name}` reads no logs");
                return 2;
            }
            None => {
                let names: Vec<_> = det.jails.iter().map(|j| j.name.as_str()).collect();
                eprintln!("sipwall: no jail `{name}`; the rules have: {}", names.join(", "));
                return 2;
            }
        },
        None => det.enabled().filter(|j| j.detector.reads_logs()).collect(),
    };
    if jails.is_empty() {
        eprintln!("sipwall: no jail reads logs in these rules");
        return 2;
    }
    let mut detectors: Vec<(&str, &str, Box<dyn Detector>)> = Vec::new();
    for j in &jails {
        match detector(&j.detector, &det.detectors) {
            Some(d) => detectors.push((j.name.as_str(), j.detector.name(), d)),
            None => {
                eprintln!("sipwall: the detector of jail `{}` cannot be built", j.name);
                return EXIT_CONFIG;
            }
        }
    }
    let input: Box<dyn Read> = if a.logfile.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        match std::fs::File::open(&a.logfile) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("sipwall: {}: {e}", a.logfile.display());
                return 2;
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let start = Instant::now();
    let (mut lines, mut matched, mut unmatched) = (0u64, 0u64, 0u64);
    // (detector, rule, kind) → findings: a handful of rows, found by pointer first
    let mut per: Vec<((usize, &'static str, &'static str), u64)> = Vec::new();
    let mut hosts = HostCounts::default();
    let mut names: FxHashMap<String, u64> = FxHashMap::default();
    let mut sample = Vec::new();
    let mut events = Vec::new();
    let mut reader = LineReader::new(input);
    loop {
        let raw = match reader.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("sipwall: reading {}: {e}", a.logfile.display());
                return 2;
            }
        };
        lines += 1;
        let line = match crate::detect::utf8(raw) {
            Some(l) => std::borrow::Cow::Borrowed(l),
            None => String::from_utf8_lossy(raw),
        };
        let mut any = false;
        for (j, (jail, dname, d)) in detectors.iter_mut().enumerate() {
            d.feed(&line, &mut events);
            for ev in events.drain(..) {
                any = true;
                let (kind, rule) = match &ev {
                    Event::Failure(f) => {
                        hosts.add(f.host);
                        ("failure", f.rule)
                    }
                    Event::Hostname { name, rule } => {
                        *names.entry(name.clone()).or_default() += 1;
                        ("hostname", *rule)
                    }
                    Event::Ambiguous { rule, .. } => ("ambiguous", *rule),
                };
                count(&mut per, (j, rule, kind));
                let r = if a.json {
                    write_json(&mut out, lines, jail, dname, kind, rule, &ev)
                } else {
                    write_text(&mut out, lines, jail, dname, rule, &ev)
                };
                if r.is_err() {
                    return 0; // stdout closed (piped into head)
                }
            }
        }
        if any {
            matched += 1;
        } else {
            unmatched += 1;
            if a.print_unmatched {
                let _ = writeln!(out, "{lines}: unmatched: {line}");
            } else if sample.len() < SAMPLE {
                sample.push((lines, line.into_owned()));
            }
        }
    }
    let _ = out.flush();
    drop(out);
    let secs = start.elapsed().as_secs_f64();
    let mut summary = String::new();
    summary.push_str(&format!("\nLines: {lines}, matched: {matched}, unmatched: {unmatched}\n"));
    per.sort();
    for ((j, rule, kind), n) in &per {
        summary.push_str(&format!("  {} {rule} ({kind}): {n}\n", detectors[*j].0));
    }
    // the ten most frequent, without ordering (or printing) all of them
    let hosts = hosts.finish();
    let distinct = hosts.len() + names.len();
    let mut top: Vec<(u64, String)> = Vec::new();
    let mut counts: Vec<(u64, IpAddr)> = hosts.into_iter().map(|(h, n)| (n, h)).collect();
    let cmp = |a: &(u64, IpAddr), b: &(u64, IpAddr)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    if counts.len() > 10 {
        counts.select_nth_unstable_by(10, cmp);
        counts.truncate(10);
    }
    counts.sort_unstable_by(cmp);
    top.extend(counts.into_iter().map(|(n, h)| (n, h.to_string())));
    top.extend(names.into_iter().map(|(h, n)| (n, h)));
    top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    if !top.is_empty() {
        summary.push_str(&format!("Hosts: {distinct} distinct; most frequent:\n"));
        for (n, h) in top.iter().take(10) {
            summary.push_str(&format!("  {h}: {n}\n"));
        }
    }
    if unmatched > 0 && !a.print_unmatched {
        summary.push_str(&format!("Unmatched lines: {unmatched}; the first {}:\n", sample.len()));
        for (n, l) in &sample {
            summary.push_str(&format!("  {n}: {l}\n"));
        }
        summary.push_str("  (--print-unmatched prints them all)\n");
    }
    summary.push_str(&format!(
        "Time: {:.3}s, {:.0} lines/s\n",
        secs,
        if secs > 0.0 { lines as f64 / secs } else { 0.0 }
    ));
    if a.json {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    0
}

/// Findings per host. IPv4 addresses are appended to a list and counted in batches (sorted,
/// then runs counted): a log of scanners names a new address on nearly every line, where a
/// hash map would spend its time growing and missing the cache.
#[derive(Default)]
struct HostCounts {
    v4: Vec<u32>,
    counted: FxHashMap<IpAddr, u64>,
}

impl HostCounts {
    /// Addresses held before a batch is counted (16 MiB).
    const BATCH: usize = 1 << 22;

    fn add(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.v4.push(u32::from(a));
                if self.v4.len() >= Self::BATCH {
                    self.fold();
                }
            }
            IpAddr::V6(_) => *self.counted.entry(ip).or_default() += 1,
        }
    }

    fn fold(&mut self) {
        self.v4.sort_unstable();
        for run in self.v4.chunk_by(|a, b| a == b) {
            *self.counted.entry(IpAddr::V4(run[0].into())).or_default() += run.len() as u64;
        }
        self.v4.clear();
    }

    fn finish(mut self) -> FxHashMap<IpAddr, u64> {
        self.fold();
        self.counted
    }
}

fn count(per: &mut Vec<((usize, &'static str, &'static str), u64)>, key: (usize, &'static str, &'static str)) {
    let same = |k: &(usize, &str, &str)| {
        k.0 == key.0 && (std::ptr::eq(k.1, key.1) || k.1 == key.1) && (std::ptr::eq(k.2, key.2) || k.2 == key.2)
    };
    match per.iter_mut().find(|(k, _)| same(k)) {
        Some((_, n)) => *n += 1,
        None => per.push((key, 1)),
    }
}

/// A JSON string (quoted and escaped).
fn json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(b"\"")?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.write_all(&s.as_bytes()[start..i])?;
        match esc {
            Some(e) => out.write_all(e.as_bytes())?,
            None => write!(out, "\\u{:04x}", c as u32)?,
        }
        start = i + c.len_utf8();
    }
    out.write_all(&s.as_bytes()[start..])?;
    out.write_all(b"\"")
}

fn write_u64(out: &mut impl Write, mut n: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.write_all(&buf[i..])
}

/// An address as a JSON string (IPv4 without the formatting machinery: the common case).
fn write_ip(out: &mut impl Write, ip: IpAddr) -> std::io::Result<()> {
    match ip {
        IpAddr::V4(a) => {
            out.write_all(b"\"")?;
            for (i, o) in a.octets().iter().enumerate() {
                if i > 0 {
                    out.write_all(b".")?;
                }
                write_u64(out, u64::from(*o))?;
            }
            out.write_all(b"\"")
        }
        IpAddr::V6(a) => write!(out, "\"{a}\""),
    }
}

/// One finding as a JSON object on its own line.
fn write_json(
    out: &mut impl Write,
    line: u64,
    jail: &str,
    detector: &str,
    kind: &str,
    rule: &str,
    ev: &Event,
) -> std::io::Result<()> {
    out.write_all(b"{\"line\":")?;
    write_u64(out, line)?;
    out.write_all(b",\"jail\":")?;
    json_str(out, jail)?;
    out.write_all(b",\"detector\":")?;
    json_str(out, detector)?;
    out.write_all(b",\"host\":")?;
    match ev {
        Event::Failure(f) => write_ip(out, f.host)?,
        Event::Hostname { name, .. } => json_str(out, name)?,
        Event::Ambiguous { .. } => out.write_all(b"null")?,
    }
    write!(out, ",\"kind\":\"{kind}\",\"rule\":\"{rule}\"")?;
    match ev {
        Event::Failure(f) => {
            if let Some(u) = &f.user {
                out.write_all(b",\"user\":")?;
                json_str(out, u)?;
            }
        }
        Event::Ambiguous { candidates, .. } => {
            out.write_all(b",\"candidates\":[")?;
            for (i, c) in candidates.iter().enumerate() {
                write!(out, "{}\"{c}\"", if i > 0 { "," } else { "" })?;
            }
            out.write_all(b"]")?;
        }
        Event::Hostname { .. } => {}
    }
    out.write_all(b"}\n")
}

fn write_text(
    out: &mut impl Write,
    line: u64,
    jail: &str,
    detector: &str,
    rule: &str,
    ev: &Event,
) -> std::io::Result<()> {
    match ev {
        Event::Failure(f) => writeln!(out, "{line}: {jail} ({detector}, {rule}): {}", f.host),
        Event::Hostname { name, .. } => {
            writeln!(out, "{line}: {jail} ({detector}, {rule}): {name} (a host name: never resolved, never banned)")
        }
        Event::Ambiguous { candidates, .. } => writeln!(
            out,
            "{line}: {jail} ({detector}, {rule}): ambiguous: any of {} (nobody banned)",
            candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Failure;

    #[test]
    fn json_lines_are_valid_json() {
        let ev = Event::Failure(Failure {
            host: "192.0.2.1".parse().unwrap(),
            user: Some("a\"b\\c\u{1}\u{e9}".into()),
            attempts: 1,
            rule: "sshd-failed",
        });
        let mut out = Vec::new();
        write_json(&mut out, 7, "sshd", "sshd", "failure", "sshd-failed", &ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["line"], 7);
        assert_eq!(v["host"], "192.0.2.1");
        assert_eq!(v["user"], "a\"b\\c\u{1}\u{e9}");
        let ev = Event::Ambiguous { candidates: vec!["192.0.2.1".parse().unwrap(), "::1".parse().unwrap()], rule: "x" };
        let mut out = Vec::new();
        write_json(&mut out, 1, "j", "d", "ambiguous", "x", &ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["host"].is_null());
        assert_eq!(v["candidates"][1], "::1");
    }
}
