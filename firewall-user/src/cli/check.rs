//! `sipwall check FILE`: validate, then compile the rules into in-memory tables to report what
//! they will take, whether they fit, and which line pushes them past a limit.

use std::path::PathBuf;

use clap::Args;

use super::EXIT_CONFIG;
use crate::{
    datapath::{fit, loader::net_capacity},
    rules::Rules,
};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The rules file to validate.
    pub file: PathBuf,
}

/// Prints every diagnostic; returns the exit code.
pub fn check(args: &CheckArgs) -> i32 {
    let (rules, warnings) = match Rules::load_for_host(Some(&args.file)) {
        Ok(r) => r,
        Err(rejected) => {
            eprintln!("{rejected}");
            return EXIT_CONFIG;
        }
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    // a running daemon keeps a faulty list's last good version; here it is an error to fix
    let faults = rules.list_faults().count();
    for f in rules.list_faults() {
        eprintln!("{f}");
    }
    let file = args.file.display();
    let (services, allow, blocked, files) =
        (rules.services.len(), rules.allow.len(), rules.blocked().count(), rules.block_files.len());
    let capacity = net_capacity(&rules);
    let jails: Vec<String> = rules
        .detection
        .enabled()
        .map(|j| {
            format!(
                "{} ({} in {}, ban {})",
                j.name,
                j.maxretry,
                crate::duration::format(Some(j.findtime)),
                crate::duration::format(j.bantime)
            )
        })
        .collect();
    match fit::check(&rules) {
        Ok(_) if faults > 0 => {
            eprintln!(
                "{file}: error: {faults} faults in blocklist files (a running daemon keeps their last good version)"
            );
            EXIT_CONFIG
        }
        Ok((v4, v6)) => {
            println!(
                "{file}: OK ({services} services, {allow} allow-listed and {blocked} blocked prefixes from {files} files; \
                 {v4} IPv4 and {v6} IPv6 table entries of {capacity} each; {} warnings)",
                warnings.len()
            );
            println!("jails: {}", if jails.is_empty() { "none".to_owned() } else { jails.join(", ") });
            for line in rules.alerts.describe() {
                println!("{line}");
            }
            if let Some(c) = &rules.crowdsec {
                println!("{}", c.describe());
            }
            for line in crate::rules::discovery::describe(&rules) {
                println!("{line}");
            }
            for f in &rules.block_feeds {
                println!(
                    "feed {}: {} ({}) every {}; not fetched by check, its list is not counted above",
                    f.name,
                    f.url,
                    f.format.name(),
                    crate::duration::format(Some(f.refresh))
                );
            }
            0
        }
        Err(d) => {
            eprintln!("{d}");
            EXIT_CONFIG
        }
    }
}
