//! What feeds a jail: the detector a `[jails.NAME]` section names, and the sshd detector's
//! `mode`.

/// What feeds a jail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetectorKind {
    Asterisk,
    Sshd(Mode),
    /// A `[detectors.NAME]` filter.
    Custom(String),
    /// Bans by the other jails.
    Recidive,
    /// The XDP program's rate-limit reports.
    Flood,
    /// The SIP failures (403, 404) the host answers, read on egress.
    SipWire,
    /// The SIP inspector's scanner-signature drops.
    Scanner,
}

impl DetectorKind {
    pub fn name(&self) -> &str {
        match self {
            DetectorKind::Asterisk => "asterisk",
            DetectorKind::Sshd(_) => "sshd",
            DetectorKind::Custom(n) => n,
            DetectorKind::Recidive => "recidive",
            DetectorKind::Flood => "flood",
            DetectorKind::SipWire => "sip-wire",
            DetectorKind::Scanner => "scanner",
        }
    }

    /// Whether the jail reads logs (and so needs `logpath`).
    pub fn reads_logs(&self) -> bool {
        !matches!(self, DetectorKind::Recidive | DetectorKind::Flood | DetectorKind::SipWire | DetectorKind::Scanner)
    }
}

/// The names of the built-in detectors, which a `[detectors.NAME]` may not take.
pub(super) const BUILTIN_DETECTORS: &[&str] = &["asterisk", "sshd", "recidive", "flood", "sip-wire", "scanner"];

/// Which messages count, as fail2ban's sshd filter `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Authentication failures.
    #[default]
    Normal,
    /// Also scanners that disconnect before authenticating (no identification, bad protocol,
    /// connections closed in the pre-authentication phase).
    Ddos,
    /// Also clients that offer no usable authentication method or algorithm.
    Extra,
    /// All of the above.
    Aggressive,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "normal" => Ok(Mode::Normal),
            "ddos" => Ok(Mode::Ddos),
            "extra" => Ok(Mode::Extra),
            "aggressive" => Ok(Mode::Aggressive),
            _ => Err(format!("unknown sshd mode `{s}`: expected normal, ddos, extra or aggressive")),
        }
    }
}
