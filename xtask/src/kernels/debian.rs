//! The kernels of the matrix: Debian's packages, found by asking apt, downloaded with
//! `apt-get download` and unpacked (never installed) under `target/kernels/packages/`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// A kernel of the matrix, found by asking apt.
pub struct Kernel {
    /// Short name: the column of the report and the directory under `target/kernels/`.
    pub series: &'static str,
    /// Who runs it.
    pub distribution: &'static str,
    query: Query,
}

enum Query {
    /// The unsigned image behind what this metapackage depends on.
    DependencyOf(&'static str),
    /// The newest unsigned image whose name starts with the prefix and ends with the suffix.
    Newest(&'static str, &'static str),
}

pub const MATRIX: [Kernel; 2] = [
    Kernel { series: "6.1", distribution: "Debian 12", query: Query::DependencyOf("linux-image-amd64") },
    Kernel {
        series: "6.12",
        distribution: "Debian 13 (and Debian 12 backports)",
        query: Query::Newest("linux-image-6.12.", "-amd64-unsigned"),
    },
];

/// Runs `cmd`; its standard output, or what it said on failure.
pub(super) fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compares Debian version-ish strings number by number (6.12.9 < 6.12.10).
fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(|p| p.parse().unwrap_or(0)).collect()
}

impl Kernel {
    /// The package name of this kernel's unsigned image, as apt knows it now.
    fn package(&self) -> Result<String, String> {
        let found = match &self.query {
            Query::DependencyOf(meta) => {
                let deps = sh(Command::new("apt-cache").args(["depends", meta]))?;
                deps.lines()
                    .filter_map(|l| l.trim().strip_prefix("Depends: "))
                    .find(|p| p.starts_with("linux-image-") && !p.ends_with("-unsigned"))
                    .map(|p| format!("{p}-unsigned"))
            }
            Query::Newest(prefix, suffix) => {
                let names = sh(Command::new("apt-cache").args(["pkgnames", prefix]))?;
                names
                    .lines()
                    .filter(|n| n.ends_with(suffix) && !n.contains("-rt-") && !n.contains("-cloud-"))
                    .max_by_key(|n| version_key(n))
                    .map(str::to_owned)
            }
        };
        found.ok_or_else(|| format!("apt knows no {} kernel package (run apt-get update)", self.series))
    }

    /// Downloads and unpacks the kernel under `dir` unless it is there; returns its vmlinuz.
    pub fn fetch(&self, dir: &Path) -> Result<PathBuf, String> {
        let mut package = self.package();
        if package.is_err() {
            sh(Command::new("apt-get").args(["update", "-qq"]))?;
            package = self.package();
        }
        let package = package?;
        let root = dir.join(&package);
        if vmlinuz(&root).is_none() {
            eprintln!("==> kernel {}: downloading {package}", self.series);
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for old in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
                if old.file_name().to_string_lossy().ends_with(".deb") {
                    let _ = fs::remove_file(old.path());
                }
            }
            sh(Command::new("apt-get").args(["download", "-qq", &package]).current_dir(dir))?;
            let deb = fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "deb"))
                .ok_or_else(|| format!("apt-get download {package} left no .deb in {}", dir.display()))?;
            let _ = fs::remove_dir_all(&root);
            sh(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
            let _ = fs::remove_file(&deb);
            // an older build of this series is not needed any more
            for old in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
                if old.path() != root && old.path().is_dir() {
                    let _ = fs::remove_dir_all(old.path());
                }
            }
        }
        vmlinuz(&root).ok_or_else(|| format!("{package} has no boot/vmlinuz-*"))
    }
}

fn vmlinuz(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root.join("boot"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_sort_by_number() {
        let mut v = ["linux-image-6.12.9+deb12-amd64-unsigned", "linux-image-6.12.117+deb12-amd64-unsigned"];
        v.sort_by_key(|n| version_key(n));
        assert_eq!(v[1], "linux-image-6.12.117+deb12-amd64-unsigned");
    }
}
