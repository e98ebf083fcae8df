//! Programs from Debian packages that offline tests run (promtool): present, skipped loudly when
//! missing outside CI, a failure under `CI=true`.

use std::{io::Write, process::Command};

/// Whether `CI` is set to something other than empty, `0` or `false`.
pub fn ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false)
}

/// Whether `program` runs (`program --version`). When it does not, the calling test `test` is
/// skipped loudly, or fails under CI; `package` is the Debian package that ships it.
pub fn available(program: &str, package: &str, test: &str) -> bool {
    if Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let what = format!("{program} is missing: `scripts/setup --test` installs Debian's {package} package");
    if ci() {
        panic!("{test}: {what}");
    }
    // written past the test harness's capture, so that a skip is seen
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {what}. Set CI=true to turn this into a failure. ***\n");
    false
}
