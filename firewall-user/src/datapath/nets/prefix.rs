//! Prefixes over a fixed-width address, and a set of configured prefixes with the union of
//! memberships that covers any other prefix.

use std::{collections::BTreeMap, fmt::Debug, hash::Hash, ops::Bound};

use firewall_common::nets::NetClass;
use ipnet::IpNet;

/// A host-order address of `WIDTH` bits.
pub trait Bits: Copy + Ord + Eq + Hash + Debug {
    const WIDTH: u8;
    /// Keeps the first `len` bits.
    fn mask(self, len: u8) -> Self;
    /// The last address of the prefix of length `len` starting at `self`.
    fn last(self, len: u8) -> Self;
}

impl Bits for u32 {
    const WIDTH: u8 = 32;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - len as u32))
        }
    }
    fn last(self, len: u8) -> Self {
        if len == 0 {
            u32::MAX
        } else {
            self | !(u32::MAX << (32 - len as u32))
        }
    }
}

impl Bits for u128 {
    const WIDTH: u8 = 128;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - len as u32))
        }
    }
    fn last(self, len: u8) -> Self {
        if len == 0 {
            u128::MAX
        } else {
            self | !(u128::MAX << (128 - len as u32))
        }
    }
}

/// Ordered by address, then length: a prefix's descendants follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix<A> {
    pub addr: A,
    pub len: u8,
}

impl<A: Bits> Prefix<A> {
    pub fn new(addr: A, len: u8) -> Self {
        Self { addr: addr.mask(len), len }
    }

    pub fn covers(&self, o: &Prefix<A>) -> bool {
        self.len <= o.len && o.addr.mask(self.len) == self.addr
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnyPrefix {
    V4(Prefix<u32>),
    V6(Prefix<u128>),
}

impl From<IpNet> for AnyPrefix {
    fn from(n: IpNet) -> Self {
        match n {
            IpNet::V4(n) => AnyPrefix::V4(Prefix::new(u32::from(n.network()), n.prefix_len())),
            IpNet::V6(n) => AnyPrefix::V6(Prefix::new(u128::from(n.network()), n.prefix_len())),
        }
    }
}

impl From<AnyPrefix> for IpNet {
    fn from(p: AnyPrefix) -> Self {
        match p {
            AnyPrefix::V4(p) => IpNet::new(std::net::Ipv4Addr::from(p.addr).into(), p.len),
            AnyPrefix::V6(p) => IpNet::new(std::net::Ipv6Addr::from(p.addr).into(), p.len),
        }
        .expect("valid length")
    }
}

/// Configured prefixes of one family and their memberships.
#[derive(Default)]
pub struct Layer<A> {
    map: BTreeMap<Prefix<A>, NetClass>,
    /// How many prefixes of each length exist (index = length).
    lens: Vec<u32>,
}

impl<A: Bits> Layer<A> {
    pub fn new() -> Self {
        Self { map: BTreeMap::new(), lens: vec![0; A::WIDTH as usize + 1] }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, p: &Prefix<A>) -> Option<&NetClass> {
        self.map.get(p)
    }

    /// Sets (or, for an empty class, removes) a prefix's membership.
    pub fn set(&mut self, p: Prefix<A>, v: NetClass) {
        if v.is_empty() {
            if self.map.remove(&p).is_some() {
                self.lens[p.len as usize] -= 1;
            }
        } else if self.map.insert(p, v).is_none() {
            self.lens[p.len as usize] += 1;
        }
    }

    /// Union of the memberships of every configured prefix covering `p` (including `p` itself
    /// when `inclusive`).
    pub fn covering(&self, p: &Prefix<A>, inclusive: bool) -> NetClass {
        let top = if inclusive { p.len } else { p.len.saturating_sub(1) };
        let mut acc = NetClass::EMPTY;
        if !inclusive && p.len == 0 {
            return acc;
        }
        for len in 0..=top {
            if self.lens[len as usize] == 0 {
                continue;
            }
            if let Some(v) = self.map.get(&Prefix { addr: p.addr.mask(len), len }) {
                acc = acc.union(*v);
            }
        }
        acc
    }

    /// Configured prefixes inside `p` (those `p` covers, `p` included), in order.
    pub fn within(&self, p: Prefix<A>) -> impl Iterator<Item = (&Prefix<A>, &NetClass)> {
        let lo = Bound::Included(Prefix { addr: p.addr, len: 0 });
        let hi = Bound::Included(Prefix { addr: p.addr.last(p.len), len: A::WIDTH });
        self.map.range((lo, hi)).filter(move |(q, _)| q.len >= p.len)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Prefix<A>, &NetClass)> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firewall_common::nets::class;

    fn c(flags: u32) -> NetClass {
        NetClass { flags, ..NetClass::EMPTY }
    }

    #[test]
    fn covering_unions_every_ancestor() {
        let mut l = Layer::<u32>::new();
        l.set(Prefix::new(0x0a00_0000, 8), c(class::BLOCK));
        l.set(Prefix::new(0x0a01_0000, 16), NetClass { allow_from: 2, ..NetClass::EMPTY });
        l.set(Prefix::new(0x0a01_0200, 24), c(class::ALLOW));
        let p = Prefix::new(0x0a01_0203, 32);
        let v = l.covering(&p, true);
        assert_eq!((v.flags, v.allow_from), (class::BLOCK | class::ALLOW, 2));
        let q = Prefix::new(0x0a01_0200, 24);
        assert_eq!(l.covering(&q, false).flags, class::BLOCK);
        assert_eq!(l.covering(&Prefix::new(0x0b00_0000, 8), true), NetClass::EMPTY);
    }

    #[test]
    fn within_lists_descendants_only() {
        let mut l = Layer::<u128>::new();
        let p = |a: u128, n| Prefix::new(a << 96, n);
        for (a, n) in [(0x2001_0db8, 32), (0x2001_0db8, 48), (0x2001_0db9, 48), (0, 0)] {
            l.set(p(a, n), c(class::BLOCK));
        }
        let got: Vec<u8> = l.within(p(0x2001_0db8, 32)).map(|(q, _)| q.len).collect();
        assert_eq!(got, [32, 48]);
        assert_eq!(l.within(p(0, 0)).count(), 4);
        l.set(p(0x2001_0db8, 48), NetClass::EMPTY);
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn masks_and_lasts() {
        assert_eq!(0xc0a8_01ffu32.mask(24), 0xc0a8_0100);
        assert_eq!(0xc0a8_0100u32.last(24), 0xc0a8_01ff);
        assert_eq!(5u32.mask(0), 0);
        assert_eq!(0u128.last(0), u128::MAX);
        assert_eq!(u128::MAX.mask(64), u128::MAX << 64);
    }
}
