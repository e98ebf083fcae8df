//! A bounded map whose entries live a fixed time from their last refresh: when full, the entry
//! refreshed longest ago makes room. Entries are kept in refresh order, so expiry and eviction
//! cost no search, and a flood of new keys can only push old ones out, never grow it.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
};

pub struct Expiring<K, V> {
    map: HashMap<K, (V, u64)>,
    /// Keys in refresh order, with the expiry they had then (stale when refreshed since).
    order: VecDeque<(K, u64)>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Expiring<K, V> {
    pub fn new(capacity: usize) -> Self {
        Expiring { map: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Puts `v` under `k` until `until` (unix ms); returns the key pushed out to make room.
    /// `until` must not be earlier than that of the entries put before (a fixed lifetime).
    pub fn put(&mut self, k: K, v: V, until: u64) -> Option<K> {
        let mut evicted = None;
        if !self.map.contains_key(&k) && self.map.len() >= self.capacity {
            while let Some((old, at)) = self.order.pop_front() {
                if self.map.get(&old).is_some_and(|e| e.1 == at) {
                    self.map.remove(&old);
                    evicted = Some(old);
                    break;
                }
            }
        }
        self.map.insert(k.clone(), (v, until));
        self.order.push_back((k, until));
        // refreshes leave stale entries behind: drop them once they outnumber the live ones
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order.retain(|(k, at)| map.get(k).is_some_and(|e| e.1 == *at));
        }
        evicted
    }

    /// The value of `k` if it has not expired at `now`.
    pub fn get(&self, k: &K, now: u64) -> Option<&V> {
        self.map.get(k).filter(|e| e.1 > now).map(|e| &e.0)
    }

    pub fn get_mut(&mut self, k: &K, now: u64) -> Option<&mut V> {
        self.map.get_mut(k).filter(|e| e.1 > now).map(|e| &mut e.0)
    }

    /// When `k` expires, if it is there and has not.
    pub fn until(&self, k: &K, now: u64) -> Option<u64> {
        self.map.get(k).map(|e| e.1).filter(|u| *u > now)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|e| e.0)
    }

    /// Removes what expired by `now` and returns the keys.
    pub fn expire(&mut self, now: u64) -> Vec<K> {
        let mut gone = Vec::new();
        while let Some((k, at)) = self.order.front() {
            if *at > now {
                break;
            }
            let (k, at) = (k.clone(), *at);
            self.order.pop_front();
            if self.map.get(&k).is_some_and(|e| e.1 == at) {
                self.map.remove(&k);
                gone.push(k);
            }
        }
        gone
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V, u64)> {
        self.map.iter().map(|(k, (v, u))| (k, v, *u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_refresh() {
        let mut m = Expiring::new(10);
        m.put("a", 1, 100);
        m.put("b", 2, 150);
        assert_eq!(m.get(&"a", 99), Some(&1));
        assert_eq!(m.get(&"a", 100), None, "expired at its time");
        m.put("a", 3, 200);
        assert_eq!(m.expire(160), ["b"], "a was refreshed");
        assert_eq!(m.get(&"a", 160), Some(&3));
        assert_eq!(m.expire(200), ["a"]);
        assert!(m.is_empty());
    }

    #[test]
    fn a_full_map_pushes_out_the_oldest() {
        let mut m = Expiring::new(3);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(m.put(k, i, 100 + i as u64), None);
        }
        m.put("a", 9, 110);
        assert_eq!(m.put("d", 3, 111), Some("b"), "a was refreshed: b is the oldest");
        assert_eq!(m.len(), 3);
        // a flood of new keys never grows it, and the stale order entries stay bounded
        for i in 0..10_000u64 {
            m.put(if i % 2 == 0 { "x" } else { "y" }, 0, 200 + i);
        }
        assert_eq!(m.len(), 3);
        assert!(m.order.len() <= 2 * 3 + 16);
    }
}
