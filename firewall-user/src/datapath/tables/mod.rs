//! Writing the kernel's maps. Everything that changes a map goes through [`Tables`], so the
//! ordering logic above it is tested against the in-memory [`fake::FakeTables`].

pub mod fake;
pub mod kernel;

use firewall_common::{
    config::Config,
    nets::{Net6Key, Net6Lengths, NetClass},
    service::{PortGroup, ServicePolicy},
    sip::{SignatureTable, SipPolicy},
};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("updating map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("map {map} is full ({capacity} entries): raise its capacity in the rules file and restart")]
    Full { map: &'static str, capacity: u32 },
    #[error(
        "the IPv6 prefixes would use {count} different lengths (during the update); at most {max} fit: \
         merge prefixes to fewer lengths, or apply a large change in two steps"
    )]
    TooManyLengths { count: usize, max: usize },
    #[error(
        "the IPv6 prefixes use {used} different lengths, and IPv6 bans (/{prefix}, `[bans] ipv6_prefix`) would need \
         one more; at most {max} fit: merge prefixes to fewer lengths"
    )]
    NoLengthForBans { used: usize, prefix: u8, max: usize },
    #[error("map {0} is missing from the XDP object")]
    Missing(&'static str),
    #[error(
        "mapping {map} into the daemon: {source} (the kernel needs BPF_F_MMAPABLE array support, Linux 5.5 or later)"
    )]
    Mmap {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What the tables hold, read back when the daemon takes over pinned maps.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub config: Config,
    pub services: Vec<ServicePolicy>,
    pub ports: Vec<PortGroup>,
    pub cells: Vec<NetClass>,
    pub bits: Vec<u64>,
    /// `net4_key` → class.
    pub net4: Vec<(u64, NetClass)>,
    pub net6: Vec<(Net6Key, NetClass)>,
    pub net6_lens: [Net6Lengths; 2],
    pub filter: Vec<u64>,
    pub sip: SipPolicy,
    pub signatures: SignatureTable,
    /// Services whose tail-call slot holds a program (an earlier daemon's inspector).
    pub inspected: Vec<u32>,
}

/// The writable state of the XDP program.
pub trait Tables {
    /// Everything the tables hold now.
    fn snapshot(&self) -> Result<Snapshot, TableError>;
    /// A batch of writes is done: resources held for writing may be let go (the kernel tables
    /// unmap their shared mappings, so they do not count as the daemon's memory).
    fn idle(&mut self) {}
    /// Until `end_batch`, puts of IPv4 entries may be held back and made together, grouped by
    /// where they land in the slot table, so only a few parts of it are mapped at once (a bulk
    /// load of a million bans would map all of it). Any other call makes the held puts first,
    /// and so does a put of another prefix length, so writes keep their order but for puts of
    /// one length among themselves. A held put reports success before it is made: batch only
    /// where an error ends the whole load (start-up).
    fn begin_batch(&mut self) {}
    /// Makes the held puts and stops holding them.
    fn end_batch(&mut self) -> Result<(), TableError> {
        Ok(())
    }
    fn set_config(&mut self, c: &Config) -> Result<(), TableError>;
    fn set_service(&mut self, id: u32, p: &ServicePolicy) -> Result<(), TableError>;
    fn set_port_group(&mut self, idx: u32, g: &PortGroup) -> Result<(), TableError>;
    fn set_net4_cell(&mut self, idx: u32, v: &NetClass) -> Result<(), TableError>;
    fn set_net4_bits(&mut self, word: u32, bits: u64) -> Result<(), TableError>;
    /// Inserts or updates an IPv4 /24 or /32 entry (`net4_key`).
    fn put_net4(&mut self, key: u64, v: &NetClass) -> Result<(), TableError>;
    fn del_net4(&mut self, key: u64) -> Result<(), TableError>;
    fn put_net6(&mut self, k: &Net6Key, v: &NetClass) -> Result<(), TableError>;
    fn del_net6(&mut self, k: &Net6Key) -> Result<(), TableError>;
    fn set_net6_lens(&mut self, slot: u32, l: &Net6Lengths) -> Result<(), TableError>;
    fn set_net6_filter(&mut self, word: u32, bits: u64) -> Result<(), TableError>;
    /// The SIP inspector's policy and signatures (`[sip]`).
    fn set_sip(&mut self, p: &SipPolicy, signatures: &SignatureTable) -> Result<(), TableError>;
    /// Puts the SIP inspector in (`true`) or takes it out of service `svc`'s tail-call slot.
    fn set_inspected(&mut self, svc: u32, on: bool) -> Result<(), TableError>;
}
