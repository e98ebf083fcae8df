//! Sources inspected clean: `SW_SIP_CLEAN` remembers each source (address and port) whose last
//! request passed the full inspection with no signature found. For [`SipPolicy::reinspect`]
//! after that, its requests are read only as far as the method: the allowed methods, stealth
//! OPTIONS and the per-method limits still apply to each of them, the header walk and the
//! signature search are skipped. A change of the signatures ([`SipPolicy::epoch`]) forgets
//! every source at once.
//!
//! [`SipPolicy::reinspect`]: super::SipPolicy::reinspect
//! [`SipPolicy::epoch`]: super::SipPolicy::epoch

use crate::addr::Addr6;

/// Key of `SW_SIP_CLEAN`: where a request came from.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    pub addr: Addr6,
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u32,
    pub port: u16,
    /// 1 for TCP.
    pub tcp: u8,
    pub _pad: u8,
}
const _: () = assert!(core::mem::size_of::<Source>() == 24);

/// Value of `SW_SIP_CLEAN`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clean {
    /// Jiffies of the full inspection.
    pub at: u64,
    /// [`SipPolicy::epoch`](super::SipPolicy::epoch) then.
    pub epoch: u32,
    pub _pad: u32,
}

impl Clean {
    /// Whether the source's requests may skip the signature search at jiffy `now`.
    #[inline(always)]
    pub fn fresh(&self, epoch: u32, reinspect: u64, now: u64) -> bool {
        self.epoch == epoch && now.wrapping_sub(self.at) < reinspect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_within_the_window_and_the_epoch() {
        let c = Clean { at: 1_000, epoch: 7, _pad: 0 };
        assert!(c.fresh(7, 250, 1_000));
        assert!(c.fresh(7, 250, 1_249));
        assert!(!c.fresh(7, 250, 1_250), "the window has passed");
        assert!(!c.fresh(8, 250, 1_001), "the signatures changed");
        assert!(!c.fresh(7, 0, 1_000), "reinspect = 0 inspects every request");
        assert!(!c.fresh(7, 250, 999), "a clock behind the entry is not trusted");
    }
}
