//! A hash table of connections: open addressing with linear probing, keys and values side by
//! side, which slots are used in a bitmap small enough to stay in the cache. A lookup reads one
//! slot (one cache line, mostly), where a SwissTable reads a control byte and then the slot, two
//! lines apart: with a table too big for the cache and looked up at random on every line, those
//! reads are most of its cost. The keys are hashes already.

/// One place of the table.
#[derive(Debug, Clone, Copy, Default)]
struct Slot<V> {
    key: u64,
    value: V,
}

#[derive(Debug)]
pub struct Table<V> {
    /// A power of two of slots, at most half of them used.
    slots: Vec<Slot<V>>,
    /// Bit `i` is set if slot `i` is used.
    used: Vec<u64>,
    len: usize,
}

impl<V: Copy + Default> Default for Table<V> {
    fn default() -> Self {
        Table::with_slots(64)
    }
}

impl<V: Copy + Default> Table<V> {
    fn with_slots(n: usize) -> Self {
        Table { slots: vec![Slot::default(); n], used: vec![0; n.div_ceil(64)], len: 0 }
    }

    fn is_used(&self, i: usize) -> bool {
        self.used[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_used(&mut self, i: usize, used: bool) {
        if used {
            self.used[i / 64] |= 1 << (i % 64);
        } else {
            self.used[i / 64] &= !(1 << (i % 64));
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where `key` would be without collisions: the top bits of a multiplicative hash.
    fn home(&self, key: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    fn find(&self, key: u64) -> Option<usize> {
        let mut i = self.home(key);
        while self.is_used(i) {
            if self.slots[i].key == key {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
        None
    }

    pub fn get(&self, key: u64) -> Option<&V> {
        self.find(key).map(|i| &self.slots[i].value)
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        self.find(key).map(|i| &mut self.slots[i].value)
    }

    pub fn contains(&self, key: u64) -> bool {
        self.find(key).is_some()
    }

    /// Adds `key`, which must not be in the table.
    pub fn insert_new(&mut self, key: u64, value: V) {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mut i = self.home(key);
        while self.is_used(i) {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = Slot { key, value };
        self.set_used(i, true);
        self.len += 1;
    }

    /// Takes `key` out. The slots after it that would be found through its place move back
    /// into it, so no search ever stops early at the hole.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let mut hole = self.find(key)?;
        let value = self.slots[hole].value;
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask();
            if !self.is_used(j) {
                break;
            }
            // the entry at j may fill the hole if its home is not between the hole and j
            let home = self.home(self.slots[j].key);
            if (j.wrapping_sub(home) & self.mask()) >= (j.wrapping_sub(hole) & self.mask()) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.set_used(hole, false);
        self.len -= 1;
        Some(value)
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, Table::with_slots(2 * self.slots.len()));
        for (i, s) in old.slots.iter().enumerate() {
            if old.is_used(i) {
                self.insert_new(s.key, s.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn agrees_with_a_hash_map() {
        // keys chosen to collide in the low bits and to wrap around the end of the table
        let mut t = Table::<u32>::default();
        let mut m = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 3000 * 0x1_0000_0000;
            match x % 3 {
                0 | 1 if !m.contains_key(&key) => {
                    t.insert_new(key, step);
                    m.insert(key, step);
                }
                _ => assert_eq!(t.remove(key), m.remove(&key)),
            }
            assert_eq!(t.len(), m.len());
        }
        for (k, v) in &m {
            assert_eq!(t.get(*k), Some(v));
        }
        assert!(!t.contains(1));
    }
}
