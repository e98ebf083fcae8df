//! Attaching the XDP program to an interface: through a pinned link that outlives the daemon
//! and is switched to a new program in one step, in the driver (native) or generic (skb) mode.

use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
        ProgramError, Xdp, XdpMode,
    },
    Ebpf,
};
use firewall_common::programs;

use crate::datapath::{
    loader::{program, LoadError},
    pins::{PinError, Pins},
};

/// How to attach: `auto` tries the driver first and falls back to generic (skb) mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    Auto,
    Native,
    Skb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    Native,
    Skb,
}

impl Attached {
    pub fn name(self) -> &'static str {
        match self {
            Attached::Native => "native",
            Attached::Skb => "skb",
        }
    }
}

/// Attaches the program to `iface` (the link is owned by the program). Returns the mode in use.
pub fn attach(ebpf: &mut Ebpf, iface: &str, mode: AttachMode) -> Result<Attached, LoadError> {
    attach_id(ebpf, iface, mode).map(|(m, _)| m)
}

fn attach_id(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: AttachMode,
) -> Result<(Attached, aya::programs::xdp::XdpLinkId), LoadError> {
    let prog = program(ebpf, programs::XDP)?;
    let native = |prog: &mut Xdp| prog.attach(iface, XdpMode::Driver);
    let skb = |prog: &mut Xdp| prog.attach(iface, XdpMode::Skb);
    match mode {
        AttachMode::Native => native(prog).map(|id| (Attached::Native, id)).map_err(|source| LoadError::Attach {
            iface: iface.into(),
            mode: "native",
            hint: "; the driver may lack XDP support: try --xdp-mode skb",
            source: Box::new(source),
        }),
        AttachMode::Skb => skb(prog).map(|id| (Attached::Skb, id)).map_err(|source| LoadError::Attach {
            iface: iface.into(),
            mode: "skb",
            hint: "",
            source: Box::new(source),
        }),
        AttachMode::Auto => match native(prog) {
            Ok(id) => Ok((Attached::Native, id)),
            Err(e) => {
                if let ProgramError::UnknownInterface { .. } = e {
                    return Err(LoadError::Attach {
                        iface: iface.into(),
                        mode: "native",
                        hint: "; check the name with `ip link`",
                        source: Box::new(e),
                    });
                }
                log::warn!("{iface}: native XDP unavailable ({e}); using skb (generic) mode, which is slower");
                skb(prog).map(|id| (Attached::Skb, id)).map_err(|source| LoadError::Attach {
                    iface: iface.into(),
                    mode: "skb",
                    hint: "",
                    source: Box::new(source),
                })
            }
        },
    }
}

/// Keeps an attachment alive: dropping a link that is not pinned detaches the program.
pub enum LinkHold {
    /// Pinned: stays attached after the daemon exits.
    Pinned(PinnedLink),
    /// An existing pinned link now running this program (owned by the program).
    Updated,
}

/// Attaches to `iface` through a pinned link: an existing one is switched to this program in
/// one step (`bpf_link_update`: no packet sees no program), else a new one is made and pinned.
/// `recorded` is the mode of the existing link, as the daemon last noted it.
pub fn attach_pinned(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: AttachMode,
    pins: &Pins,
    recorded: Option<Attached>,
) -> Result<(Attached, LinkHold), LoadError> {
    let path = pins.link(iface);
    if path.exists() {
        let prog = program(ebpf, programs::XDP)?;
        let updated = PinnedLink::from_pin(&path)
            .map_err(|e| e.to_string())
            .and_then(|p| XdpLink::try_from(FdLink::from(p)).map_err(|e| e.to_string()))
            .and_then(|link| prog.attach_to_link(link).map_err(|e| e.to_string()));
        match updated {
            Ok(_) => {
                let m = recorded.unwrap_or(Attached::Native);
                if mode != AttachMode::Auto && mode.wanted() != Some(m) {
                    log::warn!(
                        "{iface}: keeping the {} attachment already in place; `sipwall detach` first to change the mode",
                        m.name()
                    );
                }
                return Ok((m, LinkHold::Updated));
            }
            Err(e) => {
                log::warn!("{iface}: the pinned link cannot be reused ({e}); attaching anew");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let (m, id) = attach_id(ebpf, iface, mode)?;
    let prog = program(ebpf, programs::XDP)?;
    let link =
        prog.take_link(id).map_err(|source| LoadError::Link { iface: iface.into(), source: Box::new(source) })?;
    match FdLink::try_from(link) {
        Ok(fd) => match fd.pin(&path) {
            Ok(p) => Ok((m, LinkHold::Pinned(p))),
            Err(e) => Err(LoadError::Pin(PinError::Io { path, source: std::io::Error::other(e.to_string()) })),
        },
        Err(e) => {
            log::warn!("{iface}: attached without a BPF link ({e}); the program will detach when sipwall stops");
            Err(LoadError::Attach {
                iface: iface.into(),
                mode: m.name(),
                hint: "; this kernel lacks BPF links for XDP (Linux 5.9+)",
                source: Box::new(ProgramError::AlreadyAttached),
            })
        }
    }
}

impl AttachMode {
    fn wanted(self) -> Option<Attached> {
        match self {
            AttachMode::Auto => None,
            AttachMode::Native => Some(Attached::Native),
            AttachMode::Skb => Some(Attached::Skb),
        }
    }
}

/// Removes the pinned link of an interface no longer protected (the program detaches from it).
pub fn detach_pinned(pins: &Pins, iface: &str) -> Result<(), LoadError> {
    let path = pins.link(iface);
    match PinnedLink::from_pin(&path) {
        Ok(p) => {
            let _ = p.unpin();
            Ok(())
        }
        Err(_) => std::fs::remove_file(&path).map_err(|source| LoadError::Pin(PinError::Io { path, source })),
    }
}
