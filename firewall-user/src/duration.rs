//! Durations as fail2ban writes them: seconds (`600`), or units (`10m`, `1h30m`, `6h`, `1d`,
//! `1w`, `500ms`); `forever` / `-1` for permanent.

use std::time::Duration;

/// `None` means forever.
pub fn parse(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim().to_ascii_lowercase();
    if t == "forever" || t == "-1" || t == "permanent" {
        return Ok(None);
    }
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Some(Duration::from_secs(secs)));
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
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" | "sec" | "second" | "seconds" => Duration::from_secs(n),
            "m" | "min" | "minute" | "minutes" => Duration::from_secs(n * 60),
            "h" | "hour" | "hours" => Duration::from_secs(n * 3600),
            "d" | "day" | "days" => Duration::from_secs(n * 86400),
            "w" | "week" | "weeks" => Duration::from_secs(n * 7 * 86400),
            _ => return Err(bad(&t)),
        };
        total += d;
    }
    Ok(Some(total))
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
    fn formats_compactly() {
        assert_eq!(format(Some(Duration::from_secs(5400))), "1h30m");
        assert_eq!(format(Some(Duration::from_secs(90061))), "1d1h1m1s");
        assert_eq!(format(None), "forever");
    }
}
