//! The egress classifier, `sipwall_egress`: reads the SIP answers leaving each protected
//! interface for as long as the daemon runs. Linux 6.6 and later attach it through TCX, a link
//! that ends with the daemon; older kernels through a `clsact` qdisc, whose filters outlive a
//! daemon killed without a chance to remove them, so a start first removes any left there.

use aya::{
    programs::{
        tc::{self, TcAttachType, TcError},
        SchedClassifier,
    },
    util::KernelVersion,
    Ebpf,
};
use nix::errno::Errno;

use crate::datapath::loader::LoadError;

/// The classifier's name in the object, and the name of its filters on a `clsact` qdisc.
use firewall_common::programs::EGRESS;

/// How the classifier is attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// A TCX link (Linux 6.6 and later), held by the daemon.
    Tcx,
    /// A filter on the interface's `clsact` qdisc.
    Clsact,
}

pub fn program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, LoadError> {
    ebpf.program_mut(EGRESS)
        .ok_or(LoadError::MissingProgram(EGRESS))?
        .try_into()
        .map_err(|source| LoadError::ProgramType { name: EGRESS, source: Box::new(source) })
}

/// Whether this kernel has TCX (Linux 6.6); aya attaches through it when it does.
pub fn has_tcx() -> bool {
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}

/// Attaches the classifier to `iface`'s egress. On a `clsact` qdisc, filters of this name left by
/// an earlier daemon are removed first: each would report every answer once more.
pub fn attach(ebpf: &mut Ebpf, iface: &str) -> Result<Hook, LoadError> {
    let hook = if has_tcx() { Hook::Tcx } else { Hook::Clsact };
    if hook == Hook::Clsact {
        match remove_stale(iface) {
            Ok(false) => {}
            Ok(true) => log::info!("{iface}: removed the egress filters an earlier sipwall left on the clsact qdisc"),
            Err(e) => log::warn!("{iface}: looking for egress filters left by an earlier sipwall: {e}"),
        }
    }
    let prog = program(ebpf)?;
    let attached = match prog.attach(iface, TcAttachType::Egress) {
        Ok(_) => Ok(()),
        // before TCX, a classifier needs the interface's clsact qdisc
        Err(_) if hook == Hook::Clsact => {
            if let Err(e) = tc::qdisc_add_clsact(iface) {
                log::debug!("{iface}: adding the clsact qdisc: {e}");
            }
            prog.attach(iface, TcAttachType::Egress).map(|_| ())
        }
        Err(e) => Err(e),
    };
    attached.map(|()| hook).map_err(|source| LoadError::Attach {
        iface: iface.to_owned(),
        mode: "tc egress",
        hint: "",
        source: Box::new(source),
    })
}

/// Removes the `clsact` egress filters named [`EGRESS`] from `iface`; whether there
/// were any.
fn remove_stale(iface: &str) -> Result<bool, TcError> {
    match tc::qdisc_detach_program(iface, TcAttachType::Egress, EGRESS) {
        Ok(()) => Ok(true),
        Err(TcError::IoError(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        // no clsact qdisc on the interface (the kernel answers EINVAL or ENOENT): nothing left
        Err(TcError::NetlinkError(e))
            if matches!(e.raw_os_error().map(Errno::from_raw), Some(Errno::EINVAL | Errno::ENOENT)) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
