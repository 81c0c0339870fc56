//! LAN beacons: how a device tells the other devices of its mesh on the same network that
//! it is here, and nobody else anything.
//!
//! A beacon is [`BEACON_BYTES`] of what looks like noise: a fresh random salt, then the
//! sender's device ID and its clock (Unix seconds) sealed with ChaCha20-Poly1305 under a
//! key derived from the mesh secret and that salt. A stranger recording every beacon
//! learns only that beacons were sent: no ID, no name, no counter, and no bytes two
//! beacons share (every salt is new, so every key and ciphertext is). A device of the mesh
//! tells a beacon from other datagrams of the same size by trying to open it with each
//! secret it answers ([`Beacons::hear`]). The key rotates with the mesh secret, which a
//! removed device never learns.
//!
//! A beacon is believed only while fresh (its clock within [`FRESHNESS`] of the
//! listener's) and only once (its salt is remembered while fresh), so one recorded on one
//! network and replayed on another is stale within a minute, and answered at most once
//! before that.

use std::collections::BTreeMap;

use crate::crypto::aead::{CipherKey, TAG_BYTES};
use crate::crypto::hash::hash;
use crate::identity::DeviceId;
use crate::transport::stealth::{MeshSecret, OPEN_MESH};

/// Random bytes that key each beacon anew.
const SALT_BYTES: usize = 16;
/// What is sealed: the sender's device ID and its clock.
const PLAINTEXT_BYTES: usize = 32 + 8;
/// Every beacon's size.
pub const BEACON_BYTES: usize = SALT_BYTES + PLAINTEXT_BYTES + TAG_BYTES;
/// How far a beacon's clock may be from the listener's: a recorded beacon is worthless
/// after that.
pub const FRESHNESS: std::time::Duration = std::time::Duration::from_secs(60);
/// Most salts remembered (beacons heard within the freshness window): far above what the
/// devices of one network send in two minutes; beyond it the oldest is forgotten.
const MAX_SEEN: usize = 4096;

fn beacon_key(secret: &MeshSecret, salt: &[u8]) -> CipherKey {
    CipherKey::new(&hash(&[b"cnspr beacon v1", secret, salt]))
}

/// Seals a beacon of `device` at `unix_secs`, keyed by `secret` and `salt` (fresh random
/// bytes for every beacon).
pub fn seal(secret: &MeshSecret, salt: [u8; SALT_BYTES], device: &DeviceId, unix_secs: u64) -> Vec<u8> {
    let mut plaintext = [0u8; PLAINTEXT_BYTES];
    plaintext[..32].copy_from_slice(device.as_bytes());
    plaintext[32..].copy_from_slice(&unix_secs.to_le_bytes());
    let mut beacon = Vec::with_capacity(BEACON_BYTES);
    beacon.extend_from_slice(&salt);
    beacon_key(secret, &salt).seal(0, &[], &plaintext, &mut beacon);
    beacon
}

/// Opens `datagram` as a beacon under `secret`: the sender and its clock.
pub fn open(secret: &MeshSecret, datagram: &[u8]) -> Option<(DeviceId, u64)> {
    if datagram.len() != BEACON_BYTES {
        return None;
    }
    let (salt, sealed) = datagram.split_at(SALT_BYTES);
    let plaintext = beacon_key(secret, salt).open(0, &[], sealed).ok()?;
    let device: [u8; 32] = plaintext.get(..32)?.try_into().ok()?;
    let unix_secs = u64::from_le_bytes(plaintext.get(32..40)?.try_into().ok()?);
    Some((DeviceId::from_bytes(device), unix_secs))
}

/// The beacons a device sends and hears: the secret it seals with, the secrets it opens
/// with, and the salts heard lately.
#[derive(Debug, Default)]
pub struct Beacons {
    /// The secret beacons are sealed with (none while the mesh has no secret: a beacon
    /// under the open mesh's would tell anyone who sent it).
    sealing: Option<MeshSecret>,
    /// The secrets beacons are opened with (the ones this device answers).
    opening: Vec<MeshSecret>,
    /// Salts of beacons taken in, with the Unix second after which they are stale.
    seen: BTreeMap<[u8; SALT_BYTES], u64>,
}

impl Beacons {
    /// Sets the secrets: `current`, to seal with, and `answered`, to open with. The open
    /// mesh's is never used.
    pub fn set_secrets(&mut self, current: Option<MeshSecret>, answered: &[MeshSecret]) {
        self.sealing = current.filter(|secret| *secret != OPEN_MESH);
        self.opening = answered
            .iter()
            .copied()
            .filter(|secret| *secret != OPEN_MESH)
            .collect();
    }

