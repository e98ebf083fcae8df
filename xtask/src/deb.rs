//! `cargo xtask deb [--binary PATH]`: the Debian package, `target/debian/sipwall_VERSION_ARCH.deb`.
//!
//! The tree is laid out from the repository (the unit, the default rules as a conffile, the
//! maintainer scripts and the dashboards under `dist/`) and from the binary itself (its manual
//! pages and shell completions, generated from its command line), then `dpkg-deb` builds it.
//! Without `--binary` a release build is packaged; the test tiers package the debug build.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::{cargo, root, run};

/// Where the binary goes: an administrator's command, like `nft` and `ipset`.
pub const SBIN: &str = "usr/sbin/sipwall";
/// Files under `/etc` that dpkg keeps when the administrator changed them.
const CONFFILES: [&str; 2] = ["/etc/sipwall/rules.toml", "/etc/default/sipwall"];
/// Copied as they are: (repository path, package path, mode).
const FILES: [(&str, &str, u32); 4] = [
    ("rules/default.toml", "etc/sipwall/rules.toml", 0o644),
    ("dist/debian/sipwall.default", "etc/default/sipwall", 0o644),
    ("dist/systemd/sipwall.service", "lib/systemd/system/sipwall.service", 0o644),
    ("dist/debian/copyright", "usr/share/doc/sipwall/copyright", 0o644),
];
/// Every file in these repository directories goes into `/usr/share/sipwall/NAME/`.
const SHARED: [&str; 2] = ["dist/grafana", "dist/prometheus"];
const SCRIPTS: [&str; 3] = ["postinst", "prerm", "postrm"];
/// (shell, package path) of the completion scripts.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "usr/share/bash-completion/completions/sipwall"),
    ("zsh", "usr/share/zsh/vendor-completions/_sipwall"),
    ("fish", "usr/share/fish/vendor_completions.d/sipwall.fish"),
];

pub fn deb(args: &[String]) {
    let binary = match args.iter().position(|a| a == "--binary") {
        Some(i) => PathBuf::from(args.get(i + 1).expect("--binary PATH")),
        None => {
            let mut b = cargo();
            b.args(["build", "--release", "--package", "firewall-user", "--bin", "sipwall"]);
            run("release build", b);
            root().join("target/release/sipwall")
        }
    };
    let deb = build(&binary, Compression::Small);
    eprintln!("==> {}", deb.display());
}

/// How `dpkg-deb` compresses the data.
#[derive(Clone, Copy)]
pub enum Compression {
    /// xz, as Debian's archive: the package to ship.
    Small,
    /// gzip at its fastest: a debug build for the tests, ten times the size of a release one.
    Fast,
}

/// Lays out the package tree for `binary` and builds the package; returns its path.
pub fn build(binary: &Path, compression: Compression) -> PathBuf {
    let binary = &fs::canonicalize(binary).unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let out = root().join("target/debian");
    let tree = out.join("tree");
    if tree.exists() {
        fs::remove_dir_all(&tree).expect("remove the previous package tree");
    }
    install(binary, &tree.join(SBIN), 0o755);
    for (from, to, mode) in FILES {
        install(&root().join(from), &tree.join(to), mode);
    }
    for dir in SHARED {
        let name = Path::new(dir).file_name().unwrap();
        for entry in fs::read_dir(root().join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let from = entry.unwrap().path();
            let to = tree.join("usr/share/sipwall").join(name).join(from.file_name().unwrap());
            install(&from, &to, 0o644);
        }
    }
    manual(binary, &tree);
    for (shell, to) in COMPLETIONS {
        let script = output(Command::new(binary).args(["completions", shell]));
        write(&tree.join(to), &script, 0o644);
    }
    install(&root().join("README.md"), &tree.join("usr/share/doc/sipwall/README.md"), 0o644);
    for entry in fs::read_dir(root().join("docs")).expect("docs") {
        let from = entry.unwrap().path();
        install(&from, &tree.join("usr/share/doc/sipwall/docs").join(from.file_name().unwrap()), 0o644);
    }

    let debian = tree.join("DEBIAN");
    for script in SCRIPTS {
        install(&root().join("dist/debian").join(script), &debian.join(script), 0o755);
    }
    write(&debian.join("conffiles"), format!("{}\n", CONFFILES.join("\n")).as_bytes(), 0o644);
    write(&debian.join("md5sums"), &md5sums(&tree), 0o644);
    let arch = String::from_utf8(output(Command::new("dpkg").arg("--print-architecture"))).unwrap();
    let (version, arch) = (env!("CARGO_PKG_VERSION"), arch.trim());
    write(&debian.join("control"), control(version, arch, &depends(binary, &out), &tree).as_bytes(), 0o644);

    let deb = out.join(format!("sipwall_{version}_{arch}.deb"));
    let mut b = Command::new("dpkg-deb");
    b.arg("--root-owner-group");
    b.args(match compression {
        Compression::Small => ["-Zxz", "-z6"],
        Compression::Fast => ["-Zgzip", "-z1"],
    });
    b.arg("--build").arg(&tree).arg(&deb);
    run("dpkg-deb --build", b);
    deb
}

