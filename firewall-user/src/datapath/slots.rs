//! The slot tables (`SW_NET4`, `SW_NET6`): 2-choice hash tables of 4-slot buckets in arrays the
//! XDP program reads with inlined loads, written here through shared mappings.
//!
//! Entries never move, so a reader always finds a present key in its slot. A new entry's class
//! (and IPv6 address) words are stored before its first key word, and its fingerprint in the
//! bucket's meta word after it; a deleted entry loses its fingerprint before its key. A reader
//! checks the key again after the class. A class gaining a ban gets its expiry before its
//! flags, one losing it the other way round. An entry whose two buckets are full goes to an
//! overflow hash map, and the buckets' overflow bits tell the reader to look there (set after
//! the insert, cleared after the last such entry is gone).

use std::{collections::HashMap, hash::Hash};

use firewall_common::{
    addr::Addr6,
    nets::{class, net4_place, net6_place, net6_tag, Net6Key, NetClass, Place, META_OVERFLOW, SLOTS_PER_BUCKET},
};

use crate::{datapath::shm::Words, datapath::tables::TableError};

/// A key of a slot table: its words (first word never 0) and where it may live.
pub trait SlotKey: Copy + Eq + Hash {
    const WORDS: usize;
    fn words(&self) -> [u64; 3];
    /// The key stored as these words (`None` if they are no valid key).
    fn from_words(w: [u64; 3]) -> Option<Self>;
    fn place(&self, buckets: u32) -> Place;
}

/// An IPv4 `net4_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key4(pub u64);

impl SlotKey for Key4 {
    const WORDS: usize = 1;
    fn words(&self) -> [u64; 3] {
        [self.0, 0, 0]
    }
    fn from_words(w: [u64; 3]) -> Option<Self> {
        let len = w[0] >> 32;
        (w[0] != 0 && (len == 24 || len == 32)).then_some(Key4(w[0]))
    }
    fn place(&self, n: u32) -> Place {
        net4_place(self.0, n)
    }
}

impl SlotKey for Net6Key {
    const WORDS: usize = 3;
    fn words(&self) -> [u64; 3] {
        [net6_tag(self.len), self.addr.hi, self.addr.lo]
    }
    fn from_words(w: [u64; 3]) -> Option<Self> {
        let len = (w[0] & !(1 << 63)) as u32;
        (w[0] == net6_tag(len) && len <= 128).then_some(Net6Key { len, _pad: 0, addr: Addr6 { hi: w[1], lo: w[2] } })
    }
    fn place(&self, n: u32) -> Place {
        net6_place(self.len, self.addr, n)
    }
}

/// Where a slot table's entries go when both their buckets are full.
pub trait OverflowMap<K> {
    fn put(&mut self, k: &K, c: &NetClass) -> Result<(), TableError>;
    fn del(&mut self, k: &K) -> Result<(), TableError>;
    /// Every entry (read when taking over existing tables).
    fn entries(&self) -> Result<Vec<(K, NetClass)>, TableError>;
}

impl<K: Eq + Hash + Copy> OverflowMap<K> for HashMap<K, NetClass> {
    fn put(&mut self, k: &K, c: &NetClass) -> Result<(), TableError> {
        self.insert(*k, *c);
        Ok(())
    }
    fn del(&mut self, k: &K) -> Result<(), TableError> {
        self.remove(k);
        Ok(())
    }
    fn entries(&self) -> Result<Vec<(K, NetClass)>, TableError> {
        Ok(self.iter().map(|(k, v)| (*k, *v)).collect())
    }
}

/// Stores a class's two words in the order that never shows a ban flag with a stale expiry.
pub fn store_class(w: &mut impl Words, at: usize, c: &NetClass) {
    let [flags, expires] = c.to_words();
    if c.flags & class::BAN != 0 {
        w.store(at + 1, expires);
        w.store(at, flags);
    } else {
        w.store(at, flags);
        w.store(at + 1, expires);
    }
}

pub struct SlotTable<W: Words, M: Words, K: SlotKey, O: OverflowMap<K>> {
    slots: W,
    /// One meta word per bucket.
    meta: M,
    buckets: u32,
    /// Overflowed keys per bucket (a bucket's bit is set while non-zero).
    overflow_count: HashMap<u32, u32>,
    overflowed: HashMap<K, (u32, u32)>,
    over: O,
    capacity: u32,
    map: &'static str,
    len: usize,
}

impl<W: Words, M: Words, K: SlotKey, O: OverflowMap<K>> SlotTable<W, M, K, O> {
    const SLOT_WORDS: usize = K::WORDS + 2;

