//! `sipwall test-log LOGFILE`: what fail2ban-regex does for a filter, for the jails of a rules
//! file: each line judged by each jail's detector, one by one as in a replay (timestamps play
//! no part), then totals, a summary of the lines nothing matched, and the speed.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    time::Instant,
};

use clap::Args;
use serde_json::json;

use super::EXIT_CONFIG;
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
    let input: Box<dyn BufRead> = if a.logfile.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        match std::fs::File::open(&a.logfile) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 20, f)),
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
    let mut per: BTreeMap<(String, &'static str, &'static str), u64> = BTreeMap::new();
    let mut hosts: BTreeMap<String, u64> = BTreeMap::new();
    let mut sample = Vec::new();
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut reader = input;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("sipwall: reading {}: {e}", a.logfile.display());
                return 2;
            }
        }
        lines += 1;
        let raw = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        let mut any = false;
        for (jail, dname, d) in detectors.iter_mut() {
            d.feed(&line, &mut events);
            for ev in events.drain(..) {
                any = true;
                let (kind, host, rule, user) = match &ev {
                    Event::Failure(f) => ("failure", Some(f.host.to_string()), f.rule, f.user.clone()),
                    Event::Hostname { name, rule } => ("hostname", Some(name.clone()), *rule, None),
                    Event::Ambiguous { rule, .. } => ("ambiguous", None, *rule, None),
                };
                *per.entry((jail.to_string(), rule, kind)).or_default() += 1;
                if let Some(h) = &host {
                    *hosts.entry(h.clone()).or_default() += 1;
                }
                let r = if a.json {
                    let mut v = json!({"line": lines, "jail": jail, "detector": dname, "host": host, "kind": kind, "rule": rule});
                    if let Some(u) = user {
                        v["user"] = json!(u);
                    }
                    if let Event::Ambiguous { candidates, .. } = &ev {
                        v["candidates"] = json!(candidates.iter().map(ToString::to_string).collect::<Vec<_>>());
                    }
                    writeln!(out, "{v}")
                } else {
                    let what = match &ev {
                        Event::Failure(f) => f.host.to_string(),
                        Event::Hostname { name, .. } => format!("{name} (a host name: never resolved, never banned)"),
                        Event::Ambiguous { candidates, .. } => format!(
                            "ambiguous: any of {} (nobody banned)",
                            candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    writeln!(out, "{lines}: {jail} ({dname}, {rule}): {what}")
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
    for ((jail, rule, kind), n) in &per {
        summary.push_str(&format!("  {jail} {rule} ({kind}): {n}\n"));
    }
    let mut top: Vec<_> = hosts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if !top.is_empty() {
        summary.push_str(&format!("Hosts: {} distinct; most frequent:\n", top.len()));
        for (h, n) in top.iter().take(10) {
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
