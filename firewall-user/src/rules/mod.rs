//! The rules file (TOML): what to allow, block and protect. `docs/rules.md` documents every key.
//!
//! Parsing collects every problem with its line and column; a file with any error is rejected as
//! a whole, so a running daemon keeps its previous rules.

pub mod alerts;
pub mod asterisk;
pub mod blocklist;
pub mod cidr;
pub mod crowdsec;
pub mod diag;
pub mod discovery;
pub mod feeds;
pub mod jails;
pub mod ports;
pub mod reader;
pub mod services;
pub mod sip;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::IpNet;

use self::reader::{Reader, Section};
pub use self::{
    diag::{Diagnostic, Rejected, Severity},
    services::{Limit, Service, TcpLimit},
};
use crate::duration;
use firewall_common::maps::capacity;

/// The rules that apply when `sipwall run` gets no `--config`.
pub const DEFAULT_RULES: &str = include_str!("../../../rules/default.toml");
pub const DEFAULT_NAME: &str = "<embedded default rules>";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanSettings {
    /// IPv6 bans cover this prefix of the offending address.
    pub ipv6_prefix: u8,
    /// Exact-address bans the kernel tables hold (per family).
    pub capacity: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Sources whose buckets are tracked at once (least recently seen evicted first).
    pub capacity: u32,
    /// Least time between two reports of the same source going over a limit.
    pub report_interval: Duration,
}

/// A blocklist file and what it holds.
///
/// Blocklists are outside data (downloads, feeds): a file with bad lines or that cannot be read
/// does not reject the rules. It carries its faults, and a running daemon keeps the file's last
/// good version in force (see [`Rules::keep_good_lists`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFile {
    pub path: PathBuf,
    pub nets: Vec<IpNet>,
    /// Byte offset of each of `nets` in the file.
    pub offsets: Vec<u32>,
    /// What is wrong with the file as read; empty when it is good.
    pub faults: Vec<Diagnostic>,
    /// `nets` are an earlier good version of the file, kept because this one is faulty.
    pub kept: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Where the rules came from (a path or `DEFAULT_NAME`).
    pub origin: String,
    pub allow: Vec<IpNet>,
    pub block: Vec<IpNet>,
    pub block_files: Vec<BlockFile>,
    /// `[[block.feeds]]`: what to fetch.
    pub block_feeds: Vec<feeds::Feed>,
    /// Each feed's list in force, by feed name (set by the daemon, not read from the file).
    pub feed_nets: Vec<(String, Vec<IpNet>)>,
    /// Entries each network table holds (after /24 and /32 expansion for IPv4).
    pub block_capacity: u32,
    pub bans: BanSettings,
    pub rate_limit: RateLimitSettings,
    pub services: Vec<Service>,
    /// `[sip]`: the SIP inspector.
    pub sip: sip::SipRules,
    /// Jails and custom detectors.
    pub detection: jails::Detection,
    /// `[webhook]` and `[mail]`.
    pub alerts: alerts::Alerts,
    /// `[crowdsec]`: the Local API whose decisions are enforced and to which bans are pushed.
    pub crowdsec: Option<crowdsec::Crowdsec>,
    /// `[asterisk]`: where Asterisk's configuration is, and the AMI account.
    pub asterisk: asterisk::AsteriskRules,
    /// What Asterisk's configuration holds, when it was read ([`discovery`]).
    pub discovered: Option<crate::asterisk::Discovered>,
    /// Its trunks: never dropped, rate-limited or banned, like `allow`.
    pub trunks: Vec<discovery::TrunkNet>,
    /// The text of the rules file (for diagnostics about its networks after validation).
    pub text: String,
    /// Byte offset in `text` of each network of `allow`, `block`, then every service's
    /// `allow_from`, in that order.
    pub placed: Vec<usize>,
}

const TOP_KEYS: &[&str] = &[
    "allow",
    "block",
    "bans",
    "rate_limit",
    "services",
    "sip",
    "jails",
    "detectors",
    "webhook",
    "mail",
    "crowdsec",
    "asterisk",
];