    /// Takes over zeroed `slots` (`buckets` × 4 slots) and `meta` (one word per bucket);
    /// `capacity` bounds the entries of the slots and the overflow map together.
    pub fn new(slots: W, meta: M, buckets: u32, over: O, capacity: u32, map: &'static str) -> Self {
        assert!(slots.len() >= buckets as usize * SLOTS_PER_BUCKET as usize * Self::SLOT_WORDS, "slot array too small");
        assert!(meta.len() >= buckets as usize, "meta array too small");
        Self {
            slots,
            meta,
            buckets,
            overflow_count: HashMap::new(),
            overflowed: HashMap::new(),
            over,
            capacity,
            map,
            len: 0,
        }
    }

    /// Takes over tables that already hold entries (pinned maps of an earlier daemon): finds
    /// them, and repairs what a writer stopped halfway may have left (a published entry
    /// without its fingerprint, stale fingerprints, overflow bits out of step).
    pub fn adopt(
        slots: W,
        meta: M,
        buckets: u32,
        over: O,
        capacity: u32,
        map: &'static str,
    ) -> Result<Self, TableError> {
        let mut t = Self::new(slots, meta, buckets, over, capacity, map);
        let per = SLOTS_PER_BUCKET as usize;
        for slot in 0..buckets as usize * per {
            let base = slot * Self::SLOT_WORDS;
            let mut w = [0u64; 3];
            for (i, word) in w.iter_mut().enumerate().take(K::WORDS) {
                *word = t.slots.load(base + i);
            }
            let key = K::from_words(w).filter(|k| {
                let p = k.place(buckets);
                [p.b1, p.b2].contains(&((slot / per) as u32))
            });
            match key {
                Some(k) => {
                    t.set_fingerprint(slot, k.place(buckets).fp);
                    t.len += 1;
                }
                None => {
                    if w[0] != 0 {
                        // not a key this table could have written: clear it
                        t.slots.store(base, 0);
                    }
                    t.set_fingerprint(slot, 0);
                }
            }
        }
        for b in 0..buckets {
            t.set_meta_bits(b, META_OVERFLOW, false);
        }
        for (k, _) in t.over.entries()? {
            let p = k.place(buckets);
            for b in [p.b1, p.b2] {
                *t.overflow_count.entry(b).or_default() += 1;
                t.set_meta_bits(b, META_OVERFLOW, true);
            }
            t.overflowed.insert(k, (p.b1, p.b2));
            t.len += 1;
        }
        Ok(t)
    }

