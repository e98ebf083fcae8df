//! IPv4 classification image: /16 cells (array), a 2-bit-per-/24 presence bitmap, and /24 and
//! /32 entries (hash), computed per /16 cell from the configured prefixes and diffed against
//! what the kernel holds.

use std::collections::BTreeMap;

use firewall_common::nets::{class, net4_key, NetClass, BITS_HAS_24, BITS_HAS_32, BITS_PER_WORD, NET4_BIT_WORDS};

use super::{
    prefix::{Bits, Layer, Prefix},
    HostBans,
};

/// `SW_NET4_BITS` words per /16 cell (256 /24s, two bits each).
pub const WORDS_PER_CELL: usize = 256 / BITS_PER_WORD as usize;

/// What the kernel holds (kept in step with every successful write).
pub struct Mirror4 {
    pub cells: Vec<NetClass>,
    pub bits: Vec<u64>,
    /// (address, length) → value, length 24 or 32.
    pub entries: BTreeMap<(u32, u8), NetClass>,
}

impl Default for Mirror4 {
    fn default() -> Self {
        Self { cells: vec![NetClass::EMPTY; 65536], bits: vec![0; NET4_BIT_WORDS as usize], entries: BTreeMap::new() }
    }
}

/// Desired kernel content of one /16 cell.
pub struct CellImage {
    pub cell: NetClass,
    pub bits: [u64; WORDS_PER_CELL],
    pub entries: Vec<((u32, u8), NetClass)>,
}

fn set_bit(bits: &mut [u64; WORDS_PER_CELL], addr: u32, flag: u64) {
    let i = ((addr >> 8) & 0xff) as usize;
    bits[i / BITS_PER_WORD as usize] |= flag << ((i % BITS_PER_WORD as usize) * 2);
}

/// Expands the configured prefixes touching cell `c` to the /16, /24 and /32 strides, each
/// entry carrying the union of every prefix covering it, and adds the address bans of the cell
/// (`hosts`). Entries that would answer the same as the shorter entry above them are left out,
/// and so are entries under an allow-listed shorter entry: the allow list decides before
/// anything else, so the shorter entry already gives their verdict in fewer probes.
pub fn compute_cell(model: &Layer<u32>, c: u32, hosts: &dyn HostBans) -> CellImage {
    let cell_p = Prefix::new(c << 16, 16);
    let base = model.covering(&cell_p, true);
    let mut raw24: BTreeMap<u32, NetClass> = BTreeMap::new();
    let mut raw32: BTreeMap<u32, NetClass> = BTreeMap::new();
    for (q, m) in model.within(cell_p) {
        if q.len <= 16 {
            continue;
        }
        let (step, raw) = if q.len <= 24 { (256u64, &mut raw24) } else { (1, &mut raw32) };
        let mut a = q.addr as u64;
        while a <= q.addr.last(q.len) as u64 {
            let e = raw.entry(a as u32).or_insert(NetClass::EMPTY);
            *e = e.union(*m);
            a += step;
        }
    }
    let mut banned = Vec::new();
    hosts.range(c << 16, (c << 16) | 0xffff, &mut banned);
    for (a, m) in banned {
        let e = raw32.entry(a).or_insert(NetClass::EMPTY);
        *e = e.union(m);
    }
    let mut img = CellImage { cell: base, bits: [0; WORDS_PER_CELL], entries: Vec::new() };
    for (&k, m) in &raw24 {
        let v = base.union(*m);
        if v != base && !allowed(base) {
            img.entries.push(((k, 24), v));
            set_bit(&mut img.bits, k, BITS_HAS_24);
        }
    }
    for (&k, m) in &raw32 {
        let parent = raw24.get(&(k & 0xffff_ff00)).map_or(base, |m24| base.union(*m24));
        let v = parent.union(*m);
        if v != parent && !allowed(parent) {
            img.entries.push(((k, 32), v));
            set_bit(&mut img.bits, k, BITS_HAS_32);
        }
    }
    img.entries.sort_unstable_by_key(|e| e.0);
    img
}

/// The /32 entries of /24 block `b` (address >> 8) and whether it has any, as [`compute_cell`]
/// finds them, for a block whose cell's configured prefixes are as the kernel has them: only its
/// address bans changed.
fn compute_block(model: &Layer<u32>, b: u32, hosts: &dyn HostBans) -> Vec<((u32, u8), NetClass)> {
    let block = Prefix::new(b << 8, 24);
    // what the /16 cell and the /24 entry (if any) answer for the block
    let parent = model.covering(&block, true);
    if allowed(parent) {
        return Vec::new();
    }
    let mut raw32: BTreeMap<u32, NetClass> = BTreeMap::new();
    for (q, m) in model.within(block) {
        if q.len <= 24 {
            continue;
        }
        for a in q.addr as u64..=q.addr.last(q.len) as u64 {
            let e = raw32.entry(a as u32).or_insert(NetClass::EMPTY);
            *e = e.union(*m);
        }
    }
    let mut banned = Vec::new();
    hosts.range(b << 8, (b << 8) | 0xff, &mut banned);
    for (a, m) in banned {
        let e = raw32.entry(a).or_insert(NetClass::EMPTY);
        *e = e.union(m);
    }
    raw32
        .into_iter()
        .filter_map(|(k, m)| {
            let v = parent.union(m);
            (v != parent).then_some(((k, 32), v))
        })
        .collect()
}