fn control(version: &str, arch: &str, depends: &str, tree: &Path) -> String {
    let size_kib = output(Command::new("du").args(["-sk", "--exclude=DEBIAN"]).arg(tree));
    let size_kib = String::from_utf8(size_kib).unwrap();
    let size_kib = size_kib.split_whitespace().next().expect("du output");
    format!(
        "Package: sipwall\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: sipwall developers <sipwall@users.noreply.github.com>\n\
         Installed-Size: {size_kib}\n\
         Depends: {depends}\n\
         Suggests: prometheus, grafana\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://github.com/sipwall/sipwall\n\
         Description: SIP-aware XDP firewall for Asterisk and other VoIP hosts\n \
         One XDP program drops, in the network driver, banned sources, blocked networks,\n \
         sources outside a service's allow list and over its rate limit, SIP scanners and\n \
         non-SIP payloads on the SIP port. A daemon reads Asterisk and sshd logs and bans\n \
         with fail2ban's semantics (findtime, maxretry, bantime, ignoreip, recidive), keeps\n \
         bans across restarts and serves Prometheus metrics.\n"
    )
}

/// The shared libraries' packages, as `dpkg-shlibdeps` (dpkg-dev) works them out.
fn depends(binary: &Path, out: &Path) -> String {
    let dir = out.join("shlibs");
    write(&dir.join("debian/control"), b"Source: sipwall\n\nPackage: sipwall\nArchitecture: any\n", 0o644);
    let mut c = Command::new("dpkg-shlibdeps");
    c.current_dir(&dir).arg("-O").arg("-e").arg(binary);
    let text = String::from_utf8(output(&mut c)).unwrap();
    let deps = text
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or_else(|| panic!("dpkg-shlibdeps gave no shlibs:Depends: {text}"));
    deps.trim().to_owned()
}

/// `sipwall man DIR`, each page compressed as Debian keeps them.
fn manual(binary: &Path, tree: &Path) {
    let dir = tree.join("usr/share/man/man8");
    output(Command::new(binary).arg("man").arg(&dir));
    let mut gz = Command::new("gzip");
    gz.args(["-9", "-n"]);
    for entry in fs::read_dir(&dir).unwrap() {
        gz.arg(entry.unwrap().path());
    }
    run("compress the manual pages", gz);
}

fn md5sums(tree: &Path) -> Vec<u8> {
    let mut files = Vec::new();
    walk(tree, &mut files);
    files.retain(|f| !f.starts_with(tree.join("DEBIAN")));
    files.sort();
    let mut c = Command::new("md5sum");
    c.current_dir(tree).args(files.iter().map(|f| f.strip_prefix(tree).unwrap()));
    output(&mut c)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn install(from: &Path, to: &Path, mode: u32) {
    let bytes = fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    write(to, &bytes, mode);
}

fn write(to: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::write(to, bytes).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).unwrap();
    // directories 0755 whatever the umask
    let mut dir = to.parent();
    while let Some(d) = dir {
        if d.ends_with("target/debian") {
            break;
        }
        let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o755));
        dir = d.parent();
    }
}

/// Runs `c` and returns its stdout; stops the task with its stderr if it fails.
fn output(c: &mut Command) -> Vec<u8> {
    let o = c.output().unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
    if !o.status.success() {
        eprintln!("==> {c:?} failed ({}):\n{}", o.status, String::from_utf8_lossy(&o.stderr));
        std::process::exit(o.status.code().unwrap_or(1));
    }
    o.stdout
}
