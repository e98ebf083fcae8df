//! In-memory [`Tables`] that answers lookups the way the XDP program does, so ordering and
//! compilation can be checked without a kernel, after every single write if need be.

use std::collections::HashMap;

use firewall_common::{
    addr::Addr6,
    config::Config,
    nets::{
        net4_bits_slot, net4_key, net6_filter_bit, Net6Key, Net6Lengths, NetClass, BITS_HAS_24, BITS_HAS_32,
        COARSE_LEN, COARSE_PREFIX, NET4_BIT_WORDS, NET6_FILTER_WORDS,
    },
    service::{PortGroup, ServicePolicy, PORT_GROUPS, SERVICE_SLOTS},
    sip::{SignatureTable, SipPolicy},
};

use super::{Snapshot, TableError, Tables};

type Hook = Box<dyn FnMut(&FakeTables)>;

pub struct FakeTables {
    pub config: Config,
    pub services: Vec<ServicePolicy>,
    pub ports: Vec<PortGroup>,
    pub cells: Vec<NetClass>,
    pub bits: Vec<u64>,
    pub net4: HashMap<u64, NetClass>,
    pub net6: HashMap<Net6Key, NetClass>,
    pub net6_lens: [Net6Lengths; 2],
    pub filter: Vec<u64>,
    pub sip: SipPolicy,
    pub signatures: SignatureTable,
    /// Services whose tail-call slot holds the SIP inspector.
    pub inspected: std::collections::BTreeSet<u32>,
    /// Capacity of each hash map, as the kernel would enforce it.
    pub capacity: u32,
    pub writes: usize,
    /// Called after every successful write.
    pub after_write: Option<Hook>,
}

impl Default for FakeTables {
    fn default() -> Self {
        Self {
            config: Config::default(),
            services: vec![ServicePolicy::default(); SERVICE_SLOTS as usize],
            ports: vec![PortGroup::default(); PORT_GROUPS as usize],
            cells: vec![NetClass::EMPTY; 65536],
            bits: vec![0; NET4_BIT_WORDS as usize],
            net4: HashMap::new(),
            net6: HashMap::new(),
            net6_lens: [Net6Lengths::default(); 2],
            filter: vec![0; NET6_FILTER_WORDS as usize],
            sip: SipPolicy::default(),
            signatures: SignatureTable::EMPTY,
            inspected: Default::default(),
            capacity: u32::MAX,
            writes: 0,
            after_write: None,
        }
    }
}

impl FakeTables {
    /// What `classify_v4` in the XDP program returns for this source.
    pub fn classify_v4(&self, addr_h: u32) -> NetClass {
        let (word, shift) = net4_bits_slot(addr_h);
        let bits = (self.bits[word as usize] >> shift) & 3;
        if bits & BITS_HAS_32 != 0 {
            if let Some(v) = self.net4.get(&net4_key(32, addr_h)) {
                return *v;
            }
        }
        if bits & BITS_HAS_24 != 0 {
            if let Some(v) = self.net4.get(&net4_key(24, addr_h & 0xffff_ff00)) {
                return *v;
            }
        }
        self.cells[(addr_h >> 16) as usize]
    }

    /// What `classify_v6` in the XDP program returns for this source.
    pub fn classify_v6(&self, addr: Addr6) -> NetClass {
        let lens = &self.net6_lens[(self.config.net6_slot & 1) as usize];
        let hit = |len: u32, masked: Addr6| {
            let bit = net6_filter_bit(len, masked);
            (self.filter[(bit / 64) as usize] >> (bit % 64)) & 1 != 0
        };
        let coarse = hit(COARSE_LEN, addr.masked(COARSE_PREFIX));
        for &len in &lens.lens[..lens.count as usize] {
            if len as u32 >= COARSE_PREFIX && !coarse {
                continue;
            }
            let masked = addr.masked(len as u32);
            if !hit(len as u32, masked) {
                continue;
            }
            if let Some(v) = self.net6.get(&Net6Key { len: len as u32, _pad: 0, addr: masked }) {
                return *v;
            }
        }
        NetClass::EMPTY
    }

