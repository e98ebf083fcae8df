//! Durations as fail2ban writes them: seconds (`600`), or units (`10m`, `1h30m`, `6h`, `1d`,
//! `1w`, `500ms`); `forever` / `-1` for permanent. A finite duration is at most [`MAX`] (100
//! years), so every deadline computed from one fits the clocks it is added to.

use std::time::Duration;

/// The longest finite duration: 100 years. Longer ones are written `forever`.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `None` means forever.
pub fn parse(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim().to_ascii_lowercase();
    if t == "forever" || t == "-1" || t == "permanent" {
        return Ok(None);
    }
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let secs = t.parse::<u64>().map_err(|_| too_long(&t))?;
        return within(&t, Duration::from_secs(secs)).map(Some);
    }
    let mut total = Duration::ZERO;
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad(&t));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad(&t))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (ms, per) = match unit {
            "ms" => (true, 1),
            "s" | "sec" | "second" | "seconds" => (false, 1),
            "m" | "min" | "minute" | "minutes" => (false, 60),
            "h" | "hour" | "hours" => (false, 3600),
            "d" | "day" | "days" => (false, 86400),
            "w" | "week" | "weeks" => (false, 7 * 86400),
            _ => return Err(bad(&t)),
        };
        let amount = n.checked_mul(per).ok_or_else(|| too_long(&t))?;
        let d = if ms { Duration::from_millis(amount) } else { Duration::from_secs(amount) };
        total = within(&t, total.checked_add(d).ok_or_else(|| too_long(&t))?)?;
    }
    Ok(Some(total))
}

fn within(t: &str, d: Duration) -> Result<Duration, String> {
    if d > MAX {
        return Err(too_long(t));
    }
    Ok(d)
}

fn too_long(t: &str) -> String {
    format!("`{t}` is longer than 100 years: write `forever` for a permanent ban")
}

fn bad(t: &str) -> String {
    format!("`{t}` is not a duration: write seconds (600) or units like 10m, 1h30m, 6h, 1d, 1w, or `forever`")
}

/// Compact rendering: `1h30m`, `45s`, `forever`.
pub fn format(d: Option<Duration>) -> String {
    let Some(d) = d else { return "forever".into() };
    let mut s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fail2ban_forms() {
        assert_eq!(parse("600").unwrap(), Some(Duration::from_secs(600)));
        assert_eq!(parse("10m").unwrap(), Some(Duration::from_secs(600)));
        assert_eq!(parse("1h30m").unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1w").unwrap(), Some(Duration::from_secs(604800)));
        assert_eq!(parse("500ms").unwrap(), Some(Duration::from_millis(500)));
        assert_eq!(parse("-1").unwrap(), None);
        assert_eq!(parse("forever").unwrap(), None);
        assert!(parse("10x").unwrap_err().contains("10m"));
        assert!(parse("m").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn refuses_durations_past_the_limit_without_overflowing() {
        assert_eq!(parse("100w").unwrap(), Some(Duration::from_secs(100 * 7 * 86400)));
        assert_eq!(parse(&MAX.as_secs().to_string()).unwrap(), Some(MAX));
        for t in [
            "30000000000000w",
            "18446744073709551615d",
            "99999999999999999999999",
            "5300w",
            "3153600001",
            "18446744073709551615s1s",
        ] {
            assert!(parse(t).unwrap_err().contains("forever"), "{t}");
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(Some(Duration::from_secs(5400))), "1h30m");
        assert_eq!(format(Some(Duration::from_secs(90061))), "1d1h1m1s");
        assert_eq!(format(None), "forever");
    }
}
