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
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
    /// A NAT whose kind the views do not show yet (no two peers see the same address).
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

/// How long a peer's view counts: sessions in use hand over keys every two minutes, each
/// handshake telling the view again, so an older one belongs to a path no longer used (and
/// perhaps to a mapping the NAT has since forgotten).
pub const OBSERVED_FOR: Duration = Duration::from_secs(600);

/// Where each peer last said it sees this device, and this device's own addresses.
#[derive(Debug, Default)]
pub(super) struct NatView {
    /// The view and when it was told.
    observed: BTreeMap<DeviceId, (SocketAddr, Timestamp)>,
    /// This device's addresses, as the host last told them (none before it did: the
    /// simulator never does, and writes no address record).
    pub(super) local: Option<Vec<SocketAddr>>,
    /// The public address the home router's port mapping gives this device, when the
    /// host got one ([`Node::set_port_mapping`]).
    pub(super) mapped: Option<SocketAddr>,
}

/// Whether `address` could be where anyone reaches a device: a unicast address with a port.
fn reachable_unicast(address: &SocketAddr) -> bool {
    let ip = address.ip();
    let unicast = match ip {
        IpAddr::V4(v4) => !v4.is_broadcast() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_unicast_link_local(),
    };
    address.port() != 0 && unicast && !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast()
}

impl NatView {
    /// Whether `address` is one of this device's own.
    fn own(&self, address: &SocketAddr) -> bool {
        self.local
            .iter()
            .flatten()
            .any(|l| l.ip() == address.ip() && l.port() == address.port())
    }

    /// The views told within [`OBSERVED_FOR`] of `now`.
    fn fresh(&self, now: Timestamp) -> impl Iterator<Item = (&DeviceId, SocketAddr)> {
        self.observed
            .iter()
            .filter(move |(_, (_, at))| now.saturating_since(*at) < OBSERVED_FOR)
            .map(|(peer, (address, _))| (peer, *address))
    }

    /// Whether `peer` sees this device at an address not its own (never before the host
    /// told this device's addresses).
    pub(super) fn translated_for(&self, peer: &DeviceId) -> bool {
        let Some((seen, _)) = self.observed.get(peer) else {
            return false;
        };
        self.local.is_some() && !self.own(seen)
    }

    /// The peers that told where they see this device.
    pub(super) fn observers(&self) -> Vec<DeviceId> {
        self.observed.keys().copied().collect()
    }

    /// What the fresh views say.
    pub(super) fn report(&self, now: Timestamp) -> NatReport {
        if self.local.is_none() {
            return NatReport {
                mapping: NatMapping::Unknown,
                translated: Vec::new(),
            };
        }
        let views: Vec<SocketAddr> = self.fresh(now).map(|(_, address)| address).collect();
        let mut translated: Vec<SocketAddr> = views.iter().copied().filter(|a| !self.own(a)).collect();
        let seen_by = translated.len();
        translated.sort();
        translated.dedup();
        let per_destination = translated.windows(2).any(|pair| pair[0].ip() == pair[1].ip());
        let mapping = match () {
            () if views.is_empty() => NatMapping::Unknown,
            () if translated.is_empty() => NatMapping::None,
            () if per_destination => NatMapping::EndpointDependent,
            () if seen_by > translated.len() => NatMapping::EndpointIndependent,
            () => NatMapping::Translated,
        };
        NatReport { mapping, translated }
    }

    /// The addresses worth publishing besides the local ones: a NAT's mapping that at
    /// least two peers see alike (one peer's word, a stolen device's say, never makes this
    /// device publish an address), reachable unicast, of a family this device has.
    pub(super) fn reflexive_candidates(&self, now: Timestamp) -> Vec<SocketAddr> {
        let Some(local) = &self.local else {
            return Vec::new();
        };
        let families: Vec<bool> = local.iter().map(SocketAddr::is_ipv4).collect();
        let mut translated: Vec<SocketAddr> = self
            .fresh(now)
            .map(|(_, a)| a)
            .filter(|a| !self.own(a) && reachable_unicast(a) && families.contains(&a.is_ipv4()))
            .collect();
        translated.sort();
        // Sorted, an address two peers see is next to itself.
        let mut agreed: Vec<SocketAddr> = translated
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        agreed.dedup();
        agreed
    }
}

