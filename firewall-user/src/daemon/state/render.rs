//! The metrics page, rendered from the daemon's state and the kernel counters read before the
//! lock.

use firewall_common::{maps, rate::rate_slots, reason::Reason};

use super::Daemon;
use crate::{datapath::loader, metrics::kernel};

impl Daemon {
    /// The exposition text, with the XDP program's counters (`counters`, `events`), which are
    /// read from the per-CPU maps before the daemon's lock is taken.
    pub fn render_metrics(&mut self, counters: Vec<(Reason, u32, u64, u64)>, events: (u64, u64)) -> String {
        let m = &self.metrics;
        m.bans_active.set(self.enforcer.ban_count() as i64);
        let (net4, net6) = self.enforcer.nets().entries();
        let rules = self.enforcer.rules();
        let nets_cap = loader::net_capacity(rules);
        let rate_slots = rate_slots(rules.rate_limit.capacity);
        let rate = self.rate_in_use;
        for (map, entries, cap) in
            [(maps::NET4, net4, nets_cap), (maps::NET6, net6, nets_cap), (maps::RATE, rate, rate_slots)]
        {
            m.map_entries.with_label_values(&[map]).set(entries as i64);
            m.map_capacity.with_label_values(&[map]).set(cap as i64);
        }
        for (iface, mode) in &self.attached {
            m.xdp_attached.with_label_values(&[iface, mode.name()]).set(i64::from(iface_exists(iface)));
        }
        for (jail, source, up, _, _) in self.sources.status() {
            m.log_source_up.with_label_values(&[&jail, &source]).set(i64::from(up));
        }
        m.known_good.set(self.proofs.good_count() as i64);
        for t in [crate::detection::proof::Token::Nonce, crate::detection::proof::Token::ToTag] {
            let c = m.sip_proofs.with_label_values(&[t.name()]);
            c.inc_by(self.proofs.found[t as usize].saturating_sub(c.get()));
        }
        let services = self.enforcer.services();
        let fams = kernel::families(&counters, events, |id| services.name(id).map(str::to_owned));
        m.render(fams)
    }
}

/// Whether `iface` exists in the daemon's network namespace: removing an interface detaches
/// the program from it, and `sipwall_xdp_attached` then shows 0 for it.
fn iface_exists(iface: &str) -> bool {
    nix::net::if_::if_nametoindex(iface).is_ok()
}

#[cfg(test)]
mod tests {
    use super::iface_exists;

    #[test]
    fn a_removed_interface_is_not_attached() {
        assert!(iface_exists("lo"));
        assert!(!iface_exists("sw-gone0"));
    }
}