    /// Every entry: (key, class), slots first, then the overflow map.
    pub fn entries(&self) -> Result<Vec<(K, NetClass)>, TableError> {
        let per = SLOTS_PER_BUCKET as usize;
        let mut out = Vec::with_capacity(self.len);
        for slot in 0..self.buckets as usize * per {
            let base = slot * Self::SLOT_WORDS;
            let mut w = [0u64; 3];
            for (i, word) in w.iter_mut().enumerate().take(K::WORDS) {
                *word = self.slots.load(base + i);
            }
            if let Some(k) = K::from_words(w) {
                let (w1, w2) = (self.slots.load(base + K::WORDS), self.slots.load(base + K::WORDS + 1));
                out.push((k, NetClass::from_words([w1, w2])));
            }
        }
        out.extend(self.over.entries()?);
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the shared mappings until the next access.
    pub fn unmap(&mut self)
    where
        W: Unmap,
        M: Unmap,
    {
        self.slots.unmap();
        self.meta.unmap();
    }

    /// Entries in the overflow map.
    pub fn overflowed(&self) -> usize {
        self.overflowed.len()
    }

    fn candidates(&self, k: &K) -> impl Iterator<Item = usize> {
        let Place { b1, b2, .. } = k.place(self.buckets);
        let per = SLOTS_PER_BUCKET as usize;
        (0..per).map(move |i| b1 as usize * per + i).chain((0..per).map(move |i| b2 as usize * per + i))
    }

    fn holds(&self, slot: usize, k: &K) -> bool {
        let base = slot * Self::SLOT_WORDS;
        let w = k.words();
        (0..K::WORDS).all(|i| self.slots.load(base + i) == w[i])
    }

    fn find(&self, k: &K) -> Option<usize> {
        self.candidates(k).find(|s| self.holds(*s, k))
    }

    /// The class stored for `k`, read the way the XDP program reads it.
    pub fn get(&self, k: &K) -> Option<NetClass> {
        let s = self.find(k)? * Self::SLOT_WORDS + K::WORDS;
        let (w1, w2) = (self.slots.load(s), self.slots.load(s + 1));
        Some(NetClass::from_words([w1, w2]))
    }

    pub fn contains(&self, k: &K) -> bool {
        self.find(k).is_some() || self.overflowed.contains_key(k)
    }

    /// Inserts or updates an entry.
    pub fn put(&mut self, k: &K, c: &NetClass) -> Result<(), TableError> {
        if let Some(s) = self.find(k) {
            store_class(&mut self.slots, s * Self::SLOT_WORDS + K::WORDS, c);
            return Ok(());
        }
        if self.overflowed.contains_key(k) {
            return self.over.put(k, c);
        }
        if self.len >= self.capacity as usize {
            return Err(TableError::Full { map: self.map, capacity: self.capacity });
        }
        let place = k.place(self.buckets);
        match self.free_slot(&place) {
            Some(s) => {
                let base = s * Self::SLOT_WORDS;
                let w = k.words();
                for (i, word) in w.iter().enumerate().take(K::WORDS).skip(1) {
                    self.slots.store(base + i, *word);
                }
                store_class(&mut self.slots, base + K::WORDS, c);
                self.slots.store(base, w[0]);
                self.set_fingerprint(s, place.fp);
            }
            None => {
                self.over.put(k, c)?;
                for b in [place.b1, place.b2] {
                    let n = self.overflow_count.entry(b).or_default();
                    *n += 1;
                    if *n == 1 {
                        self.set_meta_bits(b, META_OVERFLOW, true);
                    }
                }
                self.overflowed.insert(*k, (place.b1, place.b2));
            }
        }
        self.len += 1;
        Ok(())
    }

    pub fn remove(&mut self, k: &K) -> Result<bool, TableError> {
        if let Some(s) = self.find(k) {
            self.set_fingerprint(s, 0);
            self.slots.store(s * Self::SLOT_WORDS, 0);
            self.len -= 1;
            return Ok(true);
        }
        let Some((b1, b2)) = self.overflowed.remove(k) else { return Ok(false) };
        self.over.del(k)?;
        for b in [b1, b2] {
            let n = self.overflow_count.entry(b).or_default();
            *n -= 1;
            if *n == 0 {
                self.overflow_count.remove(&b);
                self.set_meta_bits(b, META_OVERFLOW, false);
            }
        }
        self.len -= 1;
        Ok(true)
    }

    /// A free slot in the emptier of the two buckets (the balanced choice keeps overflow rare).
    fn free_slot(&self, p: &Place) -> Option<usize> {
        let per = SLOTS_PER_BUCKET as usize;
        let free =
            |b: u32| (0..per).map(move |i| b as usize * per + i).filter(|s| self.slots.load(s * Self::SLOT_WORDS) == 0);
        let (n1, n2) = (free(p.b1).count(), free(p.b2).count());
        let b = if n2 > n1 { p.b2 } else { p.b1 };
        free(b).next()
    }

    fn set_fingerprint(&mut self, slot: usize, fp: u64) {
        let per = SLOTS_PER_BUCKET as usize;
        let (b, shift) = (slot / per, (slot % per) * 8);
        let m = self.meta.load(b);
        self.meta.store(b, (m & !(0xff << shift)) | (fp << shift));
    }

    fn set_meta_bits(&mut self, bucket: u32, bits: u64, on: bool) {
        let m = self.meta.load(bucket as usize);
        self.meta.store(bucket as usize, if on { m | bits } else { m & !bits });
    }

    /// Whether a reader would look in the overflow map for `k`.
    pub fn reader_checks_overflow(&self, k: &K) -> bool {
        let p = k.place(self.buckets);
        (self.meta.load(p.b1 as usize) | self.meta.load(p.b2 as usize)) & META_OVERFLOW != 0
    }

    /// Whether a reader would read the slot holding `k` (its fingerprint is published).
    pub fn reader_sees(&self, k: &K) -> bool {
        let p = k.place(self.buckets);
        let per = SLOTS_PER_BUCKET as usize;
        self.find(k).is_some_and(|s| (self.meta.load(s / per) >> ((s % per) * 8)) & 0xff == p.fp)
    }
}

/// Storage that can let go of its mapping between batches of writes.
pub trait Unmap {
    fn unmap(&mut self);
}

impl Unmap for crate::datapath::shm::MappedArray {
    fn unmap(&mut self) {
        crate::datapath::shm::MappedArray::unmap(self)
    }
}

impl Unmap for Vec<u64> {
    fn unmap(&mut self) {}
}

/// An IPv6 slot key from a prefix.
pub fn key6(len: u8, addr: u128) -> Net6Key {
    Net6Key { len: len as u32, _pad: 0, addr: Addr6 { hi: (addr >> 64) as u64, lo: addr as u64 } }
}

#[cfg(test)]
mod tests;
