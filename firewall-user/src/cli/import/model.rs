//! What an import produces: the sections of the rules file to write, and what could not be
//! translated, with the reason.

use std::{collections::BTreeMap, path::PathBuf};

use ipnet::IpNet;

/// Something of the fail2ban configuration that the rules file does not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The fail2ban jail it belongs to, if any.
    pub jail: Option<String>,
    /// Where it was written, when known.
    pub at: Option<(PathBuf, usize)>,
    /// What was left out and why.
    pub text: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((file, line)) = &self.at {
            write!(f, "{}:{line}: ", file.display())?;
        }
        match &self.jail {
            Some(j) => write!(f, "[{j}] not translated: {}", self.text),
            None => write!(f, "not translated: {}", self.text),
        }
    }
}

/// fail2ban's `bantime.increment` as the rules file writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Increment {
    Off,
    On {
        factor: Option<f64>,
        multipliers: Vec<u32>,
        /// `None`: no limit (fail2ban's default).
        maxtime: Option<u64>,
        overalljails: bool,
        /// fail2ban's `dbpurgeage`: how long its database keeps the bans it counts.
        window: Option<u64>,
    },
}

/// A `[jails.NAME]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct JailOut {
    pub name: String,
    /// Comment lines written above the section.
    pub comments: Vec<String>,
    pub enabled: bool,
    /// `None` keeps the built-in jail's detector.
    pub detector: Option<String>,
    pub mode: Option<String>,
    pub logpath: Vec<String>,
    pub findtime: Option<u64>,
    pub maxretry: Option<u32>,
    /// `Some(None)`: forever.
    pub bantime: Option<Option<u64>>,
    pub ignore: Vec<IpNet>,
    pub increment: Option<Increment>,
}

impl JailOut {
    /// A built-in jail that the fail2ban configuration does not enable.
    pub fn disabled(name: &str, why: &str) -> Self {
        JailOut {
            name: name.to_owned(),
            comments: vec![why.to_owned()],
            enabled: false,
            detector: None,
            mode: None,
            logpath: Vec::new(),
            findtime: None,
            maxretry: None,
            bantime: None,
            ignore: Vec::new(),
            increment: None,
        }
    }
}

/// A `[detectors.NAME]` section: a fail2ban filter pasted, its values resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorOut {
    pub name: String,
    pub comments: Vec<String>,
    pub prefregex: Option<String>,
    pub failregex: String,
    pub ignoreregex: Option<String>,
    pub datepattern: Option<String>,
    pub maxlines: Option<u32>,
    pub definitions: BTreeMap<String, String>,
}

/// The whole import.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imported {
    /// The fail2ban files read for the jails, in fail2ban's order.
    pub files: Vec<PathBuf>,
    pub allow: Vec<IpNet>,
    pub jails: Vec<JailOut>,
    pub detectors: Vec<DetectorOut>,
    pub notes: Vec<Note>,
}