impl Rules {
    /// Reads and validates a rules file and the blocklist files it names.
    pub fn load(path: &Path) -> Result<(Rules, Vec<Diagnostic>), Rejected> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Rejected(vec![Diagnostic::at(Severity::Error, &name, "", None, format!("cannot read the rules file: {e}"))])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&name, &text, &base)
    }

    /// The rules of `file`, or the embedded defaults, with what Asterisk's configuration holds
    /// ([`discovery`]): what `sipwall run` and `sipwall check` apply.
    pub fn load_for_host(file: Option<&Path>) -> Result<(Rules, Vec<Diagnostic>), Rejected> {
        let (mut rules, mut diags) = match file {
            Some(p) => Self::load(p)?,
            None => (Self::default_rules(), Vec::new()),
        };
        diags.extend(discovery::apply(&mut rules, &discovery::resolve));
        Ok((rules, diags))
    }

    /// Every allow-listed network: `[allow]` and the trunks of Asterisk's configuration.
    pub fn allowed(&self) -> impl Iterator<Item = &IpNet> + Clone {
        self.allow.iter().chain(self.trunks.iter().map(|(n, _)| n))
    }

    /// What allow-lists `net` (an `[allow]` entry, or a trunk), if anything does.
    pub fn allowed_by(&self, net: &IpNet) -> Option<String> {
        if let Some(a) = self.allow.iter().find(|a| a.contains(net)) {
            return Some(a.to_string());
        }
        self.trunks.iter().find(|(n, _)| n.contains(net)).map(|(n, what)| format!("{n}, {what}"))
    }

    /// The embedded default rules.
    pub fn default_rules() -> Rules {
        Self::parse(DEFAULT_NAME, DEFAULT_RULES, Path::new("/"))
            .expect("embedded default rules are valid (checked by a unit test)")
            .0
    }

    /// Validates rules text; relative blocklist paths resolve against `base`.
    pub fn parse(name: &str, text: &str, base: &Path) -> Result<(Rules, Vec<Diagnostic>), Rejected> {
        let mut r = Reader::new(name, text);
        // the TOML parser panics on some malformed files: a rejected file, never a crash
        let parsed = std::panic::catch_unwind(|| toml_edit::Document::parse(text));
        let doc = match parsed {
            Ok(Ok(d)) => d,
            Err(_) => {
                r.error(None, "not valid TOML: the TOML parser could not read this file; check its syntax");
                return Err(Rejected(r.diags));
            }
            Ok(Err(e)) => {
                let msg = e.message().trim_end().to_owned();
                r.error(e.span(), format!("not valid TOML: {msg}"));
                return Err(Rejected(r.diags));
            }
        };
        let root = Section { table: doc.as_table(), path: "", span: None };
        for (key, _) in doc.as_table().iter() {
            if !TOP_KEYS.contains(&key) {
                let span = doc.as_table().get_key_value(key).and_then(|(k, _)| k.span());
                let hint = reader::suggest(key, TOP_KEYS)
                    .map(|s| format!("did you mean [{s}]?"))
                    .unwrap_or_else(|| format!("expected one of: {}", TOP_KEYS.join(", ")));
                r.error(span, format!("unknown section `{key}`; {hint}"));
            }
        }

        let mut rules = Rules {
            origin: name.to_owned(),
            allow: Vec::new(),
            block: Vec::new(),
            block_files: Vec::new(),
            block_feeds: Vec::new(),
            feed_nets: Vec::new(),
            block_capacity: capacity::NETS,
            bans: BanSettings { ipv6_prefix: 64, capacity: capacity::BANS },
            rate_limit: RateLimitSettings { capacity: capacity::RATE, report_interval: Duration::from_secs(1) },
            services: Vec::new(),
            sip: sip::SipRules::default(),
            detection: jails::Detection::default(),
            alerts: alerts::Alerts::default(),
            crowdsec: None,
            asterisk: asterisk::AsteriskRules::default(),
            discovered: None,
            trunks: Vec::new(),
            text: text.to_owned(),
            placed: Vec::new(),
        };

        if let Some(s) = root.table(&mut r, "allow", "allow") {
            s.check_keys(&mut r, &["sources"]);
            rules.allow = table_nets(&mut r, &s, "sources").unwrap_or_default();
        }
        let mut file_warnings = Vec::new();
        if let Some(s) = root.table(&mut r, "block", "block") {
            s.check_keys(&mut r, &["sources", "files", "feeds", "capacity"]);
            rules.block = table_nets(&mut r, &s, "sources").unwrap_or_default();
            if let Some(c) = s.uint(&mut r, "capacity", 1024, u32::MAX as u64) {
                rules.block_capacity = c as u32;
            }
            for (file, span) in s.strings(&mut r, "files").unwrap_or_default() {
                rules.block_files.push(BlockFile::read(base.join(&file), &r, span, &mut file_warnings));
            }
            rules.block_feeds = feeds::read(&mut r, &s, base);
        }
        if let Some(s) = root.table(&mut r, "bans", "bans") {
            s.check_keys(&mut r, &["ipv6_prefix", "capacity"]);
            if let Some(p) = s.uint(&mut r, "ipv6_prefix", 1, 128) {
                rules.bans.ipv6_prefix = p as u8;
            }
            if let Some(c) = s.uint(&mut r, "capacity", 1024, u32::MAX as u64) {
                rules.bans.capacity = c as u32;
            }
        }
        if let Some(s) = root.table(&mut r, "rate_limit", "rate_limit") {
            s.check_keys(&mut r, &["capacity", "report_interval"]);
            if let Some(c) = s.uint(&mut r, "capacity", 1024, u32::MAX as u64) {
                rules.rate_limit.capacity = c as u32;
            }
            if let Some((text, span)) = s.string(&mut r, "report_interval") {
                match duration::parse(&text) {
                    Ok(Some(d)) if d >= Duration::from_millis(10) => rules.rate_limit.report_interval = d,
                    Ok(_) => r.error(Some(span), "`report_interval` must be at least 10ms and not forever"),
                    Err(e) => r.error(Some(span), e),
                }
            }
        }
        if let Some(s) = root.table(&mut r, "services", "services") {
            rules.services = services::read(&mut r, &s);
        }
        if let Some(s) = root.table(&mut r, "sip", "sip") {
            rules.sip = sip::read(&mut r, &s);
            sip::check_service(&mut r, &s, &rules.services);
        }
        let service_names: Vec<&str> = rules.services.iter().map(|s| s.name.as_str()).collect();
        rules.detection = jails::read(&mut r, &root, &service_names);
        rules.alerts = alerts::read(&mut r, &root, base);
        if let Some(s) = root.table(&mut r, "asterisk", "asterisk") {
            rules.asterisk = asterisk::read(&mut r, &s, base);
        }
        if let Some(s) = root.table(&mut r, "crowdsec", "crowdsec") {
            let jails: Vec<&str> = rules.detection.jails.iter().map(|j| j.name.as_str()).collect();
            rules.crowdsec = crowdsec::read(&mut r, &s, base, &jails);
        }

        rules.placed = r.placed;
        let mut diags = r.diags;
        diags.sort_by_key(|d| (d.line, d.column));
        diags.extend(file_warnings);
        if diags.iter().any(Diagnostic::is_error) {
            Err(Rejected(diags))
        } else {
            Ok((rules, diags))
        }
    }

    /// Every blocked network: `[block] sources`, each file's, then each feed's.
    pub fn blocked(&self) -> impl Iterator<Item = &IpNet> {
        self.block
            .iter()
            .chain(self.block_files.iter().flat_map(|f| f.nets.iter()))
            .chain(self.feed_nets.iter().flat_map(|(_, n)| n.iter()))
    }

    /// Puts `nets` in force for the feed `name` (replacing its earlier list).
    pub fn set_feed(&mut self, name: &str, nets: Vec<IpNet>) {
        match self.feed_nets.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = nets,
            None => self.feed_nets.push((name.to_owned(), nets)),
        }
    }

    /// Files whose change should trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.block_files.iter().map(|f| f.path.clone()).collect();
        if let Some(d) = &self.discovered {
            v.extend(d.files.iter().map(|f| d.dir.join(f)));
        }
        v
    }

    /// The faults of every blocklist file.
    pub fn list_faults(&self) -> impl Iterator<Item = &Diagnostic> {
        self.block_files.iter().flat_map(|f| f.faults.iter())
    }

    /// A faulty blocklist file keeps the version `current` holds (the rules in force), so a
    /// truncated download or a bad line never lifts a block. A file new to the rules has no
    /// earlier version: what could be read of it applies.
    /// Feeds keep the lists `current` holds for them (reading the rules file fetches nothing).
    pub fn keep_good_lists(&mut self, current: &Rules) {
        self.feed_nets =
            current.feed_nets.iter().filter(|(n, _)| self.block_feeds.iter().any(|f| &f.name == n)).cloned().collect();
        for f in self.block_files.iter_mut().filter(|f| !f.faults.is_empty()) {
            if let Some(old) = current.block_files.iter().find(|o| o.path == f.path) {
                f.nets = old.nets.clone();
                f.offsets = old.offsets.clone();
                f.kept = true;
            }
        }
        discovery::keep_resolved_trunks(self, current);
    }
}

