//! fail2ban's value syntaxes: booleans, times (`10m`, `1h 30m`, `-1`), `name[opt=value, …]`,
//! `ignoreip` entries and `journalmatch`.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

/// fail2ban's `_as_bool`: `1`, `on`, `true`, `yes` (any case) are true, anything else false.
pub fn as_bool(v: &str) -> bool {
    matches!(v.trim().to_lowercase().as_str(), "1" | "on" | "true" | "yes")
}

/// A time as fail2ban's `str2seconds` reads it: seconds, or numbers with units (`10m`,
/// `1h 30m`, `1d`, `2w`, `1mo`, `1y`), parts added; `None` for `-1` (and any negative), which
/// fail2ban's `bantime` takes as forever. Arithmetic beyond adding parts is refused.
pub fn seconds(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim().to_lowercase();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(u64::try_from(n).ok());
    }
    let bad = || format!("`{text}` is not a time sipwall can read (seconds, or parts like 10m, 1h 30m, 1d)");
    let mut total: u64 = 0;
    let mut rest = t.as_str();
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '+');
        if rest.is_empty() {
            break;
        }
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let per: u64 = match unit {
            "" | "s" | "ss" | "se" | "sec" | "second" | "seconds" => 1,
            "m" | "mm" | "mi" | "min" | "minute" | "minutes" => 60,
            "h" | "hh" | "ho" | "hou" | "hour" | "hours" => 3600,
            "d" | "dd" | "da" | "day" | "days" => 86_400,
            "w" | "ww" | "we" | "wee" | "week" | "weeks" => 7 * 86_400,
            // fail2ban's month and year count leap years: 365.25 days a year
            "mo" | "mon" | "month" | "months" => 2_629_800,
            "y" | "yy" | "ye" | "yea" | "year" | "years" => 31_557_600,
            _ => return Err(bad()),
        };
        total = n.checked_mul(per).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
        any = true;
    }
    if !any {
        return Err(bad());
    }
    Ok(Some(total))
}

/// A duration as the rules file writes it: `10m`, `1h30m`, `forever`.
pub fn duration(secs: Option<u64>) -> String {
    crate::duration::format(secs.map(std::time::Duration::from_secs))
}

/// `name[opt=value, opt2="v", …][…]` (fail2ban's `extractOptions`): the name and the options.
pub fn name_and_options(text: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let text = text.trim();
    let Some(open) = text.find('[') else { return Ok((text.to_owned(), BTreeMap::new())) };
    let name = text[..open].trim().to_owned();
    let mut opts = BTreeMap::new();
    let mut rest = &text[open + 1..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if let Some(r) = rest.strip_prefix(']') {
            rest = r.trim_start();
            match rest.strip_prefix('[') {
                Some(r) => {
                    rest = r;
                    continue;
                }
                None if rest.is_empty() => return Ok((name, opts)),
                None => return Err(format!("`{text}`: unexpected `{rest}` after `]`")),
            }
        }
        let eq = rest.find('=').ok_or_else(|| format!("`{text}`: expected `option=value` at `{rest}`"))?;
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("`{text}`: `{key}` is not an option name"));
        }
        rest = rest[eq + 1..].trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let end = rest[1..].find(q).ok_or_else(|| format!("`{text}`: unterminated {q}"))?;
                let v = &rest[1..1 + end];
                rest = &rest[end + 2..];
                v
            }
            _ => {
                let end = rest.find([',', ']']).ok_or_else(|| format!("`{text}`: missing `]`"))?;
                let v = &rest[..end];
                rest = &rest[end..];
                v
            }
        };
        opts.insert(key.to_owned(), value.trim().to_owned());
    }
}

/// fail2ban's `splitwords`: entries separated by spaces, commas or new lines.
pub fn words(text: &str) -> Vec<&str> {
    text.split([' ', ',', '\n', '\t']).map(str::trim).filter(|w| !w.is_empty()).collect()
}

/// An `ignoreip` entry as a network: `ADDR`, `ADDR/LEN` or `ADDR/NETMASK` (IPv4), host bits
/// cleared. `Err` for what is no address (a host name).
pub fn network(entry: &str) -> Result<IpNet, String> {
    let (addr, len) = match entry.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (entry, None),
    };
    let addr: IpAddr = addr.trim_matches(['[', ']']).parse().map_err(|_| format!("`{entry}` is not an address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match (l.parse::<u8>(), l.parse::<std::net::Ipv4Addr>()) {
            (Ok(n), _) if n <= max => n,
            (_, Ok(mask)) if addr.is_ipv4() => {
                let m = u32::from(mask);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(format!("`{entry}`: the netmask is not contiguous"));
                }
                m.leading_ones() as u8
            }
            _ => return Err(format!("`{entry}`: bad prefix length")),
        },
    };
    IpNet::new(addr, len).map(|n| n.trunc()).map_err(|e| format!("`{entry}`: {e}"))
}

/// `journalmatch` as the alternatives it stands for: each line, and each group between `+`, is
/// one alternative of `FIELD=VALUE` matches that must all hold.
pub fn journal_alternatives(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut group = Vec::new();
        for w in line.split_whitespace() {
            if w == "+" {
                if !group.is_empty() {
                    out.push(std::mem::take(&mut group));
                }
            } else {
                group.push(w.trim_matches(['"', '\'']).to_owned());
            }
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}
