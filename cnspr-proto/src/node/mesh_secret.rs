//! Keeping the endpoint's mesh secrets (`transport/stealth.rs`) in step with the value the
//! store holds ([`crate::roster::mesh_secret`], sealed for each device:
//! [`crate::roster::sealed_secret`]), and making a new secret when the mesh forms or
//! loses a device.

use super::Node;
use crate::identity::DeviceId;
use crate::roster::mesh_secret::{endpoint_secrets, StoredSecrets, MESH_SECRET_KEY};
use crate::roster::sealed_secret::SealedSecrets;
use crate::time::Timestamp;
use crate::wire::cbor::CborError;

/// One sibling of the stored value.
enum Stored {
    /// Sealed for the devices of the roster.
    Sealed(SealedSecrets),
    /// In the clear, as versions before sealing wrote it (sealed anew when read).
    Clear(StoredSecrets),
}

/// The devices `values` exclude (the rotations that removed them).
fn excluded_by(values: &[Stored]) -> Vec<DeviceId> {
    let mut excluded = Vec::new();
    for value in values {
        if let Stored::Sealed(sealed) = value {
            excluded.extend(sealed.excluded.iter().copied());
        }
    }
    excluded
}

fn decode(bytes: &[u8]) -> Result<Stored, CborError> {
    SealedSecrets::decode(bytes)
        .map(Stored::Sealed)
        .or_else(|_| StoredSecrets::decode(bytes).map(Stored::Clear))
}

impl Node {
    /// Every sibling of the stored value that parses.
    fn stored_values(&self) -> Vec<Stored> {
        self.decoded_siblings(MESH_SECRET_KEY, decode)
    }

    /// Every sibling this device can read: sealed for it, or in the clear.
    fn stored_secrets(&self) -> Vec<StoredSecrets> {
        let own = self.own_id();
        self.stored_values()
            .into_iter()
            .filter_map(|value| match value {
                Stored::Sealed(sealed) => sealed.open(self.key.noise(), &own),
                Stored::Clear(secrets) => Some(secrets),
            })
            .collect()
    }

    /// Gives the endpoint the secrets the store holds now (after the value changed, and
    /// now and then, as retired secrets age out of being answered).
    pub(super) fn apply_mesh_secrets(&mut self, now: Timestamp) {
        let unix_secs = self.messaging.unix_micros_at(now) / 1_000_000;
        let readable = self.stored_secrets();
        let (known, answered) = endpoint_secrets(&readable, unix_secs);
        // Beacons are sealed and opened with the current secrets only: a retired one is
        // still known to a device removed less than two weeks ago.
        let current: Vec<_> = readable.iter().map(|value| value.current).collect();
        self.beacons.set_secrets(known.first().copied(), &current);
        self.endpoint.set_mesh_secrets(known, answered);
    }

    /// Replaces the mesh secret with a fresh one, retiring what the store held, sealed for
    /// every device of the roster: a removed one cannot open it, even passed on by a
    /// replica that has not heard of the removal. `open_mesh_in_use`: whether devices of
    /// the mesh may be on no secret yet (it formed before secrets existed), rather than
    /// this being the mesh's first pairing.
    pub(super) fn rotate_mesh_secret(&mut self, now: Timestamp, open_mesh_in_use: bool) {
        let unix_secs = self.messaging.unix_micros_at(now) / 1_000_000;
        let fresh = self.rng.bytes32();
        let value = StoredSecrets::rotated(&self.stored_secrets(), fresh, unix_secs, open_mesh_in_use);
        self.write_sealed(now, &value);
    }

    /// After a device joined here: the secrets are sealed anew, for it too. Two values at
    /// once (a rotation elsewhere, not merged yet) make a new secret instead, sealed for
    /// every device; a value written in the clear by an older version is sealed.
    pub(super) fn reseal_mesh_secret(&mut self, now: Timestamp) {
        let readable = self.stored_secrets();
        let own = self.own_id();
        let values = self.stored_values();
        let sealed_for_all = values.iter().all(|value| match value {
            Stored::Sealed(sealed) => self
                .roster
                .members()
                .all(|d| sealed.is_sealed_for(d) || *d == own),
            Stored::Clear(_) => false,
        });
        match readable.as_slice() {
            [] => {}
            _ if sealed_for_all => {}
            [one] => {
                let one = one.clone();
                self.write_sealed(now, &one);
            }
            _ => self.rotate_mesh_secret(now, true),
        }
    }

    /// Writes `secrets` sealed for every device of the roster but those any value or the
    /// roster knows removed.
    fn write_sealed(&mut self, now: Timestamp, secrets: &StoredSecrets) {
        let excluded = self.excluded_devices();
        let members: Vec<DeviceId> = self.roster.members().copied().collect();
        let (ephemeral, content_key) = (self.rng.bytes32(), self.rng.bytes32());
        // A value of at most nine secrets, sealed for at most a roster's devices, always
        // encodes within the store's limits.
        let sealed = SealedSecrets::seal(secrets, &members, excluded, ephemeral, content_key);
        if let Ok(bytes) = sealed.and_then(|sealed| sealed.encode()) {
            let _ = self.write_key(now, MESH_SECRET_KEY, Some(bytes));
        }
        self.apply_mesh_secrets(now);
    }

    /// Devices no value may be sealed for: removed here, or excluded by a value.
    fn excluded_devices(&self) -> Vec<DeviceId> {
        let mut excluded = excluded_by(&self.stored_values());
        excluded.extend(
            self.roster
                .entries()
                .filter(|(_, entry)| entry.removed)
                .map(|(id, _)| *id),
        );
        excluded.sort_unstable();
        excluded.dedup();
        excluded
    }

    /// Whether every value is sealed, and none for `device`.
    pub(super) fn mesh_secret_shut_to(&self, device: &DeviceId) -> bool {
        let values = self.stored_values();
        !values.is_empty()
            && values.iter().all(|value| match value {
                Stored::Sealed(sealed) => !sealed.is_sealed_for(device),
                Stored::Clear(_) => false,
            })
    }

    /// Whether the mesh has made a secret yet (one this device can read or not).
    pub(super) fn has_mesh_secret(&self) -> bool {
        !self.stored_values().is_empty()
    }

    /// After roster keys changed (a batch from a peer, or the store restored): the
    /// whole batch is in, so what it brings is judged together (a removal and the secret
    /// that followed it come in one). The value is read once:
    ///
    /// - a value in the clear (an older version wrote it) is sealed;
    /// - a value written at the same time as a removal's rotation elsewhere (by a device
    ///   that had not heard of it: sealing the old secret for a joiner, say) may still be
    ///   sealed for the removed device, and its secret is answered while it is current: a
    ///   device of the roster that sees it beside the rotation's value makes a new secret,
    ///   sealed for the others only. (A removal alone is no such sign: its rotation comes
    ///   with it, and a new secret made before it arrived would only stand beside it.)
    pub(super) fn after_roster_changes(&mut self, now: Timestamp) {
        if !self.roster.is_member(&self.own_id()) {
            return;
        }
        let values = self.stored_values();
        if values.iter().any(|value| matches!(value, Stored::Clear(_))) {
            self.reseal_mesh_secret(now);
            return;
        }
        let excluded = excluded_by(&values);
        let leaked = values.iter().any(|value| match value {
            Stored::Sealed(sealed) => excluded.iter().any(|device| sealed.is_sealed_for(device)),
            Stored::Clear(_) => false,
        });
        // Only a device that can read the secrets makes new ones.
        if leaked && !self.stored_secrets().is_empty() {
            self.rotate_mesh_secret(now, true);
        }
    }
}
