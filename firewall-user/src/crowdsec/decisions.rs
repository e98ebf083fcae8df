//! Decisions as the stream carries them, Go's duration text, and which decisions are enforced.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::datapath::bans::normalize;

/// One decision of `GET /v1/decisions/stream`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Decision {
    pub id: i64,
    #[serde(default)]
    pub origin: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub value: String,
    /// Go duration text, the time left (negative once gone).
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub scenario: String,
}

/// One answer of the stream: the decisions new since the last pull, and those deleted or
/// expired. `null` lists are empty.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Stream {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub new: Vec<Decision>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub deleted: Vec<Decision>,
}

fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Decision>, D::Error> {
    Ok(Option::<Vec<Decision>>::deserialize(d)?.unwrap_or_default())
}

/// Go's `time.Duration` text (`1h2m3.5s`, `-10.2ms`, `0s`) in milliseconds, rounded toward zero.
pub fn go_duration_ms(text: &str) -> Option<i64> {
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: i128 = 0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() || int.len() > 20 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut v = int.checked_mul(scale)?;
        let mut place = scale;
        for d in frac.bytes().take(18) {
            place /= 10;
            v += i128::from(d - b'0') * place;
        }
        nanos = nanos.checked_add(v)?;
        rest = tail;
    }
    let ms = i64::try_from(nanos / 1_000_000).ok()?;
    Some(if neg { -ms } else { ms })
}

/// Go duration text for a whole number of seconds (LAPI reads it with `time.ParseDuration`).
pub fn go_duration(secs: u64) -> String {
    format!("{secs}s")
}

/// Why a decision of the stream is not enforced (the `reason` label of
/// `sipwall_crowdsec_decisions_skipped_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Not a `ban` (captcha, throttle, …).
    Type,
    /// Not `Ip` or `Range` (country, AS, user name, …).
    Scope,
    /// An origin the rules leave out.
    Origin,
    /// The value is not an address or network, or the duration is not Go's duration text.
    Invalid,
    /// Already over.
    Expired,
    /// A ban this host made and pushed.
    Own,
    /// The target is allow-listed.
    AllowListed,
    /// The ban table is full, or the kernel refused the ban.
    Refused,
}

impl Skip {
    pub const ALL: [Skip; 8] = [
        Skip::Type,
        Skip::Scope,
        Skip::Origin,
        Skip::Invalid,
        Skip::Expired,
        Skip::Own,
        Skip::AllowListed,
        Skip::Refused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Skip::Type => "type",
            Skip::Scope => "scope",
            Skip::Origin => "origin",
            Skip::Invalid => "invalid",
            Skip::Expired => "expired",
            Skip::Own => "own",
            Skip::AllowListed => "allow_listed",
            Skip::Refused => "refused",
        }
    }
}

/// The target of an `Ip` or `Range` decision, normalized as the ban table keys it.
pub fn target(d: &Decision, v6_prefix: u8) -> Result<IpNet, Skip> {
    let net = if d.scope.eq_ignore_ascii_case("ip") {
        let a: IpAddr = d.value.trim().parse().map_err(|_| Skip::Invalid)?;
        IpNet::from(a)
    } else if d.scope.eq_ignore_ascii_case("range") {
        d.value.trim().parse::<IpNet>().map_err(|_| Skip::Invalid)?
    } else {
        return Err(Skip::Scope);
    };
    Ok(normalize(net, v6_prefix))
}

/// A new decision to enforce, or why not: its target and its end (unix ms).
pub fn admit(d: &Decision, origins: &[String], v6_prefix: u8, now_ms: u64) -> Result<(IpNet, u64), Skip> {
    if !d.kind.eq_ignore_ascii_case("ban") {
        return Err(Skip::Type);
    }
    let target = target(d, v6_prefix)?;
    if !origins.is_empty() && !origins.iter().any(|o| o.eq_ignore_ascii_case(&d.origin)) {
        return Err(Skip::Origin);
    }
    let left = go_duration_ms(&d.duration).ok_or(Skip::Invalid)?;
    if left <= 0 {
        return Err(Skip::Expired);
    }
    Ok((target, now_ms.saturating_add(left as u64)))
}
