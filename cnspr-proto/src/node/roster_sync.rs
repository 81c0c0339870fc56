//! Keeping the roster the same on every device, and acting on its changes: a device that
//! joins becomes a peer and a member, a removed one is dropped and refused from then on.
//!
//! The roster travels as data in the replicated store (`_roster/<device>` keys, see
//! [`crate::roster::stored`]): a decision made here (admitting a device that paired,
//! naming this one, removing one) is written to its key and pushed like any write; a key
//! that arrives from a peer, or from the disk at start, is joined into the roster.

use std::net::SocketAddr;

use super::{Node, PeerError};
use crate::identity::DeviceId;
use crate::roster::mesh_secret::MESH_SECRET_KEY;
use crate::roster::{is_valid_name, roster_device, roster_key, RosterChange, RosterEntry, StoredEntry};
use crate::time::Timestamp;
use crate::transport::relay_path::is_relay_address;

impl Node {
    // ----- commands -----

    /// Takes in roster entries from the disk (at start, after the store is restored). An
    /// entry the store does not hold yet (a roster kept by an older version) is written
    /// to it.
    pub(super) fn merge_roster(
        &mut self,
        now: Timestamp,
        entries: impl IntoIterator<Item = (DeviceId, RosterEntry)>,
    ) {
        for (device, entry) in entries {
            let change = self.roster.merge(device, entry);
            self.apply_roster_change(now, device, change, None);
            let named_or_removed = self
                .roster
                .get(&device)
                .is_some_and(|e| e.removed || !e.name.is_empty());
            if named_or_removed && self.stored_entry(&device).as_ref() != self.roster.get(&device) {
                self.publish_entry(now, device);
            }
        }
        self.route_between_layers(now);
    }

    /// Names this device (at start, or when the configured name changes).
    pub fn set_own_name(&mut self, now: Timestamp, name: &str) -> bool {
        let own = self.own_id();
        if self.roster.name(&own) == Some(name) || !is_valid_name(name) {
            return false;
        }
        let change = self.roster.rename(own, name);
        self.apply_roster_change(now, own, change, None);
        self.publish_entry(now, own);
        self.route_between_layers(now);
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
        self.publish_entry(now, device);
        // What the removed device knew of the mesh's secret stops opening doors (the
        // roster change made a new secret already if the old one was sealed for it).
        if !self.mesh_secret_shut_to(&device) {
            self.rotate_mesh_secret(now, true);
        }
        self.route_between_layers(now);
        Ok(())
    }

    // ----- inputs, from routing between the layers -----

    /// The endpoint accepted a device with one of our invites.
    pub(super) fn on_paired(&mut self, now: Timestamp, device: DeviceId) {
        if self.roster.get(&device).is_some_and(|e| e.removed) {
            // Revoked once, refused for good: a new invite does not bring it back.
            self.endpoint.remove_peer(&device);
            return;
        }
        self.admit(now, device);
        // The other devices learn of it from this key, and let it in.
        self.publish_entry(now, device);
        // A mesh forms: from now on only its devices get answers. (A mesh of more than
        // the two of them formed before secrets existed, and its devices use none yet.)
        if !self.has_mesh_secret() {
            let open_mesh_in_use = self.roster.members().count() > 2;
            self.rotate_mesh_secret(now, open_mesh_in_use);
        } else {
            // Sealed for the joiner too.
            self.reseal_mesh_secret(now);
        }
        self.events.push_back(super::Event::Paired { device });
    }

    /// Adds a device by ID alone (its name comes with its roster key).
    pub(super) fn admit(&mut self, now: Timestamp, device: DeviceId) {
        let change = self.roster.admit(device);
        let address = self.endpoint.peer_address(&device);
        self.apply_roster_change(now, device, change, address);
    }

    /// A roster key changed in the store (merged from a peer, or restored from disk):
    /// every sibling is joined into the roster.
    /// Returns whether a device known by one name now has another (a rename, which the
    /// store pushes on like an address record).
    pub(super) fn on_roster_key(&mut self, now: Timestamp, key: &str) -> bool {
        if key == MESH_SECRET_KEY {
            self.apply_mesh_secrets(now);
            return false;
        }
        let Some(device) = roster_device(key) else {
            return false;
        };
        let name_before = self.roster.name(&device).map(str::to_owned);
        for stored in self.stored_entries(&device) {
            let address = stored.address.filter(|_| self.address_of(&device).is_none());
            let known_name = self.roster.name(&device).map(str::to_owned);
            // What the device did not sign of its own entry is not taken in.
            let Some(entry) = stored.trusted(&device, known_name.as_deref(), &mut self.verified_names) else {
                continue;
            };
            let change = self.roster.merge(device, entry);
            self.apply_roster_change(now, device, change, address);
        }
        name_before.is_some() && self.roster.name(&device) != name_before.as_deref()
    }

    // ----- helpers -----

    /// Every sibling of `device`'s roster key that parses.
    fn stored_entries(&self, device: &DeviceId) -> Vec<StoredEntry> {
        self.decoded_siblings(&roster_key(device), StoredEntry::decode)
    }

    /// The join of what the store holds for `device` and may be believed.
    fn stored_entry(&mut self, device: &DeviceId) -> Option<RosterEntry> {
        let mut joined = crate::roster::Roster::new();
        let known_name = self.roster.name(device).map(str::to_owned);
        for stored in self.stored_entries(device) {
            if let Some(entry) = stored.trusted(device, known_name.as_deref(), &mut self.verified_names) {
                joined.merge(*device, entry);
            }
        }
        joined.get(device).cloned()
    }

    /// Writes the roster's entry for `device` to its store key (with where it was last
    /// reached), so that it replicates: this device's own, signed; another's only to admit
    /// or remove it (its name is its own to sign, and an unsigned copy would only hide it).
    fn publish_entry(&mut self, now: Timestamp, device: DeviceId) {
        let Some(entry) = self.roster.get(&device).cloned() else {
            return;
        };
        let address = self
            .address_of(&device)
            .or_else(|| self.endpoint.peer_address(&device))
            .filter(|a| !is_relay_address(a));
        let stored = if device == self.own_id() && !entry.removed {
            StoredEntry::signed(&self.key, entry, address)
        } else if entry.removed || entry == RosterEntry::admitted() {
            StoredEntry {
                entry,
                address,
                signature: None,
            }
        } else {
            return;
        };
        // Entries are checked when made and always encode within the store's limits.
        if let Ok(value) = stored.encode() {
            let _ = self.write_key(now, &roster_key(&device), Some(value));
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
                self.endpoint.add_peer(device, address);
                self.membership.add_member(now, device, address);
                self.messaging.add_member(device);
                self.keep_head_of(device);
                // Its record may have come first (a catch-up brings `_addr/` before
                // `_roster/`).
                self.apply_address_record(now, device);
            }
            RosterChange::Added => {}
            RosterChange::Removed if !own => {
                self.endpoint.remove_peer(&device);
                self.forget_observed_by(&device);
                self.note_anchors(now, device, &[]);
                self.name_asks.forget(&device);
                self.relaying.forget(&device);
                self.forget_shown(device);
                self.membership.remove_member(&device);
                self.messaging.remove_member(&device);
                self.echoes.retain(|_, (peer, _)| *peer != device);
                self.store_peer_gone(now, device);
            }
            // This device was revoked: the others refuse it; nothing to do here.
            RosterChange::Removed => {}
        }
        self.roster_dirty = true;
    }
}
