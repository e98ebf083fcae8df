//! `[asterisk]`: where Asterisk's configuration is, whether its ports and trunks are taken from
//! it, and the manager account that `ami:` log sources log in as.

use std::path::{Path, PathBuf};

use super::reader::{Reader, Section};

/// Asterisk's configuration directory on Debian and from source builds.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/asterisk";
/// The manager account of `ami:` sources.
pub const DEFAULT_AMI_CREDENTIALS: &str = "/etc/sipwall/ami.conf";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsteriskRules {
    /// The directory to read: the one written, or `/etc/asterisk` when it exists.
    pub config_dir: Option<PathBuf>,
    /// The rules named `config_dir` (a missing one is then an error, not a quiet default).
    pub dir_written: bool,
    /// Read the directory for ports and trunks.
    pub discover: bool,
    /// `username = …` and `secret = …`, read at each login of an `ami:` source.
    pub ami_credentials: PathBuf,
}

impl Default for AsteriskRules {
    fn default() -> Self {
        let dir = Path::new(DEFAULT_CONFIG_DIR);
        AsteriskRules {
            config_dir: dir.is_dir().then(|| dir.to_owned()),
            dir_written: false,
            discover: true,
            ami_credentials: PathBuf::from(DEFAULT_AMI_CREDENTIALS),
        }
    }
}

const KEYS: &[&str] = &["config_dir", "discover", "ami_credentials"];

pub fn read(r: &mut Reader, s: &Section, base: &Path) -> AsteriskRules {
    s.check_keys(r, KEYS);
    let mut a = AsteriskRules::default();
    if let Some((dir, span)) = s.string(r, "config_dir") {
        let dir = base.join(dir);
        if !dir.is_dir() {
            r.error(
                Some(span),
                format!(
                    "config_dir {} is not a directory: give Asterisk's configuration directory, or leave \
                     `config_dir` out to read /etc/asterisk when it exists",
                    dir.display()
                ),
            );
        }
        a.config_dir = Some(dir);
        a.dir_written = true;
    }
    if let Some(d) = s.bool(r, "discover") {
        a.discover = d;
    }
    if let Some((p, _)) = s.string(r, "ami_credentials") {
        a.ami_credentials = base.join(p);
    }
    a
}
