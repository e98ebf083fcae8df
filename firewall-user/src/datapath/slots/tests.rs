//! Slot tables over plain vectors: placement, overflow, and the write order readers rely on.

use std::{cell::RefCell, collections::HashMap, rc::Rc};

use firewall_common::nets::{class, net4_key, slot_buckets};

use super::*;

fn c(i: u64) -> NetClass {
    NetClass { flags: class::BLOCK, allow_from: i as u32, ban_expires: 0 }
}

type T4 = SlotTable<Vec<u64>, Vec<u64>, Key4, HashMap<Key4, NetClass>>;

fn table4(entries: u32, capacity: u32) -> T4 {
    let b = slot_buckets(entries);
    SlotTable::new(vec![0; b as usize * 4 * 3], vec![0; b as usize], b, HashMap::new(), capacity, "SW_NET4")
}

fn key(i: u64) -> Key4 {
    Key4(net4_key(32, (i as u32).wrapping_mul(2_654_435_761)))
}

#[test]
fn fills_to_capacity_with_little_overflow_and_finds_everything() {
    let n = 100_000u64;
    let mut t = table4(n as u32, n as u32);
    for i in 0..n {
        t.put(&key(i), &c(i)).unwrap();
    }
    assert_eq!(t.len(), n as usize);
    assert!(t.overflowed() < n as usize / 100, "{} of {n} overflowed", t.overflowed());
    for i in 0..n {
        let k = key(i);
        match t.get(&k) {
            Some(v) => {
                assert_eq!(v, c(i));
                assert!(t.reader_sees(&k), "fingerprint published");
            }
            None => {
                assert_eq!(t.over.get(&k), Some(&c(i)), "in the overflow map");
                assert!(t.reader_checks_overflow(&k), "its buckets say so");
            }
        }
    }
    assert_eq!(
        t.put(&key(n + 1), &c(0)).unwrap_err().to_string(),
        "map SW_NET4 is full (100000 entries): raise its capacity in the rules file and restart"
    );
}

#[test]
fn removal_frees_slots_and_overflow_bits() {
    let mut t = table4(64, 1000);
    for i in 0..400 {
        t.put(&key(i), &c(i)).unwrap();
    }
    assert!(t.overflowed() > 0, "a table for 64 entries overflows with 400");
    for i in 0..400 {
        assert!(t.remove(&key(i)).unwrap());
    }
    assert!(!t.remove(&key(1)).unwrap());
    assert_eq!((t.len(), t.overflowed()), (0, 0));
    assert!(t.meta.iter().all(|w| *w == 0), "every fingerprint and overflow bit cleared");
    assert!(t.over.is_empty());
    assert!(t.slots.iter().step_by(3).all(|k| *k == 0));
    // updates of an overflowed key go to the overflow map
    for i in 0..400 {
        t.put(&key(i), &c(i)).unwrap();
    }
    let k = (0..400).map(key).find(|k| t.get(k).is_none()).unwrap();
    t.put(&k, &c(7777)).unwrap();
    assert_eq!(t.over[&k], c(7777));
}

/// Words that, after every store, read every key that must be present as the kernel would.
struct Checked {
    inner: Vec<u64>,
    buckets: u32,
    must: Rc<RefCell<Vec<(Net6Key, NetClass)>>>,
}