    /// A beacon of `device` at `unix_secs`, salted with `salt`; `None` without a secret.
    pub fn seal(&self, salt: [u8; SALT_BYTES], device: &DeviceId, unix_secs: u64) -> Option<Vec<u8>> {
        self.sealing
            .as_ref()
            .map(|secret| seal(secret, salt, device, unix_secs))
    }

    /// Whether `datagram` is a fresh beacon of this mesh not heard before at `unix_secs`:
    /// its sender if so.
    pub fn hear(&mut self, datagram: &[u8], unix_secs: u64) -> Option<DeviceId> {
        if datagram.len() != BEACON_BYTES {
            return None;
        }
        let (device, sent) = self.opening.iter().find_map(|secret| open(secret, datagram))?;
        let window = FRESHNESS.as_secs();
        if sent.abs_diff(unix_secs) > window {
            return None;
        }
        let mut salt = [0u8; SALT_BYTES];
        salt.copy_from_slice(&datagram[..SALT_BYTES]);
        self.seen.retain(|_, stale_after| *stale_after >= unix_secs);
        if self.seen.contains_key(&salt) {
            return None;
        }
        if self.seen.len() >= MAX_SEEN {
            crate::bounded::remove_least(&mut self.seen, |stale_after| *stale_after);
        }
        self.seen.insert(salt, sent.saturating_add(window));
        Some(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn beacons(current: MeshSecret, answered: &[MeshSecret]) -> Beacons {
        let mut beacons = Beacons::default();
        beacons.set_secrets(Some(current), answered);
        beacons
    }

    #[test]
    fn a_mesh_device_hears_a_fresh_beacon_once_and_nobody_else_hears_anything() {
        let device = DeviceId::from_bytes([9; 32]);
        let sender = beacons([1; 32], &[[1; 32]]);
        let beacon = sender.seal([7; 16], &device, NOW).expect("a secret");
        assert_eq!(beacon.len(), BEACON_BYTES);
        let mut listener = beacons([1; 32], &[[2; 32], [1; 32]]);
        assert_eq!(listener.hear(&beacon, NOW + 5), Some(device));
        assert_eq!(listener.hear(&beacon, NOW + 6), None, "a replay is not answered");
        // Another mesh, a stale or future clock, a flipped bit, another size: nothing.
        let mut stranger = beacons([3; 32], &[[3; 32]]);
        assert_eq!(stranger.hear(&beacon, NOW), None);
        let stale = sender.seal([8; 16], &device, NOW - 61).expect("a secret");
        assert_eq!(listener.hear(&stale, NOW), None);
        let early = sender.seal([9; 16], &device, NOW + 61).expect("a secret");
        assert_eq!(listener.hear(&early, NOW), None);
        let mut flipped = sender.seal([10; 16], &device, NOW).expect("a secret");
        flipped[20] ^= 1;
        assert_eq!(listener.hear(&flipped, NOW), None);
        assert_eq!(listener.hear(&beacon[1..], NOW), None);
    }

    #[test]
    fn the_open_mesh_sends_no_beacon_and_opens_none() {
        let mut open_mesh = Beacons::default();
        open_mesh.set_secrets(Some(OPEN_MESH), &[OPEN_MESH]);
        let device = DeviceId::from_bytes([9; 32]);
        assert_eq!(open_mesh.seal([1; 16], &device, NOW), None);
        let under_open = seal(&OPEN_MESH, [1; 16], &device, NOW);
        assert_eq!(open_mesh.hear(&under_open, NOW), None);
    }

    #[test]
    fn two_beacons_share_no_eight_bytes_and_hold_no_id() {
        let device = DeviceId::from_bytes([0x5a; 32]);
        let sender = beacons([1; 32], &[[1; 32]]);
        let first = sender.seal([1; 16], &device, NOW).expect("a secret");
        let second = sender.seal([2; 16], &device, NOW).expect("a secret");
        let windows = |b: &[u8]| b.windows(8).map(<[u8]>::to_vec).collect::<Vec<_>>();
        // The salts here are chosen, not random: leave them out.
        let (first, second) = (&first[SALT_BYTES..], &second[SALT_BYTES..]);
        assert!(windows(first).iter().all(|w| !windows(second).contains(w)));
        assert!(windows(first)
            .iter()
            .all(|w| !device.as_bytes().windows(8).any(|d| d == w.as_slice())));
    }
}
