//! Keeping the roster the same on every device, and acting on its changes: a device that
//! joins becomes a peer and a member, a removed one is dropped and refused from then on.

use std::net::SocketAddr;

use super::{Node, PeerError};
use crate::identity::DeviceId;
use crate::payload::Payload;
use crate::roster::{is_valid_name, RosterChange, RosterEntry, RosterMessage, SharedEntry};
use crate::time::Timestamp;

impl Node {
    // ----- commands -----

    /// Takes in roster entries from the disk (at start) or any other trusted source.
    pub fn merge_roster(
        &mut self,
        now: Timestamp,
        entries: impl IntoIterator<Item = (DeviceId, RosterEntry)>,
    ) {
        for (device, entry) in entries {
            let change = self.roster.merge(device, entry);
            self.apply_roster_change(now, device, change, None);
        }
        self.pump(now);
    }

    /// Names this device (at start, or when the configured name changes).
    pub fn set_own_name(&mut self, now: Timestamp, name: &str) -> bool {
        let own = self.own_id();
        if self.roster.name(&own) == Some(name) || !is_valid_name(name) {
            return false;
        }
        let change = self.roster.rename(own, name);
        self.apply_roster_change(now, own, change, None);
        self.pump(now);
        true
    }

    /// Revokes `device` on every device of the mesh: its sessions end and its handshakes
    /// are refused from now on, here at once and elsewhere as the roster spreads.
    pub fn remove(&mut self, now: Timestamp, device: DeviceId) -> Result<(), PeerError> {
        if device == self.own_id() {
            return Err(PeerError::Itself);
        }
        if !self.roster.is_member(&device) {
            return Err(PeerError::NotAMember);
        }
        let change = self.roster.remove(device);
        self.apply_roster_change(now, device, change, None);
        self.pump(now);
        Ok(())
    }

    // ----- inputs, from the pump -----

    /// The endpoint accepted a device with one of our invites.
    pub(super) fn on_paired(&mut self, now: Timestamp, device: DeviceId) {
        if self.roster.get(&device).is_some_and(|e| e.removed) {
            // Revoked once, refused for good: a new invite does not bring it back.
            self.endpoint.remove_peer(&device.public_key());
            return;
        }
        self.admit(now, device);
        self.events.push_back(super::Event::Paired { device });
    }

    /// Adds a device by ID alone (its name comes with the roster it sends).
    pub(super) fn admit(&mut self, now: Timestamp, device: DeviceId) {
        let change = self.roster.admit(device);
        let address = self.endpoint.peer_address(&device.public_key());
        self.apply_roster_change(now, device, change, address);
    }

    /// Tells `peer` our roster's fingerprint (after a handshake with it).
    pub(super) fn send_digest(&mut self, now: Timestamp, peer: DeviceId) {
        let digest = Payload::Roster(RosterMessage::Digest(self.roster.digest()));
        let _ = self.send_payload(now, peer, &digest);
    }

    pub(super) fn on_roster_message(&mut self, now: Timestamp, from: DeviceId, message: RosterMessage) {
        match message {
            RosterMessage::Digest(digest) if digest != self.roster.digest() => {
                self.send_entries(now, from, true);
            }
            RosterMessage::Digest(_) => {}
            RosterMessage::Entries { entries, reply } => {
                for SharedEntry(device, entry, address) in entries {
                    let change = self.roster.merge(device, entry);
                    self.apply_roster_change(now, device, change, address);
                }
                if reply {
                    self.send_entries(now, from, false);
                }
            }
        }
    }

    /// Sends every changed roster to every live member (after a change here).
    pub(super) fn push_roster(&mut self, now: Timestamp) {
        let live: Vec<DeviceId> = self
            .membership
            .members()
            .filter(|m| m.is_live())
            .map(|m| m.id)
            .collect();
        for peer in live {
            self.send_entries(now, peer, false);
        }
    }

    // ----- helpers -----

    fn send_entries(&mut self, now: Timestamp, to: DeviceId, reply: bool) {
        let entries: Vec<SharedEntry> = self
            .roster
            .entries()
            .map(|(id, entry)| SharedEntry(*id, entry.clone(), self.address_of(id)))
            .collect();
        for message in RosterMessage::split(entries, reply) {
            let _ = self.send_payload(now, to, &Payload::Roster(message));
        }
    }

    fn address_of(&self, device: &DeviceId) -> Option<SocketAddr> {
        self.membership.member(device).and_then(|m| m.address)
    }

    /// Makes the endpoint and membership follow a roster change.
    fn apply_roster_change(
        &mut self,
        now: Timestamp,
        device: DeviceId,
        change: RosterChange,
        address: Option<SocketAddr>,
    ) {
        let own = device == self.own_id();
        match change {
            RosterChange::Unchanged | RosterChange::Refused => return,
            RosterChange::Renamed => {}
            RosterChange::Added if !own => {
                self.endpoint.add_peer(device.public_key(), address);
                self.membership.add_member(now, device, address);
                self.messaging.add_member(device);
            }
            RosterChange::Added => {}
            RosterChange::Removed if !own => {
                self.endpoint.remove_peer(&device.public_key());
                self.membership.remove_member(&device);
                self.messaging.remove_member(&device);
                self.echoes.retain(|_, (peer, _)| *peer != device);
            }
            // This device was revoked: the others refuse it; nothing to do here.
            RosterChange::Removed => {}
        }
        self.roster_dirty = true;
    }
}
