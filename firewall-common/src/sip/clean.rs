//! Sources inspected clean: `SW_SIP_CLEAN`, an array of slots indexed by a hash of the source
//! (address, port, transport), remembers each source whose last request passed the full
//! inspection with no signature found. For [`SipPolicy::reinspect`] after that, its requests
//! are read only as far as the method: the allowed methods, stealth OPTIONS and the per-method
//! limits still apply to each of them, the header walk and the signature search are skipped.
//! A scanner hit or junk forgets the source; a change of the signatures
//! ([`SipPolicy::epoch`]) forgets every source at once. Slots are plain array memory, read and
//! written without a helper call: two sources that share a slot take it from each other, and
//! each is then inspected in full more often.
//!
//! [`SipPolicy::reinspect`]: super::SipPolicy::reinspect
//! [`SipPolicy::epoch`]: super::SipPolicy::epoch

use crate::addr::Addr6;

/// Where a request came from: the key of a `SW_SIP_CLEAN` slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Source {
    pub addr: Addr6,
    /// `FAMILY_V4` or `FAMILY_V6`; 0 marks an empty slot.
    pub family: u32,
    pub port: u16,
    /// 1 for TCP.
    pub tcp: u8,
    pub _pad: u8,
}
const _: () = assert!(size_of::<Source>() == 24);

impl Source {
    /// The slot of `SW_SIP_CLEAN` this source uses; `mask` is the slot count minus one.
    #[inline(always)]
    pub const fn slot(&self, mask: u32) -> u32 {
        let rest = (self.port as u64) | (self.tcp as u64) << 16 | (self.family as u64) << 24;
        // splitmix64's finalizer: every input bit moves every slot bit, so the ports of one
        // address spread as well as the addresses do
        let mut h = self.addr.lo ^ self.addr.hi.rotate_left(29) ^ rest << 32;
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (h ^ (h >> 31)) as u32 & mask
    }

    /// Field by field: a compare the compiler does not turn into a `memcmp` call.
    #[inline(always)]
    pub fn same(&self, o: &Source) -> bool {
        self.addr.lo == o.addr.lo
            && self.addr.hi == o.addr.hi
            && self.family == o.family
            && self.port == o.port
            && self.tcp == o.tcp
    }
}

/// A slot of `SW_SIP_CLEAN`, a direct-mapped array: a source whose slot another source took
/// over since is simply inspected in full again.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clean {
    pub source: Source,
    /// Jiffies of the full inspection.
    pub at: u64,
    /// [`SipPolicy::epoch`](super::SipPolicy::epoch) then.
    pub epoch: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<Clean>() == 40);

impl Clean {
    /// Whether `source` may skip the signature search at jiffy `now`.
    #[inline(always)]
    pub fn fresh(&self, source: &Source, epoch: u32, reinspect: u64, now: u64) -> bool {
        self.source.same(source) && self.epoch == epoch && now.wrapping_sub(self.at) < reinspect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(last: u64, port: u16) -> Source {
        Source { addr: Addr6 { hi: 0, lo: 0xc633_6400 | last }, family: 4, port, tcp: 0, _pad: 0 }
    }

    #[test]
    fn fresh_for_its_source_within_the_window_and_the_epoch() {
        let s = source(9, 5062);
        let c = Clean { source: s, at: 1_000, epoch: 7, _pad: 0 };
        assert!(c.fresh(&s, 7, 250, 1_000));
        assert!(c.fresh(&s, 7, 250, 1_249));
        assert!(!c.fresh(&s, 7, 250, 1_250), "the window has passed");
        assert!(!c.fresh(&s, 8, 250, 1_001), "the signatures changed");
        assert!(!c.fresh(&s, 7, 0, 1_000), "reinspect = 0 inspects every request");
        assert!(!c.fresh(&s, 7, 250, 999), "a clock behind the entry is not trusted");
        assert!(!c.fresh(&source(9, 5063), 7, 250, 1_001), "another port");
        assert!(!c.fresh(&source(10, 5062), 7, 250, 1_001), "another address");
        assert!(!c.fresh(&Source { tcp: 1, ..s }, 7, 250, 1_001), "TCP");
        assert!(!Clean::default().fresh(&s, 0, 250, 0), "an empty slot is nobody's");
    }

    #[test]
    fn sources_spread_over_the_slots() {
        // the ports of one address, and one port of many addresses, each fill most of 1,024 slots
        let mask = 1023;
        let mut ports = [0u32; 1024];
        let mut addrs = [0u32; 1024];
        for i in 0..1024u64 {
            ports[source(9, 5060 + i as u16).slot(mask) as usize] += 1;
            addrs[source(i, 5060).slot(mask) as usize] += 1;
        }
        for (name, counts) in [("ports", ports), ("addresses", addrs)] {
            let used = counts.iter().filter(|c| **c > 0).count();
            assert!(used > 550, "{name}: {used} of 1024 slots used");
            assert!(counts.iter().all(|c| *c < 8), "{name}: a slot holds too many");
        }
    }
}
