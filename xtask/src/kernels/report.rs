//! The kernel tier's report: the kernel × feature table with the verifier's work per program
//! (markdown, and the table docs/building.md shows), and the same as JSON.

use std::{fs, path::Path};

use serde_json::{json, Value};

use super::{Outcome, TESTS};

/// The report: the kernel × feature table and the verifier's work.
pub fn report(outcomes: &[Outcome]) -> (String, Value) {
    let header = |f: &dyn Fn(&Outcome) -> String| outcomes.iter().map(f).collect::<Vec<_>>().join(" | ");
    let mut md = String::new();
    md.push_str(&format!("| | {} |\n", header(&|o| format!("{} (`{}`)", o.column, o.release))));
    md.push_str(&format!("|---|{}\n", "---|".repeat(outcomes.len())));
    let verdict_tests = |o: &Outcome| {
        let (p, f) = TESTS.iter().filter(|t| t.binary == "verdict").fold((0, 0), |(p, f), t| {
            let (tp, tf, _) = o.tests.get(t.name).copied().unwrap_or_default();
            (p + tp, f + tf)
        });
        if f == 0 && p > 0 {
            format!("{p} passed")
        } else {
            format!("**{p} passed, {f} failed**")
        }
    };
    let feature = |o: &Outcome, name: &str| match o.features.get(name) {
        Some(1) => "yes".to_owned(),
        Some(_) => "**no**".to_owned(),
        None => "?".to_owned(),
    };
    let attach = |o: &Outcome| match o.tests.get("kernel_features") {
        Some((_, 0, _)) if !o.failed.iter().any(|f| f.starts_with("kernel_features")) => "passed".to_owned(),
        Some(_) => "**failed**".to_owned(),
        None => "?".to_owned(),
    };
    md.push_str(&format!("| verdict tests (BPF_PROG_TEST_RUN) | {} |\n", header(&verdict_tests)));
    md.push_str(&format!(
        "| attach test: `sipwall run` on veth, scanner dropped, ban, egress 403s, SIGKILL and restart | {} |\n",
        header(&attach)
    ));
    md.push_str(&format!(
        "| SIP inspector (`sipwall_sip`, `sipwall_sip_full`) | {} |\n",
        header(&|o| feature(o, "sip_inspector"))
    ));
    md.push_str(&format!(
        "| egress classifier (`sipwall_egress`) | {} |\n",
        header(&|o| feature(o, "egress_classifier"))
    ));
    md.push_str(&format!(
        "| egress hook | {} |\n",
        header(&|o| match o.features.get("tcx") {
            Some(1) => "TCX".to_owned(),
            Some(_) => "clsact qdisc".to_owned(),
            None => "?".to_owned(),
        })
    ));
    let programs: Vec<String> = {
        let mut p: Vec<String> = outcomes.iter().flat_map(|o| o.verifier.keys().cloned()).collect();
        p.sort();
        p.dedup();
        p
    };
    for p in &programs {
        md.push_str(&format!(
            "| verifier: instructions processed for `{p}` | {} |\n",
            header(&|o| o.verifier.get(p).map(|n| group(*n)).unwrap_or_else(|| "?".to_owned()))
        ));
    }
    let json = json!(outcomes
        .iter()
        .map(|o| json!({
            "kernel": o.column,
            "release": o.release,
            "tests": o.tests.iter().map(|(k, (p, f, s))| (k.clone(), json!({"passed": p, "failed": f, "seconds": s}))).collect::<serde_json::Map<_, _>>(),
            "failed": o.failed,
            "verifier_instructions": o.verifier,
            "features": o.features,
        }))
        .collect::<Vec<_>>());
    (md, json)
}

/// Puts `table` between the kernel-matrix markers of the document at `path`.
pub fn write_docs(path: &Path, table: &str) -> Result<(), String> {
    const BEGIN: &str = "<!-- kernel-matrix:begin -->\n";
    const END: &str = "<!-- kernel-matrix:end -->";
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("{} has no {BEGIN:?} … {END:?} markers", path.display()));
    };
    let out = format!("{}{table}{}", &text[..b + BEGIN.len()], &text[e..]);
    fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// 123456 → "123,456".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(999), "999");
    }
}
