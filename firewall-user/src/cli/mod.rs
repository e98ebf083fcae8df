//! The `sipwall` command line: one file per subcommand.

pub mod bans;
pub mod check;
pub mod detach;
pub mod import;
pub mod inspect;
mod lines;
pub mod manual;
pub mod run;
pub mod testlog;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::control::DEFAULT_SOCKET;

/// sipwall: a SIP-aware XDP firewall for Asterisk, FreePBX, Kamailio and other VoIP hosts.
#[derive(Debug, Parser)]
#[command(name = "sipwall", version, propagate_version = true)]
pub struct Cli {
    /// Control socket of the running daemon.
    #[arg(long, global = true, env = "SIPWALL_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the XDP program, apply the rules and enforce them until stopped.
    Run(run::RunArgs),
    /// Validate a rules file: every error with line and column; exit code 78 on error.
    Check(check::CheckArgs),
    /// Ban an address or network on every port (asks the running daemon).
    Ban(bans::BanArgs),
    /// Lift a ban (asks the running daemon).
    Unban(bans::UnbanArgs),
    /// List the bans in force (asks the running daemon).
    List(bans::ListArgs),
    /// Why an address is or is not dropped: lists, bans, failures counted, ban history.
    Why(inspect::WhyArgs),
    /// The jails: their sources, lines read, failures and bans (asks the running daemon).
    Status(inspect::StatusArgs),
    /// Judge a log file with the jails' detectors, like fail2ban-regex (no daemon needed).
    TestLog(testlog::TestLogArgs),
    /// Write a rules file from a fail2ban configuration (jail.conf, jail.d, jail.local, filter.d);
    /// lists what it cannot translate.
    #[command(name = "import-fail2ban")]
    ImportFail2ban(import::ImportArgs),
    /// Stop enforcing after the daemon has stopped: detach the program, drop the pinned tables
    /// (bans stay in the store for the next start).
    Detach(detach::DetachArgs),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(manual::CompletionsArgs),
    /// Write the manual pages (roff) into a directory.
    #[command(hide = true)]
    Man(manual::ManArgs),
}

/// sysexits.h EX_CONFIG: the configuration is wrong.
pub const EXIT_CONFIG: i32 = 78;