impl BlockFile {
    /// Reads a blocklist file named at `span` of the rules file `r` is reading; its warnings
    /// go to `warnings`, its errors into its faults.
    fn read(path: PathBuf, r: &Reader, span: std::ops::Range<usize>, warnings: &mut Vec<Diagnostic>) -> BlockFile {
        let mut f = BlockFile { path, nets: Vec::new(), offsets: Vec::new(), faults: Vec::new(), kept: false };
        match std::fs::read_to_string(&f.path) {
            Ok(list) => {
                let shown = f.path.display().to_string();
                let mut fr = Reader::new(&shown, &list);
                f.nets = blocklist::parse(&mut fr, &list);
                f.offsets = fr.placed.iter().map(|o| u32::try_from(*o).unwrap_or(u32::MAX)).collect();
                let (faults, rest) = fr.diags.into_iter().partition(Diagnostic::is_error);
                f.faults = faults;
                warnings.extend(rest);
            }
            Err(e) => f.faults.push(Diagnostic::at(
                Severity::Error,
                r.file,
                r.src,
                Some(span),
                format!("cannot read blocklist `{}`: {e}", f.path.display()),
            )),
        }
        f
    }
}

/// A list of networks bound for the kernel's tables: `cidr_list`, with each network's place
/// recorded in `r.placed`.
pub(crate) fn table_nets(r: &mut Reader, s: &Section, key: &str) -> Option<Vec<IpNet>> {
    let mut out = Vec::new();
    for (text, span) in s.strings(r, key)? {
        if let Some(n) = cidr(r, &text, span.clone()) {
            out.push(n);
            r.placed.push(span.start);
        }
    }
    Some(out)
}

/// A list of addresses and CIDRs (`None` when the key is absent), each bad one reported.
pub(crate) fn cidr_list(r: &mut Reader, s: &Section, key: &str) -> Option<Vec<IpNet>> {
    Some(s.strings(r, key)?.into_iter().filter_map(|(text, span)| cidr(r, &text, span)).collect())
}

fn cidr(r: &mut Reader, text: &str, span: std::ops::Range<usize>) -> Option<IpNet> {
    match cidr::parse(text) {
        Ok((n, truncated)) => {
            if truncated {
                r.warn(Some(span), format!("`{text}` has host bits set; it means {n}"));
            }
            Some(n)
        }
        Err(e) => {
            r.error(Some(span), e);
            None
        }
    }
}

#[cfg(test)]
mod tests;