impl Words for Checked {
    fn load(&self, i: usize) -> u64 {
        self.inner[i]
    }
    fn store(&mut self, i: usize, v: u64) {
        self.inner[i] = v;
        for (k, want) in self.must.borrow().iter() {
            let p = k.place(self.buckets);
            let found =
                [p.b1, p.b2].iter().flat_map(|b| (0..4).map(move |s| (*b as usize * 4 + s) * 5)).find_map(|base| {
                    let w = k.words();
                    (self.inner[base] == w[0] && self.inner[base + 1] == w[1] && self.inner[base + 2] == w[2])
                        .then(|| (self.inner[base + 3], self.inner[base + 4]))
                });
            let (w1, w2) = found.unwrap_or_else(|| panic!("{k:?} unreadable after a store"));
            assert_eq!([w1, w2], want.to_words(), "{k:?} torn");
        }
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

#[test]
fn present_ipv6_entries_stay_readable_through_other_writes() {
    let b = 16;
    let must = Rc::new(RefCell::new(Vec::new()));
    let words = Checked { inner: vec![0; b * 4 * 5], buckets: b as u32, must: must.clone() };
    let mut t: SlotTable<Checked, Vec<u64>, Net6Key, HashMap<Net6Key, NetClass>> =
        SlotTable::new(words, vec![0; b], b as u32, HashMap::new(), 1000, "SW_NET6");
    for i in 0..40u128 {
        let k = key6(48, (0x2001_0db8u128 << 96) | (i << 80));
        t.put(&k, &c(i as u64)).unwrap();
        if t.get(&k).is_some() {
            must.borrow_mut().push((k, c(i as u64)));
        }
    }
    // deletes and re-inserts around the entries that must stay
    for i in (0..40u128).step_by(3) {
        let k = key6(48, (0x2001_0db8u128 << 96) | (i << 80));
        must.borrow_mut().retain(|(m, _)| *m != k);
        t.remove(&k).unwrap();
    }
    for i in 100..120u128 {
        t.put(&key6(64, (0x2001_0db8u128 << 96) | (i << 64)), &c(1)).unwrap();
    }
}

#[test]
fn a_ban_is_written_expiry_first_and_lifted_flags_first() {
    let mut w = vec![0u64; 2];
    let banned = NetClass { flags: class::BAN, allow_from: 0, ban_expires: 99 };
    // record the store order through a tiny Words
    struct Log(Vec<u64>, Vec<usize>);
    impl Words for Log {
        fn load(&self, i: usize) -> u64 {
            self.0[i]
        }
        fn store(&mut self, i: usize, v: u64) {
            self.0[i] = v;
            self.1.push(i);
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    let mut log = Log(std::mem::take(&mut w), Vec::new());
    store_class(&mut log, 0, &banned);
    assert_eq!(log.1, [1, 0]);
    log.1.clear();
    store_class(&mut log, 0, &NetClass::EMPTY);
    assert_eq!(log.1, [0, 1]);
}

#[test]
fn adopting_a_filled_table_finds_every_entry_and_repairs_half_writes() {
    let mut t = table4(64, 1000);
    for i in 0..400 {
        t.put(&key(i), &c(i)).unwrap();
    }
    let (buckets, len, over) = (t.buckets, t.len(), t.overflowed());
    let SlotTable { slots, mut meta, over: o, .. } = t;
    // a writer killed halfway: one entry's fingerprint never published, a stray fingerprint
    // on an empty slot, overflow bits lost
    let first = (0..slots.len() / 3).find(|s| slots[s * 3] != 0).unwrap();
    meta[first / 4] &= !(0xff << ((first % 4) * 8));
    let empty = (0..slots.len() / 3).find(|s| slots[s * 3] == 0).unwrap();
    meta[empty / 4] |= 0x5a << ((empty % 4) * 8);
    for m in meta.iter_mut() {
        *m &= !META_OVERFLOW;
    }
    let t = T4::adopt(slots, meta, buckets, o, 1000, "SW_NET4").unwrap();
    assert_eq!((t.len(), t.overflowed()), (len, over));
    for i in 0..400 {
        let k = key(i);
        assert!(t.reader_sees(&k) || t.reader_checks_overflow(&k), "entry {i} reachable after adoption");
    }
    let mut entries = t.entries().unwrap();
    entries.sort_by_key(|(k, _)| k.0);
    let mut want: Vec<(Key4, NetClass)> = (0..400).map(|i| (key(i), c(i))).collect();
    want.sort_by_key(|(k, _)| k.0);
    assert_eq!(entries, want);
    let empty_fp = (t.meta[empty / 4] >> ((empty % 4) * 8)) & 0xff;
    assert_eq!(empty_fp, 0, "stray fingerprint cleared");
}
