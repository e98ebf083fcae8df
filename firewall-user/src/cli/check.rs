//! `sipwall check FILE`.

use std::path::PathBuf;

use clap::Args;

use super::EXIT_CONFIG;
use crate::rules::Rules;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The rules file to validate.
    pub file: PathBuf,
}

/// Prints every diagnostic; returns the exit code.
pub fn check(args: &CheckArgs) -> i32 {
    match Rules::load(&args.file) {
        Ok((rules, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            let blocked = rules.blocked().count();
            println!(
                "{}: OK ({} services, {} allow-listed prefixes, {} blocked prefixes from {} files, {} warnings)",
                args.file.display(),
                rules.services.len(),
                rules.allow.len(),
                blocked,
                rules.block_files.len(),
                warnings.len()
            );
            0
        }
        Err(rejected) => {
            eprintln!("{rejected}");
            EXIT_CONFIG
        }
    }
}
