//! Recent failures per source for one jail: a sliding window of `findtime`, bounded in the
//! number of sources it tracks (the oldest are forgotten first, so a flood of spoofed sources
//! in a UDP log cannot grow it without bound).

use std::collections::{HashMap, VecDeque};

use ipnet::IpNet;

use crate::detection::detect::Proof;

/// Lines kept per source, to show why it was banned.
pub const KEPT_LINES: usize = 10;
/// Bytes kept of each line or user name: a source costs at most about 20 KiB of text, however
/// long the lines an attacker makes the log write (up to 64 KiB each).
pub const KEPT_BYTES: usize = 1024;

/// `text`, cut to [`KEPT_BYTES`] at a character boundary, ending in `…` if cut.
pub fn kept(text: &str) -> String {
    if text.len() <= KEPT_BYTES {
        return text.to_owned();
    }
    let mut end = KEPT_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[derive(Debug, Default, Clone)]
pub struct Track {
    /// Failure times (unix ms), oldest first.
    pub times: VecDeque<u64>,
    /// The latest matched lines, oldest first.
    pub lines: VecDeque<String>,
    /// Users tried (attacker-chosen text, for display), latest last.
    pub users: Vec<String>,
    /// The times of the failures among `times` that were unproven (a jail with
    /// `trust_unproven` counts them), oldest first.
    pub unproven: VecDeque<u64>,
    seq: u64,
}

pub struct Window {
    tracks: HashMap<IpNet, Track>,
    /// Insertion order for eviction: (source, sequence number of its track).
    order: VecDeque<(IpNet, u64)>,
    next_seq: u64,
    capacity: usize,
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Window { tracks: HashMap::new(), order: VecDeque::new(), next_seq: 0, capacity: capacity.max(1) }
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn get(&self, target: &IpNet) -> Option<&Track> {
        self.tracks.get(target)
    }

    /// Records a failure at `now` and returns how many fall within `findtime_ms` of it
    /// (a failure exactly `findtime` old still counts, as in fail2ban).
    pub fn add(
        &mut self,
        target: IpNet,
        now: u64,
        findtime_ms: u64,
        (line, user): (Option<&str>, Option<&str>),
        proof: Proof,
    ) -> usize {
        if !self.tracks.contains_key(&target) {
            self.make_room();
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.push_back((target, seq));
            self.tracks.insert(target, Track { seq, ..Track::default() });
        }
        let t = self.tracks.get_mut(&target).expect("inserted above");
        let horizon = now.saturating_sub(findtime_ms);
        while t.times.front().is_some_and(|&x| x < horizon) {
            t.times.pop_front();
        }
        while t.unproven.front().is_some_and(|&x| x < horizon) {
            t.unproven.pop_front();
        }
        t.times.push_back(now);
        if proof == Proof::Unproven {
            t.unproven.push_back(now);
        }
        if let Some(l) = line {
            if t.lines.len() == KEPT_LINES {
                t.lines.pop_front();
            }
            t.lines.push_back(kept(l));
        }
        if let Some(u) = user {
            let u = kept(u);
            if !t.users.contains(&u) {
                if t.users.len() == KEPT_LINES {
                    t.users.remove(0);
                }
                t.users.push(u);
            }
        }
        t.times.len()
    }

    /// Forgets a source (after it was banned).
    pub fn take(&mut self, target: &IpNet) -> Option<Track> {
        self.tracks.remove(target)
    }

    fn make_room(&mut self) {
        while self.tracks.len() >= self.capacity {
            let Some((t, seq)) = self.order.pop_front() else { break };
            if self.tracks.get(&t).is_some_and(|x| x.seq == seq) {
                self.tracks.remove(&t);
            }
        }
        // entries of sources already gone pile up in `order`: compact now and then
        if self.order.len() > 2 * self.capacity {
            let tracks = &self.tracks;
            self.order.retain(|(t, seq)| tracks.get(t).is_some_and(|x| x.seq == *seq));
        }
    }

    /// Drops sources whose last failure is older than `findtime_ms`.
    pub fn expire(&mut self, now: u64, findtime_ms: u64) -> usize {
        let horizon = now.saturating_sub(findtime_ms);
        let before = self.tracks.len();
        self.tracks.retain(|_, t| t.times.back().is_some_and(|&x| x >= horizon));
        let tracks = &self.tracks;
        self.order.retain(|(t, seq)| tracks.get(t).is_some_and(|x| x.seq == *seq));
        before - self.tracks.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Track)> {
        self.tracks.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_text_is_bounded() {
        let mut w = Window::new(4);
        let target: IpNet = "192.0.2.1/32".parse().unwrap();
        let long = format!("{}é{}", "x".repeat(KEPT_BYTES - 3), "y".repeat(60_000));
        for i in 0..2 * KEPT_LINES as u64 {
            w.add(target, i, 1_000_000, (Some(&long), Some(&format!("{i}{long}"))), Proof::Proven);
        }
        let t = w.get(&target).unwrap();
        assert_eq!((t.lines.len(), t.users.len()), (KEPT_LINES, KEPT_LINES));
        for l in t.lines.iter().chain(&t.users) {
            assert!(l.len() <= KEPT_BYTES && l.ends_with('…'), "{}", l.len());
        }
        assert_eq!(kept("short line"), "short line");
        assert_eq!(kept(&"z".repeat(KEPT_BYTES)).len(), KEPT_BYTES, "a line of the limit is kept whole");
    }
}
