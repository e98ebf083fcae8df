//! `bantime.increment` and its `bantime.*` options as `[jails.NAME.increment]`.

use super::{jail::Jail, model::Increment, values};

/// fail2ban's formula when `bantime.formula` is not set.
const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";

/// The jail's `bantime.increment` and the options that shape it.
pub(super) fn read(j: &mut Jail, window: Option<u64>) -> Increment {
    if !j.get("bantime.increment").is_some_and(|v| values::as_bool(&v)) {
        return Increment::Off;
    }
    let mut factor = j.get("bantime.factor").and_then(|f| match f.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1000.0 => Some(f),
        _ => None,
    });
    let mut multipliers = Vec::new();
    if let Some(m) = j.get("bantime.multipliers") {
        match values::words(&m).iter().map(|w| w.parse::<u32>()).collect::<Result<Vec<_>, _>>() {
            Ok(v) if !v.is_empty() => multipliers = v,
            _ => j.note("bantime.multipliers", format!("`bantime.multipliers = {m}`: not a list of whole numbers")),
        }
    }
    if let (Some(f), false) = (factor, multipliers.is_empty()) {
        // fail2ban multiplies by the factor too; sipwall's multipliers stand alone
        let scaled: Vec<f64> = multipliers.iter().map(|&m| f64::from(m) * f).collect();
        if scaled.iter().all(|s| s.fract() == 0.0 && *s >= 1.0 && *s <= 100_000.0) {
            multipliers = scaled.iter().map(|&s| s as u32).collect();
        } else {
            j.note(
                "bantime.factor",
                format!("`bantime.factor = {f}` with multipliers that it does not turn into whole numbers"),
            );
        }
        factor = None;
    }
    if let Some(f) = j.get("bantime.formula").filter(|f| f.trim() != DEFAULT_FORMULA) {
        j.note(
            "bantime.formula",
            format!("`bantime.formula = {f}`: sipwall doubles the ban (× factor) or uses multipliers"),
        );
    }
    if j.get("bantime.rndtime").is_some_and(|r| !r.trim().is_empty()) {
        j.note("bantime.rndtime", "`bantime.rndtime`: sipwall adds no random time to bans".into());
    }
    let maxtime = j.get("bantime.maxtime").filter(|m| !m.trim().is_empty()).and_then(|m| match values::seconds(&m) {
        Ok(s) => s,
        Err(e) => {
            j.note("bantime.maxtime", e);
            None
        }
    });
    let overalljails = j.get("bantime.overalljails").is_some_and(|v| values::as_bool(&v));
    Increment::On { factor: factor.filter(|&f| f != 1.0), multipliers, maxtime, overalljails, window }
}