fn allowed(c: NetClass) -> bool {
    c.flags & class::ALLOW != 0
}

/// Writes that move the kernel from the mirror to the desired image without a moment where a
/// source is treated as outside a set it is in both before and after: widen the presence bits,
/// write entries longest first, then the cell values, delete stale entries shortest first,
/// narrow the bits.
#[derive(Default)]
pub struct Plan4 {
    pub widen: Vec<(u32, u64)>,
    /// (`net4_key`, class)
    pub put: Vec<(u64, NetClass)>,
    pub cells: Vec<(u32, NetClass)>,
    pub del: Vec<u64>,
    pub narrow: Vec<(u32, u64)>,
}

impl Plan4 {
    /// Entries added by `put` that the mirror does not hold yet.
    pub fn new_keys(&self, m: &Mirror4) -> usize {
        self.put.iter().filter(|(k, _)| !m.entries.contains_key(&unkey(*k))).count()
    }
}

/// The writes that bring `cells` (/16, recomputed whole) and `blocks` (/24s whose address bans
/// alone changed, in cells not among `cells`) from the mirror to the model.
pub fn plan(
    mirror: &Mirror4,
    model: &Layer<u32>,
    cells: impl IntoIterator<Item = u32>,
    blocks: impl IntoIterator<Item = u32>,
    hosts: &dyn HostBans,
) -> Plan4 {
    let mut p = Plan4::default();
    for c in cells {
        let img = compute_cell(model, c, hosts);
        for (i, &new) in img.bits.iter().enumerate() {
            p.bits(c as usize * WORDS_PER_CELL + i, mirror.bits[c as usize * WORDS_PER_CELL + i], new);
        }
        if img.cell != mirror.cells[c as usize] {
            p.cells.push((c, img.cell));
        }
        p.entries(mirror, ((c << 16, 0), ((c << 16) | 0xffff, 32)), &img.entries);
    }
    // blocks in order: those sharing a presence word are folded into one write of it
    let mut word: Option<(usize, u64)> = None;
    for b in blocks {
        let entries = compute_block(model, b, hosts);
        let w = b as usize / BITS_PER_WORD as usize;
        if let Some((at, new)) = word.filter(|(at, _)| *at != w) {
            p.bits(at, mirror.bits[at], new);
        }
        let shift = (b as usize % BITS_PER_WORD as usize) * 2;
        let cur = word.filter(|(at, _)| *at == w).map_or(mirror.bits[w], |(_, v)| v);
        let has32 = if entries.is_empty() { 0 } else { BITS_HAS_32 };
        word = Some((w, (cur & !(BITS_HAS_32 << shift)) | (has32 << shift)));
        p.entries(mirror, ((b << 8, 25), ((b << 8) | 0xff, 32)), &entries);
    }
    if let Some((at, new)) = word {
        p.bits(at, mirror.bits[at], new);
    }
    p.put.sort_by_key(|(k, _)| std::cmp::Reverse(k >> 32));
    p.del.sort_by_key(|k| k >> 32);
    p
}

impl Plan4 {
    /// Presence word `w` goes from `old` to `new`: widened before the entries, narrowed after.
    fn bits(&mut self, w: usize, old: u64, new: u64) {
        if old | new != old {
            self.widen.push((w as u32, old | new));
        }
        if old | new != new {
            self.narrow.push((w as u32, new));
        }
    }

    /// The puts and deletes that make the mirror's entries from `lo` to `hi` equal `new`
    /// (sorted).
    fn entries(&mut self, mirror: &Mirror4, (lo, hi): ((u32, u8), (u32, u8)), new: &[((u32, u8), NetClass)]) {
        let p = self;
        let mut old_iter = mirror.entries.range(lo..=hi).peekable();
        let mut new_iter = new.iter().peekable();
        loop {
            match (old_iter.peek(), new_iter.peek()) {
                (None, None) => break,
                (Some((ok, _)), None) => {
                    p.del.push(key(**ok));
                    old_iter.next();
                }
                (None, Some((nk, nv))) => {
                    p.put.push((key(*nk), *nv));
                    new_iter.next();
                }
                (Some((ok, ov)), Some((nk, nv))) => {
                    if **ok < *nk {
                        p.del.push(key(**ok));
                        old_iter.next();
                    } else if *nk < **ok {
                        p.put.push((key(*nk), *nv));
                        new_iter.next();
                    } else {
                        if *ov != nv {
                            p.put.push((key(*nk), *nv));
                        }
                        old_iter.next();
                        new_iter.next();
                    }
                }
            }
        }
    }
}

fn key((addr_h, len): (u32, u8)) -> u64 {
    net4_key(len as u32, addr_h)
}

/// (address, length) of a `net4_key`.
pub fn unkey(k: u64) -> (u32, u8) {
    (k as u32, (k >> 32) as u8)
}

/// The /16 cells a prefix touches.
pub fn cells_of(p: &Prefix<u32>) -> std::ops::RangeInclusive<u32> {
    if p.len <= 16 {
        (p.addr >> 16)..=(p.addr.last(p.len) >> 16)
    } else {
        (p.addr >> 16)..=(p.addr >> 16)
    }
}
