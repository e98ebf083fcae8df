//! A systemd unit file read as systemd reads the parts the tests run: `[Section]`s of `Key=value`
//! lines, repeated keys kept in order, and command lines with `$VAR`/`${VAR}` expanded from an
//! environment. The package test runs the unit's own command lines with them, under the unit's
//! capability bounding set.

use std::collections::BTreeMap;

pub struct Unit {
    /// (section, key) → the values in file order.
    entries: BTreeMap<(String, String), Vec<String>>,
}

impl Unit {
    pub fn parse(text: &str) -> Unit {
        let mut entries: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not Key=value: {line}"));
            entries.entry((section.clone(), key.trim().to_owned())).or_default().push(value.trim().to_owned());
        }
        Unit { entries }
    }

    /// Every value of `key` in `section`, in order.
    pub fn all(&self, section: &str, key: &str) -> &[String] {
        self.entries.get(&(section.to_owned(), key.to_owned())).map_or(&[], Vec::as_slice)
    }

    /// The one value of `key` in `section`.
    pub fn one(&self, section: &str, key: &str) -> &str {
        match self.all(section, key) {
            [v] => v,
            other => panic!("[{section}] {key}: expected one value, found {other:?}"),
        }
    }

    /// `Environment=` assignments of `[Service]`, then `env` over them (as an `EnvironmentFile=`
    /// would be).
    pub fn environment(&self, env: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for line in self.all("Service", "Environment") {
            for word in line.split_whitespace() {
                let (k, v) = word.split_once('=').unwrap_or_else(|| panic!("Environment={line}"));
                out.insert(k.to_owned(), v.to_owned());
            }
        }
        out.extend(env.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
        out
    }

    /// The capabilities of `CapabilityBoundingSet=`, as `setpriv --bounding-set` names them
    /// (`cap_net_admin` → `net_admin`).
    pub fn bounding_set(&self) -> Vec<String> {
        self.all("Service", "CapabilityBoundingSet")
            .iter()
            .flat_map(|l| l.split_whitespace())
            .map(|c| c.to_ascii_lowercase().trim_start_matches("cap_").to_owned())
            .collect()
    }
}

/// Splits a command line into words and expands variables as systemd does: `${VAR}` is one
/// word, `$VAR` as a word of its own splits its value on whitespace; unset variables are empty.
pub fn command_line(line: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for word in line.split_whitespace() {
        if let Some(name) = word.strip_prefix('$').filter(|n| !n.starts_with('{')) {
            out.extend(env.get(name).map(String::as_str).unwrap_or("").split_whitespace().map(str::to_owned));
            continue;
        }
        let mut expanded = String::new();
        let mut rest = word;
        while let Some(at) = rest.find("${") {
            expanded.push_str(&rest[..at]);
            let end = rest[at..].find('}').map(|e| at + e).unwrap_or_else(|| panic!("unclosed ${{ in {line}"));
            expanded.push_str(env.get(&rest[at + 2..end]).map_or("", String::as_str));
            rest = &rest[end + 1..];
        }
        expanded.push_str(rest);
        out.push(expanded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_repeated_keys_and_expands_like_systemd() {
        let u = Unit::parse(
            "[Unit]\nDescription=x\n\n[Service]\n# comment\nEnvironment=A=/etc/a B=2\nEnvironment=C=3\n\
             ExecStart=/bin/x run ${A} $OPTS --n=${B}\nCapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN\n",
        );
        assert_eq!(u.one("Unit", "Description"), "x");
        assert_eq!(u.bounding_set(), ["bpf", "net_admin"]);
        let env = u.environment(&[("OPTS", "--a  --b"), ("C", "4")]);
        assert_eq!(env["A"], "/etc/a");
        assert_eq!(env["C"], "4", "the environment file wins");
        assert_eq!(
            command_line(u.one("Service", "ExecStart"), &env),
            ["/bin/x", "run", "/etc/a", "--a", "--b", "--n=2"]
        );
        assert_eq!(command_line("/bin/x $NONE ${NONE}", &env), ["/bin/x", ""]);
    }
}
