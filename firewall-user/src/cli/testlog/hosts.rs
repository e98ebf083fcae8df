//! Findings per address, counted for the summary of `sipwall test-log`.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

/// Findings per host. IPv4 addresses are appended to a list and counted in batches (sorted,
/// then runs counted, then merged into the sorted counts): a log of scanners names a new address
/// on nearly every line, where a hash map would spend its time growing and missing the cache.
#[derive(Default)]
pub struct HostCounts {
    v4: Vec<u32>,
    /// IPv4 addresses counted so far, sorted by address.
    v4_counted: Vec<(u32, u64)>,
    v6: FxHashMap<IpAddr, u64>,
}

impl HostCounts {
    /// Addresses held before a batch is counted (16 MiB).
    const BATCH: usize = 1 << 22;

    pub fn add(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.v4.push(u32::from(a));
                if self.v4.len() >= Self::BATCH {
                    self.fold();
                }
            }
            IpAddr::V6(_) => *self.v6.entry(ip).or_default() += 1,
        }
    }

    fn fold(&mut self) {
        radix_sort(&mut self.v4);
        let batch = self.v4.chunk_by(|a, b| a == b).map(|run| (run[0], run.len() as u64));
        self.v4_counted = merge_counts(std::mem::take(&mut self.v4_counted), batch);
        self.v4.clear();
    }

    /// How many distinct addresses, and the `n` most frequent (most first, then by address).
    pub fn finish(mut self, n: usize) -> (usize, Vec<(u64, IpAddr)>) {
        self.fold();
        let distinct = self.v4_counted.len() + self.v6.len();
        let v4 = self.v4_counted.into_iter().map(|(a, c)| (c, IpAddr::V4(a.into())));
        let all = v4.chain(self.v6.into_iter().map(|(a, c)| (c, a)));
        (distinct, top(all, n, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))))
    }
}

/// Sorts by the bytes of the values, least significant first: linear time, where the lists
/// here hold hundreds of thousands of addresses.
fn radix_sort(v: &mut Vec<u32>) {
    let mut tmp = vec![0u32; v.len()];
    for shift in [0, 8, 16, 24] {
        let mut at = [0usize; 256];
        for x in v.iter() {
            at[(*x >> shift) as usize & 255] += 1;
        }
        let mut sum = 0;
        for slot in at.iter_mut() {
            (*slot, sum) = (sum, sum + *slot);
        }
        for x in v.iter() {
            let b = (*x >> shift) as usize & 255;
            tmp[at[b]] = *x;
            at[b] += 1;
        }
        std::mem::swap(v, &mut tmp);
    }
}

/// Two lists of (address, count) sorted by address, as one.
fn merge_counts(old: Vec<(u32, u64)>, new: impl Iterator<Item = (u32, u64)>) -> Vec<(u32, u64)> {
    if old.is_empty() {
        return new.collect();
    }
    let mut out = Vec::with_capacity(old.len());
    let mut old = old.into_iter().peekable();
    for (a, n) in new {
        while let Some(o) = old.next_if(|o| o.0 < a) {
            out.push(o);
        }
        match old.next_if(|o| o.0 == a) {
            Some((_, m)) => out.push((a, n + m)),
            None => out.push((a, n)),
        }
    }
    out.extend(old);
    out
}

/// The `n` first of `items` in the order `cmp`, in that order, without ordering the rest.
fn top<T>(items: impl Iterator<Item = T>, n: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    let mut best: Vec<T> = Vec::with_capacity(n + 1);
    for x in items {
        if best.len() == n && best.last().is_none_or(|worst| cmp(&x, worst).is_ge()) {
            continue;
        }
        let at = best.partition_point(|b| cmp(b, &x).is_lt());
        best.insert(at, x);
        best.truncate(n);
    }
    best
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn counts_and_ranks_as_a_hash_map_does() {
        let mut h = HostCounts::default();
        let mut m: HashMap<IpAddr, u64> = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..50_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // few distinct addresses, spread over all four bytes, and some IPv6
            let ip: IpAddr = if x.is_multiple_of(10) {
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(x % 7)))
            } else {
                IpAddr::V4((((x % 4000) as u32).wrapping_mul(0x9e37_79b9)).into())
            };
            h.add(ip);
            *m.entry(ip).or_default() += 1;
            // batches counted along the way merge with the earlier ones
            if i.is_multiple_of(9_999) {
                h.fold();
            }
        }
        let (distinct, top10) = h.finish(10);
        let mut all: Vec<(u64, IpAddr)> = m.iter().map(|(ip, n)| (*n, *ip)).collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(distinct, m.len());
        assert_eq!(top10, all[..10]);
    }

    #[test]
    fn radix_sort_sorts() {
        let mut v: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(0x9e37_79b9) ^ (i << 3)).collect();
        let mut w = v.clone();
        radix_sort(&mut v);
        w.sort_unstable();
        assert_eq!(v, w);
    }
}
