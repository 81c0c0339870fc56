//! What lies between this device and its peers, read from where they see it
//! (`transport/observed.rs`, told in every handshake): no NAT when a peer sees one of this
//! device's own addresses; a NAT otherwise, whose mapping is endpoint-independent when
//! peers see the same address and port (RFC 4787: the mapping a hole punch can reuse) and
//! endpoint-dependent when they see the same address with different ports (a new mapping
//! per destination, "symmetric").
//!
//! The translated addresses of an endpoint-independent (or not yet classified) NAT become
//! candidates in this device's address record: a device elsewhere may reach it there
//! (if the NAT lets it in; hole punching is issue 16's).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::Node;
use crate::identity::DeviceId;
use crate::time::Timestamp;

/// What this device's NAT does, as far as its peers' views tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatMapping {
    /// No peer has told where it sees this device yet.
    Unknown,
    /// Every peer sees one of this device's own addresses.
    None,
    /// A NAT, seen by one peer only: the kind of its mapping is not known yet.
    Translated,
    /// Peers see the same public address and port: one mapping for every destination.
    EndpointIndependent,
    /// Peers see the same public address with different ports: a mapping per destination.
    EndpointDependent,
}

impl NatMapping {
    /// The name `status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::None => "none",
            Self::Translated => "translated",
            Self::EndpointIndependent => "endpoint-independent",
            Self::EndpointDependent => "endpoint-dependent",
        }
    }
}

/// This device's NAT as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    /// What its mapping does.
    pub mapping: NatMapping,
    /// The addresses peers see it at that are not its own (each once).
    pub translated: Vec<SocketAddr>,
}

/// Where each peer last said it sees this device, and this device's own addresses.
#[derive(Debug, Default)]
pub(super) struct NatView {
    observed: BTreeMap<DeviceId, SocketAddr>,
    /// This device's addresses, as the host last told them (none before it did: the
    /// simulator never does, and writes no address record).
    pub(super) local: Option<Vec<SocketAddr>>,
}

impl NatView {
    /// Whether `peer` sees this device at an address not its own (never before the host
    /// told this device's addresses).
    pub(super) fn translated_for(&self, peer: &DeviceId) -> bool {
        let (Some(local), Some(seen)) = (&self.local, self.observed.get(peer)) else {
            return false;
        };
        !local
            .iter()
            .any(|l| l.ip() == seen.ip() && l.port() == seen.port())
    }

    /// The peers that told where they see this device.
    pub(super) fn observers(&self) -> Vec<DeviceId> {
        self.observed.keys().copied().collect()
    }

    /// What the views say.
    pub(super) fn report(&self) -> NatReport {
        let local = self.local.as_deref().unwrap_or(&[]);
        let own = |a: &SocketAddr| local.iter().any(|l| l.ip() == a.ip() && l.port() == a.port());
        let mut translated: Vec<SocketAddr> = self.observed.values().copied().filter(|a| !own(a)).collect();
        let seen_by = translated.len();
        translated.sort();
        translated.dedup();
        let per_destination = translated.windows(2).any(|pair| pair[0].ip() == pair[1].ip());
        let mapping = match () {
            () if self.observed.is_empty() => NatMapping::Unknown,
            () if translated.is_empty() => NatMapping::None,
            () if per_destination => NatMapping::EndpointDependent,
            () if seen_by > translated.len() => NatMapping::EndpointIndependent,
            () => NatMapping::Translated,
        };
        NatReport { mapping, translated }
    }

    /// The addresses worth publishing besides the local ones: the translated ones, unless
    /// they are per destination (no use to anyone else).
    pub(super) fn reflexive_candidates(&self) -> Vec<SocketAddr> {
        let report = self.report();
        match report.mapping {
            NatMapping::EndpointDependent => Vec::new(),
            _ => report.translated,
        }
    }
}

impl Node {
    /// This device's NAT, as its peers see it.
    pub fn nat(&self) -> NatReport {
        self.nat.report()
    }

    /// `peer` (a device of the roster, or the inviter of a join) said it sees this device
    /// at `address`.
    pub(super) fn on_observed(&mut self, now: Timestamp, peer: DeviceId, address: SocketAddr) {
        if !self.endpoint.has_peer(&peer) {
            return;
        }
        let before = self.nat.reflexive_candidates();
        self.nat.observed.insert(peer, address);
        if self.nat.reflexive_candidates() != before {
            self.publish_addresses(now);
        }
        self.review_keepalive(peer);
    }

    /// This device's network changed: what peers saw of it belongs to the old one.
    pub(super) fn forget_observed(&mut self) {
        let observers = self.nat.observers();
        self.nat.observed.clear();
        for peer in observers {
            self.review_keepalive(peer);
        }
    }

    /// `peer` left the roster: its view goes with it.
    pub(super) fn forget_observed_by(&mut self, peer: &DeviceId) {
        self.nat.observed.remove(peer);
        self.review_keepalive(*peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;

    fn address(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    fn view(local: &[&str], seen: &[&str]) -> NatView {
        NatView {
            local: Some(local.iter().map(|a| address(a)).collect()),
            observed: seen
                .iter()
                .enumerate()
                .map(|(i, a)| (DeviceKey::from_seed([i as u8 + 1; 32]).device_id(), address(a)))
                .collect(),
        }
    }

    #[test]
    fn the_mapping_is_read_from_what_peers_see() {
        let lan = ["192.168.1.20:3030"];
        assert_eq!(view(&lan, &[]).report().mapping, NatMapping::Unknown);
        assert_eq!(
            view(&lan, &["192.168.1.20:3030"]).report().mapping,
            NatMapping::None
        );
        let one = view(&lan, &["192.168.1.20:3030", "203.0.113.21:3030"]);
        assert_eq!(one.report().mapping, NatMapping::Translated);
        assert_eq!(one.reflexive_candidates(), vec![address("203.0.113.21:3030")]);
        let same = view(&lan, &["203.0.113.21:3030", "203.0.113.21:3030"]);
        assert_eq!(same.report().mapping, NatMapping::EndpointIndependent);
        assert_eq!(same.report().translated, vec![address("203.0.113.21:3030")]);
        let symmetric = view(&lan, &["203.0.113.21:40001", "203.0.113.21:40002"]);
        assert_eq!(symmetric.report().mapping, NatMapping::EndpointDependent);
        assert!(symmetric.reflexive_candidates().is_empty());
    }
}
