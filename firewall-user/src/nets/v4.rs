//! IPv4 classification image: /16 cells (array) plus /24 and /32 entries (hash), computed per
//! cell from the configured prefixes and diffed against what the kernel holds.

use std::collections::BTreeMap;

use firewall_common::nets::{class, Net4Key, NetClass};

use super::prefix::{Bits, Layer, Prefix};

const MARKERS: u32 = class::HAS_24 | class::HAS_32;

/// What the kernel holds (kept in step with every successful write).
pub struct Mirror4 {
    pub cells: Vec<NetClass>,
    /// (address, length) → value, length 24 or 32.
    pub entries: BTreeMap<(u32, u8), NetClass>,
}

impl Default for Mirror4 {
    fn default() -> Self {
        Self { cells: vec![NetClass::EMPTY; 65536], entries: BTreeMap::new() }
    }
}

/// Desired kernel content of one /16 cell.
pub struct CellImage {
    pub cell: NetClass,
    pub entries: Vec<((u32, u8), NetClass)>,
}

fn with_markers(v: NetClass, markers: u32) -> NetClass {
    NetClass { flags: (v.flags & !MARKERS) | markers, ..v }
}

/// Expands the configured prefixes touching cell `c` to the /16, /24 and /32 strides, each
/// entry carrying the union of every prefix covering it. Entries that would answer the same as
/// the shorter entry above them are left out.
pub fn compute_cell(model: &Layer<u32>, c: u32) -> CellImage {
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
    let mut entries = Vec::new();
    let mut markers = 0;
    for (&k, m) in &raw24 {
        let v = base.union(*m);
        if v != base {
            entries.push(((k, 24), v));
            markers |= class::HAS_24;
        }
    }
    for (&k, m) in &raw32 {
        let parent = raw24.get(&(k & 0xffff_ff00)).map_or(base, |m24| base.union(*m24));
        let v = parent.union(*m);
        if v != parent {
            entries.push(((k, 32), v));
            markers |= class::HAS_32;
        }
    }
    entries.sort_unstable_by_key(|e| e.0);
    CellImage { cell: with_markers(base, markers), entries }
}

/// Writes that move the kernel from the mirror to the desired image without a moment where a
/// source is treated as in neither the old nor the new rules for a set it is in under both:
/// widen the cell markers, write entries longest first, the cell value, delete stale entries
/// shortest first, narrow the markers.
#[derive(Default)]
pub struct Plan4 {
    pub pre: Vec<(u32, NetClass)>,
    pub put: Vec<(Net4Key, NetClass)>,
    pub cells: Vec<(u32, NetClass)>,
    pub del: Vec<Net4Key>,
    pub post: Vec<(u32, NetClass)>,
}

impl Plan4 {
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty()
            && self.put.is_empty()
            && self.cells.is_empty()
            && self.del.is_empty()
            && self.post.is_empty()
    }

    /// Entries added by `put` that the mirror does not hold yet.
    pub fn new_keys(&self, m: &Mirror4) -> usize {
        self.put.iter().filter(|(k, _)| !m.entries.contains_key(&(k.addr_h, k.len as u8))).count()
    }
}

pub fn plan(mirror: &Mirror4, model: &Layer<u32>, cells: impl IntoIterator<Item = u32>) -> Plan4 {
    let mut p = Plan4::default();
    for c in cells {
        let img = compute_cell(model, c);
        let old = mirror.cells[c as usize];
        let (old_m, new_m) = (old.flags & MARKERS, img.cell.flags & MARKERS);
        let union = old_m | new_m;
        let mut current = old;
        if union != old_m {
            current = with_markers(old, union);
            p.pre.push((c, current));
        }
        let mid = with_markers(img.cell, union);
        if mid != current {
            p.cells.push((c, mid));
        }
        if union != new_m {
            p.post.push((c, img.cell));
        }
        let lo = (c << 16, 0u8);
        let hi = ((c << 16) | 0xffff, 32u8);
        let mut old_iter = mirror.entries.range(lo..=hi).peekable();
        let mut new_iter = img.entries.iter().peekable();
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
    p.put.sort_by_key(|(k, _)| std::cmp::Reverse(k.len));
    p.del.sort_by_key(|k| k.len);
    p
}

fn key((addr_h, len): (u32, u8)) -> Net4Key {
    Net4Key { len: len as u32, addr_h }
}

/// The /16 cells a prefix touches.
pub fn cells_of(p: &Prefix<u32>) -> std::ops::RangeInclusive<u32> {
    if p.len <= 16 {
        (p.addr >> 16)..=(p.addr.last(p.len) >> 16)
    } else {
        (p.addr >> 16)..=(p.addr >> 16)
    }
}
