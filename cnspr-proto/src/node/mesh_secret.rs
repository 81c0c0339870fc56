//! Keeping the endpoint's mesh secrets (`transport/stealth.rs`) in step with the value the
//! store holds ([`crate::roster::mesh_secret`]), and making a new secret when the mesh
//! forms or loses a device.

use super::Node;
use crate::roster::mesh_secret::{endpoint_secrets, StoredSecrets, MESH_SECRET_KEY};
use crate::time::Timestamp;

impl Node {
    /// Every sibling of the stored value that parses.
    fn stored_secrets(&self) -> Vec<StoredSecrets> {
        self.decoded_siblings(MESH_SECRET_KEY, StoredSecrets::decode)
    }

    /// Gives the endpoint the secrets the store holds now (after the value changed, and
    /// now and then, as retired secrets age out of being answered).
    pub(super) fn apply_mesh_secrets(&mut self, now: Timestamp) {
        let unix_secs = self.messaging.unix_micros_at(now) / 1_000_000;
        let (known, answered) = endpoint_secrets(&self.stored_secrets(), unix_secs);
        // Beacons are sealed and opened with the current secrets only: a retired one is
        // still known to a device removed less than two weeks ago.
        let current: Vec<_> = self.stored_secrets().iter().map(|value| value.current).collect();
        self.beacons.set_secrets(known.first().copied(), &current);
        self.endpoint.set_mesh_secrets(known, answered);
    }

    /// Replaces the mesh secret with a fresh one, retiring what the store held, and
    /// spreads it like any write: every device of the roster gets it, a removed one not.
    /// `open_mesh_in_use`: whether devices of the mesh may be on no secret yet (it formed
    /// before secrets existed), rather than this being the mesh's first pairing.
    pub(super) fn rotate_mesh_secret(&mut self, now: Timestamp, open_mesh_in_use: bool) {
        let unix_secs = self.messaging.unix_micros_at(now) / 1_000_000;
        let fresh = self.rng.bytes32();
        let value = StoredSecrets::rotated(&self.stored_secrets(), fresh, unix_secs, open_mesh_in_use);
        // A value of at most nine secrets always encodes within the store's limits.
        if let Ok(bytes) = value.encode() {
            let _ = self.write_key(now, MESH_SECRET_KEY, Some(bytes));
        }
        self.apply_mesh_secrets(now);
    }

    /// Whether the mesh has made a secret yet.
    pub(super) fn has_mesh_secret(&self) -> bool {
        !self.stored_secrets().is_empty()
    }
}
