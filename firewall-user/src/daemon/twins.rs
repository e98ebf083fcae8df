//! One failure, several records: Asterisk writes a wrong password to its `messages` log and its
//! `security` log, and sends it on AMI too. A jail reading several sources counts such records
//! once: a record from one source joins the oldest group of the same jail and address, begun
//! within [`WINDOW_MS`], that has no record from that source yet; otherwise it begins a group
//! of its own and counts. A record that may be proven (strong) is never dropped for a group
//! that holds only records nothing can prove (weak): it counts, and the group becomes strong.
//! Otherwise a forged weak record sent just before each real failure would hide it.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Arc,
};

/// How far apart the records of one failure may arrive.
pub const WINDOW_MS: u64 = 3_000;
/// Groups kept at most (the oldest go first): a flood of failures cannot grow this without bound.
const GROUPS_MAX: usize = 65_536;
/// Groups kept at most per jail and address: a flood naming one address costs each record a
/// look at this many at most.
const PER_HOST_MAX: usize = 64;

/// A failure's records so far: when the first arrived, and from which sources.
struct Group {
    at: u64,
    sources: Vec<Arc<str>>,
    /// A record that may be proven was counted for it.
    strong: bool,
}

#[derive(Default)]
pub struct Twins {
    groups: HashMap<(Arc<str>, IpAddr), VecDeque<Group>>,
    /// Every group's key, oldest first, to prune by age and by count.
    order: VecDeque<(u64, Arc<str>, IpAddr)>,
}

impl Twins {
    /// Whether a record of `jail`'s source `source` about `host` at `now` repeats a failure
    /// another source of the jail reported; if not, it counts. `strong`: it may be proven.
    pub fn repeats(&mut self, jail: &Arc<str>, source: &Arc<str>, host: IpAddr, strong: bool, now: u64) -> bool {
        self.prune(now);
        let key = (jail.clone(), host);
        let groups = self.groups.entry(key).or_default();
        if let Some(g) =
            groups.iter_mut().find(|g| now.saturating_sub(g.at) <= WINDOW_MS && !g.sources.contains(source))
        {
            g.sources.push(source.clone());
            if g.strong || !strong {
                return true;
            }
            g.strong = true;
            return false;
        }
        // the oldest of a flood naming one address go first; `order` forgets them as they age
        if groups.len() >= PER_HOST_MAX {
            groups.pop_front();
        }
        groups.push_back(Group { at: now, sources: vec![source.clone()], strong });
        self.order.push_back((now, jail.clone(), host));
        false
    }

    fn prune(&mut self, now: u64) {
        while let Some((at, jail, host)) = self.order.front().cloned() {
            if now.saturating_sub(at) <= WINDOW_MS && self.order.len() <= GROUPS_MAX {
                break;
            }
            self.order.pop_front();
            let key = (jail, host);
            if let Some(gs) = self.groups.get_mut(&key) {
                // its group, unless PER_HOST_MAX let it go already
                if gs.front().is_some_and(|g| g.at <= at) {
                    gs.pop_front();
                }
                if gs.is_empty() {
                    self.groups.remove(&key);
                }
            }
        }
    }

    /// Groups held (for tests and bounds).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Arc<str> {
        x.into()
    }

    #[test]
    fn each_failure_counts_once_whatever_order_its_records_arrive_in() {
        let (jail, m, sec, ami) = (s("asterisk"), s("messages"), s("security"), s("ami:127.0.0.1:5038"));
        let a: IpAddr = "192.0.2.6".parse().unwrap();
        let mut t = Twins::default();
        // two wrong passwords, each in three sources, interleaved
        let arrivals = [(&m, 0), (&sec, 1), (&m, 5), (&ami, 8), (&sec, 9), (&ami, 12)];
        let counted = arrivals.iter().filter(|(src, at)| !t.repeats(&jail, src, a, true, *at)).count();
        assert_eq!(counted, 2);
        // a third from one source alone
        assert!(!t.repeats(&jail, &m, a, true, 20));
    }

    #[test]
    fn records_of_one_source_or_far_apart_or_of_others_are_separate_failures() {
        let (jail, m, sec) = (s("asterisk"), s("messages"), s("security"));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.6".parse().unwrap(), "192.0.2.7".parse().unwrap());
        let mut t = Twins::default();
        assert!(!t.repeats(&jail, &m, a, true, 0));
        assert!(!t.repeats(&jail, &m, a, true, 1), "the same source twice: two failures");
        assert!(!t.repeats(&jail, &sec, b, true, 2), "another address");
        assert!(!t.repeats(&s("sshd"), &sec, a, true, 2), "another jail");
        assert!(t.repeats(&jail, &sec, a, true, 2), "within the window, it joins the oldest open group");
        assert!(!t.repeats(&jail, &sec, a, true, 1 + WINDOW_MS + 1), "too late to be a twin of the second");
    }

    #[test]
    fn old_groups_go_and_the_count_is_bounded() {
        let (jail, m) = (s("asterisk"), s("messages"));
        let mut t = Twins::default();
        for i in 0..(GROUPS_MAX as u32 + 10) {
            let host = IpAddr::from(i.to_be_bytes());
            t.repeats(&jail, &m, host, true, 0);
        }
        assert!(t.len() <= GROUPS_MAX + 1);
        t.repeats(&jail, &m, "192.0.2.1".parse().unwrap(), true, 10 * WINDOW_MS);
        assert_eq!(t.len(), 1, "groups past the window are forgotten");
        assert_eq!(t.groups.len(), 1);
    }

    #[test]
    fn a_record_that_may_be_proven_is_never_hidden_by_one_that_cannot_be() {
        let (jail, m, sec) = (s("asterisk"), s("messages"), s("security"));
        let x: IpAddr = "192.0.2.66".parse().unwrap();
        let mut t = Twins::default();
        // a forged security line naming X comes first: X's real messages line still counts
        assert!(!t.repeats(&jail, &sec, x, false, 0));
        assert!(!t.repeats(&jail, &m, x, true, 1), "the strong record counts");
        // the other way round, the weak one is the repeat
        assert!(!t.repeats(&jail, &m, x, true, 10_000));
        assert!(t.repeats(&jail, &sec, x, false, 10_001));
    }

    #[test]
    fn a_flood_naming_one_address_keeps_few_groups_for_it() {
        let (jail, m, sec) = (s("asterisk"), s("messages"), s("security"));
        let x: IpAddr = "192.0.2.66".parse().unwrap();
        let mut t = Twins::default();
        for i in 0..10_000 {
            assert!(!t.repeats(&jail, &m, x, true, i / 100));
        }
        assert!(t.groups[&(jail.clone(), x)].len() <= PER_HOST_MAX);
        // a twin still finds an open group, and nothing panics as the old ones age out
        assert!(t.repeats(&jail, &sec, x, true, 100));
        for i in 0..200 {
            t.repeats(&jail, &m, x, true, 100 + i * 100);
        }
        assert!(t.len() <= GROUPS_MAX);
    }
}
