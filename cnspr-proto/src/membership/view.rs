//! A digest of this device's view of the mesh (every device's incarnation and whether it
//! is up), kept up to date as the view changes, so that two neighbours can tell in 16
//! bytes whether they agree. Floods and piggybacked news are the fast path for news;
//! this is the repair: when a flood missed a device (after a partition heals, the
//! halves' floods stop at what each half still sees live), the next comparison with a
//! neighbour finds the difference and the two exchange their whole views.

use crate::crypto::hash::hash;
use crate::identity::DeviceId;
use crate::membership::message::Status;

/// Bytes of a view digest.
pub const VIEW_DIGEST_BYTES: usize = 16;

/// The XOR of one entry per device: adding, removing and changing a device cost one
/// hash each, whatever the mesh size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewDigest([u8; VIEW_DIGEST_BYTES]);

impl ViewDigest {
    /// Toggles the entry of `device` at `incarnation` with `status` (adds it if absent,
    /// removes it if present).
    pub fn toggle(&mut self, device: &DeviceId, incarnation: u64, status: Status) {
        // Suspicion is a passing state: it does not count as a difference.
        let up = u8::from(matches!(status, Status::Alive | Status::Suspect));
        let left = u8::from(status == Status::Left);
        let entry = hash(&[
            b"cnspr view",
            device.as_bytes(),
            &incarnation.to_le_bytes(),
            &[up, left],
        ]);
        for (byte, other) in self.0.iter_mut().zip(entry) {
            *byte ^= other;
        }
    }

    /// The digest's bytes.
    pub fn bytes(&self) -> [u8; VIEW_DIGEST_BYTES] {
        self.0
    }
}
