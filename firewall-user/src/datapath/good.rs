//! `SW_SIP_GOOD`: the known-good sources as the XDP program sees them (their rate-limit keys,
//! until a kernel deadline), and `SW_SIP_GOOD_FILTER`, the bit each key sets, counted here so
//! that a bit shared by two keys is cleared only once both are gone.

use std::{collections::HashMap as Counts, net::IpAddr};

use aya::maps::{Array, HashMap, MapData, MapError};
use firewall_common::{
    addr::Addr6,
    config::RATE6_PREFIX,
    proof::GoodKey,
    rate::{FAMILY_V4, FAMILY_V6},
};

pub struct GoodMap {
    map: HashMap<MapData, GoodKey, u64>,
    filter: Array<MapData, u64>,
    /// Keys per filter bit; a word is rewritten whenever one of its bits turns on or off.
    bits: Counts<(u32, u32), u32>,
}

/// The key of `host`: an IPv4 address, or the /64 of an IPv6 one, as the rate limiter keys it.
pub fn good_key(host: IpAddr) -> GoodKey {
    match host {
        IpAddr::V4(a) => GoodKey { addr: Addr6 { hi: 0, lo: u32::from(a) as u64 }, family: FAMILY_V4, _pad: 0 },
        IpAddr::V6(a) => {
            GoodKey { addr: Addr6::from_be_bytes(a.octets()).masked(RATE6_PREFIX), family: FAMILY_V6, _pad: 0 }
        }
    }
}

impl GoodMap {
    pub fn new(map: HashMap<MapData, GoodKey, u64>, filter: Array<MapData, u64>) -> Self {
        GoodMap { map, filter, bits: Counts::new() }
    }

    /// `host` is known good until kernel deadline `until`.
    pub fn put(&mut self, host: IpAddr, until: u64) -> Result<(), MapError> {
        let key = good_key(host);
        let new = self.map.get(&key, 0).is_err();
        // the filter bit first: the program asks the hash only where the bit is set
        if new {
            self.count(key.filter_bit(), 1)?;
        }
        let r = self.map.insert(key, until, 0);
        if r.is_err() && new {
            self.count(key.filter_bit(), -1)?;
        }
        r
    }

    pub fn remove(&mut self, host: IpAddr) {
        let key = good_key(host);
        // absent already (a full table refused it): nothing to undo
        if self.map.remove(&key).is_ok() {
            let _ = self.count(key.filter_bit(), -1);
        }
    }

    /// Counts one key more or less on filter bit `at`, and writes its word when the bit changes.
    fn count(&mut self, at: (u32, u32), by: i32) -> Result<(), MapError> {
        let n = self.bits.entry(at).or_insert(0);
        let was = *n > 0;
        *n = n.saturating_add_signed(by);
        let is = *n > 0;
        if *n == 0 {
            self.bits.remove(&at);
        }
        if was == is {
            return Ok(());
        }
        let word = (0..64).filter(|b| self.bits.contains_key(&(at.0, *b))).fold(0u64, |w, b| w | 1 << b);
        self.filter.set(at.0, word, 0)
    }

    /// Empties the map (of an earlier daemon's entries, on a takeover: the sources it knew
    /// prove themselves again at their next registration).
    pub fn clear(&mut self) {
        let keys: Vec<GoodKey> = self.map.keys().filter_map(Result::ok).collect();
        for k in keys {
            let _ = self.map.remove(&k);
        }
        for w in 0..firewall_common::proof::GOOD_FILTER_WORDS {
            let _ = self.filter.set(w, 0, 0);
        }
        self.bits.clear();
    }
}
