//! Whether rules fit the kernel's tables, and where they stop fitting: the first network, in
//! reading order, with which they no longer do. Found by bisection over the rules cut after k
//! networks (allow list, blocked sources, each service's `allow_from`, then every blocklist
//! file's entries), so the answer names the file and line an admin has to change.

use super::{clock::KernelClock, enforcer::Enforcer, tables::fake::FakeTables};
use crate::rules::{Diagnostic, Rules, Severity};

/// Table entries the rules take when they fit: (IPv4, IPv6).
pub type Entries = (usize, usize);

/// Compiles `rules` into in-memory tables the size the kernel's are, as applying them would
/// (with a length left for the IPv6 bans).
pub fn fits(rules: &Rules) -> Result<Entries, String> {
    let e =
        Enforcer::new(FakeTables::default(), rules.clone(), KernelClock::synthetic(250)).map_err(|e| e.to_string())?;
    Ok(e.nets().entries())
}

/// Checks that `rules` fit; when they do not, the error names the network that pushes them past
/// the limit (or, when no network does, the rules file).
pub fn check(rules: &Rules) -> Result<Entries, Diagnostic> {
    let err = match fits(rules) {
        Ok(n) => return Ok(n),
        Err(e) => e,
    };
    let total = count(rules);
    if total == 0 || fits(&cut(rules, 0)).is_err() {
        return Err(Diagnostic::at(Severity::Error, &rules.origin, "", None, format!("the rules do not fit: {err}")));
    }
    // fits(cut(lo)) and not fits(cut(hi))
    let (mut lo, mut hi) = (0, total);
    let mut why = err;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match fits(&cut(rules, mid)) {
            Ok(_) => lo = mid,
            Err(e) => {
                hi = mid;
                why = e;
            }
        }
    }
    Err(place(rules, hi - 1, format!("with this network the rules no longer fit the kernel's tables: {why}")))
}

/// Networks bound for the tables, in reading order.
fn count(rules: &Rules) -> usize {
    rules.placed.len() + rules.block_files.iter().map(|f| f.nets.len()).sum::<usize>()
}

/// `rules` with only their first `k` networks.
fn cut(rules: &Rules, k: usize) -> Rules {
    let mut left = k;
    let mut take = |v: &mut Vec<ipnet::IpNet>| {
        v.truncate(left);
        left -= v.len();
    };
    let mut r = rules.clone();
    take(&mut r.allow);
    take(&mut r.block);
    for s in &mut r.services {
        if let Some(v) = &mut s.allow_from {
            take(v);
        }
    }
    for f in &mut r.block_files {
        take(&mut f.nets);
    }
    r
}

/// A diagnostic at the `i`th network in reading order.
fn place(rules: &Rules, i: usize, msg: String) -> Diagnostic {
    if let Some(&at) = rules.placed.get(i) {
        return Diagnostic::at(Severity::Error, &rules.origin, &rules.text, Some(at..at + 1), msg);
    }
    let mut i = i - rules.placed.len();
    for f in &rules.block_files {
        if i < f.nets.len() {
            let name = f.path.display().to_string();
            let text = std::fs::read_to_string(&f.path).unwrap_or_default();
            let at = f.offsets.get(i).map(|o| *o as usize).filter(|o| *o < text.len());
            return Diagnostic::at(Severity::Error, &name, &text, at.map(|o| o..o + 1), msg);
        }
        i -= f.nets.len();
    }
    Diagnostic::at(Severity::Error, &rules.origin, "", None, msg)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    #[test]
    fn names_the_line_that_brings_a_33rd_ipv6_length() {
        let dir = std::env::temp_dir().join(format!("sipwall-fit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 32 lengths from /33 to /64 (the ban prefix among them), in a list file
        let mut list = String::from("# feed\n");
        for len in 33..=64u32 {
            writeln!(list, "2001:{len:x}00::/{len}").unwrap();
        }
        std::fs::write(dir.join("v6.txt"), &list).unwrap();
        let text = "[block]\nfiles = [\"v6.txt\"]\n";
        let (rules, _) = Rules::parse("t.toml", text, &dir).unwrap();
        assert_eq!(check(&rules).unwrap().1, 32);

        // a 33rd length on line 34 of the file
        list.push_str("2001:ff00::/40\n2001:db9::/65\n2001:db8:1::/48\n");
        std::fs::write(dir.join("v6.txt"), &list).unwrap();
        let (rules, _) = Rules::parse("t.toml", text, &dir).unwrap();
        let d = check(&rules).unwrap_err();
        assert_eq!((d.file.as_str(), d.line, d.column), (dir.join("v6.txt").to_str().unwrap(), 35, 1), "{d}");
        assert!(d.message.contains("33 different lengths"), "{d}");

        // with the ban prefix outside the 32 used, the 32nd length is already one too many
        let text2 = "[block]\nfiles = [\"v6.txt\"]\n[bans]\nipv6_prefix = 128\n";
        let (rules, _) = Rules::parse("t.toml", text2, &dir).unwrap();
        let d = check(&rules).unwrap_err();
        assert_eq!(d.line, 33, "{d}");
        assert!(d.message.contains("would need one more"), "{d}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_the_inline_entry_that_fills_the_table() {
        // 1024 entries for the lists and 1024 for the bans: /22s expand to four /24 entries each
        let mut text = String::from("[bans]\ncapacity = 1024\n[block]\ncapacity = 1024\nsources = [\n");
        for i in 0..600u32 {
            writeln!(text, "  \"10.{}.{}.0/22\",", i / 64, (i % 64) * 4).unwrap();
        }
        text.push_str("]\n");
        let (rules, _) = Rules::parse("t.toml", &text, std::path::Path::new("/")).unwrap();
        let d = check(&rules).unwrap_err();
        // entry 513 (0-based 512) is the first whose four entries do not fit
        assert_eq!((d.file.as_str(), d.line, d.column), ("t.toml", 6 + 512, 4), "{d}");
        assert!(d.message.contains("is full"), "{d}");
        assert!(d.excerpt.as_deref().unwrap().contains("10.8.0.0/22"), "{d:?}");
    }
}
