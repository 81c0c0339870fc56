//! The device's key: an Ed25519 signing key whose scalar is also the X25519 key Noise
//! runs on, so one secret both proves the device in handshakes and signs what it writes.
//!
//! The device ID is the Ed25519 public key. Its X25519 form is computed from it
//! ([`DeviceId::noise_key`]), and back ([`PublicKey::device_id`]) because every device
//! key has a public key whose sign bit is clear: the one X25519 key of a handshake names
//! one device, never two (XEdDSA fixes the sign the same way).

use core::fmt;

use ed25519_dalek::SigningKey;

use super::device_id::DeviceId;
use super::keys::{PublicKey, StaticKeypair};
use super::signature::Signature;
use crate::crypto::hash::hash;

/// What a seed is stepped forward with when its public key has the sign bit set.
const NEXT_SEED: &[u8] = b"cnspr device seed";

/// A device's long-term secret: it signs, and its X25519 form runs Noise.
///
/// The secrets are zeroized on drop (by `ed25519-dalek` and `x25519-dalek`). The core
/// never draws randomness for keys: the runtime supplies 32 random bytes.
#[derive(Clone)]
pub struct DeviceKey {
    signing: SigningKey,
    noise: StaticKeypair,
    id: DeviceId,
}

impl DeviceKey {
    /// The key grown from 32 secret bytes (fresh OS randomness or a persisted seed).
    ///
    /// About half of all seeds give a public key with the sign bit set; such a seed is
    /// replaced by its hash until one does not, so any bytes work and a persisted
    /// [`DeviceKey::seed_bytes`] gives the same key again.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut seed = seed;
        loop {
            let signing = SigningKey::from_bytes(&seed);
            let id = DeviceId::from_bytes(signing.verifying_key().to_bytes());
            if id.has_clear_sign() {
                let noise = StaticKeypair::from_secret_bytes(signing.to_scalar_bytes());
                return Self { signing, noise, id };
            }
            seed = hash(&[NEXT_SEED, &seed]);
        }
    }

    /// The seed, for persisting. The caller must protect and zeroize it.
    pub fn seed_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// This device's ID: its Ed25519 public key.
    pub fn device_id(&self) -> DeviceId {
        self.id
    }

    /// The X25519 keypair Noise handshakes prove.
    pub fn noise(&self) -> &StaticKeypair {
        &self.noise
    }

    /// The X25519 public key, as handshakes show it.
    pub fn noise_public(&self) -> &PublicKey {
        self.noise.public()
    }

    /// Signs `message` (Ed25519, deterministic: the same message gives the same signature).
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("DeviceKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_noise_key_name_each_other() {
        for seed in 0..64u8 {
            let key = DeviceKey::from_seed([seed; 32]);
            let id = key.device_id();
            assert!(id.has_clear_sign());
            assert_eq!(id.noise_key(), Some(*key.noise_public()), "seed {seed}");
            assert_eq!(key.noise_public().device_id(), Some(id), "seed {seed}");
        }
    }

    #[test]
    fn a_seed_with_the_sign_bit_set_is_stepped_and_persists() {
        let stepped = (0..64u8)
            .map(|seed| [seed; 32])
            .find(|seed| DeviceKey::from_seed(*seed).seed_bytes() != *seed)
            .expect("about half of all seeds are stepped");
        let key = DeviceKey::from_seed(stepped);
        let again = DeviceKey::from_seed(key.seed_bytes());
        assert_eq!(again.device_id(), key.device_id());
        assert_eq!(again.seed_bytes(), key.seed_bytes());
    }

    #[test]
    fn rfc8032_key_matches_when_its_sign_is_clear() {
        // RFC 8032 section 7.1, test 1: the public key's last byte is 0x1a (sign clear).
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = DeviceKey::from_seed(seed);
        assert_eq!(
            key.device_id().as_bytes(),
            &hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let signature = key.sign(b"");
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                        5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(hex::encode(signature.0), expected);
    }

    #[test]
    fn debug_hides_secret() {
        let key = DeviceKey::from_seed([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(shown.starts_with("DeviceKey { id: DeviceId("), "{shown}");
        assert!(!shown.contains("abab"), "{shown}");
    }

    fn hex(s: &str) -> [u8; 32] {
        let bytes = hex::decode(s).expect("test vector is valid hex");
        bytes.try_into().expect("32 bytes")
    }
}
