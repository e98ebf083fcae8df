//! Address representations used as map keys.

/// An IPv6 address (or prefix) as two host-order 64-bit halves: masking to a prefix length is two
/// shifts, and both sides build the same key without byte swapping per probe.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr6 {
    pub hi: u64,
    pub lo: u64,
}
const _: () = assert!(size_of::<Addr6>() == 16);

impl Addr6 {
    pub const fn from_be_bytes(b: [u8; 16]) -> Self {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            hi[i] = b[i];
            lo[i] = b[i + 8];
            i += 1;
        }
        Self { hi: u64::from_be_bytes(hi), lo: u64::from_be_bytes(lo) }
    }

    pub const fn to_be_bytes(self) -> [u8; 16] {
        let hi = self.hi.to_be_bytes();
        let lo = self.lo.to_be_bytes();
        let mut b = [0u8; 16];
        let mut i = 0;
        while i < 8 {
            b[i] = hi[i];
            b[i + 8] = lo[i];
            i += 1;
        }
        b
    }

    /// Keeps the first `len` bits (0..=128), clears the rest.
    #[inline(always)]
    pub const fn masked(self, len: u32) -> Self {
        if len >= 128 {
            self
        } else if len >= 64 {
            let lo = if len == 64 { 0 } else { self.lo & !(u64::MAX >> (len - 64)) };
            Self { hi: self.hi, lo }
        } else {
            let hi = if len == 0 { 0 } else { self.hi & !(u64::MAX >> len) };
            Self { hi, lo: 0 }
        }
    }
}

/// Keeps the first `len` bits (0..=32) of a host-order IPv4 address.
#[inline(always)]
pub const fn mask4(addr_h: u32, len: u32) -> u32 {
    if len == 0 {
        0
    } else if len >= 32 {
        addr_h
    } else {
        addr_h & !(u32::MAX >> len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_v6_at_every_boundary() {
        let a = Addr6::from_be_bytes([0xff; 16]);
        assert_eq!(a.masked(0), Addr6 { hi: 0, lo: 0 });
        assert_eq!(a.masked(1), Addr6 { hi: 1 << 63, lo: 0 });
        assert_eq!(a.masked(64), Addr6 { hi: u64::MAX, lo: 0 });
        assert_eq!(a.masked(65), Addr6 { hi: u64::MAX, lo: 1 << 63 });
        assert_eq!(a.masked(128), a);
        assert_eq!(Addr6::from_be_bytes(a.to_be_bytes()), a);
    }

    #[test]
    fn masks_v4() {
        assert_eq!(mask4(0xc0a8_0101, 24), 0xc0a8_0100);
        assert_eq!(mask4(0xc0a8_0101, 0), 0);
        assert_eq!(mask4(0xc0a8_0101, 32), 0xc0a8_0101);
        assert_eq!(mask4(0xffff_ffff, 1), 0x8000_0000);
    }
}
