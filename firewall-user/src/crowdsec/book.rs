//! The decisions in force, as the stream told them: which targets they ban and until when. A
//! target may have several decisions (scenarios, origins); its ban lasts as long as the
//! longest, and is lifted with the last.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::decisions::{admit, target, Skip, Stream};

/// A decision in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub target: IpNet,
    pub until_ms: u64,
    pub scenario: String,
    pub origin: String,
}

/// What the ban table must do for a target after a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Ban until the longest of its decisions ends, for that decision's scenario.
    Enforce { target: IpNet, until_ms: u64, scenario: String },
    /// No decision is left for it.
    Lift { target: IpNet },
}

/// How a pull reads the stream.
pub struct Filter<'a> {
    pub origins: &'a [String],
    pub v6_prefix: u8,
    pub now_ms: u64,
    /// Whether a new decision is a ban this host pushed (its target, its end, its scenario).
    pub own: &'a mut dyn FnMut(&IpNet, u64, &str) -> bool,
}

#[derive(Default)]
pub struct Book {
    by_id: HashMap<i64, Held>,
    by_target: HashMap<IpNet, Vec<i64>>,
}

impl Book {
    /// Decisions held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Decisions held by origin, sorted by origin.
    pub fn by_origin(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<&str, usize> = HashMap::new();
        for h in self.by_id.values() {
            *m.entry(h.origin.as_str()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().map(|(o, n)| (o.to_owned(), n)).collect();
        v.sort();
        v
    }

    pub fn holds(&self, target: &IpNet) -> bool {
        self.by_target.contains_key(target)
    }

    /// Every target some decision bans.
    pub fn targets(&self) -> HashSet<IpNet> {
        self.by_target.keys().copied().collect()
    }

    /// Forgets every decision: a `startup=true` pull lists all those in force.
    pub fn clear(&mut self) {
        self.by_id.clear();
        self.by_target.clear();
    }

    fn remove(&mut self, id: i64) -> Option<IpNet> {
        let h = self.by_id.remove(&id)?;
        if let Some(ids) = self.by_target.get_mut(&h.target) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_target.remove(&h.target);
            }
        }
        Some(h.target)
    }

    /// The change a target needs now: its longest decision, or none.
    fn change(&self, target: IpNet) -> Change {
        let longest = self
            .by_target
            .get(&target)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .max_by_key(|h| h.until_ms);
        match longest {
            Some(h) => Change::Enforce { target, until_ms: h.until_ms, scenario: h.scenario.clone() },
            None => Change::Lift { target },
        }
    }

    /// Takes one answer of the stream: deletions first, then new decisions. Returns a change per
    /// target it touched, in the order first touched, and the new decisions it skipped.
    pub fn take(&mut self, stream: Stream, f: &mut Filter<'_>) -> (Vec<Change>, Vec<(Skip, String)>) {
        let mut touched: Vec<IpNet> = Vec::new();
        let mut seen = HashSet::new();
        let mut touch = |t: IpNet, touched: &mut Vec<IpNet>| {
            if seen.insert(t) {
                touched.push(t);
            }
        };
        for d in &stream.deleted {
            match self.remove(d.id) {
                Some(t) => touch(t, &mut touched),
                // a decision held before a restart, or one skipped: its target, if no other
                // decision bans it, goes (the daemon lifts only bans a decision made)
                None => {
                    if let Ok(t) = target(d, f.v6_prefix) {
                        if !self.by_target.contains_key(&t) {
                            touch(t, &mut touched);
                        }
                    }
                }
            }
        }
        let mut skipped = Vec::new();
        for d in stream.new {
            let (t, until_ms) = match admit(&d, f.origins, f.v6_prefix, f.now_ms) {
                Ok(x) => x,
                Err(why) => {
                    skipped.push((why, d.value));
                    continue;
                }
            };
            if (f.own)(&t, until_ms, &d.scenario) {
                skipped.push((Skip::Own, d.value));
                continue;
            }
            self.remove(d.id);
            self.by_id.insert(d.id, Held { target: t, until_ms, scenario: d.scenario, origin: d.origin });
            self.by_target.entry(t).or_default().push(d.id);
            touch(t, &mut touched);
        }
        let changes = touched.into_iter().map(|t| self.change(t)).collect();
        (changes, skipped)
    }

    /// Forgets decisions over by `now_ms` (their bans expire on their own).
    pub fn expire(&mut self, now_ms: u64) {
        let gone: Vec<i64> = self.by_id.iter().filter(|(_, h)| h.until_ms <= now_ms).map(|(id, _)| *id).collect();
        for id in gone {
            self.remove(id);
        }
    }
}
