//! `sipwall check FILE`: validate, then compile the rules into in-memory tables to report what
//! they will take (and whether they fit).

use std::path::PathBuf;

use clap::Args;

use super::EXIT_CONFIG;
use crate::{clock::KernelClock, enforcer::Enforcer, loader::net_capacity, rules::Rules, tables::fake::FakeTables};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The rules file to validate.
    pub file: PathBuf,
}

/// Prints every diagnostic; returns the exit code.
pub fn check(args: &CheckArgs) -> i32 {
    let (rules, warnings) = match Rules::load(&args.file) {
        Ok(r) => r,
        Err(rejected) => {
            eprintln!("{rejected}");
            return EXIT_CONFIG;
        }
    };
    for w in &warnings {
        eprintln!("{w}");
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
    match Enforcer::new(FakeTables::default(), rules, KernelClock::synthetic(250)) {
        Ok(e) => {
            let (v4, v6) = e.nets().entries();
            println!(
                "{file}: OK ({services} services, {allow} allow-listed and {blocked} blocked prefixes from {files} files; \
                 {v4} IPv4 and {v6} IPv6 table entries of {capacity} each; {} warnings)",
                warnings.len()
            );
            println!("jails: {}", if jails.is_empty() { "none".to_owned() } else { jails.join(", ") });
            0
        }
        Err(err) => {
            eprintln!("{file}: error: the rules do not fit the tables: {err}");
            EXIT_CONFIG
        }
    }
}
