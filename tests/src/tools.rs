//! Programs from Debian packages that offline tests run (promtool): present, skipped loudly when
//! missing outside CI, a failure under `CI=true`.

use std::{io::Write, process::Command};

use crate::ci;

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
