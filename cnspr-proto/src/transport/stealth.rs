//! Stealth: a device answers no initiation from a sender that is neither a mesh device nor
//! the holder of one of its invites. Every initiation ends with `mac1`, a keyed BLAKE2s
//! MAC over the datagram before it (WireGuard's MAC1), checked before any public-key work:
//!
//! - a `HandshakeInit` to responder `R` is keyed by `R`'s public key and a **mesh secret**
//!   every device of the mesh holds (device IDs are shown to people and handlers, so the
//!   key alone would let anyone who saw an ID make a device answer);
//! - a `PairingInit` is keyed by `R`'s key and the invite's PSK, which the joiner has
//!   from the token.
//!
//! A port scan, or a flood from a sender that knows an ID but not the secret, gets no
//! answer and costs the responder one hash per known secret, no X25519 operation.
//!
//! The mesh secret rotates when a device is removed (`node/mesh_secret.rs`). A responder
//! accepts the secrets its mesh lists as current or recently retired; an initiator tries
//! every secret it knows, one per attempt, so that a device that was away through a
//! rotation still reaches the others and learns the new one.

use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::Blake2sMac;

use crate::crypto::hash::hash;
use crate::identity::PublicKey;
use crate::wire::MAC_BYTES;

/// A mesh's shared secret (or, before any is made, [`OPEN_MESH`]).
pub type MeshSecret = [u8; 32];

/// The secret of a mesh that has made none yet: devices set up by hand, or by a version
/// before secrets. Such a mesh has no stealth until its first pairing makes a secret.
pub const OPEN_MESH: MeshSecret = [0; 32];

const MAC1_LABEL: &[u8] = b"cnspr mac1 mesh";
const PAIRING_MAC1_LABEL: &[u8] = b"cnspr mac1 pairing";

/// The key of `mac1` on handshakes to `responder` in a mesh with `secret`.
pub fn mesh_mac1_key(responder: &PublicKey, secret: &MeshSecret) -> [u8; 32] {
    hash(&[MAC1_LABEL, &responder.0, secret])
}

/// The key of `mac1` on pairing handshakes to `responder` with an invite's `psk`.
pub fn pairing_mac1_key(responder: &PublicKey, psk: &[u8; 32]) -> [u8; 32] {
    hash(&[PAIRING_MAC1_LABEL, &responder.0, psk])
}

fn keyed(key: &[u8; 32]) -> Blake2sMac<U16> {
    // BLAKE2s takes keys of up to 32 bytes: this one always fits.
    <Blake2sMac<U16> as Mac>::new_from_slice(key).expect("a 32-byte BLAKE2s key")
}

/// The keyed BLAKE2s-128 MAC of `covered` under `key` (`mac1`'s and `mac2`'s, and a
/// cookie's).
pub fn mac16(key: &[u8; 32], covered: &[u8]) -> [u8; MAC_BYTES] {
    let mut mac = keyed(key);
    mac.update(covered);
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is the [`mac16`] of `covered` under `key` (compared in constant time).
pub fn verify_mac16(key: &[u8; 32], covered: &[u8], tag: &[u8; MAC_BYTES]) -> bool {
    let mut mac = keyed(key);
    mac.update(covered);
    mac.verify_slice(tag).is_ok()
}

/// Writes an encoded initiation's `mac1` (in place of the placeholder before `mac2`);
/// returns it.
pub fn seal_mac1(key: &[u8; 32], datagram: &mut [u8]) -> [u8; MAC_BYTES] {
    let covered = datagram.len().saturating_sub(2 * MAC_BYTES);
    let tag = mac16(key, &datagram[..covered]);
    datagram[covered..covered + MAC_BYTES].copy_from_slice(&tag);
    tag
}

/// The mesh secrets an endpoint uses: which it answers, and which it tries in turn when it
/// calls a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSecrets {
    /// Secrets to try when calling, the current one first.
    known: Vec<MeshSecret>,
    /// Keys of `mac1` this device accepts as responder (current and recently retired
    /// secrets, each bound to this device's key).
    accepted: Vec<[u8; 32]>,
}