    fn wrote(&mut self) -> Result<(), TableError> {
        self.writes += 1;
        if let Some(mut hook) = self.after_write.take() {
            hook(self);
            self.after_write = Some(hook);
        }
        Ok(())
    }

    fn room<K: std::hash::Hash + Eq, V>(
        m: &HashMap<K, V>,
        k: &K,
        cap: u32,
        map: &'static str,
    ) -> Result<(), TableError> {
        if !m.contains_key(k) && m.len() as u64 >= cap as u64 {
            return Err(TableError::Full { map, capacity: cap });
        }
        Ok(())
    }
}

impl Tables for FakeTables {
    fn snapshot(&self) -> Result<Snapshot, TableError> {
        Ok(Snapshot {
            config: self.config,
            services: self.services.clone(),
            ports: self.ports.clone(),
            cells: self.cells.clone(),
            bits: self.bits.clone(),
            net4: self.net4.iter().map(|(k, v)| (*k, *v)).collect(),
            net6: self.net6.iter().map(|(k, v)| (*k, *v)).collect(),
            net6_lens: self.net6_lens,
            filter: self.filter.clone(),
            sip: self.sip,
            signatures: self.signatures,
            inspected: self.inspected.iter().copied().collect(),
        })
    }

    fn set_config(&mut self, c: &Config) -> Result<(), TableError> {
        self.config = *c;
        self.wrote()
    }
    fn set_sip(&mut self, p: &SipPolicy, signatures: &SignatureTable) -> Result<(), TableError> {
        self.sip = *p;
        self.signatures = *signatures;
        self.wrote()
    }
    fn set_inspected(&mut self, svc: u32, on: bool) -> Result<(), TableError> {
        if on {
            self.inspected.insert(svc);
        } else {
            self.inspected.remove(&svc);
        }
        self.wrote()
    }
    fn set_service(&mut self, id: u32, p: &ServicePolicy) -> Result<(), TableError> {
        self.services[id as usize] = *p;
        self.wrote()
    }
    fn set_port_group(&mut self, idx: u32, g: &PortGroup) -> Result<(), TableError> {
        self.ports[idx as usize] = *g;
        self.wrote()
    }
    fn set_net4_cell(&mut self, idx: u32, v: &NetClass) -> Result<(), TableError> {
        self.cells[idx as usize] = *v;
        self.wrote()
    }
    fn set_net4_bits(&mut self, word: u32, bits: u64) -> Result<(), TableError> {
        self.bits[word as usize] = bits;
        self.wrote()
    }
    fn put_net4(&mut self, key: u64, v: &NetClass) -> Result<(), TableError> {
        Self::room(&self.net4, &key, self.capacity, "SW_NET4")?;
        self.net4.insert(key, *v);
        self.wrote()
    }
    fn del_net4(&mut self, key: u64) -> Result<(), TableError> {
        self.net4.remove(&key);
        self.wrote()
    }
    fn put_net6(&mut self, k: &Net6Key, v: &NetClass) -> Result<(), TableError> {
        Self::room(&self.net6, k, self.capacity, "SW_NET6")?;
        self.net6.insert(*k, *v);
        self.wrote()
    }
    fn del_net6(&mut self, k: &Net6Key) -> Result<(), TableError> {
        self.net6.remove(k);
        self.wrote()
    }
    fn set_net6_lens(&mut self, slot: u32, l: &Net6Lengths) -> Result<(), TableError> {
        self.net6_lens[slot as usize] = *l;
        self.wrote()
    }
    fn set_net6_filter(&mut self, word: u32, bits: u64) -> Result<(), TableError> {
        self.filter[word as usize] = bits;
        self.wrote()
    }
}
