//! `sipwall test-log LOGFILE`: what fail2ban-regex does for a filter, for the jails of a rules
//! file: each line judged by each jail's detector, one by one as in a replay (timestamps play
//! no part), then totals, a summary of the lines nothing matched, and the speed.

mod hosts;
mod json;

use std::{
    io::{Read, Write},
    path::PathBuf,
    time::Instant,
};

use clap::Args;
use hosts::HostCounts;
use json::{kind_fields, source_fields, write_json, write_text};
use rustc_hash::FxHashMap;

use super::{lines::LineReader, EXIT_CONFIG};
use crate::{
    daemon::detection::detector,
    detection::detect::{Detector, Event},
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
    let mut per: Vec<Tally> = Vec::new();
    let sources: Vec<Vec<u8>> = detectors.iter().map(|(jail, dname, _)| source_fields(jail, dname)).collect();
    let mut hosts = HostCounts::default();
    let mut names: FxHashMap<String, u64> = FxHashMap::default();
    let mut sample = Vec::new();
    let mut events = Vec::new();
    let mut reader = LineReader::new(input);
    loop {
        let line = match reader.next_text() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("sipwall: reading {}: {e}", a.logfile.display());
                return 2;
            }
        };
        lines += 1;
        let mut any = false;
        for (j, (jail, dname, d)) in detectors.iter_mut().enumerate() {
            d.feed(&line, &mut events);
            for ev in &events {
                any = true;
                let (kind, rule) = match ev {
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
                let t = tally(&mut per, (j, rule, kind));
                t.n += 1;
                let r = if a.json {
                    write_json(&mut out, lines, &sources[j], &t.json, ev)
                } else {
                    write_text(&mut out, lines, jail, dname, rule, ev)
                };
                if r.is_err() {
                    return 0; // stdout closed (piped into head)
                }
            }
            events.clear();
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
    per.sort_by_key(|t| t.key);
    for Tally { key: (j, rule, kind), n, .. } in &per {
        summary.push_str(&format!("  {} {rule} ({kind}): {n}\n", detectors[*j].0));
    }
    // the ten most frequent, without ordering (or printing) all of them
    let (distinct_ips, top_ips) = hosts.finish(10);
    let distinct = distinct_ips + names.len();
    let mut top: Vec<(u64, String)> = top_ips.into_iter().map(|(n, h)| (n, h.to_string())).collect();
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

/// The findings of one (detector, rule, kind): how many, and their `kind` and `rule` as JSON.
struct Tally {
    key: (usize, &'static str, &'static str),
    n: u64,
    json: Vec<u8>,
}

/// The tally of `key`: a handful of rows, found by pointer first.
fn tally<'a>(per: &'a mut Vec<Tally>, key: (usize, &'static str, &'static str)) -> &'a mut Tally {
    let same = |k: &(usize, &str, &str)| {
        k.0 == key.0 && (std::ptr::eq(k.1, key.1) || k.1 == key.1) && (std::ptr::eq(k.2, key.2) || k.2 == key.2)
    };
    match per.iter().position(|t| same(&t.key)) {
        Some(i) => &mut per[i],
        None => {
            per.push(Tally { key, n: 0, json: kind_fields(key.2, key.1) });
            per.last_mut().expect("just pushed")
        }
    }
}