impl Node {
    /// This device's NAT, as its peers see it now.
    pub fn nat(&self, now: Timestamp) -> NatReport {
        self.nat.report(now)
    }

    /// `peer` (a device of the roster, or the inviter of a join) said it sees this device
    /// at `address`.
    pub(super) fn on_observed(&mut self, now: Timestamp, peer: DeviceId, address: SocketAddr) {
        if !self.endpoint.has_peer(&peer) {
            return;
        }
        let before = self.nat.reflexive_candidates(now);
        let changed = self.nat.observed.insert(peer, (address, now)).map(|(a, _)| a) != Some(address);
        // Before the host told this device's addresses (the simulator never does) a view
        // says nothing: no NAT can be told from it.
        if changed && self.nat.local.is_some() {
            if self.nat.reflexive_candidates(now) != before {
                self.publish_addresses(now);
            }
            self.review_keepalive(peer);
        }
    }

    /// This device's network changed: what peers saw of it belongs to the old one, and so
    /// does what the keepalive learned of the old NAT.
    pub(super) fn forget_observed(&mut self) {
        let observers = self.nat.observers();
        self.nat.observed.clear();
        self.keepalive_after_network_change();
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

    const NOW: Timestamp = Timestamp::from_micros(1_000_000_000);

    fn view(local: &[&str], seen: &[&str]) -> NatView {
        NatView {
            local: Some(local.iter().map(|a| address(a)).collect()),
            mapped: None,
            observed: seen
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    (
                        DeviceKey::from_seed([i as u8 + 1; 32]).device_id(),
                        (address(a), NOW),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_mapping_is_read_from_what_peers_see() {
        let lan = ["192.168.1.20:3030"];
        assert_eq!(view(&lan, &[]).report(NOW).mapping, NatMapping::Unknown);
        assert_eq!(
            view(&lan, &["192.168.1.20:3030"]).report(NOW).mapping,
            NatMapping::None
        );
        let one = view(&lan, &["192.168.1.20:3030", "203.0.113.21:3030"]);
        assert_eq!(one.report(NOW).mapping, NatMapping::Translated);
        assert!(
            one.reflexive_candidates(NOW).is_empty(),
            "one peer's word is not published"
        );
        let same = view(&lan, &["203.0.113.21:3030", "203.0.113.21:3030"]);
        assert_eq!(same.report(NOW).mapping, NatMapping::EndpointIndependent);
        assert_eq!(same.report(NOW).translated, vec![address("203.0.113.21:3030")]);
        assert_eq!(same.reflexive_candidates(NOW), vec![address("203.0.113.21:3030")]);
        let symmetric = view(&lan, &["203.0.113.21:40001", "203.0.113.21:40002"]);
        assert_eq!(symmetric.report(NOW).mapping, NatMapping::EndpointDependent);
        assert!(symmetric.reflexive_candidates(NOW).is_empty());
        // Old views no longer count.
        let later = NOW + OBSERVED_FOR;
        assert_eq!(same.report(later).mapping, NatMapping::Unknown);
        assert!(same.reflexive_candidates(later).is_empty());
    }

    #[test]
    fn only_reachable_unicast_addresses_of_a_family_this_device_has_are_published() {
        let lan = ["192.168.1.20:3030"];
        for claim in [
            "127.0.0.1:3030",
            "224.0.0.1:3030",
            "203.0.113.21:0",
            "[2001:db8::1]:3030",
            "169.254.1.1:3030",
        ] {
            let lying = view(&lan, &[claim, claim]);
            assert!(lying.reflexive_candidates(NOW).is_empty(), "{claim}");
        }
    }
}