impl MeshSecrets {
    /// A device that knows only the open mesh's secret.
    pub fn open(local: &PublicKey) -> Self {
        Self::new(local, vec![OPEN_MESH], vec![OPEN_MESH])
    }

    /// Secrets `known` (tried in this order when calling; never empty: the open mesh's
    /// then) and `accepted` (answered).
    pub fn new(local: &PublicKey, known: Vec<MeshSecret>, accepted: Vec<MeshSecret>) -> Self {
        let known = if known.is_empty() { vec![OPEN_MESH] } else { known };
        let accepted = accepted
            .iter()
            .map(|secret| mesh_mac1_key(local, secret))
            .collect();
        Self { known, accepted }
    }

    /// The secret to key the `attempt`th call to a peer with.
    pub fn for_attempt(&self, attempt: u32) -> &MeshSecret {
        &self.known[attempt as usize % self.known.len()]
    }

    /// Whether an initiation's `mac1` proves one of the accepted secrets.
    pub fn accepts(&self, covered: &[u8], tag: &[u8; MAC_BYTES]) -> bool {
        // Every key is tried, so that the time taken says nothing about which matched.
        self.accepted
            .iter()
            .fold(false, |any, key| verify_mac16(key, covered, tag) | any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey([byte; 32])
    }

    #[test]
    fn a_mac_verifies_under_its_own_key_only() {
        let responder = key(1);
        let right = mesh_mac1_key(&responder, &[7; 32]);
        let tag = mac16(&right, b"initiation");
        assert!(verify_mac16(&right, b"initiation", &tag));
        assert!(!verify_mac16(&right, b"initiatioN", &tag));
        for wrong in [
            mesh_mac1_key(&responder, &[8; 32]),
            mesh_mac1_key(&key(2), &[7; 32]),
            pairing_mac1_key(&responder, &[7; 32]),
        ] {
            assert!(!verify_mac16(&wrong, b"initiation", &tag));
        }
    }

    #[test]
    fn sealing_writes_the_mac_of_what_comes_before() {
        let key = [3; 32];
        let mut datagram = b"header and noise..placeholder16b..placeholder16b".to_vec();
        let sealed = seal_mac1(&key, &mut datagram);
        assert_eq!(crate::wire::mac1_covered(&datagram), b"header and noise");
        let (before_mac2, _) = datagram.split_last_chunk::<MAC_BYTES>().expect("long enough");
        let (covered, tag) = before_mac2.split_last_chunk::<MAC_BYTES>().expect("long enough");
        assert_eq!((covered, tag), (&b"header and noise"[..], &sealed));
        assert!(verify_mac16(&key, covered, tag));
        assert!(datagram.ends_with(b"..placeholder16b"), "mac2 untouched");
    }

    #[test]
    fn secrets_are_tried_in_turn_and_answered_only_if_accepted() {
        let local = key(1);
        let secrets = MeshSecrets::new(&local, vec![[1; 32], [2; 32]], vec![[1; 32]]);
        assert_eq!(secrets.for_attempt(0), &[1; 32]);
        assert_eq!(secrets.for_attempt(1), &[2; 32]);
        assert_eq!(secrets.for_attempt(2), &[1; 32]);
        let tag_with = |secret: &MeshSecret| mac16(&mesh_mac1_key(&local, secret), b"x");
        assert!(secrets.accepts(b"x", &tag_with(&[1; 32])));
        assert!(!secrets.accepts(b"x", &tag_with(&[2; 32])));
        assert!(!secrets.accepts(b"x", &tag_with(&OPEN_MESH)));
        let open = MeshSecrets::open(&local);
        assert!(open.accepts(b"x", &tag_with(&OPEN_MESH)));
        assert_eq!(
            MeshSecrets::new(&local, Vec::new(), Vec::new()).for_attempt(5),
            &OPEN_MESH
        );
    }
}
