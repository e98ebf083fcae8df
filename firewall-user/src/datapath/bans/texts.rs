//! The texts of bans, (reason, source) pairs, kept once and shared by the bans that have them,
//! and let go when the last such ban goes. A counted interner: the interner crates keep every
//! string for good, and ban reasons come and go with the bans.

use std::collections::HashMap;

/// (reason, source) pairs, each stored once and shared by the bans that have it.
#[derive(Default, Debug, Clone)]
pub(super) struct Texts {
    slots: Vec<Option<(String, String, u32)>>,
    ids: HashMap<(String, String), u32>,
    free: Vec<u32>,
    /// The id handed out last: bans come in runs with the same texts.
    last: Option<u32>,
}

impl Texts {
    pub(super) fn get(&mut self, reason: &str, source: &str) -> u32 {
        if let Some(id) = self.last {
            if let Some((r, s, n)) = self.slots[id as usize].as_mut() {
                if r == reason && s == source {
                    *n += 1;
                    return id;
                }
            }
        }
        let id = self.lookup(reason, source);
        self.last = Some(id);
        id
    }

    fn lookup(&mut self, reason: &str, source: &str) -> u32 {
        let key = (reason.to_owned(), source.to_owned());
        if let Some(&id) = self.ids.get(&key) {
            self.slots[id as usize].as_mut().expect("live id").2 += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[id as usize] = Some((key.0.clone(), key.1.clone(), 1));
        self.ids.insert(key, id);
        id
    }

    pub(super) fn put(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        let (r, s, n) = slot.as_mut().expect("live id");
        *n -= 1;
        if *n == 0 {
            self.ids.remove(&(std::mem::take(r), std::mem::take(s)));
            *slot = None;
            self.free.push(id);
        }
    }

    pub(super) fn of(&self, id: u32) -> (&str, &str) {
        let (r, s, _) = self.slots[id as usize].as_ref().expect("live id");
        (r, s)
    }

    /// Distinct pairs kept.
    #[cfg(test)]
    pub(super) fn distinct(&self) -> usize {
        self.ids.len()
    }

    /// Bans sharing the pairs, all pairs together.
    #[cfg(test)]
    pub(super) fn uses(&self) -> u32 {
        self.slots.iter().flatten().map(|(_, _, n)| *n).sum()
    }
}
