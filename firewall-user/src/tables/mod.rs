//! Writing the kernel's maps. Everything that changes a map goes through [`Tables`], so the
//! ordering logic above it is tested against the in-memory [`fake::FakeTables`].

pub mod fake;
pub mod kernel;

use firewall_common::{
    addr::Addr6,
    config::Config,
    nets::{BanEntry, Net4Key, Net6Key, Net6Lengths, NetClass},
    service::{PortGroup, ServicePolicy},
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
    #[error("map {0} is missing from the XDP object")]
    Missing(&'static str),
}

/// The writable state of the XDP program.
pub trait Tables {
    fn set_config(&mut self, c: &Config) -> Result<(), TableError>;
    fn set_service(&mut self, id: u32, p: &ServicePolicy) -> Result<(), TableError>;
    fn set_port_group(&mut self, idx: u32, g: &PortGroup) -> Result<(), TableError>;
    fn set_net4_cell(&mut self, idx: u32, v: &NetClass) -> Result<(), TableError>;
    fn put_net4(&mut self, k: &Net4Key, v: &NetClass) -> Result<(), TableError>;
    fn del_net4(&mut self, k: &Net4Key) -> Result<(), TableError>;
    fn put_net6(&mut self, k: &Net6Key, v: &NetClass) -> Result<(), TableError>;
    fn del_net6(&mut self, k: &Net6Key) -> Result<(), TableError>;
    fn set_net6_lens(&mut self, slot: u32, l: &Net6Lengths) -> Result<(), TableError>;
    fn put_ban4(&mut self, addr_be: u32, e: &BanEntry) -> Result<(), TableError>;
    fn del_ban4(&mut self, addr_be: u32) -> Result<(), TableError>;
    fn put_ban6(&mut self, key: &Addr6, e: &BanEntry) -> Result<(), TableError>;
    fn del_ban6(&mut self, key: &Addr6) -> Result<(), TableError>;
}
