//! Address records (`roster/address_record.rs`): this device's own, written whenever the
//! host says where it can be reached, and the peers', whose candidates every handshake to
//! them tries.

use std::net::SocketAddr;

use super::Node;
use crate::identity::DeviceId;
use crate::ip_network::is_public;
use crate::roster::address_record::{publishable, MAX_CANDIDATES};
use crate::roster::{address_device, address_key, AddressRecord};
use crate::time::Timestamp;

impl Node {
    /// Where this device can be reached: every address of every socket (a wildcard bind
    /// as each interface's address). The host tells it at start and after every network
    /// change. With the addresses peers see it at behind a NAT (`node/nat.rs`), they make
    /// its address record.
    pub fn set_local_addresses(&mut self, now: Timestamp, addresses: &[SocketAddr]) {
        self.nat.local = Some(addresses.to_vec());
        self.publish_addresses(now);
        self.review_all_keepalives();
    }

    /// New keys with `peer` (a session, a rekey), or a new record of it, while it is
    /// reached on public IPv4: it is called on its global IPv6 addresses when this device
    /// has one too (`Endpoint::prefer_ipv6`). Both ends make the same keys within about
    /// half a round trip, so their calls cross; when only one end calls (a record reaches
    /// it first), its call still opens its own firewall for the other's, which follows as
    /// the record reaches the other. A rekey on every path that lands on IPv4 again (the
    /// first answer wins) is moved back the same way.
    pub(super) fn prefer_ipv6(&mut self, now: Timestamp, peer: DeviceId) {
        let mut local = self.nat.local.iter().flatten();
        if local.any(|a| a.is_ipv6() && is_public(a.ip())) {
            self.endpoint.prefer_ipv6(now, &peer);
        }
    }

    /// The public address the home router's port mapping gives this device (the host asks
    /// the router: PCP, NAT-PMP), `None` when it has none: it joins the device's address
    /// record, where a device elsewhere finds it with no third device's help.
    pub fn set_port_mapping(&mut self, now: Timestamp, external: Option<SocketAddr>) {
        if self.nat.mapped != external {
            self.nat.mapped = external;
            self.publish_addresses(now);
        }
    }

    /// Writes this device's address record when the addresses worth telling (its own, the
    /// router's mapping and the reflexive ones) or its anchors differ from the record the
    /// mesh has: a new one, signed, replicates like any key. Nothing before the host told
    /// its addresses.
    pub(super) fn publish_addresses(&mut self, now: Timestamp) {
        let Some(local) = &self.nat.local else {
            return;
        };
        let mut addresses = local.clone();
        addresses.extend(self.nat.mapped);
        addresses.extend(self.nat.reflexive_candidates(now));
        let candidates = publishable(&addresses);
        let anchors = self.anchors.own.clone();
        let own = self.own_id();
        let current = self.address_record(&own);
        if current
            .as_ref()
            .is_some_and(|record| record.candidates == candidates && record.anchors == anchors)
        {
            return;
        }
        let version = current.map_or(1, |record| record.version.saturating_add(1));
        let record = AddressRecord::signed(&self.key, version, candidates, anchors);
        // A record is bounded by its candidates and always encodes within the store's
        // limits; a write refused here leaves the older record, which is still the truth
        // for every address it names that remains.
        if let Ok(bytes) = record.encode() {
            let _ = self.write_key(now, &address_key(&own), Some(bytes));
        }
    }

    /// Whether `device` is on the roster and not removed.
    pub(super) fn is_peer(&self, device: &DeviceId) -> bool {
        self.roster.get(device).is_some_and(|entry| !entry.removed)
    }

    /// The record of `device` with the greatest version that `device` signed.
    pub fn address_record(&self, device: &DeviceId) -> Option<AddressRecord> {
        self.decoded_siblings(&address_key(device), AddressRecord::decode)
            .into_iter()
            .filter(|record| record.verified(device))
            .max_by_key(|record| record.version)
    }

    /// A key of the store changed: if it is a peer's address record, its handshakes try
    /// the candidates from now on.
    pub(super) fn on_address_key(&mut self, now: Timestamp, key: &str) {
        if let Some(device) = address_device(key) {
            self.apply_address_record(now, device);
        }
    }

    /// Gives the endpoint `device`'s candidates (its record's, then where its anchors
    /// were found), and calls it on them at once unless it is reached directly (a record is how a
    /// device that cannot be reached where it was last seen is found: waiting for the
    /// next probe of an unreachable device took up to 10 s). A device the membership has
    /// no address for yet is probed at its first candidate.
    pub(super) fn apply_address_record(&mut self, now: Timestamp, device: DeviceId) {
        if device == self.own_id() || !self.is_peer(&device) {
            return;
        }
        let Some(mut record) = self.address_record(&device) else {
            return;
        };
        self.note_anchors(now, device, &record.anchors);
        let found = self.anchor_addresses(&device);
        record.candidates.truncate(MAX_CANDIDATES - found.len());
        for address in found {
            if !record.candidates.contains(address) {
                record.candidates.push(*address);
            }
        }
        self.endpoint.set_candidates(&device, &record.candidates);
        if !self.reached_directly(now, &device) {
            self.endpoint.connect_now(now, &device);
        } else {
            self.prefer_ipv6(now, device);
        }
        if let Some(first) = record.candidates.first() {
            if self
                .membership
                .member(&device)
                .is_some_and(|m| m.address.is_none())
            {
                self.membership.add_member(now, device, Some(*first));
            }
        }
    }
}
