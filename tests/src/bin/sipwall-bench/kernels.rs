//! The verifier's work for each program on each kernel of the matrix, read from the report of
//! the kernel tier's verifier test, which `cargo xtask bench` runs first (it boots the kernels
//! under qemu) and names in `SIPWALL_KERNEL_REPORT`.

use serde_json::Value;

/// Returns the section's Markdown.
pub fn run() -> String {
    let Some(path) = std::env::var_os("SIPWALL_KERNEL_REPORT") else {
        return "Not measured: `cargo xtask bench` boots the kernels of the matrix and reports here.\n".to_owned();
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    let report: Vec<Value> = serde_json::from_str(&text).expect("the kernel tier's report");
    let kernels: Vec<String> = report
        .iter()
        .map(|k| format!("{} (`{}`)", k["kernel"].as_str().unwrap_or("?"), k["release"].as_str().unwrap_or("?")))
        .collect();
    let mut programs: Vec<String> =
        report.iter().filter_map(|k| k["verifier_instructions"].as_object()).flat_map(|m| m.keys().cloned()).collect();
    programs.sort();
    programs.dedup();
    let mut md = format!(
        "| program (instructions processed) | {} |\n|---|{}\n",
        kernels.join(" | "),
        "---:|".repeat(kernels.len())
    );
    for p in &programs {
        let cells: Vec<String> = report
            .iter()
            .map(|k| k["verifier_instructions"][p].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "?".to_owned()))
            .collect();
        md.push_str(&format!("| `{p}` | {} |\n", cells.join(" | ")));
    }
    md
}
